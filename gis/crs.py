"""Coordinate reference systems: what China's data arrives in, and how it becomes CGCS2000 (EPSG:4490).

Two concerns live here because loaders, positions and exports all need them:

- **points from devices**: ``cgcs2000`` and ``wgs84`` (GPS) are taken as they are (the frames differ by
  centimetres, under what a phone fix is worth); ``gcj02`` (Amap, Tencent, WeChat) is the obfuscated
  national frame, inverted by fixed-point iteration of the published forward transform to a few
  centimetres; ``bd09`` (Baidu) is GCJ-02 with a further offset, undone exactly, then as GCJ-02.
- **projected survey data**: CGCS2000 Gauss-Krüger zones, EPSG:4491–4554. Four families of codes:

  ======================  =============  ===========================================
  EPSG                    zone width     false easting
  ======================  =============  ===========================================
  4491–4501 (zone 13–23)  6°             zone × 10⁶ + 500 000 (zone number prefixed)
  4502–4512 (CM 75–135)   6°             500 000
  4513–4533 (zone 25–45)  3°             zone × 10⁶ + 500 000
  4534–4554 (CM 75–135)   3°             500 000
  ======================  =============  ===========================================

  With the prefix the zone (and so the central meridian) is in the coordinates themselves; without it
  the same numbers fit every zone, and only where the data ought to be (the district) decides.

>>> lon, lat = to_cgcs2000(118.7800, 32.0600, "gcj02")
>>> round(lon, 4), round(lat, 4)
(118.7748, 32.062)
>>> [round(v, 6) for v in from_wgs84_to_gcj02(*to_cgcs2000(118.78, 32.06, "gcj02"))]
[118.78, 32.06]
>>> gauss_kruger_epsg(120, 3, prefixed=True), gauss_kruger_epsg(117, 6, prefixed=False)
(4528, 4509)
"""

from __future__ import annotations

import math

import numpy as np

CRS = ("cgcs2000", "wgs84", "gcj02", "bd09")
STORE_EPSG = 4490

_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = math.pi * 3000.0 / 180.0


class PositionError(ValueError):
    """A position that cannot be taken; the message says why (Chinese)."""


# ---------------------------------------------------------------- GCJ-02 / BD-09
def _transform_lat(x, y):
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * math.pi) + 20.0 * np.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(y * math.pi) + 40.0 * np.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * np.sin(y / 12.0 * math.pi) + 320.0 * np.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _transform_lon(x, y):
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * math.pi) + 20.0 * np.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(x * math.pi) + 40.0 * np.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * np.sin(x / 12.0 * math.pi) + 300.0 * np.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def _gcj02_offset(lon, lat):
    dlat = _transform_lat(lon - 105.0, lat - 35.0)
    dlon = _transform_lon(lon - 105.0, lat - 35.0)
    radlat = lat / 180.0 * math.pi
    magic = 1 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * math.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * math.pi)
    return dlon, dlat


def from_wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """The published GCJ-02 forward transform."""
    dlon, dlat = _gcj02_offset(lon, lat)
    return float(lon + dlon), float(lat + dlat)


def gcj02_to_wgs84_array(coords: np.ndarray) -> np.ndarray:
    """GCJ-02 → WGS84 for an ``(n, 2)`` array of lon/lat (vectorised; for whole geometries)."""
    target = np.asarray(coords, dtype=float)
    guess = target.copy()
    for _ in range(30):
        dlon, dlat = _gcj02_offset(guess[:, 0], guess[:, 1])
        d = np.column_stack([guess[:, 0] + dlon, guess[:, 1] + dlat]) - target
        guess -= d
        if np.abs(d).max(initial=0.0) < 1e-10:
            break
    return guess


def _gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    out = gcj02_to_wgs84_array(np.array([[lon, lat]]))[0]
    return float(out[0]), float(out[1])


def _bd09_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    x, y = lon - 0.0065, lat - 0.006
    z = math.sqrt(x * x + y * y) - 0.00002 * math.sin(y * _X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * _X_PI)
    return z * math.cos(theta), z * math.sin(theta)


def optional_point(lon: float | None, lat: float | None, crs: str = "cgcs2000") -> tuple[float, float] | None:
    """A form's optional position: None when neither coordinate is given, else ``(lon, lat)`` in
    CGCS2000; one coordinate alone, or a position that cannot be taken, is a :class:`PositionError`."""
    if lon is None and lat is None:
        return None
    if lon is None or lat is None:
        raise PositionError("经度和纬度须同时填写 (lon and lat together)")
    return to_cgcs2000(float(lon), float(lat), crs)


def to_cgcs2000(lon: float, lat: float, crs: str = "cgcs2000") -> tuple[float, float]:
    """``(lon, lat)`` in CGCS2000 from a position in ``crs`` (one of :data:`CRS`)."""
    if crs not in CRS:
        raise PositionError(f"不支持的坐标系 {crs!r}，可选 {', '.join(CRS)} (unknown crs)")
    if not (73.0 <= lon <= 136.0 and 3.0 <= lat <= 54.0):
        raise PositionError(f"坐标 ({lon}, {lat}) 不在中国境内，请检查经纬度顺序 (position outside China)")
    if crs == "bd09":
        lon, lat = _bd09_to_gcj02(lon, lat)
        crs = "gcj02"
    if crs == "gcj02":
        return _gcj02_to_wgs84(lon, lat)
    return lon, lat


# ---------------------------------------------------------------- Gauss-Krüger zones (EPSG:4491–4554)
def gauss_kruger_epsg(central_meridian: int, width: int, prefixed: bool) -> int:
    """The CGCS2000 Gauss-Krüger EPSG code of a zone, by its central meridian and width (3 or 6 degrees)."""
    if width == 6:
        if central_meridian % 6 != 3 or not 75 <= central_meridian <= 135:
            raise ValueError(f"no 6° zone has central meridian {central_meridian}")
        index = (central_meridian - 75) // 6
        return (4491 if prefixed else 4502) + index
    if width == 3:
        if central_meridian % 3 != 0 or not 75 <= central_meridian <= 135:
            raise ValueError(f"no 3° zone has central meridian {central_meridian}")
        index = (central_meridian - 75) // 3
        return (4513 if prefixed else 4534) + index
    raise ValueError("zone width is 3 or 6 degrees")


def local_metric_epsg(lon: float) -> int:
    """The unprefixed 3° zone around ``lon``: where areas and distances are measured in metres."""
    return gauss_kruger_epsg(min(135, max(75, 3 * round(lon / 3))), 3, prefixed=False)


def prefixed_zone_epsg(easting: float) -> int | None:
    """The EPSG code a zone-prefixed easting names (6° zones 13–23, 3° zones 25–45), or None."""
    zone = int(easting // 1_000_000)
    if 13 <= zone <= 23:
        return gauss_kruger_epsg(6 * zone - 3, 6, prefixed=True)
    if 25 <= zone <= 45:
        return gauss_kruger_epsg(3 * zone, 3, prefixed=True)
    return None


def unprefixed_candidates(near_lon: float) -> list[int]:
    """Unprefixed zones whose central meridian could serve data near ``near_lon``: 3° zones first (the
    usual choice of city surveys), then 6°."""
    three = 3 * round(near_lon / 3)
    six = 6 * math.floor(near_lon / 6) + 3
    out = []
    for cm, width in ((three, 3), (three - 3, 3), (three + 3, 3), (six, 6)):
        try:
            out.append(gauss_kruger_epsg(cm, width, prefixed=False))
        except ValueError:
            continue
    return out
