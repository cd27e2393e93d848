"""Event density (热力图) rendered on the server with datashader, and hot spots (热点) by grid.

A million events are a million points the browser should never see: the server bins them into a
raster of the map's size (a count per cell, in Web Mercator), shades it, and sends one image. The same
counts are what the tests compare with SQL, cell by cell.

>>> x, y = event_points(conn, start, end)                       # doctest: +SKIP
>>> counts = density(x, y, bounds, width=600, height=400)      # doctest: +SKIP  xarray, rows = y up
>>> rgba = shade(counts)                                         # doctest: +SKIP  (h, w, 4) uint8

Hot spots compare each grid's count over the period with its own history: the same length of time,
repeated back ``history`` times; a grid is hot when its count is well above its usual (mean + z·sd, and
at least ``min_events``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import datashader as ds
import datashader.transfer_functions as tf
import numpy as np
import pandas as pd
import xarray as xr
from sqlalchemy import Connection, text

from layers.events.calendar import BEIJING

PERIODS = {"today": "今日", "7d": "近7日", "30d": "近30日", "custom": "自定义"}
# Dark blue to hot yellow: legible on the wall's dark ground.
HEAT_COLORS = ["#1b2a6b", "#3d3db8", "#8a3ab9", "#d8456c", "#f3874f", "#fde24f"]

Bounds = tuple[float, float, float, float]  # x0, y0, x1, y1 in EPSG:3857


@dataclass(frozen=True)
class Period:
    key: str
    start: dt.datetime
    end: dt.datetime

    @property
    def label(self) -> str:
        return PERIODS.get(self.key, self.key)


def period(key: str, *, now: dt.datetime | None = None, start: dt.date | None = None,
           end: dt.date | None = None) -> Period:
    """``today``, ``7d``, ``30d`` (ending now, days in Beijing time) or ``custom`` (``start``..``end``
    inclusive)."""
    now = now or dt.datetime.now(dt.UTC)
    midnight = dt.datetime.combine(now.astimezone(BEIJING).date(), dt.time(0), BEIJING)
    if key == "today":
        return Period(key, midnight, now)
    if key in ("7d", "30d"):
        return Period(key, midnight - dt.timedelta(days=int(key[:-1]) - 1), now)
    if key == "custom":
        if start is None or end is None or end < start:
            raise ValueError("自定义时段需要开始和结束日期，且结束不早于开始 (need start <= end)")
        return Period(key, dt.datetime.combine(start, dt.time(0), BEIJING),
                      dt.datetime.combine(end + dt.timedelta(days=1), dt.time(0), BEIJING))
    raise ValueError(f"未知时段 {key!r}，可选 {', '.join(PERIODS)} (unknown period)")


def event_points(conn: Connection, start: dt.datetime, end: dt.datetime, *,
                 type_prefix: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Web Mercator x, y of the events the caller may see reported in ``[start, end)``."""
    clause = " AND type LIKE :type" if type_prefix else ""
    row = conn.execute(text(
        "SELECT coalesce(array_agg(ST_X(m)), '{}'), coalesce(array_agg(ST_Y(m)), '{}') FROM ("
        " SELECT ST_Transform(location, 3857) AS m FROM event"
        f" WHERE location IS NOT NULL AND reported_at >= :start AND reported_at < :end{clause}) AS p"
    ), {"start": start, "end": end, "type": (type_prefix or "") + "%"}).one()
    return np.asarray(row[0], dtype="float64"), np.asarray(row[1], dtype="float64")


def canvas_shape(bounds: Bounds, width: int) -> tuple[int, int]:
    """``(width, height)`` of a raster over ``bounds`` with square cells."""
    x0, y0, x1, y1 = bounds
    return width, max(1, round(width * (y1 - y0) / (x1 - x0)))


def density(x: np.ndarray, y: np.ndarray, bounds: Bounds, width: int, height: int) -> xr.DataArray:
    """Events per cell (``uint32``), ``height`` rows from south to north by ``width`` columns."""
    x0, y0, x1, y1 = bounds
    canvas = ds.Canvas(plot_width=width, plot_height=height, x_range=(x0, x1), y_range=(y0, y1))
    frame = pd.DataFrame({"x": x, "y": y})
    return canvas.points(frame, "x", "y", agg=ds.count())


def cell_counts_sql(conn: Connection, start: dt.datetime, end: dt.datetime, bounds: Bounds,
                    width: int, height: int) -> dict[tuple[int, int], int]:
    """The same binning done by the database: ``{(row, col): count}``, for checking the raster."""
    x0, y0, x1, y1 = bounds
    rows = conn.execute(text(
        "SELECT floor((ST_Y(m) - :y0) / (:y1 - :y0) * :h)::int AS r,"
        "       floor((ST_X(m) - :x0) / (:x1 - :x0) * :w)::int AS c, count(*)"
        " FROM (SELECT ST_Transform(location, 3857) AS m FROM event"
        "       WHERE location IS NOT NULL AND reported_at >= :start AND reported_at < :end) p"
        " WHERE ST_X(m) >= :x0 AND ST_X(m) < :x1 AND ST_Y(m) >= :y0 AND ST_Y(m) < :y1 GROUP BY 1, 2"),
        {"x0": x0, "y0": y0, "x1": x1, "y1": y1, "w": width, "h": height, "start": start, "end": end})
    return {(r, c): n for r, c, n in rows}


def shade(counts: xr.DataArray) -> np.ndarray:
    """An RGBA raster (``height × width × 4``, uint8, row 0 = south) of ``counts``; empty cells clear."""
    if int(counts.values.max(initial=0)) == 0:
        return np.zeros((*counts.shape, 4), dtype=np.uint8)
    image = tf.spread(tf.shade(counts, cmap=HEAT_COLORS, how="eq_hist", min_alpha=90), px=1)
    return image.to_numpy().view(np.uint8).reshape(*counts.shape, 4)


def territory_bounds(conn: Connection, path: str) -> Bounds | None:
    """The Web Mercator box of a territory unit's boundary (a little padded)."""
    row = conn.execute(text(
        "SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM ("
        " SELECT ST_Transform(ST_Envelope(boundary), 3857) AS b FROM territory_unit"
        " WHERE path = CAST(:p AS ltree) AND boundary IS NOT NULL) t"), {"p": path}).first()
    if row is None:
        return None
    x0, y0, x1, y1 = row
    pad = 0.02 * max(x1 - x0, y1 - y0)
    return x0 - pad, y0 - pad, x1 + pad, y1 + pad


# ---------------------------------------------------------------- hot spots
_HOT_SPOTS = text("""
WITH windows AS (
    SELECT n, CAST(:start AS timestamptz) - n * CAST(:span AS interval) AS w_start,
              CAST(:end AS timestamptz) - n * CAST(:span AS interval) AS w_end
      FROM generate_series(0, :history) AS n
),
grids AS (
    SELECT id FROM territory_unit WHERE level = 'grid' AND path <@ CAST(:scope AS ltree)
),
counts AS (
    SELECT e.grid_id, w.n, count(*) AS events
      FROM windows w JOIN event e ON e.reported_at >= w.w_start AND e.reported_at < w.w_end
     WHERE e.grid_id IN (SELECT id FROM grids)
     GROUP BY e.grid_id, w.n
),
per_window AS (
    SELECT g.id AS grid_id, w.n, coalesce(c.events, 0) AS events
      FROM grids g CROSS JOIN windows w LEFT JOIN counts c ON c.grid_id = g.id AND c.n = w.n
),
per_grid AS (
    SELECT grid_id, max(events) FILTER (WHERE n = 0) AS events,
           coalesce(avg(events) FILTER (WHERE n > 0), 0)::float8 AS usual,
           coalesce(stddev_pop(events) FILTER (WHERE n > 0), 0)::float8 AS spread
      FROM per_window GROUP BY grid_id
)
SELECT p.grid_id, g.name, g.path::text AS path, p.events, p.usual, p.spread,
       ST_X(ST_PointOnSurface(g.boundary)) AS lon, ST_Y(ST_PointOnSurface(g.boundary)) AS lat
  FROM per_grid p JOIN territory_unit g ON g.id = p.grid_id
 WHERE p.events >= :min_events AND p.events >= p.usual + :z * greatest(p.spread, 1)
 ORDER BY p.events - p.usual DESC, p.grid_id
""")



def hot_spots(conn: Connection, scope: str, start: dt.datetime, end: dt.datetime, *, history: int = 8,
              z: float = 2.0, min_events: int = 3) -> list[dict[str, Any]]:
    """Grids with unusually many events in ``[start, end)`` compared with the ``history`` windows of the
    same length before it: ``grid_id, name, path, events, usual, spread, lon, lat``, hottest first.
    (The spread is floored at one event, so a grid with a flat history needs a real jump.)"""
    return [dict(r) for r in conn.execute(_HOT_SPOTS, {
        "start": start, "end": end, "span": end - start, "history": history, "scope": scope, "z": z,
        "min_events": min_events}).mappings()]
