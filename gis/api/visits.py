"""``/api/v1/visits``: 帮扶走访 -- the visits due and overdue in my territory, nearest first, and a visit
recorded from the phone, which becomes the record's 帮扶记录.

Each request runs in one transaction as the app role, scoped to the logged-in user; only the categories
they hold ``special:<category>`` for are listed or may be visited (403 otherwise). The intervals between
visits are ``Settings.visit_intervals``. Distances are straight-line metres from the position given, not
walking routes.
"""

# No `from __future__ import annotations`: FastAPI must evaluate the route signatures, whose
# dependencies are closures over the settings.
import datetime as dt
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, Response, UploadFile
from pydantic import BaseModel, Field

from gis.api.deps import run_scoped
from gis.validation import CLIENT_ID_PATTERN
from gis.api.auth import AUTH_RESPONSES, Problem, require_user
from gis.crs import CRS
from gis.security.sessions import CurrentUser
from gis.settings import Settings
from layers import visits
from layers.events.service import MAX_ATTACHMENT_BYTES, Upload

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_MAX_ID = 2**63 - 1
_CRS = rf"^({'|'.join(CRS)})$"
_REGISTRY = rf"^({'|'.join(visits.CATEGORIES)})$"


class DueVisit(BaseModel):
    registry: str = Field(description="类别（台账）")
    registry_zh: str
    record_id: int
    person_id: int
    name: str
    address: str | None = None
    due_on: dt.date = Field(description="应走访日期")
    overdue_days: int = Field(description="逾期天数（>0 已逾期，0 今天到期，<0 尚未到期）")
    distance_m: float | None = Field(None, description="直线距离（米），未提供位置时为空")
    lon: float | None = None
    lat: float | None = None
    last_visited_on: dt.date | None = None


class DueVisits(BaseModel):
    overdue: int = Field(description="辖区内已逾期的走访数")
    items: list[DueVisit]


class Recorded(BaseModel):
    id: int
    next_due: dt.date | None = None


def router(settings: Settings) -> APIRouter:
    routes = APIRouter(prefix="/visits", tags=["visits"])
    User = Annotated[CurrentUser, Depends(require_user(settings))]
    responses = {**AUTH_RESPONSES, 403: {"model": Problem, "description": "无该类人员的权限"},
                 404: {"model": Problem, "description": "不存在或不在辖区内"},
                 422: {"model": Problem, "description": "请求缺少必填项或有误"}}

    def run(user: CurrentUser, request: Request, work):
        return run_scoped(settings, user, request, work)

    @routes.get("/due", response_model=DueVisits, responses=responses)
    def due(
        user: User,
        request: Request,
        response: Response,
        lon: Annotated[float | None, Query(ge=-180, le=180, description="我的位置：经度")] = None,
        lat: Annotated[float | None, Query(ge=-90, le=90, description="我的位置：纬度")] = None,
        crs: Annotated[str, Query(pattern=_CRS, description="坐标系")] = "wgs84",
        within_days: Annotated[int, Query(ge=0, le=366, description="列出多少天内到期的")] = 14,
    ) -> DueVisits:
        """待走访：已逾期和即将到期的帮扶对象，按到期日、再按距离排序 (visits due, nearest first)."""
        found = run(user, request, lambda conn: visits.visits_due(
            conn, user, lon=lon, lat=lat, crs=crs, within_days=within_days,
            intervals=settings.visit_intervals))
        response.headers.update(NO_STORE)
        return DueVisits(overdue=found["overdue"], items=[DueVisit(**r) for r in found["items"]])

    @routes.post("", status_code=201, response_model=Recorded, responses={
        **responses, 200: {"model": Recorded, "description": "同一 client_id 重发，返回已保存的走访"}})
    def record(
        user: User,
        request: Request,
        response: Response,
        registry: Annotated[str, Form(pattern=_REGISTRY, description="类别，如 community_correction")],
        record_id: Annotated[int, Form(ge=1, le=_MAX_ID, description="该类别台账中的记录编号")],
        content: Annotated[str, Form(min_length=1, max_length=5000, description="帮扶内容")],
        visited_on: Annotated[dt.date | None, Form(description="走访日期，缺省为今天")] = None,
        lon: Annotated[float | None, Form(ge=-180, le=180)] = None,
        lat: Annotated[float | None, Form(ge=-90, le=90)] = None,
        crs: Annotated[str, Form(pattern=_CRS)] = "wgs84",
        client_id: Annotated[str | None, Form(pattern=CLIENT_ID_PATTERN,
                                              description="客户端编号（UUID），重发幂等")] = None,
        photos: Annotated[list[UploadFile] | None, File(description="照片")] = None,
        photos_brackets: Annotated[list[UploadFile] | None, File(alias="photos[]", description="同 photos")
                                   ] = None,
    ) -> Recorded:
        """记录一次走访（位置、照片），作为该对象的帮扶记录 (record a visit)."""
        uploads = [Upload(f.filename or "photo", f.content_type or "application/octet-stream",
                          f.file.read(MAX_ATTACHMENT_BYTES + 1))
                   for f in [*(photos or []), *(photos_brackets or [])]]
        visit = visits.VisitInput(registry=registry, record_id=record_id, content=content,
                                  visited_on=visited_on, lon=lon, lat=lat, crs=crs, client_id=client_id,
                                  uploads=uploads)
        saved, created = run(user, request, lambda conn: visits.record_visit(
            conn, user, visit, settings.visit_intervals))
        response.status_code = 201 if created else 200
        response.headers.update(NO_STORE)
        return Recorded(**saved)

    @routes.get("/{visit_id}/photos/{photo_id}", responses=responses)
    def photo(visit_id: Annotated[int, Path(ge=1, le=_MAX_ID)],
              photo_id: Annotated[int, Path(ge=1, le=_MAX_ID)], user: User, request: Request) -> Response:
        """下载走访照片 (a visit photo's bytes)."""
        found = run(user, request, lambda conn: visits.visit_photo(conn, user, visit_id, photo_id))
        return Response(found.data, media_type=found.content_type, headers={
            **NO_STORE, "Content-Disposition": f"inline; filename*=UTF-8''{quote(found.filename, safe='')}"})

    return routes
