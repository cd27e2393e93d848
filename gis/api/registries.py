"""``/api/v1/registries/{key}`` for every registry, and ``/api/v1/meta/registries``: routes generated from the
declarations by one factory (titiler style) -- no registry has routes of its own.

Per registry: ``GET`` the list (its search fields as query parameters, ``sort``, ``limit``/``offset``,
``total``), ``GET /export.{csv|xlsx|geojson|gpkg|shp}`` the same list as a file, ``GET /{id}`` one record,
``POST`` create, ``PUT /{id}`` update (the fields given, based on ``version``), ``DELETE /{id}`` soft
delete; ``GET /print`` the list and ``GET /{id}/print`` one record as an A4 PDF (打印); special-population
registries also ``GET|POST /{id}/visits``; schools ``GET /{id}/nearby``; grids ``GET /{id}/notice-board``
(网格服务公示牌).
Each request is one transaction as the app role scoped to the user (row-level security), masked,
logged. Refusals carry Chinese messages; invalid input is 422 with ``errors`` per field.
"""

# No `from __future__ import annotations`: FastAPI must evaluate the route signatures.
import datetime as dt
import inspect
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, create_model
from pydantic import Field as PydanticField

from gis.api.auth import AUTH_RESPONSES, Problem, client_addr, require_user
from gis.security.scope import scoped_connection
from gis.security.sessions import CurrentUser
from gis.settings import Settings
from layers import registry_export, registry_print, registry_service
from layers.registries import REGISTRIES
from layers.registry import Field, Registry

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_MAX_ID = 2**63 - 1
_PY_TYPES: dict[str, Any] = {"int": int, "number": float, "date": dt.date, "datetime": dt.datetime,
                             "bool": bool, "ref": int, "lon": float, "lat": float}


class FieldErrors(BaseModel):
    detail: str
    errors: dict[str, str] = {}


class QueryMeta(BaseModel):
    name: str
    zh: str
    mode: str
    params: list[str]


class FieldMeta(BaseModel):
    name: str
    zh: str
    en: str
    type: str
    code_table: str | None = None
    required: bool
    sensitive: str | None = None
    derived: bool
    ref: str | None = None


class RegistryMeta(BaseModel):
    key: str
    zh: str
    en: str
    module: str
    geometry: str
    table: str
    special: str | None = None
    visits: bool
    ops: list[str]
    crud: bool
    fields: list[FieldMeta]
    query: list[QueryMeta]


class Visit(BaseModel):
    id: int
    visited_on: dt.date
    visitor: str
    content: str
    next_due: dt.date | None = None
    created_at: dt.datetime


class VisitIn(BaseModel):
    visited_on: Any = PydanticField(None, description="走访日期")
    visitor: Any = PydanticField(None, description="走访人")
    content: Any = PydanticField(None, description="帮扶内容")
    next_due: Any = PydanticField(None, description="下次走访日期")



def sort_pattern(registry) -> str:
    """The ``sort`` values a registry accepts, so the OpenAPI document says exactly which: ``id`` or a
    field that is not sensitive (ordering by an ID or phone number would leak it), optionally ``-``."""
    names = ["id", *(f.name for f in registry.fields if not f.sensitive)]
    return rf"^[-+]?({'|'.join(names)})$"

def _camel(key: str) -> str:
    return "".join(part.capitalize() for part in key.split("_"))


def _describe(f: Field) -> str:
    notes = [f.zh]
    if f.code_table:
        notes.append(f"代码表 {f.code_table}")
    if f.sensitive:
        notes.append("脱敏")
    if f.derived:
        notes.append("系统计算")
    return "；".join(notes)


def record_model(registry: Registry) -> type[BaseModel]:
    fields: dict[str, Any] = {
        "id": (int, ...), "version": (int, ...), "org_path": (str, ...),
        "district_code": (str | None, None), "geometry": (dict | None, None),
    }
    for f in registry.fields:
        fields[f.name] = (_PY_TYPES.get(f.type, str) | None, PydanticField(None, description=_describe(f)))
    return create_model(f"{_camel(registry.key)}Record", **fields)


def write_model(registry: Registry, *, update: bool) -> type[BaseModel]:
    # Values (and unknown names) are checked by the service, which answers field by field in Chinese;
    # the schema documents the type each field expects.
    fields: dict[str, Any] = {}
    if update:
        fields["version"] = (int, PydanticField(..., description="所编辑记录的版本（乐观锁）"))
    fields["org_path"] = (str | None, PydanticField(None, description="所属区域路径（默认：本人辖区）"))
    if registry.geometry_column and not registry.lonlat:
        fields["geometry"] = (dict | None,
                              PydanticField(None, description="位置（GeoJSON，CGCS2000 经纬度）"))
    for f in registry.stored_fields:
        description = _describe(f) + ("；必填" if f.required else "")
        fields[f.name] = (Any, PydanticField(None, description=description,
                                             json_schema_extra={"x-type": f.type}))
    suffix = "Update" if update else "Create"
    return create_model(f"{_camel(registry.key)}{suffix}", __config__=ConfigDict(extra="allow"), **fields)


def page_model(registry: Registry, record: type[BaseModel]) -> type[BaseModel]:
    return create_model(f"{_camel(registry.key)}Page", total=(int, ...), limit=(int, ...), offset=(int, ...),
                        items=(list[record], ...))


def filters_dependency(registry: Registry):
    """A dependency whose parameters are the registry's search fields (FastAPI reads the signature)."""
    parameters = []
    for f in registry.query_fields:
        if f.search_mode == "range":
            for suffix, zh in (("min", "下限"), ("max", "上限")):
                parameters.append(inspect.Parameter(
                    f"{f.name}_{suffix}", inspect.Parameter.KEYWORD_ONLY,
                    annotation=_PY_TYPES.get(f.type, str) | None,
                    default=Query(None, description=f"{f.range_zh or f.zh}{zh}")))
        else:
            kind = bool if f.type == "bool" else (int if f.type in ("ref", "int") else str)
            extra = {"max_length": 100, "pattern": r"^[^\x00-\x1f]*$"} if kind is str else {}
            parameters.append(inspect.Parameter(
                f.name, inspect.Parameter.KEYWORD_ONLY, annotation=kind | None,
                default=Query(None, description=f"{f.zh}（{f.search_mode}）", **extra)))

    def filters(**values: Any) -> dict[str, Any]:
        return {k: v for k, v in values.items() if v is not None}

    filters.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    return filters


def _refused(error: registry_service.RegistryError) -> JSONResponse:
    body: dict[str, Any] = {"detail": str(error)}
    if isinstance(error, registry_service.Invalid):
        body["errors"] = error.errors
    return JSONResponse(body, status_code=error.status, headers=NO_STORE)


_ERRORS = {403: {"model": Problem, "description": "无权限"},
           404: {"model": Problem, "description": "不存在或不在辖区内"}}
_PDF = {200: {"content": {registry_print.MEDIA_TYPE: {}}, "description": "A4 PDF（脱敏）"}}
_WRITE_ERRORS = {**_ERRORS, 409: {"model": Problem, "description": "记录已被他人修改（版本过期）"},
                 422: {"model": FieldErrors, "description": "填写有误（按字段列出）"}}


def photo_dir(settings: Settings) -> FilePath:
    """Where the grid heads' photos (网格长照片, the grid registry's 照片 field) are kept."""
    return FilePath(settings.var_dir) / "photos"


def _pdf(printed: registry_print.Printed) -> Response:
    # Shown in the browser's PDF viewer (to print), not saved: "inline".
    return Response(printed.content, media_type=printed.media_type, headers={
        **NO_STORE, "Content-Disposition": f'inline; filename="{printed.filename}"'})


class RegistryRoutes:
    """Registers the routes of one registry on ``routes`` -- one method a route."""

    def __init__(self, settings: Settings, routes: APIRouter, registry: Registry) -> None:
        self.settings, self.routes, self.registry = settings, routes, registry
        self.prefix = f"/registries/{registry.key}"
        self.User = Annotated[CurrentUser, Depends(require_user(settings))]
        self.Record = record_model(registry)
        self.Page = page_model(registry, self.Record)
        self.tags = [f"registry: {registry.zh}"]
        self.list()
        self.export()
        self.print_list()  # before /{record_id}, which would otherwise take "print" for an id
        self.get()
        self.print_record()
        self.create()
        self.update()
        self.delete()
        if registry.visits:
            self.visits()
        if registry.key == "school":
            self.nearby()
        if registry.key == "grid":
            self.notice_board()

    def _connection(self, user: CurrentUser, request: Request):
        return scoped_connection(self.settings, user, client_addr(request))

    def list(self) -> None:
        registry, Page, Record, User = self.registry, self.Page, self.Record, self.User
        Filters = Annotated[dict, Depends(filters_dependency(registry))]

        @self.routes.get(self.prefix, response_model=Page, tags=self.tags, summary=f"{registry.zh}：查询",
                         responses={**AUTH_RESPONSES, **_ERRORS, 422: {"model": FieldErrors}},
                         operation_id=f"list_{registry.key}")
        def list_records(
            user: User, request: Request, response: Response, filters: Filters,
            sort: Annotated[str | None, Query(pattern=sort_pattern(registry),
                                              description="排序字段，前加 - 为降序")] = None,
            within: Annotated[str | None, Query(pattern=r"^[0-9]{2,15}(\.[0-9]{2,15})*$",
                                                description="区划路径")] = None,
            limit: Annotated[int, Query(ge=1, le=registry_service.MAX_PAGE)] = 50,
            offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
        ):
            try:
                with self._connection(user, request) as conn:
                    page = registry_service.list_records(conn, user, registry, filters, sort=sort,
                                                         within=within, limit=limit, offset=offset)
            except registry_service.RegistryError as error:
                return _refused(error)
            response.headers.update(NO_STORE)
            return Page(total=page.total, limit=page.limit, offset=page.offset,
                        items=[Record(**item) for item in page.items])

    def export(self) -> None:
        registry, User = self.registry, self.User
        Filters = Annotated[dict, Depends(filters_dependency(registry))]

        @self.routes.get(self.prefix + "/export.{fmt}", tags=self.tags, summary=f"{registry.zh}：下载",
                         response_class=Response, responses={
                             **AUTH_RESPONSES, **_ERRORS,
                             200: {"content": {t: {} for t in registry_export.FORMATS.values()},
                                   "description": "导出文件（脱敏）"}},
                         operation_id=f"export_{registry.key}")
        def export_records(
            user: User, request: Request, filters: Filters,
            fmt: Annotated[str, Path(pattern="^(csv|xlsx|geojson|gpkg|shp)$", description="格式")],
            sort: Annotated[str | None, Query(pattern=sort_pattern(registry))] = None,
            within: Annotated[str | None, Query(pattern=r"^[0-9]{2,15}(\.[0-9]{2,15})*$")] = None,
        ):
            try:
                with self._connection(user, request) as conn:
                    result = registry_export.export_records(conn, user, registry, fmt, filters, sort=sort,
                                                            within=within)
            except registry_service.RegistryError as error:
                return _refused(error)
            return Response(result.content, media_type=result.media_type, headers={
                **NO_STORE, "Content-Disposition": f'attachment; filename="{result.filename}"'})

    def print_list(self) -> None:
        registry, User = self.registry, self.User
        Filters = Annotated[dict, Depends(filters_dependency(registry))]

        @self.routes.get(self.prefix + "/print", tags=self.tags, summary=f"{registry.zh}：打印列表",
                         response_class=Response, responses={**AUTH_RESPONSES, **_ERRORS, **_PDF},
                         operation_id=f"print_{registry.key}")
        def print_records(
            user: User, request: Request, filters: Filters,
            sort: Annotated[str | None, Query(pattern=sort_pattern(registry))] = None,
            within: Annotated[str | None, Query(pattern=r"^[0-9]{2,15}(\.[0-9]{2,15})*$")] = None,
        ):
            try:
                with self._connection(user, request) as conn:
                    printed = registry_print.print_list(conn, user, registry, filters, sort=sort,
                                                        within=within)
            except registry_service.RegistryError as error:
                return _refused(error)
            return _pdf(printed)

    def print_record(self) -> None:
        registry, User = self.registry, self.User

        @self.routes.get(self.prefix + "/{record_id}/print", tags=self.tags, summary=f"{registry.zh}：打印",
                         response_class=Response, responses={**AUTH_RESPONSES, **_ERRORS, **_PDF},
                         operation_id=f"print_{registry.key}_record")
        def print_record(record_id: Annotated[int, Path(ge=1, le=_MAX_ID)], user: User, request: Request):
            try:
                with self._connection(user, request) as conn:
                    printed = registry_print.print_record(conn, user, registry, record_id)
            except registry_service.RegistryError as error:
                return _refused(error)
            return _pdf(printed)

    def notice_board(self) -> None:
        User, folder = self.User, photo_dir(self.settings)

        @self.routes.get(self.prefix + "/{record_id}/notice-board", tags=self.tags,
                         summary="网格服务公示牌（打印）", response_class=Response,
                         responses={**AUTH_RESPONSES, **_ERRORS, **_PDF}, operation_id="grid_notice_board")
        def notice_board(record_id: Annotated[int, Path(ge=1, le=_MAX_ID)], user: User, request: Request):
            try:
                with self._connection(user, request) as conn:
                    printed = registry_print.print_notice_board(conn, user, record_id, photo_dir=folder)
            except registry_service.RegistryError as error:
                return _refused(error)
            return _pdf(printed)

    def get(self) -> None:
        registry, Record, User = self.registry, self.Record, self.User

        @self.routes.get(self.prefix + "/{record_id}", response_model=Record, tags=self.tags,
                         summary=f"{registry.zh}：详情", responses={**AUTH_RESPONSES, **_ERRORS},
                         operation_id=f"get_{registry.key}")
        def get_record(record_id: Annotated[int, Path(ge=1, le=_MAX_ID)], user: User, request: Request,
                       response: Response):
            try:
                with self._connection(user, request) as conn:
                    row = registry_service.get_record(conn, user, registry, record_id)
            except registry_service.RegistryError as error:
                return _refused(error)
            response.headers.update(NO_STORE)
            return Record(**row)

    def create(self) -> None:
        registry, Record, User = self.registry, self.Record, self.User
        Body = write_model(registry, update=False)

        @self.routes.post(self.prefix, response_model=Record, status_code=201, tags=self.tags,
                          summary=f"{registry.zh}：新增", responses={**AUTH_RESPONSES, **_WRITE_ERRORS},
                          operation_id=f"create_{registry.key}")
        def create_record(body: Body, user: User, request: Request, response: Response):  # type: ignore
            try:
                with self._connection(user, request) as conn:
                    values = body.model_dump(exclude_unset=True)
                    row = registry_service.create_record(conn, user, registry, values)
            except registry_service.RegistryError as error:
                return _refused(error)
            response.headers.update(NO_STORE)
            return Record(**row)

    def update(self) -> None:
        registry, Record, User = self.registry, self.Record, self.User
        Body = write_model(registry, update=True)

        @self.routes.put(self.prefix + "/{record_id}", response_model=Record, tags=self.tags,
                         summary=f"{registry.zh}：修改", responses={**AUTH_RESPONSES, **_WRITE_ERRORS},
                         operation_id=f"update_{registry.key}")
        def update_record(record_id: Annotated[int, Path(ge=1, le=_MAX_ID)], body: Body,  # type: ignore
                          user: User, request: Request, response: Response):
            values = body.model_dump(exclude_unset=True)
            version = values.pop("version")
            try:
                with self._connection(user, request) as conn:
                    row = registry_service.update_record(conn, user, registry, record_id, values, version)
            except registry_service.RegistryError as error:
                return _refused(error)
            response.headers.update(NO_STORE)
            return Record(**row)

    def delete(self) -> None:
        registry, User = self.registry, self.User

        @self.routes.delete(self.prefix + "/{record_id}", status_code=204, tags=self.tags,
                            summary=f"{registry.zh}：删除（保留历史）", response_class=Response,
                            responses={**AUTH_RESPONSES, **_WRITE_ERRORS},
                            operation_id=f"delete_{registry.key}")
        def delete_record(record_id: Annotated[int, Path(ge=1, le=_MAX_ID)], user: User, request: Request,
                          version: Annotated[int | None, Query(ge=1, le=2**31 - 1,
                                                               description="所删除记录的版本")] = None):
            try:
                with self._connection(user, request) as conn:
                    registry_service.delete_record(conn, user, registry, record_id, version)
            except registry_service.RegistryError as error:
                return _refused(error)
            return Response(status_code=204)

    def visits(self) -> None:
        registry, User = self.registry, self.User

        @self.routes.get(self.prefix + "/{record_id}/visits", response_model=list[Visit], tags=self.tags,
                         summary=f"{registry.zh}：帮扶记录", responses={**AUTH_RESPONSES, **_ERRORS},
                         operation_id=f"list_{registry.key}_visits")
        def list_visits(record_id: Annotated[int, Path(ge=1, le=_MAX_ID)], user: User, request: Request):
            try:
                with self._connection(user, request) as conn:
                    return registry_service.list_visits(conn, user, registry, record_id)
            except registry_service.RegistryError as error:
                return _refused(error)

        @self.routes.post(self.prefix + "/{record_id}/visits", response_model=Visit, status_code=201,
                          tags=self.tags, summary=f"{registry.zh}：新增帮扶记录",
                          responses={**AUTH_RESPONSES, **_WRITE_ERRORS},
                          operation_id=f"add_{registry.key}_visit")
        def add_visit(record_id: Annotated[int, Path(ge=1, le=_MAX_ID)], body: VisitIn, user: User,
                      request: Request):
            try:
                with self._connection(user, request) as conn:
                    return registry_service.add_visit(conn, user, registry, record_id, body.model_dump())
            except registry_service.RegistryError as error:
                return _refused(error)

    def nearby(self) -> None:
        User = self.User
        default = float(self.settings.school_nearby_metres)

        @self.routes.get(self.prefix + "/{record_id}/nearby", tags=self.tags, summary="学校：周边重点人员",
                         responses={**AUTH_RESPONSES, **_ERRORS}, operation_id="school_nearby_key_persons")
        def nearby(record_id: Annotated[int, Path(ge=1, le=_MAX_ID)], user: User, request: Request,
                   response: Response,
                   distance_m: Annotated[float, Query(gt=0, le=5000, description="距离（米）")] = default):
            try:
                with self._connection(user, request) as conn:
                    result = registry_service.key_persons_near_school(conn, user, record_id, distance_m)
            except registry_service.RegistryError as error:
                return _refused(error)
            response.headers.update(NO_STORE)
            return result


def router(settings: Settings) -> APIRouter:
    """Every registry's routes, and the metadata."""
    routes = APIRouter()
    User = Annotated[CurrentUser, Depends(require_user(settings))]

    @routes.get("/meta/registries", response_model=list[RegistryMeta], tags=["meta"],
                responses=AUTH_RESPONSES)
    def registries_metadata(user: User) -> list[dict]:
        """每个台账的字段、代码表、查询字段 (every registry's fields, code tables and search fields)."""
        return [registry.metadata() for registry in REGISTRIES.values()]

    for registry in REGISTRIES.values():
        # A registry written elsewhere (事件: the workflow, /api/v1/events) is metadata only here: its
        # table is not shaped like a registry's (no soft delete, its own numbering and states).
        if registry.crud:
            RegistryRoutes(settings, routes, registry)
    return routes
