"""Small static maps for printed sheets: shapes in CGCS2000 lon/lat drawn as an SVG, true to shape and scale.

A printed sheet has no tiles and no JavaScript, and WeasyPrint draws SVG as vectors -- crisp at any
printer resolution, a few kilobytes. The shapes are projected to a local azimuthal equidistant plane
centred on them (ground metres, no Mercator stretch), fitted into the frame, and drawn bottom to top,
with a north arrow and a scale bar in metres.

>>> svg = svg_map([Layer([grid_boundary], fill="#fdf6e3", stroke="#c2452d", width=1.5)])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

import numpy as np
import shapely
from pyproj import Transformer
from shapely import affinity, ops
from shapely.geometry import LineString, MultiLineString, MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

SCALE_STEPS = (10, 20, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000)


@dataclass(frozen=True)
class Layer:
    """Shapes drawn alike; ``label`` is written at each polygon's inner point (e.g. the grid's name)."""

    shapes: Sequence[BaseGeometry]
    fill: str = "none"
    stroke: str = "#333333"
    width: float = 1.0
    dash: str | None = None
    opacity: float = 1.0
    label: str | None = None


def _local(shapes: list[BaseGeometry]) -> Transformer:
    centre = ops.unary_union(shapes).centroid
    lon, lat = centre.x, centre.y
    return Transformer.from_crs(
        "EPSG:4490", f"+proj=aeqd +lat_0={lat} +lon_0={lon} +ellps=GRS80 +units=m", always_xy=True)


def _ring(coords) -> str:
    points = [f"{x:.1f},{y:.1f}" for x, y, *_ in coords]
    return "M" + " L".join(points)


def _path(shape: BaseGeometry) -> str:
    if isinstance(shape, Polygon):
        return " ".join(_ring(r.coords) + " Z" for r in (shape.exterior, *shape.interiors))
    if isinstance(shape, LineString):
        return _ring(shape.coords)
    if isinstance(shape, MultiPolygon | MultiLineString) or hasattr(shape, "geoms"):
        return " ".join(_path(part) for part in shape.geoms)
    if isinstance(shape, Point):
        return f"M{shape.x - 3:.1f},{shape.y:.1f} a3,3 0 1,0 6,0 a3,3 0 1,0 -6,0"
    return ""


def _scale_bar(metres_per_unit: float, width: float, height: float) -> str:
    target = width * 0.25 * metres_per_unit  # about a quarter of the frame
    metres = max((s for s in SCALE_STEPS if s <= target), default=SCALE_STEPS[0])
    length = metres / metres_per_unit
    label = f"{metres // 1000} 千米" if metres >= 1000 else f"{metres} 米"
    x, y = 12, height - 14
    return (f'<g class="scale"><rect x="{x - 4}" y="{y - 16}" width="{length + 8:.1f}" height="24" '
            'fill="white" fill-opacity="0.8"/>'
            f'<path d="M{x},{y - 4} V{y} H{x + length:.1f} V{y - 4}" fill="none" stroke="#222" '
            'stroke-width="1.5"/>'
            f'<text x="{x + length / 2:.1f}" y="{y - 6}" font-size="10" text-anchor="middle">{label}</text>'
            '</g>')


def _north_arrow(width: float) -> str:
    x = width - 22
    return (f'<g class="north"><path d="M{x},10 L{x + 7},30 L{x},25 L{x - 7},30 Z" fill="#222"/>'
            f'<text x="{x}" y="42" font-size="11" text-anchor="middle">北</text></g>')


def svg_map(layers: Sequence[Layer], *, width: float = 600, height: float = 420, margin: float = 24) -> str:
    """The layers as an ``<svg>`` element ``width`` × ``height`` (CSS pixels), north up, with a scale."""
    shapes = [s for layer in layers for s in layer.shapes if s is not None and not s.is_empty]
    if not shapes:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" class="map">'
                f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" font-size="14" fill="#888">'
                '暂无地图数据</text></svg>')
    transformer = _local(shapes)

    def to_local(coords: np.ndarray) -> np.ndarray:
        return np.column_stack(transformer.transform(coords[:, 0], coords[:, 1]))

    projected = [[shapely.transform(s, to_local) for s in layer.shapes if s is not None and not s.is_empty]
                 for layer in layers]
    x0, y0, x1, y1 = ops.unary_union([s for group in projected for s in group]).bounds
    span_x, span_y = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
    factor = min((width - 2 * margin) / span_x, (height - 2 * margin) / span_y)
    # Fit, centre, and flip y (SVG's y grows downwards).
    ox = (width - span_x * factor) / 2 - x0 * factor
    oy = (height + span_y * factor) / 2 + y0 * factor
    fitted_matrix = [factor, 0, 0, -factor, ox, oy]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" class="map">',
             f'<rect width="{width}" height="{height}" fill="#f7f6f0"/>']
    for layer, group in zip(layers, projected, strict=True):
        dash = f' stroke-dasharray="{layer.dash}"' if layer.dash else ""
        for shape in group:
            fitted = affinity.affine_transform(shape, fitted_matrix)
            parts.append(f'<path d="{_path(fitted)}" fill="{layer.fill}" fill-rule="evenodd" '
                         f'fill-opacity="{layer.opacity}" stroke="{layer.stroke}" '
                         f'stroke-width="{layer.width}"{dash} stroke-linejoin="round"/>')
            if layer.label and isinstance(fitted, Polygon | MultiPolygon):
                at = fitted.representative_point()
                parts.append(f'<text x="{at.x:.1f}" y="{at.y:.1f}" font-size="16" font-weight="bold" '
                             f'text-anchor="middle" fill="#5b1f12">{escape(layer.label)}</text>')
    parts += [_north_arrow(width), _scale_bar(1 / factor, width, height), "</svg>"]
    return "".join(parts)
