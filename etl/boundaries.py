"""Boundary files (streets, communities, grids) into the territory tree: read whatever the surveying
bureau hands over, work out its encoding and CRS, repair and check it, and upsert by code -- keeping the
old boundary as a dated version and re-attributing buildings, compounds and events (and through the
org_path triggers their houses and people) to the new grids, all in one transaction.

A load is all-or-nothing: any *error* (bad or duplicate code, no name, unknown parent, a unit wholly
outside the district, an unreadable CRS) refuses the whole file; *warnings* (overlaps and gaps between
siblings, a unit partly outside its parent) are reported with their areas and do not block.

>>> guess_field(["OBJECTID", "网格名称", "网格编码", "Shape_Area"], NAME_FIELDS)
'网格名称'
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import math
import re
import struct
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import psycopg
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter
import pyogrio
import shapely
from pyproj import CRS as ProjCRS
from pyproj import Transformer

from etl.bulk_keys import lock_all, triggers_skipped, triggers_stood_in_for
from etl.encoding import shapefile_encoding
from gis import crs as gcrs
from gis import db
from gis.settings import Settings

LEVELS = ("street", "community", "grid")
PARENT_LEVEL = {"street": "district", "community": "street", "grid": "community"}
# Codes extend their parent's: district 6 digits, street 9, community 12, grid 15 (as the demo and
# GB/T 10114's 12-digit village codes do, with 3 more for the grid).
CODE_LENGTH = {"district": 6, "street": 9, "community": 12, "grid": 15}

NAME_FIELDS = ("网格名称", "社区名称", "街道名称", "名称", "网格名", "单元名称", "name", "mc", "wgmc", "sqmc",
               "jdmc", "xzqmc", "label", "title")
CODE_FIELDS = ("网格编码", "网格代码", "社区编码", "社区代码", "街道编码", "街道代码", "编码", "代码", "编号",
               "code", "bm", "dm", "wgbm", "wgdm", "sqdm", "xzqdm", "id_code")

# Tolerances, stated in the report: a unit may stick out of its parent by this many metres (surveys of
# different origin never match edge for edge), and overlaps and gaps smaller than this area are noise.
PARENT_TOLERANCE_M = 5.0
AREA_TOLERANCE_M2 = 1.0

Progress = Callable[[str], None]


class BoundaryLoadError(RuntimeError):
    """The file cannot be loaded at all (unreadable, no usable CRS); the message says what to do."""


@dataclass
class BoundaryOptions:
    level: str
    parent_code: str | None = None
    name_field: str | None = None
    code_field: str | None = None
    # "gcj02" (an Amap/Tencent export), "bd09", or any CRS pyproj understands ("EPSG:4549").
    source_crs: str | None = None
    dry_run: bool = False
    parent_tolerance_m: float = PARENT_TOLERANCE_M
    area_tolerance_m2: float = AREA_TOLERANCE_M2
    valid_from: dt.date | None = None
    user_id: int | None = None
    username: str | None = None


@dataclass
class BoundaryReport:
    file: str
    level: str
    outcome: str = "refused"
    driver: str | None = None
    layer: str | None = None
    features: int = 0
    encoding: dict = field(default_factory=dict)
    crs: dict = field(default_factory=dict)
    fields: dict = field(default_factory=dict)
    preview: list = field(default_factory=list)
    tolerances: dict = field(default_factory=dict)
    repaired: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    overlaps: list = field(default_factory=list)
    gaps: list = field(default_factory=list)
    outside_parent: list = field(default_factory=list)
    outside_district: list = field(default_factory=list)
    written: dict = field(default_factory=dict)
    moved: dict = field(default_factory=dict)
    seconds: float = 0.0
    load_id: int | None = None
    # The units as read (EPSG:4490), kept out of the written report, which stays small.
    _units: list = field(default_factory=list, repr=False)
    _shapes: dict | None = field(default=None, repr=False)

    @property
    def shapes(self) -> dict:
        """The units as they would be stored (CGCS2000 lon/lat, GeoJSON), for a preview on the map.

        Built on first use: only the upload page shows it, and for a 10,000-grid file it cost a sixth of
        the CLI's whole load."""
        if self._shapes is None:
            self._shapes = preview_shapes(self._units)
        return self._shapes

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    def to_json(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.as_dict(), ensure_ascii=False, indent=2, default=str),
                              encoding="utf-8")


# ---------------------------------------------------------------- reading
@dataclass
class Source:
    path: Path           # what GDAL opens
    driver: str
    layer: str | None
    encoding: str | None
    encoding_why: str


def _open_source(path: Path, workdir: Path) -> Source:
    path = Path(path)
    if not path.exists():
        raise BoundaryLoadError(f"找不到文件 {path} (file not found)")
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path) as archive:
            # Chinese names in zips from Windows are GBK with no UTF-8 flag; zipfile gives them as cp437.
            for info in archive.infolist():
                name = info.filename
                if not info.flag_bits & 0x800:
                    try:
                        name = name.encode("cp437").decode("gb18030")
                    except (UnicodeEncodeError, UnicodeDecodeError):
                        pass
                target = workdir / Path(name).name
                if info.is_dir() or not Path(name).name:
                    continue
                target.write_bytes(archive.read(info))
        inner = sorted(p for p in workdir.iterdir()
                       if p.suffix.lower() in (".shp", ".gpkg", ".geojson", ".json", ".kml"))
        if not inner:
            raise BoundaryLoadError("压缩包中没有 .shp / .gpkg / .geojson / .kml 文件 (no boundary file "
                                    "in the zip)")
        path = inner[0]
    suffix = path.suffix.lower()
    if suffix == ".shp":
        encoding, why = shapefile_encoding(path)
        return Source(path, "ESRI Shapefile", None, encoding, why)
    drivers = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON", ".kml": "KML"}
    if suffix not in drivers:
        raise BoundaryLoadError(f"不支持的文件类型 {suffix}，请提供 Shapefile(.shp/.zip)、GeoPackage、"
                                "GeoJSON 或 KML "
                                "(unsupported file type)")
    layers = pyogrio.list_layers(path)
    polygon_layers = [name for name, kind in layers if kind and "Polygon" in str(kind)]
    layer = (polygon_layers or [layers[0][0]])[0] if len(layers) else None
    return Source(path, drivers[suffix], layer, None, "格式本身为 UTF-8 (the format is UTF-8)")


def read_features(source: Source):
    kwargs = {"encoding": source.encoding} if source.encoding else {}
    if source.layer is not None:
        kwargs["layer"] = source.layer
    try:
        return pyogrio.read_dataframe(source.path, **kwargs)
    except Exception as error:  # noqa: BLE001 - GDAL raises many kinds; the user needs the message
        raise BoundaryLoadError(f"无法读取文件 {source.path.name}：{error} (could not read the "
                                "file)") from error


def guess_field(columns, candidates) -> str | None:
    """The first column matching one of ``candidates`` (case-insensitive), exact names before contained
    ones (网格名称 before 所属社区名称)."""
    lowered = {c.lower(): c for c in columns}
    for candidate in candidates:
        if candidate.lower() in lowered:
            return lowered[candidate.lower()]
    for candidate in candidates:
        if len(candidate) >= 2 and not candidate.isascii():
            for column in columns:
                if candidate in column:
                    return column
    return None


# ---------------------------------------------------------------- CRS
def _coordinates(geoms) -> np.ndarray:
    coords = shapely.get_coordinates(geoms)
    return coords[np.isfinite(coords).all(axis=1)]


def _transform_geoms(geoms, source_epsg: int | str):
    transformer = Transformer.from_crs(ProjCRS.from_user_input(source_epsg), gcrs.STORE_EPSG, always_xy=True)
    return shapely.transform(geoms, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))


def _distance_deg(a: tuple[float, float], b: tuple[float, float]) -> float:
    return math.hypot((a[0] - b[0]) * math.cos(math.radians(b[1])), a[1] - b[1])


def infer_crs(geoms, declared, hint) -> tuple[str, str]:
    """``(crs, why)``: the CRS to read ``geoms`` in, from the file's declaration or their coordinates.

    ``declared`` is the CRS the file states (its .prj), or None; ``hint`` is a polygon in EPSG:4490 where
    the data ought to be (its parent, or the district), or None. Raises :class:`BoundaryLoadError` when
    the coordinates fit nothing."""
    if declared is not None:
        return declared, "由文件声明 (.prj 或格式自带) (declared by the file)"
    coords = _coordinates(geoms)
    if not len(coords):
        raise BoundaryLoadError("文件中没有有效坐标 (no coordinates in the file)")
    x, y = np.median(coords[:, 0]), np.median(coords[:, 1])
    if 73 <= x <= 136 and 3 <= y <= 54:
        return "EPSG:4490", ("未声明坐标系，坐标为中国范围内的经纬度，按 CGCS2000 经纬度读取 "
                             "(lon/lat in China)")
    if 73 <= y <= 136 and 3 <= x <= 54:
        raise BoundaryLoadError("坐标看起来是经纬度但顺序颠倒（纬度在前），请转换后再导入 (lat/lon swapped)")
    if not (2_000_000 <= y <= 6_500_000):
        raise BoundaryLoadError(f"无法识别坐标系：纵坐标 {y:.0f} 不在中国的高斯-克吕格北坐标范围内，请用 "
                                "--crs 指定 "
                                "(unrecognised coordinates; pass --crs)")
    prefixed = gcrs.prefixed_zone_epsg(x)
    if prefixed is not None:
        name = ProjCRS.from_epsg(prefixed).name
        zone = int(x // 1_000_000)
        return f"EPSG:{prefixed}", (f"未声明坐标系，横坐标 {x:.0f} 带带号 {zone}，判定为 {name} "
                                    "(zone number in the easting)")
    if not (100_000 <= x <= 900_000):
        raise BoundaryLoadError(f"无法识别坐标系：横坐标 {x:.0f} 既不带带号也不在 500000 附近，请用 --crs "
                                "指定 "
                                "(unrecognised easting; pass --crs)")
    if hint is None:
        raise BoundaryLoadError("坐标为不带带号的高斯-克吕格投影，但库中没有上级或本区的边界可据以判断中央"
                                "经线，"
                                "请用 --crs 指定 (e.g. --crs EPSG:4549) (no boundary to choose the zone by)")
    target = shapely.centroid(hint)
    target_xy = (target.x, target.y)
    sample = shapely.points(coords[:: max(1, len(coords) // 200)])
    best = None
    for epsg in gcrs.unprefixed_candidates(target.x):
        lonlat = _coordinates(_transform_geoms(sample, epsg))
        centre = (float(np.median(lonlat[:, 0])), float(np.median(lonlat[:, 1])))
        distance = _distance_deg(centre, target_xy)
        if best is None or distance < best[1] - 1e-9:
            best = (epsg, distance)
    epsg, distance = best
    km = distance * 111.3
    if km > 100:
        raise BoundaryLoadError(f"按附近各投影带换算，数据中心离本区仍有 {km:.0f} 公里，无法判定坐标系，请"
                                "用 --crs 指定 "
                                "(no zone puts the data near the district)")
    name = ProjCRS.from_epsg(epsg).name
    return f"EPSG:{epsg}", ("未声明坐标系，横坐标以 500000 为中心（不带带号），"
                            f"按上级/本区位置选中央经线：{name}，"
                            f"换算后数据中心距上级中心 {km:.1f} 公里 (unprefixed; zone chosen by the "
                            "district)")


def to_store_crs(geoms, source_crs: str):
    """``geoms`` in EPSG:4490; ``source_crs`` may be ``gcj02`` / ``bd09`` or anything pyproj reads."""
    if source_crs in ("gcj02", "bd09"):
        if source_crs == "bd09":
            def undo(xy):
                return np.array([gcrs._bd09_to_gcj02(lon, lat) for lon, lat in xy])
            geoms = shapely.transform(geoms, undo)
        return shapely.transform(geoms, gcrs.gcj02_to_wgs84_array)
    if ProjCRS.from_user_input(source_crs).equals(ProjCRS.from_epsg(gcrs.STORE_EPSG)):
        return geoms
    return _transform_geoms(geoms, source_crs)


# ---------------------------------------------------------------- repair
def as_multipolygon(geom):
    """The polygonal part of ``geom`` as a MultiPolygon (None when there is none)."""
    if geom is None or geom.is_empty:
        return None
    parts = [g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")]
    polys = []
    for part in parts:
        polys.extend(shapely.get_parts(part) if part.geom_type == "MultiPolygon" else [part])
    polys = [p for p in polys if not p.is_empty and p.area > 0]
    return shapely.MultiPolygon(polys) if polys else None


def repair(geoms, codes, names) -> tuple[list, list[dict]]:
    """make_valid every invalid geometry (as MultiPolygons); returns the geometries and what was fixed
    (row, code and name of each, with GEOS's reason)."""
    geoms = np.asarray(geoms, dtype=object)
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    invalid = present & ~shapely.is_valid(geoms)
    repaired = []
    for k in np.flatnonzero(invalid):
        repaired.append({"row": int(k) + 1, "code": codes[k], "name": names[k],
                         "reason": shapely.is_valid_reason(geoms[k])})
        geoms[k] = shapely.make_valid(geoms[k])
    out = np.full(len(geoms), None, dtype=object)
    kinds = shapely.get_type_id(geoms)
    # The usual case in one call: a valid Polygon becomes a MultiPolygon of one part.
    simple = present & ~invalid & (kinds == shapely.GeometryType.POLYGON)
    if simple.any():
        idx = np.flatnonzero(simple)
        out[idx] = shapely.multipolygons(geoms[idx], indices=np.arange(len(idx)))
    for k in np.flatnonzero(present & ~simple):
        out[k] = as_multipolygon(geoms[k])
    return list(out), repaired


# ---------------------------------------------------------------- checks (in metres)
def _source_shapes(raw, source_crs: str, repaired: list[dict]) -> tuple[int, np.ndarray] | None:
    """(EPSG code, the file's own polygons, None where repaired or not a polygon) for check_geometry, when
    the file is in a projected CRS with an EPSG code; else None."""
    if source_crs in ("gcj02", "bd09"):
        return None
    crs = ProjCRS.from_user_input(source_crs)
    epsg = crs.to_epsg()
    if epsg is None or not crs.is_projected:
        return None
    shapes = np.asarray(raw, dtype=object).copy()
    kinds = shapely.get_type_id(shapes)
    unusable = ~np.isin(kinds, [shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON])
    unusable[[r["row"] - 1 for r in repaired]] = True
    shapes[unusable] = None
    return epsg, shapes


def _metric(geoms, epsg: int):
    transformer = Transformer.from_crs(gcrs.STORE_EPSG, epsg, always_xy=True)
    return shapely.transform(np.asarray(geoms, dtype=object),
                             lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))


def _point(geom_metric, back: Transformer) -> list[float]:
    p = shapely.point_on_surface(geom_metric)
    lon, lat = back.transform(p.x, p.y)
    return [round(lon, 6), round(lat, 6)]


def check_geometry(units: list[dict], siblings: list[dict], parents: dict[str, object], district,
                   options: BoundaryOptions, report: BoundaryReport,
                   source: tuple[int, np.ndarray] | None = None) -> None:
    """Overlaps and gaps between siblings, units sticking out of their parent or of the district.

    ``units``: the file's units (code, name, parent_code, geom in 4490); ``siblings``: the existing units
    under the same parents that the file does not replace; ``parents``: parent code → boundary (4490).
    ``source``: (EPSG code, the units as the file had them, None where repaired) when the file is in a
    projected CRS; if that is the metric CRS the checks work in, they take those shapes as they are."""
    own = [u for u in units if u["geom"] is not None]
    everything = own + siblings
    if not everything:
        return
    # The zone of the metric CRS follows the middle of the extent: the bounds in one vectorised call (a
    # union of 10,000 envelopes cost a second and said nothing more).
    west, _, east, _ = shapely.total_bounds(np.asarray([u["geom"] for u in everything], dtype=object))
    epsg = gcrs.local_metric_epsg((west + east) / 2)
    back = Transformer.from_crs(epsg, gcrs.STORE_EPSG, always_xy=True)
    if source is not None and source[0] == epsg:
        # A Gauss-Krüger file in the district's own zone (the usual survey): its coordinates are already
        # the metres wanted, and transforming them to lon/lat and back was a seventh of the checks.
        metric = np.asarray(source[1], dtype=object)[[u["row"] - 1 for u in own]]
        redo = np.flatnonzero(shapely.is_missing(metric))
        if len(redo):
            metric[redo] = _metric([own[k]["geom"] for k in redo], epsg)
        if siblings:
            metric = np.concatenate([metric, _metric([u["geom"] for u in siblings], epsg)])
    else:
        metric = _metric([u["geom"] for u in everything], epsg)
    shapely.prepare(metric)
    tol_area = options.area_tolerance_m2
    n_file = len(own)

    # GEOS's coverage validator flags every polygon whose edges do not match its neighbours' vertex for
    # vertex or lie inside another (overlapping, contained and duplicate polygons are all flagged), in one
    # noding pass; a clean file (the usual export of a topology-checked survey) then needs no pairwise
    # test at all, and a messy one pairs only its flagged polygons. The pairwise DE-9IM test on all
    # neighbours was two thirds of the checks. A coverage that passes the edge count below is clean without
    # asking the validator, which was half of what is left.
    if clean_coverage(metric):
        is_flagged = np.zeros(len(metric), dtype=bool)
    else:
        is_flagged = ~shapely.is_empty(shapely.coverage_invalid_edges(metric))
    flagged = np.flatnonzero(is_flagged)
    left, right = shapely.STRtree(metric).query(metric[flagged], predicate="intersects")
    left, right = np.minimum(flagged[left], right), np.maximum(flagged[left], right)
    # Each pair once; two existing units are not this file's business.
    keep = (left < right) & (left < n_file)
    pairs = np.unique(np.column_stack([left[keep], right[keep]]), axis=0)
    left, right = pairs[:, 0], pairs[:, 1]
    # Neighbours share edges; only pairs whose interiors meet in an area are intersected (5x cheaper).
    areal = shapely.relate_pattern(metric[left], metric[right], "2********")
    left, right = left[areal], right[areal]
    overlaps = shapely.intersection(metric[left], metric[right])
    overlap_area = shapely.area(overlaps)
    overlap_by_parent: dict[str, float] = {}
    for i, j, geom, area in zip(left, right, overlaps, overlap_area, strict=True):
        if area > tol_area:
            a, b = everything[i], everything[j]
            report.overlaps.append({"a": a["code"], "a_name": a["name"], "b": b["code"], "b_name": b["name"],
                                    "area_m2": round(float(area), 1), "at": _point(geom, back)})
        parent_code = everything[i]["parent_code"]
        if parent_code == everything[j]["parent_code"]:
            overlap_by_parent[parent_code] = overlap_by_parent.get(parent_code, 0.0) + float(area)

    by_parent: dict[str, list[int]] = {}
    for k, unit in enumerate(everything):
        by_parent.setdefault(unit["parent_code"], []).append(k)
    parent_codes = [c for c in by_parent if parents.get(c) is not None]
    parent_metric = dict(zip(parent_codes, _metric([parents[c] for c in parent_codes], epsg), strict=True))
    for code, members in by_parent.items():
        parent = parent_metric.get(code)
        if parent is None:
            continue
        members = np.asarray(members)
        children = metric[members]
        grown = shapely.buffer(parent, options.parent_tolerance_m)
        shapely.prepare(grown)
        shapely.prepare(parent)
        uncovered, inside = None, None
        if not is_flagged[members].any():
            # A clean coverage unions in one fast pass (no overlaps to resolve): what of the parent it
            # leaves is the gaps, what of it sticks out of the grown parent bounds every unit's excess.
            union = shapely.coverage_union_all(children)
            # Within a hair of the parent (sticking out by at most a hundredth of the area tolerance), the
            # gaps are the difference of the areas: an overlay of edges that nearly coincide with the
            # parent's costs milliseconds a parent, and is done only when there is a gap to place.
            hair = tol_area / (100 * max(float(shapely.length(union)), 1.0))
            if hair >= 1e-7 and shapely.covers(shapely.buffer(parent, hair, join_style="mitre"), union):
                if shapely.area(parent) - shapely.area(union) > tol_area:
                    uncovered = shapely.difference(parent, union)
                look_outside = False
            else:
                left_over = shapely.difference(parent, union)
                if shapely.area(left_over) > tol_area:
                    uncovered = left_over
                look_outside = (not shapely.covers(grown, union)
                                and shapely.area(shapely.difference(union, grown)) > tol_area)
        else:
            inside = shapely.contains(parent, children)
            covered_area = shapely.area(children[inside]).sum() + shapely.area(
                shapely.intersection(children[~inside], parent)).sum()
            # Uncovered area by arithmetic first; the union (slow for thousands of units) only when there is
            # some.
            if shapely.area(parent) - covered_area + overlap_by_parent.get(code, 0.0) > tol_area:
                uncovered = shapely.difference(parent, shapely.union_all(children))
            look_outside = True
        for piece in shapely.get_parts(uncovered) if uncovered is not None else ():
            area = shapely.area(piece)
            # A sliver thinner than the tolerance is a digitising difference, not a gap.
            if area > tol_area and not shapely.buffer(piece, -options.parent_tolerance_m / 2).is_empty:
                report.gaps.append({"parent": code, "area_m2": round(float(area), 1),
                                    "at": _point(piece, back)})
        if not look_outside:
            continue
        if inside is None:
            inside = shapely.contains(parent, children)
        suspects = members[(members < n_file) & ~inside & ~shapely.contains(grown, children)]
        outside_areas = shapely.area(shapely.difference(metric[suspects], grown))
        for k, outside in zip(suspects, outside_areas, strict=True):
            if outside > tol_area:
                unit = everything[k]
                report.outside_parent.append({"code": unit["code"], "name": unit["name"], "parent": code,
                                              "area_m2": round(float(outside), 1)})
    if district is not None:
        district_metric = shapely.buffer(_metric([district], epsg)[0], options.parent_tolerance_m)
        shapely.prepare(district_metric)
        own = metric[:n_file]
        suspects = np.flatnonzero(~shapely.contains(district_metric, own))
        outside_areas = shapely.area(shapely.difference(own[suspects], district_metric))
        for k, outside in zip(suspects, outside_areas, strict=True):
            if outside <= tol_area:
                continue
            unit = everything[k]
            whole = not shapely.intersects(metric[k], district_metric)
            entry = {"code": unit["code"], "name": unit["name"], "area_m2": round(float(outside), 1),
                     "whole": whole}
            report.outside_district.append(entry)
            if whole:
                report.errors.append({"row": unit["row"], "code": unit["code"], "kind": "outside_district",
                                      "message": "整个单元都在本区范围之外，请检查坐标系 "
                                                 "(wholly outside the district)"})


def clean_coverage(polygons) -> bool:
    """True when ``polygons`` certainly form a clean coverage: no two overlap and neighbours share their
    edges vertex for vertex. False means "ask GEOS's coverage validator" (which is exact, and slower).

    Every ring edge is counted with its direction (shells anticlockwise, holes clockwise): a shared edge
    of two neighbours cancels out, and what is left -- the free edges -- bounds the union. No edge may be
    left over twice (two polygons on the same side of it), the free edges must not cross or touch but at
    their ends (else the polygons' edges do not match), and the area they enclose must be the sum of the
    polygons' areas: the winding number of the free edges is how many polygons cover a point, and where
    it reaches 2 the even-odd area they enclose falls short of the sum.

    >>> import shapely
    >>> clean_coverage([shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)])
    True
    >>> clean_coverage([shapely.box(0, 0, 2, 2), shapely.box(0.5, 0.5, 1, 1)])
    False
    """
    rings, owner = shapely.get_rings(shapely.get_parts(np.asarray(polygons, dtype=object)), return_index=True)
    if not len(rings):
        return True
    coords, ring_of = shapely.get_coordinates(rings, return_index=True)
    same_ring = ring_of[:-1] == ring_of[1:]
    a, b, ring = coords[:-1][same_ring], coords[1:][same_ring], ring_of[:-1][same_ring]
    # Shells anticlockwise, holes clockwise: a ring the other way round has its edges counted backwards
    # (the sign of its shoelace area, in one pass over all rings, instead of rewriting the polygons).
    twice_area = np.bincount(ring, weights=a[:, 0] * b[:, 1] - b[:, 0] * a[:, 1], minlength=len(rings))
    is_shell = np.ones(len(rings), dtype=bool)
    is_shell[1:] = owner[1:] != owner[:-1]
    turn = np.where(is_shell == (twice_area > 0), 1.0, -1.0)[ring]
    real = (a != b).any(axis=1)
    a, b, turn = a[real], b[real], turn[real]
    forward = (a[:, 0] < b[:, 0]) | ((a[:, 0] == b[:, 0]) & (a[:, 1] < b[:, 1]))
    edges = np.column_stack([np.where(forward[:, None], a, b), np.where(forward[:, None], b, a)])
    # The same edge, whichever polygon has it, side by side after a sort (np.unique on rows took ten
    # times as long).
    order = np.lexsort(edges.T[::-1])
    edges, signs = edges[order], np.where(forward, turn, -turn)[order]
    starts = np.flatnonzero(np.concatenate([[True], (edges[1:] != edges[:-1]).any(axis=1)]))
    net = np.add.reduceat(signs, starts)
    if np.abs(net).max() > 1:
        return False
    free = edges[starts[net != 0]]
    noded = shapely.node(shapely.multilinestrings(shapely.linestrings(free.reshape(-1, 2, 2))))
    if shapely.get_num_geometries(noded) != len(free):
        return False
    total = float(shapely.area(np.asarray(polygons, dtype=object)).sum())
    return abs(total - float(shapely.area(shapely.build_area(noded)))) <= 1e-11 * total + 1e-6


_DIGITS = re.compile(r"[0-9]+")


def check_codes(units: list[dict], options: BoundaryOptions, known_parents: set[str],
                report: BoundaryReport) -> None:
    length = CODE_LENGTH[options.level]
    codes = [u["code"] for u in units]
    # The usual file has no error at all: that is known from a few passes over the columns, and the row
    # by row walk below (a closure and a regex a row) is left for files that have one.
    if (len(set(codes)) == len(codes)
            and all(len(c) == length and c.isascii() and c.isdigit() for c in codes)
            and all(u["name"] and u["geom"] is not None and u["parent_code"] in known_parents for u in units)
            and (not options.parent_code or all(c.startswith(options.parent_code) for c in codes))):
        return
    seen: dict[str, int] = {}
    for unit in units:
        code, row = unit["code"], unit["row"]

        def error(kind: str, message: str, code=code, row=row) -> None:
            report.errors.append({"row": row, "code": code, "kind": kind, "message": message})

        if not unit["name"]:
            error("missing_name", "缺少名称 (no name)")
        if not code:
            error("missing_code", "缺少编码 (no code)")
            continue
        if len(code) != length or not _DIGITS.fullmatch(code):
            error("malformed_code", f"编码 {code} 格式不对：{options.level} 级编码应为 {length} 位数字 "
                                    f"(expected {length} digits)")
            continue
        if code in seen:
            error("duplicate_code", f"编码 {code} 与第 {seen[code]} 行重复 (duplicate code)")
            continue
        seen[code] = row
        if options.parent_code and not code.startswith(options.parent_code):
            error("code_not_under_parent", f"编码 {code} 不以上级编码 {options.parent_code} 开头 "
                                           "(code does not extend the parent's)")
        elif unit["parent_code"] not in known_parents:
            error("unknown_parent", f"上级单元 {unit['parent_code']} 不存在，请先导入上级边界 "
                                    "(parent not found)")
        if unit["geom"] is None:
            error("empty_geometry", "几何为空或不是面 (no polygon)")


# ---------------------------------------------------------------- the load
def load_boundaries(settings: Settings, path: Path, options: BoundaryOptions,
                    progress: Progress | None = None) -> BoundaryReport:
    """Read, check and (unless refused or a dry run) upsert the units of ``path``; returns the report."""
    if options.level not in LEVELS:
        raise BoundaryLoadError(f"层级应为 {' / '.join(LEVELS)} 之一 (unknown level {options.level})")
    # The cyclic garbage collector is paused for the load: its tens of thousands of small objects (a dict
    # and a geometry a unit) set off full collections over everything the process holds -- a tenth of a
    # 10,000-grid load, for no garbage (a load makes no cycles). Whatever is left is collected after.
    paused = gc.isenabled()
    gc.disable()
    try:
        return _load(settings, path, options, progress or (lambda message: None))
    finally:
        if paused:
            gc.enable()


def _load(settings: Settings, path: Path, options: BoundaryOptions, say: Progress) -> BoundaryReport:
    started = time.perf_counter()
    report = BoundaryReport(file=Path(path).name, level=options.level)
    report.tolerances = {"parent_m": options.parent_tolerance_m, "area_m2": options.area_tolerance_m2}
    # The connection is opened (a backend forked, its catalogue caches filled) beside the reading of the
    # file: two to five hundredths of a second that were spent waiting before.
    opener = ThreadPoolExecutor(1)
    connecting = opener.submit(_connect, settings)
    opener.shutdown(wait=False)
    try:
        frame, name_col, code_col = _read(path, options, report, say)
    except BaseException:
        connecting.add_done_callback(lambda done: done.exception() or done.result().close())
        raise
    # Text columns (the usual case) are stripped as they are; .tolist() spares pandas' per-item iterator.
    names = [v.strip() if isinstance(v, str) else _text_of(v) for v in frame[name_col].tolist()]
    codes = [v.strip() if isinstance(v, str) else _text_of(v) for v in frame[code_col].tolist()]
    report.preview = [{"row": i + 1, "code": c, "name": n}
                      for i, (c, n) in enumerate(zip(codes[:10], names[:10], strict=True))]

    parent_len = CODE_LENGTH[PARENT_LEVEL[options.level]]
    parent_of = [options.parent_code or (c[:parent_len] if len(c) > parent_len else "") for c in codes]

    # A connection of its own in autocommit: every write below is in an explicit transaction block.
    with connecting.result() as conn:
        wanted = set(parent_of) - {""}
        district_code = (options.parent_code or next((c for c in codes if len(c) >= 6), ""))[:6]
        found = _units_by_code(conn, wanted | {district_code})
        parents = {c: found[c] for c in wanted if c in found}
        district = found.get(district_code)
        parent_shapes = (parents[c]["geom"] for c in parent_of if c in parents)
        hint = (next((g for g in parent_shapes if g is not None), None)
                or (district["geom"] if district else None) or _any_district_boundary(conn))
        # What the rest needs from the database is asked in a thread while the CRS is worked out and the
        # codes are checked here (the server answers while the client works).
        with ThreadPoolExecutor(1) as asking:
            asked = asking.submit(_ask, conn, options.level, set(parents), codes)
            say("坐标转换与几何修复 (reprojecting, repairing)")
            prepared = _Prepared(frame, codes, names, parent_of, hint, options, report)
            units = prepared.units
            say("检查编码与拓扑 (checking)")
            # Codes, names and parents first; the geometries are reprojected and repaired a chunk at a
            # time while the new units are copied (see _Prepared), and checked for presence after.
            check_codes(units, options, set(parents), report)
            siblings, existing, skip_triggers = asked.result()

        def check_shapes() -> None:
            check_geometry(units, siblings, {c: p["geom"] for c, p in parents.items()},
                           district["geom"] if district else None, options, report, prepared.as_filed)

        def recheck_codes() -> None:
            # With every geometry made: the same check again, for units left without a polygon.
            prepared.finish()
            report.errors.clear()
            check_codes(units, options, set(parents), report)

        if report.errors:
            recheck_codes()
            check_shapes()  # the report lists every problem; nothing is written
            report.outcome = "refused"
        else:
            say("写入数据库 (writing)")
            writes = _plan_writes(conn, units, parents, options, existing, prepared)
            writes.skip_triggers = skip_triggers
            # The geometry checks (GEOS, which lets go of the GIL) run in a thread beside the writes (the
            # server's work, a third of a 10,000-grid load each), from the moment the last geometry is made;
            # a refusal they find rolls the writes back.
            with ThreadPoolExecutor(1) as pool:
                checked = []

                def start_checks() -> None:
                    recheck_codes()
                    if report.errors:
                        raise _Refused
                    checked.append(pool.submit(check_shapes))

                writes.made = start_checks
                try:
                    if writes.new_rows is None:
                        start_checks()  # nothing to make while copying: every geometry is made already
                    with conn.transaction():
                        load_id = _record_load(conn, report, options, parents, district_code)
                        report.written = _upsert(conn, writes, load_id)
                        written = report.written["inserted"] + report.written["updated"]
                        if options.level == "grid" and written:
                            report.moved = reattribute(conn)
                        checked[0].result()
                        if report.errors:
                            raise _Refused
                        report.outcome = "dry_run" if options.dry_run else "loaded"
                        report.seconds = round(time.perf_counter() - started, 3)
                        _finish_load(conn, load_id, report)
                        if options.dry_run:
                            raise _DryRun
                    report.load_id = load_id
                except _DryRun:
                    pass
                except _Refused:
                    if not checked:
                        check_shapes()  # refused for a missing polygon: the report still lists the rest
                    report.outcome, report.written, report.moved = "refused", {}, {}
        report.seconds = round(time.perf_counter() - started, 3)
        if report.outcome != "loaded":
            # The refusal (or rehearsal) itself is part of the history of loads.
            with conn.transaction():
                load_id = _record_load(conn, report, options, parents, district_code)
                _finish_load(conn, load_id, report)
                report.load_id = load_id
    return report


# Where a unit's geometry will be once it is made (check_codes takes it for present until then).
_PENDING = object()


class _Prepared:
    """The file's units, their geometries reprojected to EPSG:4490 and repaired on demand.

    The CRS is worked out (and put in the report) at once; each geometry is made when it is first asked
    for: the new units' a chunk at a time while the ones before are being copied (reprojecting and
    repairing 10,000 grids had the server wait a tenth of the load), the rest by :meth:`finish`, which
    also lists the repairs in row order and keeps the shapes as filed for :func:`check_geometry`."""

    def __init__(self, frame, codes, names, parent_of, hint, options: BoundaryOptions,
                 report: BoundaryReport):
        declared = frame.crs.to_string() if frame.crs is not None else None
        if options.source_crs:
            source_crs, why = options.source_crs, "由用户指定 (declared by the user)"
            if options.source_crs in ("gcj02", "bd09"):
                why = (f"由用户指定为 {options.source_crs.upper()}（火星坐标），已纠偏到 CGCS2000 "
                       "(declared by the user)")
        else:
            source_crs, why = infer_crs(frame.geometry.values, declared, hint)
        report.crs = {"source": source_crs, "why": why, "stored": f"EPSG:{gcrs.STORE_EPSG}"}
        if source_crs not in ("gcj02", "bd09"):
            report.crs["name"] = ProjCRS.from_user_input(source_crs).name
        self.source_crs, self.report = source_crs, report
        self.raw = np.asarray(frame.geometry.values, dtype=object)
        self.units = [{"row": i + 1, "code": c, "name": n, "parent_code": p, "geom": _PENDING}
                      for i, (c, n, p) in enumerate(zip(codes, names, parent_of, strict=True))]
        report._units = self.units
        self.made = np.zeros(len(self.units), dtype=bool)
        self.repaired: list[dict] = []
        self.as_filed = None
        self.finished = False

    def geoms(self, indexes) -> list:
        """The geometries of the units at ``indexes`` (positions in the file), made if not yet."""
        indexes = np.asarray(indexes, dtype=np.intp)
        todo = indexes[~self.made[indexes]]
        if len(todo):
            units = self.units
            geoms = to_store_crs(self.raw[todo], self.source_crs)
            geoms, repaired = repair(geoms, [units[k]["code"] for k in todo],
                                     [units[k]["name"] for k in todo])
            for entry in repaired:
                entry["row"] = int(todo[entry["row"] - 1]) + 1
            self.repaired += repaired
            for k, geom in zip(todo.tolist(), geoms, strict=True):
                units[k]["geom"] = geom
            self.made[todo] = True
        return [self.units[k]["geom"] for k in indexes.tolist()]

    def finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        self.geoms(np.flatnonzero(~self.made))
        self.report.repaired = sorted(self.repaired, key=lambda entry: entry["row"])
        self.as_filed = _source_shapes(self.raw, self.source_crs, self.report.repaired)


def _ask(conn, level: str, parent_codes: set[str], codes: list[str]) -> tuple[list[dict], dict, bool]:
    """The existing units under the same parents that the file does not replace, the file's codes the
    database has already (code → level), and whether the insert triggers may be skipped."""
    siblings = _siblings(conn, level, parent_codes, set(codes))
    existing = dict(conn.execute(
        "SELECT code, level FROM territory_unit WHERE code = ANY(string_to_array(%s, ','))",
        (",".join(codes),)).fetchall())
    # What stands in for the insert triggers when _insert_new skips them: the parent_id key and 0015's
    # path check are done as one set there; 0015's path trigger fires only for rows without a path (the
    # loader supplies every path).
    skip = triggers_stood_in_for(conn, "territory_unit", ("territory_unit_path_insert",
                                                          "territory_unit_path_check"))
    return siblings, existing, skip


def _connect(settings: Settings) -> psycopg.Connection:
    conn = psycopg.connect(db.libpq_dsn(db.owner_url(settings)), autocommit=True)
    try:
        _units_by_code(conn, {""})  # a new backend's first look at territory_unit loads its catalogue
    except BaseException:
        conn.close()
        raise
    return conn


def _read(path, options: BoundaryOptions, report: BoundaryReport, say: Progress):
    """The file as a GeoDataFrame, and its name and code columns (given or guessed)."""
    with tempfile.TemporaryDirectory(prefix="gridgov-bnd-") as tmp:
        say("读取文件 (reading)")
        source = _open_source(Path(path), Path(tmp))
        frame = read_features(source)
    report.driver, report.layer, report.features = source.driver, source.layer, len(frame)
    report.encoding = {"used": source.encoding or "UTF-8", "why": source.encoding_why}

    columns = [c for c in frame.columns if c != "geometry"]
    name_col = options.name_field or guess_field(columns, NAME_FIELDS)
    code_col = options.code_field or guess_field(columns, CODE_FIELDS)
    report.fields = {"name": name_col, "code": code_col, "columns": columns,
                     "unused": [c for c in columns if c not in (name_col, code_col)]}
    for wanted, column, flag in (("名称", name_col, "--name-field"), ("编码", code_col, "--code-field")):
        if column is None or column not in frame.columns:
            raise BoundaryLoadError(f"找不到{wanted}字段（现有字段：{', '.join(columns)}），请用 {flag} 指定 "
                                    f"(no {wanted} column; name it with {flag})")
    return frame, name_col, code_col


def _text_of(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a code stored as a DBF number
    return str(value).strip()


PREVIEW_FEATURES = 5_000


def preview_shapes(units: list[dict]) -> dict:
    """The first units as a GeoJSON FeatureCollection, simplified to about a metre (enough to see)."""
    shown = [u for u in units[:PREVIEW_FEATURES] if u["geom"] is not None]
    # Simplified and written as GeoJSON by GEOS in two vectorised calls (mapping() a shape at a time took
    # a tenth of a 10,000-grid load).
    texts = shapely.to_geojson(shapely.simplify(np.asarray([u["geom"] for u in shown], dtype=object), 1e-5))
    features = [{"type": "Feature", "properties": {"row": u["row"], "code": u["code"], "name": u["name"]},
                 "geometry": json.loads(t)} for u, t in zip(shown, texts, strict=True)]
    return {"type": "FeatureCollection", "features": features}


class _DryRun(Exception):
    """Raised inside the load's transaction to roll back a rehearsal."""


class _Refused(Exception):
    """Raised inside the load's transaction when the checks beside the writes refuse the file."""


def _units_by_code(conn, codes: set[str]) -> dict[str, dict]:
    if not codes:
        return {}
    rows = conn.execute(
        "SELECT code, id, path::text, level, ST_AsBinary(boundary) FROM territory_unit "
        "WHERE code = ANY(%s) AND deleted_at IS NULL", (list(codes),)).fetchall()
    return {code: {"id": id_, "path": path, "level": level,
                   "geom": shapely.from_wkb(wkb) if wkb is not None else None}
            for code, id_, path, level, wkb in rows}


def _any_district_boundary(conn):
    row = conn.execute("SELECT ST_AsBinary(boundary) FROM territory_unit WHERE level = 'district' "
                       "AND boundary IS NOT NULL AND deleted_at IS NULL ORDER BY id LIMIT 1").fetchone()
    return shapely.from_wkb(row[0]) if row else None


def _siblings(conn, level: str, parent_codes: set[str], file_codes: set[str]) -> list[dict]:
    if not parent_codes:
        return []
    # The file's codes as a constant in the statement: the planner folds it into an array it can hash,
    # where a parameter was compared code by code with every unit (10,000 x 10,000 for a reload).
    rows = conn.execute(sql.SQL(
        "SELECT u.code, u.name, p.code, ST_AsBinary(u.boundary) FROM territory_unit u "
        "JOIN territory_unit p ON p.id = u.parent_id "
        "WHERE u.level = %s AND p.code = ANY(%s) AND u.boundary IS NOT NULL AND u.deleted_at IS NULL "
        "AND NOT u.code = ANY(string_to_array({}, ','))").format(sql.Literal(",".join(file_codes))),
        (level, list(parent_codes))).fetchall()
    return [{"code": c, "name": n, "parent_code": p, "geom": shapely.from_wkb(w), "row": None}
            for c, n, p, w in rows]


def _record_load(conn, report: BoundaryReport, options: BoundaryOptions, parents: dict,
                 district_code: str) -> int:
    # Filed under the one parent the load was for, else under the district.
    if len(parents) == 1:
        path = next(iter(parents.values()))["path"]
    else:
        row = conn.execute("SELECT path::text FROM territory_unit WHERE code = "
                           "%s", (district_code,)).fetchone()
        path = row[0] if row else None
    return conn.execute(
        "INSERT INTO data_load (kind, target, file_name, user_id, username, outcome, rows_read, org_path, "
        "district_code) VALUES ('boundaries', %s, %s, %s, %s, 'failed', %s, %s::ltree, %s) RETURNING id",
        (options.level, report.file, options.user_id, options.username, report.features,
         path or district_code or "0", district_code or None)).fetchone()[0]


def _finish_load(conn, load_id: int, report: BoundaryReport) -> None:
    written = report.written or {}
    conn.execute(
        "UPDATE data_load SET outcome = %s, finished_at = clock_timestamp(), rows_written = %s, rows_bad "
        "= %s, "
        "report = %s::jsonb WHERE id = %s",
        (report.outcome, written.get("inserted", 0) + written.get("updated", 0),
         len({e["row"] for e in report.errors}),
         json.dumps(report.as_dict(), ensure_ascii=False, default=str), load_id))


@dataclass
class _Writes:
    """What a load writes: the units the database has already as COPY text (made before the writes
    begin), and the new ones in COPY's binary format, made a chunk at a time while the server copies the
    chunks before (see :meth:`new_text`)."""
    valid_from: dt.date
    n_units: int
    stage: str = ""      # units already in the database: code, name, boundary (into boundary_stage)
    new_codes: str = ""  # the new units' codes, comma-separated, in code order
    parent_ids: list[int] = field(default_factory=list)  # the parents the new units name
    skip_triggers: bool = False  # see _insert_new
    new_rows: Callable[[], object] | None = None  # yields the new units' COPY text, a chunk at a time
    made: Callable[[], None] = lambda: None  # called once the last new unit's text is made

    def new_text(self):
        return self.new_rows() if self.new_rows is not None else iter(())


# COPY's binary format (https://www.postgresql.org/docs/current/sql-copy.html): a header, then per row the
# number of fields and each field as its length and bytes, then -1.
_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_BINARY_TRAILER = struct.pack(">h", -1)
_ROW_START = struct.pack(">h", 9)  # the columns of the COPY in _insert_new
_LENGTH = struct.Struct(">i")
_NULL = struct.pack(">i", -1)
_BIGINT = struct.Struct(">iq")
_DATE = struct.Struct(">ii")  # length 4, days since 2000-01-01
_PG_EPOCH = dt.date(2000, 1, 1)

# New units are written out this many at a time while the server copies the ones before: the text of
# 10,000 grids cost a tenth of the load before the COPY could start, and the server was idle meanwhile.
_COPY_CHUNK = 1_000


def _plan_writes(conn, units: list[dict], parents: dict, options: BoundaryOptions, existing: dict,
                 prepared: _Prepared) -> _Writes:
    """Split the units into those the database has (by code) and new ones, and write the existing ones
    out as COPY text (the new ones are made and written while they are copied). The codes are digits by
    now (check_codes refused anything else)."""
    writes = _Writes(valid_from=options.valid_from or dt.date.today(), n_units=len(units))
    wrong_level = sorted((c, lv) for c, lv in existing.items() if lv != options.level)
    if wrong_level:
        raise BoundaryLoadError("以下编码已用于其他层级的单元"
                                "：" + "，".join(f"{c}({lv})" for c, lv in wrong_level)
                                + " (codes already used at another level)")
    old = [k for k, u in enumerate(units) if u["code"] in existing]
    # Names are escaped only when some name needs it (translate() a name cost a sixth of the text).
    escape = bool(_COPY_SPECIAL.search("".join(units[k]["name"] for k in old)))

    def text(name: str) -> str:
        return name.translate(_COPY_ESCAPES) if escape else name

    def ewkb(indexes: list[int]):
        # EWKB in one GEOS call (written out as hex by Python for the text COPY: GEOS's own hex writer
        # took four times as long as the WKB itself).
        if not indexes:
            return []
        geoms = np.asarray(prepared.geoms(indexes), dtype=object)
        return shapely.to_wkb(shapely.set_srid(geoms, gcrs.STORE_EPSG), include_srid=True)

    writes.stage = "".join([f"{units[k]['code']}\t{text(units[k]['name'])}\t{w.hex()}\n"
                            for k, w in zip(old, ewkb(old), strict=True)])
    # New units in code order (the order of territory_unit's btree and ltree indexes), with their path,
    # org_path and district code made here: the path trigger (a plpgsql call and a parent lookup a row)
    # fires only for rows without one, and a statement trigger checks them all at once (migration 0015).
    new = sorted((k for k, u in enumerate(units) if u["code"] not in existing),
                 key=lambda k: units[k]["code"])
    writes.new_codes = ",".join(units[k]["code"] for k in new)
    writes.parent_ids = sorted({parents[units[k]["parent_code"]]["id"] for k in new})
    # In COPY's binary format: the server takes the EWKB, ids and dates as they are instead of parsing
    # hex and text (a tenth of the COPY's own work), and the client skips the hex and the escaping.
    encoding = conn.info.encoding

    def field_of(data: bytes) -> bytes:
        return _LENGTH.pack(len(data)) + data

    level_field = _ROW_START + field_of(options.level.encode(encoding))
    day_field = _DATE.pack(4, (writes.valid_from - _PG_EPOCH).days)
    # Per parent: its id as a field, and the start of its children's path (an ltree is sent as a version
    # byte and the text).
    by_parent = {code: (_BIGINT.pack(8, parent["id"]), b"\x01" + parent["path"].encode(encoding) + b".")
                 for code, parent in parents.items()}

    def new_rows():
        yield _BINARY_HEADER
        for start in range(0, len(new), _COPY_CHUNK):
            chunk = new[start:start + _COPY_CHUNK]
            parts = []
            for k, w in zip(chunk, ewkb(chunk), strict=True):
                u = units[k]
                code = u["code"].encode("ascii")
                id_field, path_start = by_parent[u["parent_code"]]
                path = field_of(path_start + code)
                # A unit left without a polygon goes as NULL: the check of codes after the last chunk
                # refuses the file for it (and the copy is abandoned).
                parts += (level_field, field_of(code), field_of(u["name"].encode(encoding)), id_field, path,
                          path, field_of(code[:6]), _NULL if w is None else field_of(w), day_field)
            yield b"".join(parts)
        yield _BINARY_TRAILER

    if new:
        writes.new_rows = new_rows
    return writes


def _upsert(conn, writes: _Writes, load_id: int) -> dict:
    """Keep the old versions of changed units and update them, skip unchanged ones, copy in new ones.

    The ids of the units written stay on the server (``boundary_changed``) for :func:`reattribute`:
    sending 10,000 ids back and forth as arrays cost a tenth of a load."""
    conn.execute("CREATE TEMP TABLE boundary_changed (id bigint) ON COMMIT DROP")
    versions = updated = inserted = 0
    if writes.stage:
        conn.execute("CREATE TEMP TABLE boundary_stage (code text, name text, "
                     "boundary geometry(MultiPolygon, 4490)) ON COMMIT DROP")
        with conn.cursor().copy("COPY boundary_stage (code, name, boundary) FROM STDIN") as copy:
            copy.write(writes.stage)
        # Units whose boundary or name changed; the unchanged ones are not written at all.
        conn.execute(
            "INSERT INTO boundary_changed SELECT u.id FROM territory_unit u "
            "JOIN boundary_stage s USING (code) WHERE u.name IS DISTINCT FROM s.name OR u.boundary IS NULL "
            "OR NOT ST_Equals(u.boundary, s.boundary)")
        with _index_lookups(conn):
            # What the changed units were, dated up to the day before.
            versions = conn.execute(
                "INSERT INTO territory_unit_version (unit_id, level, code, name, boundary, valid_from, "
                "valid_to, load_id, org_path, district_code) SELECT id, level, code, name, boundary, "
                "valid_from, greatest(valid_from, %s::date - 1), %s, org_path, district_code "
                "FROM territory_unit WHERE id IN (SELECT id FROM boundary_changed) AND boundary IS NOT NULL",
                (writes.valid_from, load_id)).rowcount
        updated = conn.execute(
            "UPDATE territory_unit u SET name = s.name, boundary = s.boundary, valid_from = %s, "
            "updated_at = now(), version = u.version + 1 FROM boundary_stage s "
            "WHERE u.code = s.code AND u.id IN (SELECT id FROM boundary_changed)",
            (writes.valid_from,)).rowcount
    if writes.new_codes:
        inserted = _insert_new(conn, writes)
    return {"inserted": inserted, "updated": updated, "unchanged": writes.n_units - inserted - updated,
            "versions_kept": versions}


def _insert_new(conn, writes: _Writes) -> int:
    """COPY the new units into territory_unit; returns how many (their ids go to ``boundary_changed``).

    Their foreign key and paths are checked as one set rather than row by row when the insert triggers
    may be skipped (:mod:`etl.bulk_keys`): the parents are locked first and counted, the COPY runs
    without the triggers, and one statement then checks that every unit copied names
    one of the locked parents and carries that parent's path plus its code (as path and as org_path) --
    what the per-row foreign-key trigger and 0015's path check would have refused. Together they were a
    seventh of the server's work for 10,000 new grids. Without the grant, or when territory_unit has an
    insert trigger not accounted for here, the triggers run as usual."""
    skip = writes.skip_triggers
    if skip and not lock_all(conn, "territory_unit", writes.parent_ids):
        raise BoundaryLoadError("导入期间有上级单元被删除，请重新导入 (a parent unit was deleted during the "
                                "load)")
    # Straight into the table (staging them first and inserting from the stage wrote and read every unit
    # once more). The rows are sent by a thread of psycopg's while they are made here, so that what comes
    # after them (writes.made: the geometry checks) starts while the server is still copying.
    cursor = conn.cursor()
    with triggers_skipped(conn, skip), _index_lookups(conn), cursor.copy(
            "COPY territory_unit (level, code, name, parent_id, path, org_path, district_code, boundary, "
            "valid_from) FROM STDIN (FORMAT binary)", writer=QueuedLibpqWriter(cursor)) as copy:
        for text in writes.new_text():
            copy.write(text)
        writes.made()
    if not skip:
        return conn.execute("INSERT INTO boundary_changed SELECT id FROM territory_unit "
                            "WHERE code = ANY(string_to_array(%s, ','))", (writes.new_codes,)).rowcount
    # The paths compared as text, as 0015's check does.
    inserted, bad = conn.execute(
        "WITH n AS (SELECT id, code, parent_id, path::text AS path, org_path::text AS org_path "
        "FROM territory_unit WHERE code = ANY(string_to_array(%s, ','))), "
        "changed AS (INSERT INTO boundary_changed SELECT id FROM n) "
        "SELECT count(*), min(n.code) FILTER (WHERE p.id IS NULL OR n.path IS DISTINCT FROM "
        "p.path::text || '.' || n.code OR n.org_path IS DISTINCT FROM n.path) "
        "FROM n LEFT JOIN territory_unit p ON p.id = n.parent_id AND p.id = ANY(%s)",
        (writes.new_codes, writes.parent_ids)).fetchone()
    if bad is not None:
        raise BoundaryLoadError(f"单元 {bad} 的上级或路径与库中不一致，已整体撤销 (territory_unit.parent_id "
                                "must be a locked parent and the path the parent's path plus the code)")
    return inserted


@contextmanager
def _index_lookups(conn):
    """Row-by-row lookups by key (the foreign-key checks of the rows inserted, the path trigger of 0001)
    made by index, for the statements inside.

    PostgreSQL plans those lookups when the statement first needs one, from the table's statistics: when
    territory_unit was last analyzed with only the district's streets and communities in it (a first
    load of grids), the lookup is a sequential scan of a table the statement itself is growing, and a
    10,000-grid insert took 5 s instead of 0.4 s. With sequential scans off the plan is the primary key
    (the JIT, which the disabled scans' nominal cost would set off, is off with them)."""
    conn.execute("SET LOCAL enable_seqscan = off")
    conn.execute("SET LOCAL jit = off")
    yield
    conn.execute("SET LOCAL enable_seqscan TO DEFAULT")
    conn.execute("SET LOCAL jit TO DEFAULT")


# COPY's text format: backslash, tab and line ends in a value are written as escapes.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")


def reattribute(conn) -> dict:
    """Move buildings, compounds and events to the grid their location now falls in.

    Only things touching the changed grids are looked at: those inside one of them now, or attributed to
    one before. Houses, residences and people follow their building through the org_path triggers. The
    changed grids are those the load's :func:`_upsert` left in the temporary table ``boundary_changed``."""
    # The changed grids are probed through territory_unit's own GiST index: building a copy of them with
    # an index of its own doubled the re-attribution's time in a 10,000-grid load (0.1 s against 0.04 s).
    locate = ("(SELECT g.id FROM territory_unit g WHERE g.level = 'grid' AND g.deleted_at IS NULL "
              "AND g.boundary IS NOT NULL AND ST_Intersects(g.boundary, {point}) ORDER BY g.id LIMIT 1)")
    changed = "(SELECT id FROM boundary_changed)"

    def moves(table: str, geom: str) -> str:
        point = f"ST_PointOnSurface(t.{geom})" if geom != "location" else "t.location"
        # Only what moves is kept (OFFSET 0 keeps the grid lookup from being made twice, once for the
        # filter); nothing moving (a first load of grids) leaves the statements below unasked.
        return (f"CREATE TEMP TABLE moved_{table} ON COMMIT DROP AS SELECT * FROM ("
                f"SELECT t.id, t.grid_id AS old_grid, {locate.format(point=point)} AS new_grid FROM "
                f"{table} t "
                f"WHERE t.{geom} IS NOT NULL AND (t.grid_id IN {changed} OR EXISTS (SELECT 1 FROM "
                "territory_unit c "
                f"WHERE c.id IN {changed} AND ST_Intersects(c.boundary, {point}))) OFFSET 0) m "
                "WHERE new_grid IS NOT NULL AND new_grid <> old_grid")

    moving = {table: conn.execute(moves(table, geom)).rowcount
              for table, geom in (("building", "footprint"), ("compound", "boundary"), ("event", "location"))}
    moved = {"houses": 0, "people": 0, "buildings": 0, "compounds": 0, "events": 0}
    if moving["building"]:
        moved["houses"] = conn.execute(
            "SELECT count(*) FROM house h JOIN moved_building m ON m.id = h.building_id").fetchone()[0]
        moved["people"] = conn.execute(
            "SELECT count(DISTINCT r.person_id) FROM residence r JOIN house h ON h.id = r.house_id "
            "JOIN moved_building m ON m.id = h.building_id WHERE r.until IS NULL").fetchone()[0]
        # org_path is set here as well as by the grid_id trigger: the cascade to houses is an UPDATE OF
        # org_path trigger, and PostgreSQL fires those only for columns named in the statement's SET list.
        moved["buildings"] = conn.execute(
            "UPDATE building b SET grid_id = m.new_grid, org_path = g.path, district_code = g.district_code, "
            "updated_at = now() FROM moved_building m JOIN territory_unit g ON g.id = m.new_grid "
            "WHERE b.id = m.id").rowcount
    if moving["compound"]:
        moved["compounds"] = conn.execute(
            "UPDATE compound c SET grid_id = m.new_grid, org_path = g.path, district_code = g.district_code, "
            "updated_at = now() FROM moved_compound m JOIN territory_unit g ON g.id = m.new_grid "
            "WHERE c.id = m.id").rowcount
    if moving["event"]:
        # An event's org_path is its grid's path; where it is held (unit_path) keeps its level.
        moved["events"] = conn.execute(
            "UPDATE event e SET grid_id = m.new_grid, org_path = g.path, district_code = g.district_code, "
            "unit_path = CASE WHEN e.unit_level = 'grid' THEN g.path ELSE subpath(g.path, 0, "
            "nlevel(e.unit_path)) END, "
            "updated_at = now() FROM moved_event m JOIN territory_unit g ON g.id = m.new_grid "
            "WHERE e.id = m.id").rowcount
        for child in ("event_history", "event_attachment", "event_supervision", "event_card"):
            conn.execute(f"UPDATE {child} c SET org_path = e.org_path FROM moved_event m "
                         "JOIN event e ON e.id = m.id WHERE c.event_id = m.id")
    return moved
