"""``/api/v1/spatial``: the map's services for other clients — drawn-area queries, drill-down figures,
a building's 楼盘表 and a household's members, and what is under a clicked point.

Each request runs in one transaction as the app role, scoped to the logged-in user (row-level security);
personal numbers come back masked and special populations only of the categories the user's role grants.
"""

# No ``from __future__ import annotations``: FastAPI must resolve the route-local Annotated aliases.

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, Field

from gis.api.auth import AUTH_RESPONSES, Problem, client_addr, require_user
from gis.security.scope import scoped_connection
from gis.security.sessions import CurrentUser
from gis.settings import Settings
from layers import housing_grid, spatial, territory

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_MAX_ID = 2**63 - 1
_KEY = r"^[0-9]{1,15}(\.[0-9]{2,15})*$"


class AreaQuery(BaseModel):
    geometry: dict[str, Any] = Field(description="GeoJSON 几何（CGCS2000 经纬度），如 Polygon")
    buffer_m: float = Field(0, ge=0, le=20_000, description="缓冲距离（米）；点或线须大于 0")
    layers: list[str] = Field(["person", "household", "building"], max_length=10,
                              description=f"图层：{', '.join(spatial.AREA_LAYERS)}")
    since: dt.date | None = Field(None, description="事件上报起始日期")
    until: dt.date | None = Field(None, description="事件上报截止日期")
    limit: int = Field(100, ge=0, le=spatial.MAX_ROWS, description="每个图层返回的记录数上限")


class AreaAnswer(BaseModel):
    area_m2: float
    counts: dict[str, int]
    breakdown: dict[str, dict[str, int]]
    rows: dict[str, list[dict[str, Any]]]


class NodeModel(BaseModel):
    level: str
    key: str
    name: str


class DrillAnswer(BaseModel):
    node: NodeModel
    breadcrumbs: list[NodeModel]
    figure: str
    total: int
    children: dict[str, Any] = Field(description="GeoJSON FeatureCollection（CGCS2000）")


class FlatModel(BaseModel):
    house_id: int
    unit_no: int
    floor: int
    room_no: str
    status: str
    status_label: str
    head_name: str | None = None
    people: int
    special: list[str]


class HousingAnswer(BaseModel):
    building_id: int
    name: str
    compound_name: str | None = None
    floors: int
    units: int
    counts: dict[str, int]
    flats: list[FlatModel]


class Member(BaseModel):
    id: int
    name: str
    sex: str
    birth_date: dt.date
    id_number: str | None = Field(None, description="身份证号（脱敏）")
    phone: str | None = Field(None, description="联系电话（脱敏）")
    residency: str
    relation: str
    relation_label: str
    is_head: bool
    since: dt.date
    special: list[str]


class BuildingHit(BaseModel):
    id: int
    name: str
    floors: int
    units: int
    compound_name: str | None = None
    org_path: str


def _bad(error: Exception) -> HTTPException:
    return HTTPException(400, str(error))


def router(settings: Settings) -> APIRouter:
    routes = APIRouter(prefix="/spatial", tags=["spatial"])
    User = Annotated[CurrentUser, Depends(require_user(settings))]
    Id = Annotated[int, Path(ge=1, le=_MAX_ID)]
    responses = {**AUTH_RESPONSES, 400: {"model": Problem, "description": "请求无效"}}
    not_found = {**responses, 404: {"model": Problem, "description": "不存在或不在辖区内"}}

    @routes.post("/query", response_model=AreaAnswer, responses=responses)
    def area_query(body: AreaQuery, user: User, request: Request, response: Response) -> AreaAnswer:
        """范围查询：绘制的多边形、矩形、圆（点加缓冲）或缓冲区内的统计与明细（脱敏；记入访问日志）
        (counts and masked rows inside a GeoJSON geometry)."""
        try:
            area = spatial.area_from_geojson(body.geometry, body.buffer_m)
            with scoped_connection(settings, user, client_addr(request)) as conn:
                result = spatial.area_query(conn, area, body.layers, buffer_m=body.buffer_m,
                                            since=body.since, until=body.until, limit=body.limit,
                                            special_categories=housing_grid.visible_categories(user))
        except spatial.SpatialError as error:
            raise _bad(error) from None
        response.headers.update(NO_STORE)
        return AreaAnswer(area_m2=result.area_m2, counts=result.counts, breakdown=result.breakdown,
                          rows=_jsonable(result.rows))

    files = {"content": {"text/csv": {}, "application/geo+json": {}}, "description": "文件（脱敏）"}

    @routes.post("/export.{fmt}", response_class=Response, responses={**responses, 200: files})
    def area_export(
        fmt: Annotated[str, Path(pattern="^(csv|xlsx|geojson)$")],
        body: AreaQuery,
        user: User,
        request: Request,
        layer: Annotated[str, Query(pattern="^(" + "|".join(spatial.AREA_LAYERS) + ")$")] = "person",
    ) -> Response:
        """范围查询结果导出：某图层在范围内的明细（CSV 带 BOM、XLSX、GeoJSON；脱敏；记入访问日志）
        (the features of one layer inside a geometry, as a file)."""
        try:
            area = spatial.area_from_geojson(body.geometry, body.buffer_m)
            with scoped_connection(settings, user, client_addr(request)) as conn:
                exported = spatial.export_area(conn, area, layer, fmt, buffer_m=body.buffer_m,
                                               since=body.since, until=body.until,
                                               special_categories=housing_grid.visible_categories(user))
        except spatial.SpatialError as error:
            raise _bad(error) from None
        return Response(exported.content, media_type=exported.media_type, headers={
            **NO_STORE, "Content-Disposition": f'attachment; filename="{exported.filename}"'})

    @routes.get("/drill", response_model=DrillAnswer, responses=not_found)
    def drill(
        user: User,
        request: Request,
        level: Annotated[str | None, Query(pattern="^(" + "|".join(spatial.DRILL_LEVELS) + ")$")] = None,
        key: Annotated[str | None, Query(pattern=_KEY, max_length=120,
                                         description="区划路径，或小区、楼栋编号")] = None,
        figure: Annotated[str, Query(pattern="^(" + "|".join(spatial.FIGURES) + ")$")] = "people",
    ) -> DrillAnswer:
        """逐级下钻：某区划（或小区）的下级单元及其统计指标 (a unit's children with a figure)."""
        with scoped_connection(settings, user, client_addr(request)) as conn:
            try:
                if key is None:
                    node = spatial.node_at(conn, _level_of(conn, user.scope), user.scope)
                else:
                    node = spatial.node_at(conn, level or "district", key)
                if node is not None and node.level in territory.LEVELS and not _inside(node.key, user.scope):
                    node = None  # an ancestor's name is visible (breadcrumbs), its children are not
                if node is None:
                    raise HTTPException(404, "未找到该单元，或其不在您的辖区内 (not found in your scope)")
                children = spatial.drill_children(conn, node, figure,
                                                  special_categories=housing_grid.visible_categories(user))
                crumbs = spatial.breadcrumbs(conn, node, user.scope)
            except (spatial.SpatialError, ValueError) as error:
                raise _bad(error) from None
        return DrillAnswer(node=NodeModel(**node.__dict__),
                           breadcrumbs=[NodeModel(**n.__dict__) for n in crumbs],
                           figure=figure, total=int(children["value"].sum()),
                           children=children.__geo_interface__ if len(children) else
                           {"type": "FeatureCollection", "features": []})

    @routes.get("/buildings/{building_id}/housing", response_model=HousingAnswer, responses=not_found)
    def housing(building_id: Id, user: User, request: Request) -> HousingAnswer:
        """楼盘表：楼栋的单元×楼层×房间，每户状态（自住、出租、空置、有特殊人群）(a building's flats)."""
        with scoped_connection(settings, user, client_addr(request)) as conn:
            grid = housing_grid.housing_grid(conn, building_id,
                                             special_categories=housing_grid.visible_categories(user))
        if grid is None:
            raise HTTPException(404, "未找到该楼栋，或其不在您的辖区内 (no such building in your scope)")
        return HousingAnswer(
            building_id=grid.building_id, name=grid.name, compound_name=grid.compound_name,
            floors=grid.floors, units=grid.units, counts=grid.counts(),
            flats=[FlatModel(**{**flat.__dict__, "special": list(flat.special)},
                             status_label=flat.status_label) for flat in grid.flats])

    @routes.get("/houses/{house_id}/members", response_model=list[Member], responses=not_found)
    def members(house_id: Id, user: User, request: Request, response: Response) -> list[Member]:
        """住户：某房屋现住人员（证件号、电话脱敏；记入访问日志）(a household's members, masked)."""
        with scoped_connection(settings, user, client_addr(request)) as conn:
            if housing_grid.house_location(conn, house_id) is None:
                raise HTTPException(404, "未找到该房屋，或其不在您的辖区内 (no such house in your scope)")
            rows = housing_grid.household_members(conn, house_id,
                                                  special_categories=housing_grid.visible_categories(user))
        response.headers.update(NO_STORE)
        return [Member(**row) for row in rows]

    @routes.get("/building-at", response_model=BuildingHit, responses=not_found)
    def building_at(
        user: User,
        request: Request,
        lon: Annotated[float, Query(ge=73, le=136)],
        lat: Annotated[float, Query(ge=3, le=54)],
        tolerance_m: Annotated[float, Query(ge=0, le=500)] = 0,
    ) -> BuildingHit:
        """点击查询：某点所在（或容差内最近）的楼栋 (the building at a clicked point)."""
        with scoped_connection(settings, user, client_addr(request)) as conn:
            hit = spatial.building_at(conn, lon, lat, tolerance_m)
        if hit is None:
            raise HTTPException(404, "该位置没有楼栋 (no building there)")
        return BuildingHit(**hit)

    return routes


def _inside(path: str, scope: str) -> bool:
    return path == scope or path.startswith(scope + ".")


def _level_of(conn, path: str) -> str:
    unit = territory.unit_at_path(conn, path)
    return unit.level if unit else "district"


def _jsonable(rows: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    def plain(value: Any) -> Any:
        if isinstance(value, (dt.date, dt.datetime)):
            return value.isoformat()
        if hasattr(value, "__float__") and not isinstance(value, (int, float, bool)):
            return float(value)
        return value

    return {layer: [{k: plain(v) for k, v in row.items()} for row in items] for layer, items in rows.items()}
