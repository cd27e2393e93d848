"""视频监控: the cameras of the registry (table ``camera``) on the map -- in a box, nearest to a point or an
event, and the field-of-view wedge each one looks along.

Everything is read through the caller's scoped connection: row-level security decides which cameras
exist for them. Distances are metres on the spheroid (PostGIS geography).

The nearest cameras come from a KNN walk (``<->``) of the GiST index on ``camera.geom``. That geometry
is in CGCS2000 *degrees*, where KNN order is not metric order (a degree of longitude is ~15 % shorter
than one of latitude at 32°N), so the walk fetches a few more candidates than asked for, in degree
order, and re-ranks them by true distance (geography). It is exact: the farthest of the ``n`` nearest in
degrees, in metres, bounds how far the true ``n`` nearest can be, hence how far in degrees; when the
last candidate lies beyond that, nobody is missing -- otherwise the walk fetches four times as many.
One index scan of a few dozen rows, however many cameras the district has.

>>> with scoped_connection(settings, user) as conn:                                  # doctest: +SKIP
...     nearest_cameras(conn, 118.75, 32.08, n=3)
[{'id': 7, 'name': '仙霞路小区大门', ..., 'distance_m': 41.2}, ...]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pyproj import Geod
from sqlalchemy import Connection, text

from gis.crs import PositionError, to_cgcs2000
from gis.errors import ServiceError

DEFAULT_RANGE_M = 80.0          # how far a wedge reaches when the settings do not say
DEFAULT_VIEW_ANGLE = 60.0       # a camera with a heading but no recorded view angle
MAX_NEAREST = 50
MAX_IN_BOX = 5000
STATUS_NAMES = {"1": "在线", "0": "离线"}
STATUS_COLORS = {"1": "#22c55e", "0": "#94a3b8"}
_GEOD = Geod(ellps="GRS80")     # CGCS2000's ellipsoid (GRS80 to a tenth of a millimetre)
_M_PER_DEG_LAT = 110_000.0      # a little under the true 110.6 km: the reach errs on the big side

_COLUMNS = ("c.id, c.name, c.device_no, c.location, c.heading::float8 AS heading,"
            " c.view_angle::float8 AS view_angle, c.stream_url, c.status, c.owner_unit, c.org_path::text,"
            " ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat")


class CameraError(ServiceError):
    """A refused camera request."""


class NotFound(CameraError):
    status = 404


class Invalid(CameraError):
    status = 422


def fov_range(settings: Any | None) -> float:
    """The wedge's reach in metres (``Settings.camera_fov_range_m``)."""
    return float(settings.camera_fov_range_m) if settings is not None else DEFAULT_RANGE_M


def _finish(row: dict) -> dict:
    row["status_name"] = STATUS_NAMES.get(row["status"], "未知")
    return row


def cameras_in_box(conn: Connection, bbox: Sequence[float], *,
                   limit: int = MAX_IN_BOX) -> list[dict[str, Any]]:
    """The cameras inside ``bbox`` (lon0, lat0, lon1, lat1 in CGCS2000), by id."""
    x0, y0, x1, y1 = check_bbox(bbox)
    return [_finish(dict(r)) for r in conn.execute(text(
        f"SELECT {_COLUMNS} FROM camera c"
        " WHERE c.geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4490)"
        "   AND ST_Intersects(c.geom, ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4490))"
        " ORDER BY c.id LIMIT :limit"), {"x0": x0, "y0": y0, "x1": x1, "y1": y1, "limit": limit}).mappings()]


def all_cameras(conn: Connection, *, limit: int = MAX_IN_BOX) -> list[dict[str, Any]]:
    """Every camera in scope that has a location (the wall's layer), by id."""
    return [_finish(dict(r)) for r in conn.execute(text(
        f"SELECT {_COLUMNS} FROM camera c WHERE c.geom IS NOT NULL ORDER BY c.id LIMIT :limit"),
        {"limit": limit}).mappings()]


def camera(conn: Connection, camera_id: int) -> dict[str, Any]:
    """One camera; :class:`NotFound` when it does not exist or is outside the caller's scope."""
    row = conn.execute(text(f"SELECT {_COLUMNS} FROM camera c WHERE c.id = :id"),
                       {"id": camera_id}).mappings().first()
    if row is None:
        raise NotFound(f"摄像头 {camera_id} 不存在或不在您的辖区内")
    return _finish(dict(row))


def check_bbox(bbox: Sequence[float]) -> tuple[float, float, float, float]:
    if len(bbox) != 4 or not all(math.isfinite(v) for v in bbox):
        raise Invalid("范围应为 4 个数：最小经度,最小纬度,最大经度,最大纬度")
    x0, y0, x1, y1 = (float(v) for v in bbox)
    if not (-180 <= x0 < x1 <= 180 and -90 <= y0 < y1 <= 90):
        raise Invalid("范围无效：应为 最小经度,最小纬度,最大经度,最大纬度，且最小值小于最大值")
    return x0, y0, x1, y1


def event_location(conn: Connection, event_id: int) -> tuple[float, float]:
    """An event's CGCS2000 lon/lat (scoped): :class:`NotFound` / :class:`Invalid` when there is none."""
    row = conn.execute(text("SELECT ST_X(location), ST_Y(location) FROM event WHERE id = :id"),
                       {"id": event_id}).first()
    if row is None:
        raise NotFound(f"事件 {event_id} 不存在或不在您的辖区内")
    if row[0] is None:
        raise Invalid(f"事件 {event_id} 没有位置，无法查找附近摄像头")
    return float(row[0]), float(row[1])


def nearest_cameras(conn: Connection, lon: float, lat: float, *, n: int = 5,
                    crs: str = "cgcs2000") -> list[dict[str, Any]]:
    """The ``n`` cameras nearest to a point (given in ``crs``), nearest first, with ``distance_m``."""
    if not 1 <= n <= MAX_NEAREST:
        raise Invalid(f"数量 n 应在 1 到 {MAX_NEAREST} 之间")
    try:
        lon, lat = to_cgcs2000(lon, lat, crs)
    except PositionError as error:
        raise Invalid(str(error)) from None
    params = {"lon": lon, "lat": lat, "n": n}
    # A KNN ordering (``<->``) walks the GiST index nearest first; it does so only against a constant,
    # so the point is written out.
    point = "ST_SetSRID(ST_MakePoint(:lon, :lat), 4490)"
    k = max(4 * n, 16)
    while True:
        rows = [dict(r) for r in conn.execute(text(
            f"SELECT {_COLUMNS}, c.geom <-> {point} AS degrees,"
            f"       ST_Distance(c.geom::geography, {point}::geography) AS distance_m"
            f" FROM camera c WHERE c.geom IS NOT NULL ORDER BY c.geom <-> {point} LIMIT :k"),
            {**params, "k": k}).mappings()]
        if len(rows) < k:
            break                      # every camera in scope was read
        # The n nearest in degrees are at most `radius` metres away, so the true n nearest are too; a
        # camera that close is at most `reach` degrees away. Once the candidates run past `reach`,
        # none is missing.
        radius = max(r["distance_m"] for r in rows[:n])
        dy = radius / _M_PER_DEG_LAT
        dx = radius / (_M_PER_DEG_LAT * math.cos(math.radians(min(89.0, abs(lat) + dy))))
        if rows[-1]["degrees"] > math.hypot(dx, dy) + 1e-9:
            break
        k *= 4
    rows.sort(key=lambda r: (r["distance_m"], r["id"]))
    return [_finish({k: v for k, v in r.items() if k != "degrees"}) for r in rows[:n]]


def fov_wedge(lon: float, lat: float, heading: float | None, view_angle: float | None,
              range_m: float = DEFAULT_RANGE_M, *, steps: int = 12) -> list[tuple[float, float]] | None:
    """The field of view as a closed ring of lon/lat: the camera, then an arc of ``range_m`` metres from
    ``heading - view_angle/2`` to ``heading + view_angle/2`` (degrees clockwise from north). ``None``
    without a heading (the direction is unknown: draw the point alone).

    >>> ring = fov_wedge(118.75, 32.08, 90, 60, 100)
    >>> ring[0] == ring[-1] == (118.75, 32.08)
    True
    """
    if heading is None or range_m <= 0:
        return None
    angle = min(360.0, max(1.0, float(view_angle or DEFAULT_VIEW_ANGLE)))
    start = float(heading) - angle / 2
    azimuths = [start + angle * i / steps for i in range(steps + 1)]
    k = len(azimuths)
    lons, lats, _ = _GEOD.fwd([lon] * k, [lat] * k, azimuths, [range_m] * k)
    return [(lon, lat), *zip(map(float, lons), map(float, lats), strict=True), (lon, lat)]


def stream_kind(url: str | None) -> str:
    """How a page can play a stream URL: ``image`` (snapshot / MJPEG in ``<img>``), ``video`` (MP4/WebM
    in ``<video>``), ``hls`` / ``flv`` (a ``<video>`` driven by the vendored hls.js / mpegts.js, see
    ``gis/static/player.js``; those fetch the stream with XHR/fetch, so a platform on another origin must
    send CORS headers), ``none`` (no URL) or ``unsafe`` (not http(s) or a path on this server: never put
    it in a page)."""
    if not url or not url.strip():
        return "none"
    url = url.strip()
    lower = url.lower()
    if not (lower.startswith(("http://", "https://")) or (url.startswith("/") and not url.startswith("//"))):
        return "unsafe"
    path = lower.split("?", 1)[0].split("#", 1)[0]
    if path.endswith(".m3u8"):
        return "hls"
    if path.endswith(".flv"):
        return "flv"
    if path.endswith((".mp4", ".webm", ".ogv", ".mov")):
        return "video"
    return "image"   # snapshots (.jpg/.png), MJPEG (.mjpg, /mjpeg, cgi) all play in an <img>
