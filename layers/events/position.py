"""Positions as mobile clients send them, converted to CGCS2000 (EPSG:4490) on the way in.

The conversions themselves live in :mod:`gis.crs`, shared with the loaders; this module keeps the names
the events code and its tests use.
"""

from __future__ import annotations

from gis.crs import CRS, PositionError, from_wgs84_to_gcj02, to_cgcs2000

__all__ = ["CRS", "PositionError", "from_wgs84_to_gcj02", "to_cgcs2000"]
