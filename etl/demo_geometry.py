"""Synthetic boundaries for the demo district: nested exactly, no overlaps, no gaps.

Everything is laid out in metres in EPSG:4549 (CGCS2000 3-degree Gauss-Krüger, central meridian 120°E,
the zone Nanjing's surveys use) and stored in EPSG:4490. The district outline is an ellipse with a few
random harmonics; streets are Voronoi cells clipped to it, communities Voronoi cells inside their street,
grids Voronoi cells inside their community, each level relaxed a few times (Lloyd) so that cells come
out of similar size.

Keeping the nesting exact through the transform takes three steps. A straight edge in metres is not
straight in degrees (over 3 km it bends by about 0.1 m), so edges are first cut into pieces of at most
20 m, where the bend is a few micrometres. Clipping leaves T-junctions (a vertex of one grid lying on the
straight edge of its neighbour), which the transform would open into slivers, so the finest pieces are
then *noded* together: every vertex on a shared edge becomes a vertex of both neighbours, snap-rounded
to 1 mm, which also keeps every vertex at least half a millimetre from any edge it is not on, far more
than the transform can move it. Then they are transformed vertex by vertex, and every parent is rebuilt
in degrees as the coverage union of its children: a parent's boundary is made of its children's own
edges, so a child lies inside its parent exactly and two siblings share their edge exactly.

>>> rng = np.random.default_rng(1)
>>> outline = district_outline(rng, (0.0, 0.0), (1000.0, 1500.0), 4e6, harmonics=4, roughness=0.05)
>>> round(outline.area)
4000000
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import shapely
from pyproj import Transformer
from shapely import MultiPolygon, Polygon

GK_CRS = "EPSG:4549"
STORE_CRS = "EPSG:4490"
STORE_SRID = 4490
# Snap-rounding grid of the overlays, in metres: no area anyone measures changes by it.
PRECISION_M = 1e-3
# Longest edge before the transform, in metres: short enough that it stays straight to micrometres.
MAX_SEGMENT_M = 20.0


@cache
def _transformer(source: str, target: str) -> Transformer:
    return Transformer.from_crs(source, target, always_xy=True)


def lonlat_to_gk(lon: float, lat: float) -> tuple[float, float]:
    return _transformer(STORE_CRS, GK_CRS).transform(lon, lat)


def to_store(geometries: np.ndarray) -> np.ndarray:
    """Metres (EPSG:4549) → degrees (EPSG:4490), vertex by vertex, with SRID 4490 set.

    Equal vertices stay equal (the same input gives the same output), which is what keeps noded
    neighbours sharing their edges.
    """
    forward = _transformer(GK_CRS, STORE_CRS)

    def transform(coords: np.ndarray) -> np.ndarray:
        x, y = forward.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.set_srid(shapely.transform(np.asarray(geometries, dtype=object), transform), STORE_SRID)


def as_multipolygon(geometry) -> MultiPolygon:
    parts = [p for p in shapely.get_parts(geometry) if isinstance(p, Polygon) and not p.is_empty]
    return MultiPolygon(parts)


def largest_polygon(geometry) -> Polygon:
    parts = [p for p in shapely.get_parts(geometry) if isinstance(p, Polygon) and not p.is_empty]
    return max(parts, key=lambda p: p.area) if parts else Polygon()


# ---------------------------------------------------------------- the territory


def district_outline(rng: np.random.Generator, centre: tuple[float, float], semi_axes: tuple[float, float],
                     area_m2: float, harmonics: int, roughness: float) -> Polygon:
    """A plausible irregular, star-shaped outline of exactly ``area_m2`` around ``centre`` (metres)."""
    theta = np.linspace(0, 2 * np.pi, 720, endpoint=False)
    k = np.arange(2, 2 + harmonics)[:, None]
    amplitude = roughness * rng.uniform(0.5, 1.0, harmonics)[:, None] / np.sqrt(k - 1)
    phase = rng.uniform(0, 2 * np.pi, harmonics)[:, None]
    radius = 1.0 + (amplitude * np.cos(k * theta + phase)).sum(axis=0)
    x = semi_axes[0] * radius * np.cos(theta)
    y = semi_axes[1] * radius * np.sin(theta)
    scale = np.sqrt(area_m2 / Polygon(np.column_stack([x, y])).area)
    return shapely.set_precision(
        Polygon(np.column_stack([centre[0] + scale * x, centre[1] + scale * y])), PRECISION_M
    )


def random_points_in(rng: np.random.Generator, polygon, n: int) -> np.ndarray:
    """``n`` points drawn uniformly inside ``polygon`` (rejection sampling on its bounding box)."""
    minx, miny, maxx, maxy = polygon.bounds
    shapely.prepare(polygon)
    found = np.empty((0, 2))
    while len(found) < n:
        xy = rng.uniform((minx, miny), (maxx, maxy), size=(4 * n + 8, 2))
        found = np.vstack([found, xy[shapely.contains_xy(polygon, xy[:, 0], xy[:, 1])]])
    return found[:n]


def voronoi_cells(polygon, seeds: np.ndarray) -> np.ndarray:
    """The Voronoi cells of ``seeds`` clipped to ``polygon``, in the order of the seeds."""
    if len(seeds) == 1:
        return np.array([polygon], dtype=object)
    diagram = shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=polygon, ordered=True)
    cells = shapely.get_parts(diagram)
    return shapely.intersection(cells, polygon, grid_size=PRECISION_M)


def relaxed_cells(rng: np.random.Generator, polygon, n: int, iterations: int,
                  seeds: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Seeds and Voronoi cells after ``iterations`` of Lloyd relaxation (each seed moved to its cell's
    centre, so that the cells come out of similar size)."""
    if seeds is None:
        seeds = random_points_in(rng, polygon, n)
    cells = voronoi_cells(polygon, seeds)
    for _ in range(iterations):
        centres = shapely.centroid(cells)
        # A clipped cell may be crescent-shaped, its centroid outside it: keep the seed inside then.
        outside = ~shapely.contains(cells, centres)
        centres[outside] = shapely.point_on_surface(cells[outside])
        seeds = shapely.get_coordinates(centres)
        cells = voronoi_cells(polygon, seeds)
    return seeds, cells


def reading_order(seeds: np.ndarray, band_m: float) -> np.ndarray:
    """Indices of ``seeds`` north to south in bands of ``band_m``, west to east within a band."""
    band = np.floor(-seeds[:, 1] / band_m)
    return np.lexsort((seeds[:, 0], band))


def node(pieces: np.ndarray) -> np.ndarray:
    """The same coverage with every vertex on a shared edge present in both neighbours.

    The boundaries are unioned (snap-rounded), polygonised into faces, and each face goes back to the
    piece that holds it; a sliver that belongs to none (a snapping gap) goes to the nearest piece.
    """
    lines = shapely.union_all(shapely.boundary(pieces), grid_size=PRECISION_M)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(lines)))
    tree = shapely.STRtree(pieces)
    inside = shapely.point_on_surface(faces)
    owner = np.full(len(faces), -1)
    face_index, piece_index = tree.query(inside, predicate="within")
    owner[face_index[::-1]] = piece_index[::-1]  # the first piece found wins where two overlap
    lost = np.flatnonzero(owner < 0)
    if len(lost):
        owner[lost] = tree.query_nearest(inside[lost], all_matches=False)[1]
    noded = np.empty(len(pieces), dtype=object)
    for i in range(len(pieces)):
        mine = faces[owner == i]
        noded[i] = mine[0] if len(mine) == 1 else shapely.coverage_union_all(mine)
    return noded


def union_coverage(geometries) -> MultiPolygon:
    geometries = list(geometries)
    if len(geometries) == 1:
        return as_multipolygon(geometries[0])
    return as_multipolygon(shapely.coverage_union_all(geometries))


@dataclass
class Territory:
    """The laid-out district: grid cells in metres (for placing compounds) and every unit in degrees."""

    grid_cells_gk: dict[str, object]        # grid code → polygon(s) in EPSG:4549
    boundaries: dict[str, MultiPolygon]     # unit code → boundary in EPSG:4490 (SRID set)


def lay_out_territory(rng: np.random.Generator, district: dict, streets: list[str],
                      communities: dict[str, list[str]], grids: dict[str, list[str]]) -> Territory:
    """Lay out the district, its streets, the given communities of each street and their grids.

    ``district`` is the recipe's [district] table; ``communities`` maps a street code to the codes of its
    communities that are in the demo (possibly none); ``grids`` maps a community code to its grid codes,
    which are numbered in reading order.
    """
    centre = lonlat_to_gk(*district["centre"])
    outline = district_outline(
        rng, centre, tuple(1000.0 * a for a in district["semi_axes_km"]), 1e6 * district["area_km2"],
        district["harmonics"], district["roughness"],
    )
    iterations = district["lloyd_iterations"]
    anchors = district.get("street_anchors", {})
    seeds = np.array([_anchor_seed(rng, outline, centre, anchors.get(code)) for code in streets])
    _, street_cells = relaxed_cells(rng, outline, len(streets), iterations, seeds=seeds)

    leaves: list[tuple[str, object]] = []   # (code, cell): grids, and streets with no community in the demo
    for street, street_cell in zip(streets, street_cells, strict=True):
        members = communities.get(street, [])
        if not members:
            leaves.append((street, street_cell))
            continue
        _, community_cells = relaxed_cells(rng, street_cell, len(members), iterations)
        for community, community_cell in zip(members, community_cells, strict=True):
            codes = grids[community]
            grid_seeds, grid_cells = relaxed_cells(rng, community_cell, len(codes), iterations)
            order = reading_order(grid_seeds, band_m=np.sqrt(community_cell.area / len(codes)))
            leaves.extend(zip(codes, grid_cells[order], strict=True))

    grid_set = {code for codes in grids.values() for code in codes}
    cells = shapely.segmentize(np.array([cell for _, cell in leaves], dtype=object), MAX_SEGMENT_M)
    noded = node(cells)
    stored = to_store(noded)
    boundaries = {code: as_multipolygon(g) for (code, _), g in zip(leaves, stored, strict=True)}
    # Parents are the unions of their children, in degrees: exact containment and shared edges.
    for street in streets:
        for community in communities.get(street, []):
            boundaries[community] = union_coverage(boundaries[g] for g in grids[community])
        if communities.get(street):
            boundaries[street] = union_coverage(boundaries[c] for c in communities[street])
    boundaries[district.get("code", "district")] = union_coverage(boundaries[s] for s in streets)
    boundaries = {code: shapely.set_srid(g, STORE_SRID) for code, g in boundaries.items()}
    grid_cells = {code: cell for (code, _), cell in zip(leaves, noded, strict=True) if code in grid_set}
    return Territory(grid_cells_gk=grid_cells, boundaries=boundaries)


def _anchor_seed(rng, outline, centre, anchor) -> tuple[float, float]:
    if anchor is not None:
        x, y = lonlat_to_gk(*anchor)
        if shapely.contains_xy(outline, x, y):
            return x, y
    return tuple(random_points_in(rng, outline, 1)[0])


# ---------------------------------------------------------------- compounds and buildings


def compound_cells(rng: np.random.Generator, grid_cell, n: int, road_margin: float,
                   min_area: float = 2500.0) -> list[Polygon]:
    """Up to ``n`` compound polygons inside a grid cell, ``road_margin`` from its edge and from each other.

    Fewer come back when the grid is too small for ``n`` compounds of ``min_area``; never none.
    """
    inner = grid_cell.buffer(-road_margin)
    if inner.is_empty or inner.area < min_area:
        inner = grid_cell.buffer(-road_margin / 4)
    n = int(max(1, min(n, inner.area // min_area)))
    _, cells = relaxed_cells(rng, inner, n, iterations=2)
    found = [largest_polygon(shapely.buffer(cell, -road_margin / 2, join_style="mitre")) for cell in cells]
    found = [p for p in found if not p.is_empty and p.area > min_area / 4]
    return found or [largest_polygon(inner)]


def place_footprints(rng: np.random.Generator, compound: Polygon, dims: np.ndarray, row_gap: float,
                     col_gap: float, margin: float = 3.0) -> np.ndarray:
    """Rectangles of ``dims`` (length, depth) in rows inside ``compound``, turned by a small random angle.

    Rows are ``row_gap`` apart (sunlight spacing), buildings in a row ``col_gap``. When they do not fit,
    the gaps and then the footprints shrink until they do: a dense grid gets a dense estate.
    """
    n = len(dims)
    inner = compound.buffer(-margin)
    if inner.is_empty:
        inner = compound.buffer(-margin / 3)
    angle = rng.uniform(-0.25, 0.25)  # radians: most estates face roughly south
    origin = np.array(inner.centroid.coords[0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    # Lay out axis-aligned in a frame turned by -angle, then turn the chosen rectangles back.
    frame = shapely.transform(inner, lambda xy: (xy - origin) @ rotation)
    shapely.prepare(frame)
    dims = np.asarray(dims, dtype=float)
    for _attempt in range(40):
        length, depth = dims[:, 0].max(), dims[:, 1].max()
        centres = _lattice(rng, frame.bounds, length + col_gap, depth + row_gap)
        slots = centres[shapely.contains(frame, shapely.box(*(centres - [length / 2, depth / 2]).T,
                                                              *(centres + [length / 2, depth / 2]).T))]
        if len(slots) >= n:
            chosen = slots[np.round(np.linspace(0, len(slots) - 1, n)).astype(int)]
            half = dims / 2
            corners = np.stack([
                chosen + np.column_stack([-half[:, 0], -half[:, 1]]),
                chosen + np.column_stack([half[:, 0], -half[:, 1]]),
                chosen + np.column_stack([half[:, 0], half[:, 1]]),
                chosen + np.column_stack([-half[:, 0], half[:, 1]]),
                chosen + np.column_stack([-half[:, 0], -half[:, 1]]),
            ], axis=1)
            return shapely.polygons(corners @ rotation.T + origin)
        if row_gap > 4 or col_gap > 3:
            row_gap, col_gap = max(4.0, row_gap * 0.75), max(3.0, col_gap * 0.75)
        else:
            dims = dims * 0.85
    raise ValueError(f"小区内放不下 {n} 栋楼 (cannot place {n} buildings in {compound.area:.0f} m²)")


def _lattice(rng, bounds, step_x: float, step_y: float) -> np.ndarray:
    minx, miny, maxx, maxy = bounds
    xs = np.arange(minx + rng.uniform(0, step_x), maxx, step_x)
    ys = np.arange(maxy - rng.uniform(0, step_y), miny, -step_y)
    gx, gy = np.meshgrid(xs, ys)
    return np.column_stack([gx.ravel(), gy.ravel()])
