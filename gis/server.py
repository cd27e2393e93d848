"""``gridgov serve``: warm up, then run the one application under uvicorn.

One worker, on purpose: a Bokeh/Panel session lives in the process that created it, and its websocket
must come back to that process. Scale out with more machines behind a proxy with sticky sessions.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import uvicorn

from gis.settings import Settings


def warm_up() -> float:
    """Compile datashader's numba kernels and draw one small map now, so the first user to open a map
    does not pay for it (a page is built inside the event loop, where it holds up every other request).
    Returns the seconds spent."""
    import datashader as ds
    import geopandas as gpd
    import holoviews as hv
    import numpy as np
    import pandas as pd
    from holoviews.operation.datashader import rasterize
    from shapely.geometry import box

    from dashboards.map import TerritoryMap

    started = time.perf_counter()
    hv.extension("bokeh", logo=False)
    rng = np.random.default_rng(0)
    points = pd.DataFrame({"x": rng.random(64), "y": rng.random(64)})
    hv.render(rasterize(hv.Points(points, ["x", "y"]), width=16, height=16, dynamic=False))
    # Polygons straight from GeoPandas: the path big layers (buildings, grids) take at low zoom.
    squares = gpd.GeoDataFrame({"v": [1.0, 2.0]}, geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)])
    ds.Canvas(plot_width=16, plot_height=16).polygons(squares, geometry="geometry", agg=ds.sum("v"))
    TerritoryMap(_sample_territory()).pane.get_root()
    return time.perf_counter() - started


def _sample_territory():
    """A district with one street: enough for every code path the map takes."""
    import geopandas as gpd
    from shapely.geometry import MultiPolygon, box

    from layers.territory import LEVEL_LABELS

    rows = [("district", "320106", "示例区", "320106", (118.74, 32.07, 118.76, 32.09)),
            ("street", "320106001", "示例街道", "320106.320106001", (118.74, 32.07, 118.75, 32.09))]
    return gpd.GeoDataFrame(
        [dict(level=level, level_label=LEVEL_LABELS[level], code=code, name=name, path=path)
         for level, code, name, path, _ in rows],
        geometry=[MultiPolygon([box(*bounds)]) for *_, bounds in rows], crs="EPSG:4490",
    )


def display_address(settings: Settings) -> str:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    scheme = "https" if settings.ssl_certfile else "http"
    return f"{scheme}://{host}:{settings.port}/"


def serve(settings: Settings, echo: Callable[[str], object] = print) -> None:
    """Warm up, build the app for ``settings`` and serve it until interrupted."""
    from gis.app import create_app

    echo(f"预热绘图引擎 (warming up datashader/numba and the map)… {warm_up():.1f} 秒")
    app = create_app(settings)
    echo(f"gridgov 已启动，请在浏览器打开 {display_address(settings)}  (Ctrl+C 停止)")
    if settings.host in ("0.0.0.0", "::"):
        echo("正在监听所有网络接口 (listening on all interfaces)")
        if not settings.ssl_certfile:
            echo("提示：手机端（/m）的定位与离线功能需要 HTTPS，请配置 --ssl-certfile/--ssl-keyfile "
                 "(phones need HTTPS for GPS and offline pages)")
    uvicorn.Server(uvicorn_config(app, settings)).run()


def uvicorn_config(app, settings: Settings, **overrides) -> uvicorn.Config:
    """How uvicorn serves ``app``: one worker, big websocket messages, TLS when configured."""
    options = dict(
        host=settings.host, port=settings.port, workers=1, log_level="info",
        # A page's first Bokeh message carries all its layers; a district's grids can pass uvicorn's 16 MB.
        ws_max_size=64 * 1024 * 1024,
        ssl_certfile=str(settings.ssl_certfile) if settings.ssl_certfile else None,
        ssl_keyfile=str(settings.ssl_keyfile) if settings.ssl_keyfile else None,
    )
    return uvicorn.Config(app, **{**options, **overrides})
