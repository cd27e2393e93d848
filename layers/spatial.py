"""Spatial services of the map: drill-down figures, drawn-area queries, click lookups, viewport layers.

Every function takes a scoped ``Connection``: which rows exist is decided by row-level security, and
personal numbers come back masked. Geometries in and out are CGCS2000 lon/lat (EPSG:4490) unless a
name says Mercator (``_3857``); the viewport layers are returned in Web Mercator, ready to draw.

Where a thing is counted "inside" an area: a building when its point on surface is inside (a footprint
cut by the line counts once, on the side that holds most of it); houses, households and people through
their building; compounds when their boundary intersects; events at their reported location.

>>> with scoped_connection(settings, user) as conn:                          # doctest: +SKIP
...     result = area_query(conn, box(118.74, 32.07, 118.75, 32.08), ["person", "building"])
...     result.counts["person"]
1234
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text

from gis.masking import mask_id_number, mask_phone
from gis.security import audit
from gis.security.roles import SPECIAL_CATEGORIES
from layers import territory
from layers.events.position import from_wgs84_to_gcj02
from layers.housing_grid import check_categories, special_people_sql

STORAGE_CRS = "EPSG:4490"

# The drill-down ladder; below the grid the children are compounds (and buildings in no compound).
DRILL_LEVELS = ("district", "street", "community", "grid", "compound", "building")
DRILL_LABELS = {**territory.LEVEL_LABELS, "compound": "小区", "building": "楼栋"}
FIGURES = {"people": "实有人口", "households": "户数", "special": "特殊人群", "events": "事件"}

AREA_LAYERS = {"person": "实有人口", "household": "户", "house": "房屋", "building": "楼栋",
               "compound": "小区", "event": "事件", "special": "特殊人群"}
RESIDENCY_LABELS = {"resident": "户籍人口", "floating": "流动人口", "foreign": "境外人员"}
MAX_AREA_KM2 = 200.0  # a drawn area larger than a district is a mistake, not a query
MAX_ROWS = 1000


class SpatialError(ValueError):
    """A request the spatial services cannot answer; the message is for the user (Chinese)."""


# ---------------------------------------------------------------- drill-down

@dataclass(frozen=True)
class Node:
    """A place on the drill-down ladder: a territory unit (key = its path), a compound or a building
    (key = its id)."""

    level: str
    key: str
    name: str

    @property
    def label(self) -> str:
        return DRILL_LABELS[self.level]


def _check_figure(figure: str) -> str:
    if figure not in FIGURES:
        raise SpatialError(f"未知的统计指标 {figure!r}，可选：{'、'.join(FIGURES)}")
    return figure


def _special_union(categories: Iterable[str], columns: str = "person_id, org_path") -> str:
    parts = [f"SELECT {columns} FROM {c} WHERE deleted_at IS NULL" for c in check_categories(categories)]
    return " UNION ALL ".join(parts)


def _territory_figure_sql(figure: str, categories: Sequence[str]) -> str | None:
    """``(k, n)`` counted per child path ``k`` of the unit at ``:p`` (children at depth ``:d``)."""
    grouped = "subpath({col}, 0, :d)"
    within = "{col} <@ CAST(:p AS ltree) AND nlevel({col}) >= :d"
    if figure == "people":
        source, col, where, count = "person", "org_path", "died_on IS NULL AND deleted_at IS NULL", "count(*)"
    elif figure == "households":
        source, col, where, count = "residence", "org_path", "until IS NULL", "count(DISTINCT house_id)"
    elif figure == "events":
        source, col, where, count = "event", "org_path", "status <> 'cancelled'", "count(*)"
    else:
        if not categories:
            return None
        source, col, where = f"({_special_union(categories)}) s", "org_path", "true"
        count = "count(DISTINCT person_id)"
    return (f"SELECT {grouped.format(col=col)}::text AS k, {count} AS n FROM {source} "
            f"WHERE {where} AND {within.format(col=col)} GROUP BY 1")


def _building_figure_sql(figure: str, categories: Sequence[str], key: str) -> str | None:
    """``(level, k, n)`` per child of a grid or compound; ``key`` names each building's child key."""
    base = ("FROM b JOIN house h ON h.building_id = b.id AND h.deleted_at IS NULL "
            "JOIN residence r ON r.house_id = h.id AND r.until IS NULL "
            "JOIN person p ON p.id = r.person_id AND p.died_on IS NULL AND p.deleted_at IS NULL")
    if figure == "people":
        return f"SELECT {key}, count(*) AS n {base} GROUP BY 1, 2"
    if figure == "households":
        return f"SELECT {key}, count(DISTINCT h.id) AS n {base} GROUP BY 1, 2"
    if figure == "special":
        if not categories:
            return None
        return (f"SELECT {key}, count(DISTINCT p.id) AS n {base} "
                f"JOIN ({_special_union(categories, 'person_id')}) s ON s.person_id = p.id GROUP BY 1, 2")
    return None  # events below a grid are counted by location, see _events_in_places


def drill_children(conn: Connection, node: Node, figure: str = "people", *,
                   special_categories: Sequence[str] = ()) -> gpd.GeoDataFrame:
    """The children of ``node`` with the chosen figure: columns ``level, key, name, value, geometry``
    (EPSG:4490), ordered by name. A building has no children (its 楼盘表 is shown instead)."""
    _check_figure(figure)
    if node.level in territory.LEVELS and node.level != "grid":
        return _territory_children(conn, node, figure, special_categories)
    if node.level in ("grid", "compound"):
        return _place_children(conn, node, figure, special_categories)
    return gpd.GeoDataFrame({"level": [], "key": [], "name": [], "value": []}, geometry=[], crs=STORAGE_CRS)


def _territory_children(conn: Connection, node: Node, figure: str,
                        categories: Sequence[str]) -> gpd.GeoDataFrame:
    path = territory.check_path(node.key)
    figures = (_territory_figure_sql(figure, categories)
               or "SELECT NULL::text AS k, 0::bigint AS n WHERE false")
    sql = text(f"""
        WITH f AS ({figures})
        SELECT t.level, t.path::text AS key, t.name, coalesce(f.n, 0)::bigint AS value, t.boundary AS geometry
          FROM territory_unit t LEFT JOIN f ON f.k = t.path::text
         WHERE t.parent_id = (SELECT id FROM territory_unit WHERE path = CAST(:p AS ltree))
           AND t.deleted_at IS NULL
         ORDER BY t.code""")
    return gpd.read_postgis(sql, conn, geom_col="geometry", crs=STORAGE_CRS,
                            params={"p": path, "d": path.count(".") + 2})


def _place_children(conn: Connection, node: Node, figure: str, categories: Sequence[str]) -> gpd.GeoDataFrame:
    if node.level == "grid":
        grid_id = conn.execute(text("SELECT id FROM territory_unit WHERE path = CAST(:p AS ltree)"),
                               {"p": territory.check_path(node.key)}).scalar()
        buildings = "SELECT id, compound_id FROM building WHERE grid_id = :id AND deleted_at IS NULL"
        key = ("CASE WHEN b.compound_id IS NULL THEN 'building' ELSE 'compound' END AS level, "
               "coalesce(b.compound_id, b.id)::text AS k")
        places = ("SELECT 'compound' AS level, c.id::text AS key, c.name, c.boundary AS geometry "
                  "FROM compound c WHERE c.grid_id = :id AND c.deleted_at IS NULL "
                  "UNION ALL SELECT 'building', b.id::text, b.name, b.footprint FROM building b "
                  "WHERE b.grid_id = :id AND b.compound_id IS NULL AND b.deleted_at IS NULL")
        params = {"id": grid_id}
    else:
        buildings = "SELECT id, compound_id FROM building WHERE compound_id = :id AND deleted_at IS NULL"
        key = "'building' AS level, b.id::text AS k"
        places = ("SELECT 'building' AS level, b.id::text AS key, b.name, b.footprint AS geometry "
                  "FROM building b WHERE b.compound_id = :id AND b.deleted_at IS NULL")
        params = {"id": int(node.key)}
    if figure == "events":
        figures = ("SELECT pl.level, pl.key AS k, count(e.id) AS n FROM places pl "
                   "JOIN event e ON e.location && pl.geometry AND ST_Intersects(e.location, pl.geometry) "
                   "AND e.status <> 'cancelled' GROUP BY 1, 2")
    else:
        figures = (_building_figure_sql(figure, categories, key)
                   or "SELECT NULL::text AS level, NULL::text AS k, 0::bigint AS n WHERE false")
    sql = text(f"""
        WITH b AS ({buildings}), places AS ({places}), f AS ({figures})
        SELECT pl.level, pl.key, pl.name, coalesce(f.n, 0)::bigint AS value, pl.geometry
          FROM places pl LEFT JOIN f ON f.level = pl.level AND f.k = pl.key
         ORDER BY pl.level DESC, pl.name""")
    return gpd.read_postgis(sql, conn, geom_col="geometry", crs=STORAGE_CRS, params=params)


def node_at(conn: Connection, level: str, key: str) -> Node | None:
    """The node ``(level, key)`` with its name, or ``None`` when it is not in the caller's scope."""
    if level in territory.LEVELS:
        unit = territory.unit_at_path(conn, key)
        return Node(unit.level, unit.path, unit.name) if unit and unit.level == level else None
    table = {"compound": "compound", "building": "building"}.get(level)
    if table is None:
        raise SpatialError(f"未知的层级 {level!r}")
    name = conn.execute(text(f"SELECT name FROM {table} WHERE id = :id"), {"id": int(key)}).scalar()
    return Node(level, str(int(key)), name) if name is not None else None


def breadcrumbs(conn: Connection, node: Node, scope: str) -> list[Node]:
    """The nodes from the top of the caller's scope down to ``node`` (inclusive)."""
    chain: list[Node] = []
    grid_path = None
    if node.level == "building":
        row = conn.execute(text("SELECT b.compound_id, c.name, g.path::text FROM building b "
                                "JOIN territory_unit g ON g.id = b.grid_id "
                                "LEFT JOIN compound c ON c.id = b.compound_id WHERE b.id = :id"),
                           {"id": int(node.key)}).first()
        if row:
            grid_path = row[2]
            if row[0] is not None:
                chain.append(Node("compound", str(row[0]), row[1]))
        chain.append(node)
    elif node.level == "compound":
        grid_path = conn.execute(text("SELECT g.path::text FROM compound c JOIN territory_unit g "
                                      "ON g.id = c.grid_id WHERE c.id = :id"), {"id": int(node.key)}).scalar()
        chain.append(node)
    else:
        grid_path = node.key
    if grid_path:
        units = conn.execute(text(
            "SELECT level, path::text, name FROM territory_unit WHERE path @> CAST(:p AS ltree) "
            "AND path <@ CAST(:scope AS ltree) ORDER BY nlevel(path)"
        ), {"p": grid_path, "scope": scope}).all()
        chain = [Node(level, path, name) for level, path, name in units] + chain
    return chain


# ---------------------------------------------------------------- drawn areas

def area_from_geojson(geometry: dict | str, buffer_m: float = 0.0) -> BaseGeometry:
    """A shapely geometry (EPSG:4490 lon/lat) from GeoJSON, validated; ``buffer_m`` is applied later in
    metres by the database (geography), so a point or a line with a buffer is an area too."""
    try:
        geom = shape(json.loads(geometry) if isinstance(geometry, str) else geometry)
    except Exception as error:  # shapely raises several kinds on malformed input
        raise SpatialError(f"几何图形无效，请提供 GeoJSON 几何对象 (invalid GeoJSON): {error}") from None
    if geom.is_empty:
        raise SpatialError("几何图形为空 (empty geometry)")
    minx, miny, maxx, maxy = geom.bounds
    if not (73 <= minx <= maxx <= 136 and 3 <= miny <= maxy <= 54):
        raise SpatialError("坐标不在中国境内，请使用经纬度（CGCS2000），注意经度在前 (outside China)")
    if buffer_m < 0 or buffer_m > 20_000:
        raise SpatialError("缓冲距离应在 0 到 20000 米之间 (buffer out of range)")
    if geom.geom_type in ("Point", "MultiPoint", "LineString", "MultiLineString") and buffer_m <= 0:
        raise SpatialError("点或线须指定缓冲距离（米），才能构成查询范围 (a point or line needs a buffer)")
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    return geom


def circle(lon: float, lat: float, radius_m: float) -> tuple[BaseGeometry, float]:
    """A circle as (centre, buffer) for :func:`area_query`: the database buffers on the ellipsoid."""
    return shapely.Point(lon, lat), float(radius_m)


@dataclass
class AreaResult:
    area_m2: float
    counts: dict[str, int]
    breakdown: dict[str, dict[str, int]] = field(default_factory=dict)
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


_AREA_ONLY = """area AS (
    SELECT CASE WHEN CAST(:buffer AS float8) > 0
                THEN ST_SetSRID(ST_Buffer(ST_GeomFromText(:wkt, 4490)::geography, :buffer)::geometry, 4490)
                ELSE ST_GeomFromText(:wkt, 4490) END AS g
)"""
_AREA = _AREA_ONLY + """, inside AS (
    SELECT b.id, b.name, b.compound_id FROM building b, area
     WHERE b.footprint && area.g AND ST_Intersects(ST_PointOnSurface(b.footprint), area.g)
       AND b.deleted_at IS NULL
), residents AS (
    SELECT p.id, p.name, p.sex, p.birth_date, p.id_number, p.phone, p.residency, h.id AS house_id,
           h.room_no, i.name AS building_name
      FROM inside i JOIN house h ON h.building_id = i.id AND h.deleted_at IS NULL
      JOIN residence r ON r.house_id = h.id AND r.until IS NULL
      JOIN person p ON p.id = r.person_id AND p.died_on IS NULL AND p.deleted_at IS NULL
)"""


def area_query(
    conn: Connection,
    area: BaseGeometry,
    layers: Sequence[str] = ("person", "household", "building"),
    *,
    buffer_m: float = 0.0,
    since: dt.date | None = None,
    until: dt.date | None = None,
    special_categories: Sequence[str] = (),
    limit: int = 200,
) -> AreaResult:
    """Counts (and the first ``limit`` rows, masked) of ``layers`` inside ``area`` (EPSG:4490), buffered
    by ``buffer_m`` metres. Events are those reported in ``[since, until]`` when given; special
    populations only of ``special_categories`` (the caller's permitted ones). The query is logged."""
    unknown = [layer for layer in layers if layer not in AREA_LAYERS]
    if unknown:
        raise SpatialError(f"未知图层 {unknown}，可选：{'、'.join(AREA_LAYERS)}")
    limit = max(0, min(int(limit), MAX_ROWS))
    params: dict[str, Any] = {"wkt": area.wkt, "buffer": float(buffer_m), "limit": limit,
                              "since": since, "until": until}
    area_m2 = conn.execute(text(f"WITH {_AREA_ONLY} SELECT ST_Area(g::geography) FROM area"),
                           params).scalar_one()
    if area_m2 > MAX_AREA_KM2 * 1e6:
        raise SpatialError(f"查询范围过大（{area_m2 / 1e6:.1f} 平方公里），"
                           f"请缩小到 {MAX_AREA_KM2:.0f} 平方公里以内 (area too large)")
    result = AreaResult(area_m2=float(area_m2), counts={})
    wants_core = bool(set(layers) & {"person", "household", "building"})
    core = _people_households_buildings(conn, params) if wants_core else {}
    for layer in layers:
        if layer in core:
            count, breakdown, rows = core[layer]
        else:
            count, breakdown, rows = _AREA_LAYER_QUERIES[layer](conn, params, list(special_categories))
        result.counts[layer] = count
        if breakdown:
            result.breakdown[layer] = breakdown
        result.rows[layer] = rows
    audit.record(conn, "spatial_query", detail={"layers": list(layers), "area_m2": round(area_m2),
                                                "counts": result.counts})
    return result


def _masked(rows) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        row = dict(row)
        if "id_number" in row:
            row["id_number"] = mask_id_number(row["id_number"])
        if "phone" in row:
            row["phone"] = mask_phone(row["phone"])
        out.append(row)
    return out


def _people_households_buildings(conn, params) -> dict[str, tuple[int, dict, list]]:
    """People, households and buildings in one statement: the join of buildings, houses, residences
    and people inside the area is the expensive part, so it is made once and counted several ways."""
    row = conn.execute(text(f"""
        WITH {_AREA}
        SELECT (SELECT count(*) FROM inside) AS buildings,
               (SELECT count(DISTINCT house_id) FROM residents) AS households,
               (SELECT json_object_agg(residency, n) FROM
                  (SELECT residency, count(*) AS n FROM residents GROUP BY 1) q) AS by_residency,
               (SELECT json_agg(q) FROM (SELECT * FROM residents ORDER BY building_name, room_no, id
                                          LIMIT :limit) q) AS people,
               (SELECT json_agg(q) FROM (SELECT house_id, building_name, room_no, count(*) AS people
                                           FROM residents GROUP BY 1, 2, 3 ORDER BY 2, 3 LIMIT :limit) q)
                   AS household_rows,
               (SELECT json_agg(q) FROM (SELECT id, name FROM inside ORDER BY name LIMIT :limit) q)
                   AS building_rows
    """), params).mappings().one()
    by = row["by_residency"] or {}
    return {
        "person": (sum(by.values()), {RESIDENCY_LABELS.get(k, k): int(v) for k, v in by.items()},
                   _masked(row["people"] or [])),
        "household": (int(row["households"]), {}, row["household_rows"] or []),
        "building": (int(row["buildings"]), {}, row["building_rows"] or []),
    }


def _houses(conn, params, categories):
    by = dict(conn.execute(text(
        f"WITH {_AREA} SELECT h.is_rented, count(*) FROM inside i JOIN house h ON h.building_id = i.id "
        "AND h.deleted_at IS NULL GROUP BY 1"), params).all())
    rows = conn.execute(text(
        f"WITH {_AREA} SELECT h.id, i.name AS building_name, h.unit_no, h.floor, h.room_no, h.owner_name, "
        "h.is_rented FROM inside i JOIN house h ON h.building_id = i.id AND h.deleted_at IS NULL "
        "ORDER BY 2, 3, 4, 5 LIMIT :limit"), params).mappings()
    breakdown = {"出租": int(by.get(True, 0)), "非出租": int(by.get(False, 0))}
    return sum(by.values()), breakdown, [dict(r) for r in rows]


def _compounds(conn, params, categories):
    sql = (f"WITH {_AREA} SELECT c.id, c.name, c.address FROM compound c, area WHERE c.boundary && area.g "
           "AND ST_Intersects(c.boundary, area.g) AND c.deleted_at IS NULL")
    count = conn.execute(text(f"SELECT count(*) FROM ({sql}) q"), params).scalar()
    rows = conn.execute(text(f"{sql} ORDER BY c.name LIMIT :limit"), params).mappings()
    return int(count), {}, [dict(r) for r in rows]


def _events(conn, params, categories):
    sql = (f"WITH {_AREA} SELECT e.id, e.number, e.title, e.type, e.status, e.reported_at "
           "FROM event e, area WHERE e.location && area.g AND ST_Intersects(e.location, area.g) "
           "AND (CAST(:since AS date) IS NULL OR e.reported_at >= CAST(:since AS date)) "
           "AND (CAST(:until AS date) IS NULL OR e.reported_at < CAST(:until AS date) + 1)")
    by = dict(conn.execute(text(f"SELECT status, count(*) FROM ({sql}) q GROUP BY 1"), params).all())
    rows = conn.execute(text(f"{sql} ORDER BY e.reported_at DESC LIMIT :limit"), params).mappings()
    return sum(by.values()), {k: int(v) for k, v in by.items()}, [dict(r) for r in rows]


def _special(conn, params, categories):
    if not categories:
        return 0, {}, []
    union = special_people_sql(categories)
    by = dict(conn.execute(text(
        f"WITH {_AREA} SELECT s.category, count(DISTINCT s.person_id) FROM residents p "
        f"JOIN ({union}) s ON s.person_id = p.id GROUP BY 1"), params).all())
    rows = conn.execute(text(
        f"WITH {_AREA} SELECT p.id, p.name, p.id_number, p.building_name, p.room_no, s.category "
        f"FROM residents p JOIN ({union}) s ON s.person_id = p.id ORDER BY p.id LIMIT :limit"),
        params).mappings()
    total = conn.execute(text(
        f"WITH {_AREA} SELECT count(DISTINCT p.id) FROM residents p JOIN ({union}) s ON s.person_id = p.id"),
        params).scalar()
    breakdown = {SPECIAL_CATEGORIES[k]: int(v) for k, v in by.items()}
    return int(total), breakdown, _masked(rows)


_AREA_LAYER_QUERIES = {"house": _houses, "compound": _compounds, "event": _events, "special": _special}


# Column headers of the exported tables (the rows' keys, as the area queries name them).
EXPORT_LABELS = {
    "id": "编号", "name": "名称", "sex": "性别", "birth_date": "出生日期", "id_number": "身份证号",
    "phone": "联系电话", "residency": "人口类型", "house_id": "房屋编号", "room_no": "房号",
    "building_name": "楼栋", "people": "人数", "unit_no": "单元", "floor": "楼层", "owner_name": "产权人",
    "is_rented": "是否出租", "address": "地址", "number": "事件编号", "title": "标题", "type": "类型",
    "status": "状态", "reported_at": "上报时间", "category": "类别",
}


def _cell(value: Any) -> Any:
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.isoformat(sep=" ", timespec="seconds")  # Excel cannot hold a time zone
    return value


def export_area(
    conn: Connection,
    area: BaseGeometry,
    layer: str,
    fmt: str,
    *,
    buffer_m: float = 0.0,
    since: dt.date | None = None,
    until: dt.date | None = None,
    special_categories: Sequence[str] = (),
):
    """The features of one ``layer`` inside ``area`` as a file (csv with BOM, xlsx or geojson) — the
    table the workbench shows, masked the same way, up to ``MAX_ROWS`` — written to the access log as
    an ``export`` (format, layer, area, rows) like the registries' exports, whose writers it uses.

    Returns a :class:`layers.registry_export.Export`. GeoJSON features carry no geometry of their own
    (a person is drawn at a building); the collection carries the queried area as ``query_area``."""
    from types import SimpleNamespace

    from layers import registry_export

    if fmt not in ("csv", "xlsx", "geojson"):
        raise SpatialError(f"不支持的导出格式 {fmt}，可选 csv、xlsx、geojson")
    if layer not in AREA_LAYERS:
        raise SpatialError(f"未知图层 {layer!r}，可选：{'、'.join(AREA_LAYERS)}")
    result = area_query(conn, area, [layer], buffer_m=buffer_m, since=since, until=until,
                        special_categories=special_categories, limit=MAX_ROWS)
    rows = result.rows.get(layer, [])
    keys = list(rows[0]) if rows else []
    if fmt == "geojson":
        features = [{"type": "Feature", "geometry": None, "properties": row} for row in rows]
        document = {"type": "FeatureCollection", "name": layer, "features": features,
                    "query_area": shapely.geometry.mapping(area), "buffer_m": buffer_m,
                    "count": result.counts[layer]}
        content = json.dumps(document, ensure_ascii=False, default=str).encode("utf-8")
    else:
        header = [EXPORT_LABELS.get(key, key) for key in keys]
        table = [[_cell(v) for v in row.values()] for row in rows]
        # The registry writers name the sheet after a registry's Chinese name; a layer has one too.
        content = (registry_export._csv(header, table) if fmt == "csv" else
                   registry_export._xlsx(SimpleNamespace(zh=f"范围分析-{AREA_LAYERS[layer]}"), header, table))
    audit.record(conn, "export", target_table="spatial_query",
                 detail={"format": fmt, "layer": layer, "rows": len(rows), "area_m2": round(result.area_m2),
                         "since": since, "until": until})
    return registry_export.Export(content, f"area_{layer}.{fmt}", registry_export.FORMATS[fmt], len(rows))


def feature_geometry(conn: Connection, layer: str, feature_id: int) -> BaseGeometry | None:
    """The geometry of a feature to buffer (a school, a building, a compound, an event)."""
    column = {"building": "footprint", "compound": "boundary", "event": "location", "school": "location",
              "camera": "location"}.get(layer)
    if column is None:
        raise SpatialError(f"图层 {layer!r} 不能用作缓冲对象，可选：楼栋、小区、事件、学校、摄像头")
    try:
        wkt = conn.execute(text(f"SELECT ST_AsText({column}) FROM {layer} WHERE id = :id"),
                           {"id": int(feature_id)}).scalar()
    except Exception as error:  # a registry without that column in this deployment
        raise SpatialError(f"无法读取 {layer} 的几何: {error}") from None
    return shapely.from_wkt(wkt) if wkt else None


# ---------------------------------------------------------------- clicks and viewports

def building_at(conn: Connection, lon: float, lat: float, tolerance_m: float = 0.0) -> dict[str, Any] | None:
    """The building under a clicked point (lon/lat), or the nearest within ``tolerance_m`` metres:
    what a click on a rasterized layer resolves to."""
    row = conn.execute(text("""
        SELECT b.id, b.name, b.floors, b.units, c.name AS compound_name, b.org_path::text AS org_path
          FROM building b LEFT JOIN compound c ON c.id = b.compound_id,
               (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4490) AS pt) q
         WHERE b.deleted_at IS NULL
           AND b.footprint && ST_Expand(q.pt, :deg)
           AND ST_DWithin(b.footprint::geography, q.pt::geography, :tol)
         ORDER BY ST_Distance(b.footprint, q.pt), b.id LIMIT 1
    """), {"lon": lon, "lat": lat, "tol": float(tolerance_m),
           "deg": tolerance_m / 90_000 + 1e-7}).mappings().first()
    return dict(row) if row else None


def event_at(conn: Connection, lon: float, lat: float, tolerance_m: float) -> dict[str, Any] | None:
    """The event (not cancelled) nearest to a clicked point within ``tolerance_m`` metres: what a click
    on the event layer opens."""
    row = conn.execute(text("""
        SELECT e.id, e.number, e.title
          FROM event e, (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4490) AS pt) q
         WHERE e.status <> 'cancelled'
           AND e.location && ST_Expand(q.pt, :deg)
           AND ST_DWithin(e.location::geography, q.pt::geography, :tol)
         ORDER BY ST_Distance(e.location, q.pt), e.id LIMIT 1
    """), {"lon": lon, "lat": lat, "tol": float(tolerance_m),
           "deg": tolerance_m / 90_000 + 1e-7}).mappings().first()
    return dict(row) if row else None


VIEWPORT_LAYERS = {"person": "人口", "house": "房屋", "building": "楼栋", "event": "事件"}


def viewport_points(conn: Connection, layer: str, bbox_3857: tuple[float, float, float, float] | None = None,
                    limit: int | None = None) -> pd.DataFrame:
    """Points of a big layer inside a Web Mercator viewport, for datashader: columns ``x, y, n``
    (Mercator metres, and how many records the point stands for — people and houses are counted per
    building, so two million people are a few tens of thousands of weighted points)."""
    if layer not in VIEWPORT_LAYERS:
        raise SpatialError(f"未知图层 {layer!r}，可选：{'、'.join(VIEWPORT_LAYERS)}")
    params: dict[str, Any] = {}
    where = "true"
    geom = "e.location" if layer == "event" else "b.footprint"
    if bbox_3857 is not None:
        x0, y0, x1, y1 = bbox_3857
        where = f"{geom} && ST_Transform(ST_MakeEnvelope(:x0, :y0, :x1, :y1, 3857), 4490)"
        params.update(x0=x0, y0=y0, x1=x1, y1=y1)
    if layer == "event":
        sql = (f"SELECT ST_X(p) AS x, ST_Y(p) AS y, 1 AS n FROM (SELECT ST_Transform(e.location, 3857) AS p "
               f"FROM event e WHERE e.location IS NOT NULL AND e.status <> 'cancelled' AND {where}) q")
    else:
        joins = {"building": "", "house": "JOIN house h ON h.building_id = b.id",
                 "person": "JOIN house h ON h.building_id = b.id "
                           "JOIN residence r ON r.house_id = h.id AND r.until IS NULL"}[layer]
        sql = (f"SELECT ST_X(p) AS x, ST_Y(p) AS y, n FROM (SELECT "
               f"ST_Transform(ST_Centroid(b.footprint), 3857) AS p, count(*) AS n "
               f"FROM building b {joins} WHERE b.deleted_at IS NULL AND {where} GROUP BY b.id) q")
    if limit is not None:
        sql += " LIMIT :limit"
        params["limit"] = int(limit)
    frame = pd.DataFrame(conn.execute(text(sql), params).all(), columns=["x", "y", "n"])
    return frame.astype({"x": "float64", "y": "float64", "n": "float64"})


def special_points(conn: Connection, category: str) -> pd.DataFrame:
    """The homes of one special-population category, one point per building with how many live there
    (``x, y`` Web Mercator, ``n``): the layer is a cluster per building, never a person's exact flat."""
    check_categories([category])
    rows = conn.execute(text(f"""
        SELECT ST_X(p) AS x, ST_Y(p) AS y, n FROM (
            SELECT ST_Transform(ST_Centroid(b.footprint), 3857) AS p, count(DISTINCT s.person_id) AS n
              FROM {category} s JOIN residence r ON r.person_id = s.person_id AND r.until IS NULL
              JOIN house h ON h.id = r.house_id JOIN building b ON b.id = h.building_id
             WHERE s.deleted_at IS NULL GROUP BY b.id) q""")).all()
    return pd.DataFrame(rows, columns=["x", "y", "n"]).astype("float64")


def _envelope(bbox_3857: tuple[float, float, float, float]) -> dict[str, float]:
    x0, y0, x1, y1 = (float(v) for v in bbox_3857)
    return dict(x0=x0, y0=y0, x1=x1, y1=y1)


_IN_VIEW = "ST_Transform(ST_MakeEnvelope(:x0, :y0, :x1, :y1, 3857), 4490)"


def events_in_view(conn: Connection, bbox_3857: tuple[float, float, float, float],
                   cap: int = 3000) -> pd.DataFrame:
    """Events (not cancelled) inside a Web Mercator viewport, at most ``cap``, newest first: ``x, y``
    (EPSG:3857), ``number, title, status`` — the event layer's vectors at high zoom."""
    rows = conn.execute(text(f"""
        SELECT ST_X(p) AS x, ST_Y(p) AS y, number, title, status FROM (
            SELECT ST_Transform(e.location, 3857) AS p, e.number, e.title, e.status, e.reported_at
              FROM event e
             WHERE e.location && {_IN_VIEW} AND e.status <> 'cancelled'
             ORDER BY e.reported_at DESC LIMIT :cap) q"""), {**_envelope(bbox_3857), "cap": int(cap)}).all()
    return pd.DataFrame(rows, columns=["x", "y", "number", "title", "status"]).astype({"x": "float64",
                                                                                        "y": "float64"})


def special_clusters(conn: Connection, category: str,
                     bbox_3857: tuple[float, float, float, float] | None = None) -> pd.DataFrame:
    """One special-population category counted per grid, at a point inside each grid: ``x, y``
    (EPSG:3857), ``n`` people, ``name`` of the grid — the layer at low zoom, which shows where and how
    many, never who. ``bbox_3857`` keeps the grids whose boundary meets the viewport."""
    check_categories([category])
    params: dict[str, Any] = {}
    where = "true"
    if bbox_3857 is not None:
        where = f"g.boundary && {_IN_VIEW}"
        params.update(_envelope(bbox_3857))
    rows = conn.execute(text(f"""
        SELECT ST_X(p) AS x, ST_Y(p) AS y, n, name FROM (
            SELECT ST_Transform(ST_PointOnSurface(g.boundary), 3857) AS p, g.name,
                   count(DISTINCT s.person_id) AS n
              FROM {category} s JOIN residence r ON r.person_id = s.person_id AND r.until IS NULL
              JOIN house h ON h.id = r.house_id JOIN building b ON b.id = h.building_id
              JOIN territory_unit g ON g.id = b.grid_id
             WHERE s.deleted_at IS NULL AND {where} GROUP BY g.id) q"""), params).all()
    return pd.DataFrame(rows, columns=["x", "y", "n", "name"]).astype({"x": "float64", "y": "float64",
                                                                      "n": "float64"})


def special_people_points(conn: Connection, category: str, bbox_3857: tuple[float, float, float, float],
                          cap: int = 3000) -> pd.DataFrame:
    """One special-population category as one point a person, at their building (spread on a small
    ring, a few metres, so that people of one building can be told apart — never at their flat):
    ``x, y`` (EPSG:3857), ``n`` (1), ``name`` of the building. At most ``cap`` points."""
    check_categories([category])
    rows = conn.execute(text(f"""
        SELECT ST_X(c) + 6 * cos(k * 2.399963) * sqrt(k) AS x, ST_Y(c) + 6 * sin(k * 2.399963) * sqrt(k) AS y,
               1 AS n, name FROM (
            SELECT ST_Transform(ST_Centroid(b.footprint), 3857) AS c, b.name,
                   row_number() OVER (PARTITION BY b.id ORDER BY s.person_id) - 1 AS k
              FROM (SELECT DISTINCT person_id FROM {category} WHERE deleted_at IS NULL) s
              JOIN residence r ON r.person_id = s.person_id AND r.until IS NULL
              JOIN house h ON h.id = r.house_id JOIN building b ON b.id = h.building_id
             WHERE b.footprint && {_IN_VIEW} LIMIT :cap) q"""),
        {**_envelope(bbox_3857), "cap": int(cap)}).all()
    return pd.DataFrame(rows, columns=["x", "y", "n", "name"]).astype({"x": "float64", "y": "float64",
                                                                      "n": "float64"})


def buildings_in_view(conn: Connection, bbox_3857: tuple[float, float, float, float],
                      cap: int = 3000) -> gpd.GeoDataFrame:
    """Building footprints inside a Web Mercator viewport (EPSG:3857), at most ``cap``, with their
    people: the vector layer at high zoom."""
    x0, y0, x1, y1 = bbox_3857
    sql = text("""
        SELECT b.id, b.name, (SELECT count(*) FROM house h JOIN residence r ON r.house_id = h.id
                              AND r.until IS NULL WHERE h.building_id = b.id) AS people,
               ST_Transform(b.footprint, 3857) AS geometry
          FROM building b
         WHERE b.deleted_at IS NULL
           AND b.footprint && ST_Transform(ST_MakeEnvelope(:x0, :y0, :x1, :y1, 3857), 4490)
         LIMIT :cap""")
    return gpd.read_postgis(sql, conn, geom_col="geometry", crs="EPSG:3857",
                            params=dict(x0=x0, y0=y0, x1=x1, y1=y1, cap=cap))


# ---------------------------------------------------------------- basemaps

BASEMAPS = {
    # key: (label, XYZ template, the frame its tiles are drawn in)
    "tianditu": ("天地图", "https://t0.tianditu.gov.cn/vec_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
                           "&LAYER=vec&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={Z}&TILEROW={Y}"
                           "&TILECOL={X}&tk={key}", "cgcs2000"),
    "gaode": ("高德地图", "https://webrd01.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
                         "&x={X}&y={Y}&z={Z}", "gcj02"),
    "osm": ("OpenStreetMap", "https://tile.openstreetmap.org/{Z}/{X}/{Y}.png", "cgcs2000"),
}


@dataclass(frozen=True)
class Basemap:
    """What goes under the overlays: an XYZ URL (or none: the offline ground) and the frame the overlays
    must be drawn in to line up with it (``gcj02`` for Gaode, else ``cgcs2000``)."""

    url: str | None = None
    frame: str = "cgcs2000"
    label: str = "无底图（离线）"
    notice: str | None = None  # why the settings' choice is not what is drawn, for the user


TIANDITU_NO_KEY = "未配置天地图密钥，已使用离线底图"


def basemap_for(settings) -> Basemap:
    """The basemap the settings choose: ``basemap`` (tianditu/gaode/osm, opt-in), else ``tile_url``, else
    the local tile folder, else none (offline). Tianditu without a key falls back to the offline choice
    with a notice to show: a missing key must not take the map down."""
    choice = getattr(settings, "basemap", None) or "none"
    if choice == "tianditu" and not settings.tianditu_key:
        fallback = basemap_for(settings.model_copy(update={"basemap": "none"}))
        return dataclasses.replace(fallback, notice=TIANDITU_NO_KEY)
    if choice in BASEMAPS:
        label, template, frame = BASEMAPS[choice]
        if choice == "tianditu":
            template = template.replace("{key}", settings.tianditu_key)
        return Basemap(template, frame, label)
    if settings.tile_url:
        return Basemap(settings.tile_url, "cgcs2000", "自定义底图")
    if settings.tile_dir:
        return Basemap("/tiles/{Z}/{X}/{Y}", "cgcs2000", "本地瓦片")
    return Basemap()


def shift_to_gcj02(geometries: gpd.GeoSeries) -> gpd.GeoSeries:
    """Geometries (lon/lat, CGCS2000 ≈ WGS84) moved into GCJ-02, so they line up with a Gaode basemap."""

    def shift(coords: np.ndarray) -> np.ndarray:
        return np.array([from_wgs84_to_gcj02(x, y) for x, y in coords]).reshape(-1, 2)

    return geometries.apply(lambda g: None if g is None else shapely.transform(g, shift))
