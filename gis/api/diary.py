"""``/api/v1/diary``: 民情日记 -- the grid worker writes the day's entry from the phone, the supervisor
approves or returns it, leaders comment (点评).

Each request runs in one transaction as the app role, scoped to the logged-in user (row-level security
decides which entries exist for them); what they may do is :mod:`layers.diary`. Refusals are 4xx with a
Chinese message: 403 not yours to do, 404 not found (or not in your territory), 409 the entry has moved on
(stale version, already reviewed or approved), 422 something missing or wrong.

The phone posts an entry as a form with its photos and a ``client_id`` and may resend it from its offline
queue: the same ``client_id`` answers 200 with the entry it created, instead of 201.
"""

# No `from __future__ import annotations`: FastAPI must evaluate the route signatures, whose
# dependencies are closures over the settings.
import datetime as dt
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, HTTPException, Path, Query, Request, Response, UploadFile
from pydantic import BaseModel, Field

from gis.api.deps import run_scoped
from gis.validation import CLIENT_ID_PATTERN
from gis.api.auth import AUTH_RESPONSES, Problem, require_user
from gis.crs import CRS
from gis.security.sessions import CurrentUser
from gis.settings import Settings
from layers import diary
from layers.events.service import MAX_ATTACHMENT_BYTES, Upload

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_MAX_ID = 2**63 - 1
_IDS = r"^\s*([1-9][0-9]{0,17}(\s*,\s*[1-9][0-9]{0,17})*)?\s*$"
_CRS = rf"^({'|'.join(CRS)})$"


class VisitedPerson(BaseModel):
    id: int
    name: str


class VisitedHouse(BaseModel):
    id: int
    address: str


class Photo(BaseModel):
    id: int
    url: str = Field(description="下载地址")
    filename: str
    content_type: str
    size: int


class Comment(BaseModel):
    id: int
    by: str = Field(description="点评人")
    at: dt.datetime
    text: str


class DiaryEntry(BaseModel):
    id: int
    worker: str = Field(description="网格员")
    worker_id: int | None = None
    grid_id: int
    grid_name: str | None = None
    diary_date: dt.date
    content: str
    state: str = Field(description="submitted 待审批 / approved 已通过 / returned 已退回")
    state_name: str
    review_note: str | None = Field(None, description="审核意见（退回理由）")
    reviewed_by: str | None = None
    reviewed_at: dt.datetime | None = None
    visited: str | None = Field(None, description="走访对象摘要")
    visited_persons: list[VisitedPerson]
    visited_houses: list[VisitedHouse]
    photos: list[Photo]
    comments: list[Comment]
    lon: float | None = None
    lat: float | None = None
    created_at: dt.datetime
    submitted_at: dt.datetime | None = None
    version: int


class DiaryPage(BaseModel):
    total: int
    page: int
    size: int
    items: list[DiaryEntry]


class Saved(BaseModel):
    id: int
    version: int


class EditBody(BaseModel):
    version: int = Field(ge=1, le=2**31 - 1, description="修改所依据的日记版本")
    content: str | None = Field(None, min_length=1, max_length=diary.MAX_CONTENT)
    diary_date: dt.date | None = None
    visited_person_ids: list[int] | None = Field(None, max_length=diary.MAX_LINKS)
    visited_house_ids: list[int] | None = Field(None, max_length=diary.MAX_LINKS)


class ReviewBody(BaseModel):
    decision: str = Field(pattern="^(approve|return)$", description="approve 通过 / return 退回")
    note: str | None = Field(None, max_length=2000, description="审核意见（退回时必填）")
    version: int = Field(ge=1, le=2**31 - 1)


class CommentBody(BaseModel):
    text: str = Field(min_length=1, max_length=2000, description="点评内容")


def _ids(value: str | None) -> list[int]:
    try:
        return [int(v) for v in (p.strip() for p in (value or "").split(",")) if v]
    except ValueError:
        raise HTTPException(422, "编号应为逗号分隔的数字 (ids: comma-separated numbers)") from None


def _link_ids(values: list[int] | None) -> list[int] | None:
    if values is not None and any(not 1 <= v <= _MAX_ID for v in values):
        raise HTTPException(422, "走访人员或房屋编号有误 (bad id)")
    return values


def _uploads(files: list[UploadFile]) -> list[Upload]:
    return [Upload(f.filename or "photo", f.content_type or "application/octet-stream",
                   f.file.read(MAX_ATTACHMENT_BYTES + 1)) for f in files]


def router(settings: Settings) -> APIRouter:
    routes = APIRouter(prefix="/diary", tags=["diary"])
    User = Annotated[CurrentUser, Depends(require_user(settings))]
    EntryId = Annotated[int, Path(ge=1, le=_MAX_ID, description="日记编号")]
    responses = {**AUTH_RESPONSES, 403: {"model": Problem, "description": "无权限"},
                 404: {"model": Problem, "description": "不存在或不在辖区内"},
                 409: {"model": Problem, "description": "日记已被修改、已审核或已通过"},
                 422: {"model": Problem, "description": "请求缺少必填项或有误"}}

    def run(user: CurrentUser, request: Request, work):
        return run_scoped(settings, user, request, work, refused="无权操作该日记")

    def entry(row: dict) -> DiaryEntry:
        row = dict(row)
        row["photos"] = [Photo(url=f"/api/v1/diary/{row['id']}/photos/{p['id']}", **p) for p in row["photos"]]
        return DiaryEntry(**row)

    @routes.post("", status_code=201, response_model=Saved, responses={
        **responses, 200: {"model": Saved, "description": "同一 client_id 重发，返回已保存的日记"}})
    def write(
        user: User,
        request: Request,
        response: Response,
        diary_date: Annotated[dt.date, Form(description="日记日期 YYYY-MM-DD")],
        content: Annotated[str, Form(min_length=1, max_length=diary.MAX_CONTENT, description="工作内容")],
        visited_person_ids: Annotated[str | None, Form(max_length=4000, pattern=_IDS,
                                                       description="走访人员编号，逗号分隔")] = None,
        visited_house_ids: Annotated[str | None, Form(max_length=4000, pattern=_IDS,
                                                      description="走访房屋编号，逗号分隔")] = None,
        lon: Annotated[float | None, Form(ge=-180, le=180, description="经度")] = None,
        lat: Annotated[float | None, Form(ge=-90, le=90, description="纬度")] = None,
        crs: Annotated[str, Form(pattern=_CRS, description="坐标系：cgcs2000 / wgs84 / gcj02 / bd09")
                       ] = "wgs84",
        client_id: Annotated[str | None, Form(pattern=CLIENT_ID_PATTERN,
                                              description="客户端编号（UUID），重发幂等")] = None,
        photos: Annotated[list[UploadFile] | None, File(description="照片")] = None,
        photos_brackets: Annotated[list[UploadFile] | None, File(alias="photos[]", description="同 photos")
                                   ] = None,
    ) -> Saved:
        """填写民情日记（表单 + 照片；位置按 crs 转换为 CGCS2000）(write the day's diary entry)."""
        entry_input = diary.DiaryInput(
            diary_date=diary_date, content=content, person_ids=_ids(visited_person_ids),
            house_ids=_ids(visited_house_ids), lon=lon, lat=lat, crs=crs, client_id=client_id,
            uploads=_uploads([*(photos or []), *(photos_brackets or [])]))
        saved, created = run(user, request, lambda conn: diary.write_entry(conn, user, entry_input))
        response.status_code = 201 if created else 200
        response.headers.update(NO_STORE)
        return Saved(**saved)

    @routes.get("", response_model=DiaryPage, responses=responses)
    def list_entries(
        user: User,
        request: Request,
        response: Response,
        worker: Annotated[str | None, Query(pattern=r"^(me|[1-9][0-9]{0,17})$",
                                            description="me（本人）或网格员的用户编号")] = None,
        date_from: Annotated[dt.date | None, Query(description="日期起（含）")] = None,
        date_to: Annotated[dt.date | None, Query(description="日期止（含）")] = None,
        state: Annotated[str | None, Query(pattern="^(submitted|approved|returned)$")] = None,
        page: Annotated[int, Query(ge=1, le=100_000)] = 1,
        size: Annotated[int, Query(ge=1, le=diary.MAX_PAGE)] = 20,
    ) -> DiaryPage:
        """辖区内的民情日记（按网格员、日期、状态筛选，最新在前）(diary entries in your territory)."""
        found = run(user, request, lambda conn: diary.list_entries(
            conn, user, worker=worker, date_from=date_from, date_to=date_to, state=state, page=page,
            size=size))
        response.headers.update(NO_STORE)
        return DiaryPage(total=found["total"], page=found["page"], size=found["size"],
                         items=[entry(r) for r in found["items"]])

    @routes.get("/{entry_id}", response_model=DiaryEntry, responses=responses)
    def get_entry(entry_id: EntryId, user: User, request: Request, response: Response) -> DiaryEntry:
        """一篇日记：走访对象、照片、审核意见与点评 (one entry)."""
        found = run(user, request, lambda conn: diary.get_entry(conn, user, entry_id))
        response.headers.update(NO_STORE)
        return entry(found)

    @routes.put("/{entry_id}", response_model=Saved, responses=responses)
    def edit(entry_id: EntryId, body: EditBody, user: User, request: Request) -> Saved:
        """修改本人的日记；已退回的日记修改后重新提交审核 (edit and resubmit your entry)."""
        saved = run(user, request, lambda conn: diary.edit_entry(
            conn, user, entry_id, version=body.version, content=body.content, diary_date=body.diary_date,
            person_ids=_link_ids(body.visited_person_ids), house_ids=_link_ids(body.visited_house_ids)))
        return Saved(**saved)

    @routes.post("/{entry_id}/review", response_model=Saved, responses=responses)
    def review(entry_id: EntryId, body: ReviewBody, user: User, request: Request) -> Saved:
        """审核：通过，或退回并填写意见 (approve, or return with a note)."""
        return Saved(**run(user, request, lambda conn: diary.review_entry(
            conn, user, entry_id, body.decision, body.note, body.version)))

    @routes.post("/{entry_id}/comments", status_code=201, response_model=Comment, responses=responses)
    def comment(entry_id: EntryId, body: CommentBody, user: User, request: Request) -> Comment:
        """点评 (a leader's comment)."""
        return Comment(**run(user, request, lambda conn: diary.add_comment(conn, user, entry_id, body.text)))

    @routes.get("/{entry_id}/photos/{photo_id}", responses=responses)
    def photo(entry_id: EntryId, photo_id: Annotated[int, Path(ge=1, le=_MAX_ID)], user: User,
              request: Request) -> Response:
        """下载日记照片 (a photo's bytes)."""
        found = run(user, request, lambda conn: diary.entry_photo(conn, user, entry_id, photo_id))
        return Response(found.data, media_type=found.content_type, headers={
            **NO_STORE, "Content-Disposition": f"inline; filename*=UTF-8''{quote(found.filename, safe='')}"})

    return routes
