"""Positions as mobile clients send them, converted to CGCS2000 (EPSG:4490) on the way in.

- ``cgcs2000`` and ``wgs84`` (GPS) are taken as they are: the two frames differ by centimetres, well
  under what a phone's fix is worth;
- ``gcj02`` (Amap, Tencent, the WeChat SDK) is the obfuscated national frame: inverted by fixed-point
  iteration of the published forward transform, to a few centimetres;
- ``bd09`` (Baidu) is GCJ-02 with a further offset: undone exactly, then as GCJ-02.

>>> lon, lat = to_cgcs2000(118.7800, 32.0600, "gcj02")
>>> round(lon, 4), round(lat, 4)
(118.7748, 32.062)
>>> [round(v, 6) for v in from_wgs84_to_gcj02(*to_cgcs2000(118.78, 32.06, "gcj02"))]
[118.78, 32.06]
"""

from __future__ import annotations

import math

CRS = ("cgcs2000", "wgs84", "gcj02", "bd09")

_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = math.pi * 3000.0 / 180.0


class PositionError(ValueError):
    """A position that cannot be taken; the message says why (Chinese)."""


def _transform_lat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _transform_lon(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def from_wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """The published GCJ-02 forward transform."""
    dlat = _transform_lat(lon - 105.0, lat - 35.0)
    dlon = _transform_lon(lon - 105.0, lat - 35.0)
    radlat = lat / 180.0 * math.pi
    magic = 1 - _EE * math.sin(radlat) ** 2
    sqrtmagic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * math.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * math.cos(radlat) * math.pi)
    return lon + dlon, lat + dlat


def _gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    guess_lon, guess_lat = lon, lat
    for _ in range(30):
        fwd_lon, fwd_lat = from_wgs84_to_gcj02(guess_lon, guess_lat)
        d_lon, d_lat = fwd_lon - lon, fwd_lat - lat
        guess_lon, guess_lat = guess_lon - d_lon, guess_lat - d_lat
        if abs(d_lon) < 1e-10 and abs(d_lat) < 1e-10:
            break
    return guess_lon, guess_lat


def _bd09_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    x, y = lon - 0.0065, lat - 0.006
    z = math.sqrt(x * x + y * y) - 0.00002 * math.sin(y * _X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * _X_PI)
    return z * math.cos(theta), z * math.sin(theta)


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
