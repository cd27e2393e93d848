"""``/api/v1/ogc``: every map layer as OGC API - Features (Part 1: Core, GeoJSON) and as Mapbox vector
tiles with a TileJSON, for QGIS and GDAL (``OAPIF:`` driver) -- behind the same login, scope and masking
as everything else.

Each request is one transaction as the app role scoped to the user (row-level security decides which
rows exist); ID and phone numbers come back masked, and reads of layers holding them are written to the
access log. The layers are those of :mod:`layers.catalogue`. Tiles are rendered per request from the
tables (``ST_AsMVT``), never cached server-side, so an edited layer is never served stale; responses say
``Cache-Control: private, no-store``.
"""

# No ``from __future__ import annotations``: FastAPI must resolve the route-local Annotated aliases.

import datetime as dt
import json
import math
import re
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text

from gis.api.auth import AUTH_RESPONSES, Problem, client_addr, require_user
from gis.masking import mask_id_number, mask_phone
from gis.security import audit
from gis.security.scope import scoped_connection
from gis.security.sessions import CurrentUser
from gis.settings import Settings
from layers.catalogue import LAYERS, Layer

PREFIX = "/ogc"
GEOJSON = "application/geo+json"
MVT = "application/vnd.mapbox-vector-tile"
NO_STORE = {"Cache-Control": "private, no-store"}
MAX_LIMIT = 10_000
DEFAULT_LIMIT = 100
# numberMatched is given while a scope's matches are at most this many: the count stops there, so a first
# page never counts a city (1,000,000 people through the person layer's joins: 0.75 s; capped: 0.08 s) --
# a commander's millions are paged without a number, as the standard allows.
COUNT_LIMIT = 100_000
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
]
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
_MASKS = {"id_number": mask_id_number, "phone": mask_phone}
_MAX_ID = 2**63 - 1
_NOT_FOUND = {**AUTH_RESPONSES, 404: {"model": Problem, "description": "没有该图层或要素"}}
_JSON = {200: {"content": {"application/json": {}}, "description": "OK"}}
_GEOJSON_OK = {200: {"content": {GEOJSON: {}}, "description": "GeoJSON"}}
_MVT_OK = {200: {"content": {MVT: {}}, "description": "Mapbox 矢量瓦片"}}
_BAD_REQUEST = {400: {"model": Problem, "description": "参数有误"}}


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + request.scope.get("root_path", "") + "/api/v1" + PREFIX


def _layer(collection_id: str) -> Layer:
    layer = LAYERS.get(collection_id)
    if layer is None:
        raise HTTPException(404, f"没有名为 {collection_id} 的图层 (no such collection)")
    return layer


GREGORIAN = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"


# The ends of time the extent measures from: nearest to the first is the first (KNN over the index), nearest
# to the last the last. Wider than any time the database stamps (``now()``) or a load brings.
_EARLIEST = "TIMESTAMPTZ '0001-01-01 00:00:00+00'"
_LATEST = "TIMESTAMPTZ '9999-12-31 00:00:00+00'"


def time_span_sql(layer: Layer) -> str:
    """The statement of a dated layer's first and last time over the rows the user's scope lets through.

    Each end is a nearest-neighbour walk of the table's GiST index on ``(org_path, updated_at)``
    (migration 0014): ``ORDER BY updated_at <-> <an end of time> LIMIT 1``. The scope policy
    (``org_path <@ scope``) is that walk's index condition, so it stops at the first row of the scope,
    whatever the scope's size -- a district's two million people or one grid's thousand -- in about a
    millisecond. ``min()``/``max()`` read every row in scope on each ``/collections`` (which QGIS asks
    often); a btree on ``updated_at`` alone serves a district, but a grid worker's walk passes every row
    of the city changed after (or before) their grid's, most of the table after a bulk load. (The
    territory layers' few thousand units have no such index -- migration 0016 -- and are read.)

    It reads the one table the time is a column of (:class:`layers.catalogue.Temporal`), not the layer's
    joins: the planner, not knowing the scope when it plans, takes each table's policy to keep a small
    share of its rows, so through four joined tables it expects about none, never walks an index, and
    reads the whole scope (8 s an end for a district's two million people)."""
    temporal = layer.temporal
    rows = f"FROM {temporal.table} WHERE ({temporal.where}) AND {temporal.expr} IS NOT NULL"
    first = f"(SELECT {temporal.expr} {rows} ORDER BY {temporal.expr} <-> {_EARLIEST} LIMIT 1)"
    last = f"(SELECT {temporal.expr} {rows} ORDER BY {temporal.expr} <-> {_LATEST} LIMIT 1)"
    return f"SELECT {first} AS first, {last} AS last"


def _time_span(conn, layer: Layer) -> list | None:
    """``[first, last]`` of the layer's time over the rows the user sees (RFC 3339), or None."""
    if layer.temporal is None:
        return None
    first, last = conn.execute(text(time_span_sql(layer))).one()
    return [_json_safe(first), _json_safe(last)]


def _collection(layer: Layer, base: str, span: list | None = None) -> dict[str, Any]:
    url = f"{base}/collections/{layer.key}"
    extent: dict[str, Any] = {"spatial": {"bbox": [[73.0, 3.0, 136.0, 54.0]], "crs": CRS84}}
    description = layer.zh
    if layer.temporal is not None:
        # The interval the datetime parameter filters over (null: an end not known, no rows seen).
        extent["temporal"] = {"interval": [span or [None, None]], "trs": GREGORIAN}
        description = f"{layer.zh}（datetime 按 {layer.temporal.name}（最后更新时间）过滤）"
    return {
        "id": layer.key, "title": layer.zh, "description": description, "itemType": "feature",
        "crs": [CRS84], "extent": extent,
        "links": [
            {"href": url, "rel": "self", "type": "application/json", "title": layer.zh},
            {"href": f"{url}/items", "rel": "items", "type": GEOJSON, "title": f"{layer.zh}要素"},
            {"href": f"{url}/tiles.json", "rel": "describedby", "type": "application/json",
             "title": "TileJSON (vector tiles)"},
        ],
    }


def _parse_bbox(bbox: str | None) -> tuple[float, float, float, float] | None:
    if not bbox:
        return None
    try:
        values = [float(v) for v in bbox.split(",")]
    except ValueError:
        raise HTTPException(400, "bbox 应为 minx,miny,maxx,maxy 四个数 (bad bbox)") from None
    if len(values) == 6:  # minx,miny,minz,maxx,maxy,maxz
        values = [values[0], values[1], values[3], values[4]]
    if (len(values) != 4 or not all(math.isfinite(v) for v in values) or values[0] > values[2]
            or values[1] > values[3]):
        raise HTTPException(400, "bbox 应为 minx,miny,maxx,maxy 四个数 (bad bbox)")
    return values[0], values[1], values[2], values[3]


# RFC 3339 as OGC API Features asks (a date-time with its offset), and a date alone, read as that day in
# China Standard Time (what a user here means by a date).
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
_LOST_PLUS = re.compile(r"^(.*\d{2}:\d{2}:\d{2}(?:\.\d+)?) (\d{2}:\d{2})$")
CHINA = dt.timezone(dt.timedelta(hours=8))
_BAD_DATETIME = ("datetime 应为 RFC 3339 时间（如 2024-10-01T00:00:00Z）、日期（2024-10-01）或区间"
                 "（a/b，开放端写 ..，如 2024-10-01/..）(bad datetime)")


def _moment(text_value: str) -> tuple[dt.datetime, dt.datetime] | None:
    """``(first, last)`` instants a date-time or a date covers (a date: its whole day, ``last`` excluded);
    None when ``text_value`` is neither."""
    # "+08:00" typed into a URL arrives as " 08:00" (a form-decoded plus): taken as the offset it was.
    text_value = _LOST_PLUS.sub(r"\1+\2", text_value)
    try:
        if _DATE.fullmatch(text_value):
            day = dt.datetime.combine(dt.date.fromisoformat(text_value), dt.time(), CHINA)
            return day, day + dt.timedelta(days=1)
        if _DATE_TIME.fullmatch(text_value):
            moment = dt.datetime.fromisoformat(text_value.upper().replace("Z", "+00:00"))
            return moment, moment
    except ValueError:  # 2024-13-01, 25:00:00 ...
        return None
    return None


def parse_datetime(value: str | None) -> tuple[dt.datetime | None, dt.datetime | None, bool] | None:
    """The ``datetime`` parameter as ``(start, end, end_excluded)`` (None for an open end), or None when
    absent; raises 400 when malformed.

    >>> parse_datetime("2024-10-01T08:00:00+08:00")[0].isoformat()
    '2024-10-01T08:00:00+08:00'
    >>> parse_datetime("../2024-10-01")[1].isoformat(), parse_datetime("../2024-10-01")[2]
    ('2024-10-02T00:00:00+08:00', True)
    """
    if value is None:
        return None
    parts = value.strip().split("/")
    if len(parts) == 1:
        moment = _moment(parts[0])
        if moment is None:
            raise HTTPException(400, _BAD_DATETIME)
        return moment[0], moment[1], moment[0] != moment[1]
    if len(parts) != 2:
        raise HTTPException(400, _BAD_DATETIME)
    ends = []
    for part in parts:
        if part in ("", ".."):
            ends.append(None)
            continue
        moment = _moment(part)
        if moment is None:
            raise HTTPException(400, _BAD_DATETIME)
        ends.append(moment)
    start = ends[0][0] if ends[0] else None
    end = ends[1][1] if ends[1] else None
    end_excluded = bool(ends[1]) and ends[1][0] != ends[1][1]
    if start is not None and end is not None and (end < start or (end_excluded and end == start)):
        raise HTTPException(400, "datetime 区间的开始晚于结束 (interval ends before it starts)")
    return start, end, end_excluded


def _masked(layer: Layer, row: dict[str, Any]) -> dict[str, Any]:
    for column in layer.pii:
        if row.get(column) is not None:
            row[column] = _MASKS["id_number" if "id" in column else "phone"](str(row[column]))
    return row


def _json_safe(value: Any) -> Any:
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    if isinstance(value, dt.datetime):
        return value.isoformat()  # RFC 3339, as the datetime parameter takes it back
    return str(value)


def _select(layer: Layer) -> str:
    """The layer's columns, with its time (when it has one and does not list it already)."""
    if layer.temporal is None or layer.temporal.name in _output_columns(layer):
        return layer.columns
    return f"{layer.columns}, {layer.temporal.expr} AS {layer.temporal.name}"


def _rows(layer: Layer, where: list[str]) -> str:
    """``FROM … WHERE …`` of the layer's rows that pass ``where``."""
    return f"FROM {layer.source} WHERE ({layer.where}) AND {' AND '.join(where) if where else 'true'}"


def features_sql(layer: Layer, where: list[str]) -> str:
    """The page of features: ``:limit`` rows in id order after ``:offset``."""
    return (f"SELECT {_select(layer)}, ST_AsGeoJSON({layer.geometry}, 7) AS _geometry {_rows(layer, where)} "
            "ORDER BY 1 LIMIT :limit OFFSET :offset")


def _features(conn, layer: Layer, where: list[str], params: dict, limit: int, offset: int):
    """Up to ``limit`` features in id order (``where`` may start after an id: see ``items``)."""
    rows = conn.execute(text(features_sql(layer, where)),
                        {**params, "limit": limit, "offset": offset}).mappings().all()
    features = []
    for row in rows:
        props = _masked(layer, {k: _json_safe(v) for k, v in row.items() if k != "_geometry"})
        geometry = json.loads(row["_geometry"]) if row["_geometry"] else None
        features.append({"type": "Feature", "id": props.get("id"), "geometry": geometry, "properties": props})
    return features


def _filters(layer: Layer, bbox, request: Request, when=None) -> tuple[list[str], dict]:
    where, params = [], {}
    # A layer without a time matches any datetime (OGC API Features /req/core/fc-time-response C); a dated
    # layer's time is a NOT NULL column, so the test is a plain range, which the (org_path, updated_at)
    # index answers together with the scope ("what changed since" reads the changes, not the scope).
    if when is not None and layer.temporal is not None:
        start, end, end_excluded = when
        expr = layer.temporal.expr
        if start is not None and end is not None and start == end:
            where.append(f"{expr} = :t_start")
        else:
            if start is not None:
                where.append(f"{expr} >= :t_start")
            if end is not None:
                where.append(f"{expr} {'<' if end_excluded else '<='} :t_end")
        params.update(t_start=start, t_end=end)
    if bbox is not None:
        where.append(f"{layer.indexed_geometry} && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4490) "
                     f"AND ST_Intersects({layer.geometry}, ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4490))")
        params.update(x0=bbox[0], y0=bbox[1], x1=bbox[2], y1=bbox[3])
    # Simple property filters (?name=...): equality on the layer's own output columns, not on masked ones.
    columns = _output_columns(layer)
    for key, value in request.query_params.items():
        if key in columns and key not in layer.pii:
            name = f"p_{len(params)}"
            where.append(f"({columns[key]})::text = :{name}")
            params[name] = value
    return where, params


def _output_columns(layer: Layer) -> dict[str, str]:
    """Output name → SQL expression of the layer's SELECT list (``a.b AS c`` → c: a.b)."""
    out = {}
    depth, current, parts = 0, "", []
    for char in layer.columns:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    for part in parts:
        part = part.strip()
        if " AS " in part:
            expr, name = part.rsplit(" AS ", 1)
        else:
            expr, name = part, part.split(".")[-1]
        out[name.strip()] = expr.strip()
    return out


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """The Web Mercator bounds of tile z/x/y (metres)."""
    size = 2 * math.pi * 6378137 / (2 ** z)
    origin = math.pi * 6378137
    return (-origin + x * size, origin - (y + 1) * size, -origin + (x + 1) * size, origin - y * size)


def tile_sql(layer: Layer) -> str:
    """The layer's tile as one ``ST_AsMVT`` statement (parameters ``x0 y0 x1 y1`` in Web Mercator, ``name``).

    The envelope is written inline, not in a CTE: as a constant expression (ST_Transform and
    ST_MakeEnvelope are immutable) it is folded at plan time, so under the app role's row-level security
    the planner still sees a selective ``&&`` on the layer's indexed geometry in its own CRS and starts
    from the GiST index. A CTE scanned twice is materialised and hid it: the people layer then joined the
    whole district (50,000 people) before filtering — 500 ms a tile against 30 ms now.
    """
    columns = ", ".join(f"{expr} AS {name}" for name, expr in _output_columns(layer).items()
                        if name not in layer.pii)
    envelope = "ST_MakeEnvelope(:x0, :y0, :x1, :y1, 3857)"
    # Clipped and encoded in Web Mercator; the index is asked in storage CRS.
    return (
        f"WITH rows AS (SELECT {columns}, ST_AsMVTGeom(ST_Transform({layer.geometry}, 3857), "
        f"{envelope}::box2d, 4096, 64) AS geom FROM {layer.source} WHERE ({layer.where}) "
        f"AND {layer.indexed_geometry} && ST_Transform({envelope}, 4490)) "
        "SELECT ST_AsMVT(rows, :name, 4096, 'geom') FROM rows WHERE geom IS NOT NULL")


def router(settings: Settings) -> APIRouter:
    routes = APIRouter(prefix=PREFIX, tags=["ogc"])
    User = Annotated[CurrentUser, Depends(require_user(settings))]

    @routes.get("", responses={**AUTH_RESPONSES, **_JSON}, response_class=JSONResponse)
    def landing(request: Request, user: User) -> JSONResponse:
        """OGC API 首页 (landing page)."""
        base = _base(request)
        return JSONResponse({
            "title": "gridgov 网格化服务管理 OGC API",
            "description": "按登录用户的辖区与权限提供的图层 (layers as the logged-in user may see them)",
            "links": [
                {"href": base, "rel": "self", "type": "application/json", "title": "首页"},
                {"href": f"{base}/conformance", "rel": "conformance", "type": "application/json"},
                {"href": f"{base}/collections", "rel": "data", "type": "application/json"},
                {"href": str(request.base_url).rstrip("/") + "/openapi.json", "rel": "service-desc",
                 "type": "application/vnd.oai.openapi+json;version=3.0"},
            ],
        }, headers=NO_STORE)

    @routes.get("/conformance", responses={**AUTH_RESPONSES, **_JSON}, response_class=JSONResponse)
    def conformance(user: User) -> JSONResponse:
        return JSONResponse({"conformsTo": CONFORMANCE}, headers=NO_STORE)

    @routes.get("/collections", responses={**AUTH_RESPONSES, **_JSON}, response_class=JSONResponse)
    def collections(request: Request, user: User) -> JSONResponse:
        base = _base(request)
        with scoped_connection(settings, user, client_addr(request)) as conn:
            spans = {layer.key: _time_span(conn, layer) for layer in LAYERS.values()}
        return JSONResponse({
            "links": [{"href": f"{base}/collections", "rel": "self", "type": "application/json"}],
            "collections": [_collection(layer, base, spans.get(layer.key)) for layer in LAYERS.values()],
        }, headers=NO_STORE)

    @routes.get("/collections/{collection_id}", responses={**_NOT_FOUND, **_JSON},
                response_class=JSONResponse)
    def collection(collection_id: str, request: Request, user: User) -> JSONResponse:
        layer = _layer(collection_id)
        with scoped_connection(settings, user, client_addr(request)) as conn:
            span = _time_span(conn, layer)
        return JSONResponse(_collection(layer, _base(request), span), headers=NO_STORE)

    @routes.get("/collections/{collection_id}/items", response_class=Response,
                responses={**_NOT_FOUND, **_BAD_REQUEST, **_GEOJSON_OK})
    def items(collection_id: str, request: Request, user: User,
              bbox: str | None = Query(None, description="minx,miny,maxx,maxy（CGCS2000 经纬度）"),
              limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
              offset: int = Query(0, ge=0, le=1_000_000_000),
              after: int = Query(0, ge=0, le=_MAX_ID, description="上一页末个要素的 id"),
              datetime: str | None = Query(None, description="RFC 3339 时间、日期或区间（a/b，开放端 ..）"),
              ) -> Response:
        """要素（GeoJSON），按 bbox、datetime、属性过滤与分页 (features, with bbox, datetime, property
        filters and paging)."""
        layer = _layer(collection_id)
        where, params = _filters(layer, _parse_bbox(bbox), request, parse_datetime(datetime))
        # Pages are walked by id: the next link carries the last id seen, so a client reading a city's two
        # million people page by page reads each row once (an OFFSET reads every row before the page).
        # numberMatched -- a count of the scope through the layer's joins, up to COUNT_LIMIT -- is given
        # on the first page only (the standard makes it optional); the next link comes from one row read
        # ahead.
        first_page = offset == 0 and after == 0
        keyed, keyed_params = where, params
        if after:
            keyed, keyed_params = [*where, f"{layer.id_column} > :after"], {**params, "after": after}
        with scoped_connection(settings, user, client_addr(request)) as conn:
            matched = (conn.execute(text(f"SELECT count(*) FROM (SELECT 1 {_rows(layer, where)} LIMIT :cap) "
                                         "c"), {**params, "cap": COUNT_LIMIT + 1}).scalar_one()
                       if first_page else None)
            features = _features(conn, layer, keyed, keyed_params, limit + 1, offset)
            more = len(features) > limit
            features = features[:limit]
            if layer.pii:
                audit.record(conn, "ogc_items", target_table=layer.key,
                             detail={"bbox": bbox, "datetime": datetime, "limit": limit, "offset": offset,
                                     "after": after, "rows": len(features)})
        url = f"{_base(request)}/collections/{layer.key}/items"
        keep = {k: v for k, v in request.query_params.items() if k not in ("offset", "limit", "after")}
        # Encoded: a datetime's "+08:00" and "/" must come back as they went.
        query = f"&{urlencode(keep)}" if keep else ""
        here = f"&after={after}" if after else f"&offset={offset}"
        links = [{"href": f"{url}?limit={limit}{here}{query}", "rel": "self", "type": GEOJSON}]
        if more:
            links.append({"href": f"{url}?limit={limit}&after={features[-1]['id']}{query}", "rel": "next",
                          "type": GEOJSON})
        if offset > 0:
            links.append({"href": f"{url}?limit={limit}&offset={max(0, offset - limit)}{query}",
                          "rel": "prev", "type": GEOJSON})
        body = {"type": "FeatureCollection", "features": features, "numberReturned": len(features),
                "links": links}
        if matched is not None and matched <= COUNT_LIMIT:
            body["numberMatched"] = matched
        return Response(json.dumps(body, ensure_ascii=False), media_type=GEOJSON, headers=NO_STORE)

    @routes.get("/collections/{collection_id}/items/{feature_id}", response_class=Response,
                responses={**_NOT_FOUND, **_GEOJSON_OK})
    def item(collection_id: str, feature_id: Annotated[int, Path(ge=1, le=_MAX_ID)], request: Request,
             user: User) -> Response:
        layer = _layer(collection_id)
        id_column = _output_columns(layer)["id"]
        with scoped_connection(settings, user, client_addr(request)) as conn:
            found = _features(conn, layer, [f"{id_column} = :fid"], {"fid": feature_id}, 1, 0)
            if found and layer.pii:
                audit.record(conn, "ogc_item", target_table=layer.key, target_id=str(feature_id))
        if not found:
            raise HTTPException(404, "要素不存在或不在您的辖区内 (no such feature)")
        return Response(json.dumps(found[0], ensure_ascii=False), media_type=GEOJSON, headers=NO_STORE)

    @routes.get("/collections/{collection_id}/tiles.json", responses={**_NOT_FOUND, **_JSON},
                response_class=JSONResponse)
    def tilejson(collection_id: str, request: Request, user: User) -> JSONResponse:
        layer = _layer(collection_id)
        base = _base(request)
        return JSONResponse({
            "tilejson": "3.0.0", "name": layer.zh, "scheme": "xyz", "minzoom": 0, "maxzoom": 22,
            "bounds": [73.0, 3.0, 136.0, 54.0],
            "tiles": [f"{base}/collections/{layer.key}/tiles/{{z}}/{{x}}/{{y}}.mvt"],
            "vector_layers": [{"id": layer.key, "description": layer.zh,
                               "fields": {name: "" for name in _output_columns(layer)}}],
        }, headers=NO_STORE)

    @routes.get("/collections/{collection_id}/tiles/{z}/{x}/{y}.mvt", response_class=Response,
                responses={**_NOT_FOUND, **_MVT_OK})
    def tile(collection_id: str, z: int, x: int, y: int, request: Request, user: User) -> Response:
        """矢量瓦片（ST_AsMVT，Web 墨卡托）(a vector tile)."""
        layer = _layer(collection_id)
        if not (0 <= z <= 24 and 0 <= x < 2 ** z and 0 <= y < 2 ** z):
            raise HTTPException(404, "瓦片编号超出范围 (tile out of range)")
        x0, y0, x1, y1 = tile_bounds(z, x, y)
        sql = tile_sql(layer)
        with scoped_connection(settings, user, client_addr(request)) as conn:
            data = conn.execute(text(sql), {"x0": x0, "y0": y0, "x1": x1, "y1": y1,
                                            "name": layer.key}).scalar_one()
        return Response(bytes(data or b""), media_type=MVT, headers=NO_STORE)

    return routes
