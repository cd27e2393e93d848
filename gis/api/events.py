"""``/api/v1/events``: report events, follow them, and take the workflow's actions on them.

Each request runs in one transaction as the app role, scoped to the logged-in user: the events are those
row-level security shows them (their territory, and what was dispatched to their department); what they
may do is :data:`layers.events.workflow.TRANSITIONS`. Refusals come back as 4xx with a Chinese message:
403 not yours to do, 404 not found (or not in your territory), 409 the event has moved on (another
action came first, or the status does not allow it), 422 something missing or wrong in the request.

Mobile clients report with a ``client_id`` (a UUID they make up) and may retry: the same id returns the
event it created, with 200 instead of 201.
"""

# No `from __future__ import annotations`: FastAPI must evaluate the route signatures, whose
# dependencies are closures over the settings.
import csv
import datetime as dt
import re
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, HTTPException, Path, Query, Request, Response, UploadFile
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from gis.paths import DATA_DIR
from gis.api.auth import AUTH_RESPONSES, Problem, client_addr, require_user
from gis.security.scope import scoped_connection
from gis.security.sessions import CurrentUser
from gis.settings import Settings
from layers import events
from layers.events.position import CRS
from layers.events.workflow import ACTOR_PLACES, LEVEL_NAMES

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_MAX_ID = 2**63 - 1
_PATH = r"^[0-9]{2,15}(\.[0-9]{2,15})*$"
_NO_CONTROL = r"^[^\x00-\x1f]*$"


class Action(BaseModel):
    action: str
    name: str
    requires: list[str]
    waits: bool


class EventSummary(BaseModel):
    id: int
    number: str
    title: str
    type: str
    type_name: str | None = None
    urgency: str
    source: str
    status: str
    status_name: str
    address: str | None = None
    lon: float | None = None
    lat: float | None = None
    grid_id: int
    grid_name: str | None = None
    unit_path: str
    unit_level: str
    unit_name: str | None = None
    department: str | None = None
    department_name: str | None = None
    holder_name: str
    step_no: int
    step_limit_days: int | None = None
    due_at: dt.datetime | None = None
    light: str | None = Field(None, description="预警灯：green / yellow / red")
    overdue: bool
    working_days_left: int | None = None
    late_steps: int
    rework_count: int
    extension_count: int
    satisfaction: int | None = None
    yellow_cards: int
    red_cards: int
    open_supervisions: int
    reported_at: dt.datetime
    closed_at: dt.datetime | None = None
    version: int
    org_path: str
    district_code: str


class HistoryRow(BaseModel):
    id: int
    at: dt.datetime
    user_id: int | None = None
    user_name: str | None = None
    user_role: str | None = None
    action: str
    action_name: str
    from_status: str | None = None
    to_status: str
    from_unit_path: str | None = None
    to_unit_path: str | None = None
    from_department: str | None = None
    to_department: str | None = None
    comment: str | None = None
    detail: dict[str, Any] | None = None
    step_no: int
    due_at: dt.datetime | None = None
    late: bool
    version: int
    attachment_ids: list[int]


class Supervision(BaseModel):
    id: int
    issued_at: dt.datetime
    issued_by_name: str | None = None
    note: str
    unit_path: str
    department: str | None = None
    reply_due_at: dt.datetime | None = None
    reply: str | None = None
    replied_at: dt.datetime | None = None
    replied_by_name: str | None = None


class Card(BaseModel):
    id: int
    step_no: int
    color: str
    kind: str
    reason: str
    unit_path: str
    department: str | None = None
    issued_at: dt.datetime
    issued_by_name: str | None = None


class Attachment(BaseModel):
    id: int
    history_id: int | None = None
    filename: str
    content_type: str
    size: int
    sha256: str
    uploaded_at: dt.datetime


class EventDetail(EventSummary):
    client_id: str | None = None
    content: str | None = None
    reporter_name: str | None = None
    reporter_phone: str | None = Field(None, description="反映人电话（脱敏）")
    departments: list[str]
    step_started_at: dt.datetime
    yellow_at: dt.datetime | None = None
    red_card_at: dt.datetime | None = None
    extension_days_requested: int | None = None
    handled_level: str | None = None
    registered_at: dt.datetime | None = None
    evaluated_at: dt.datetime | None = None
    history: list[HistoryRow]
    supervisions: list[Supervision]
    cards: list[Card]
    attachments: list[Attachment]
    actions: list[Action] = Field(default_factory=list, description="当前用户现在可以执行的操作")
    suggested_department: str | None = Field(None, description="按分派规则建议的承办部门")


class EventPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[EventSummary]


class InboxItem(EventSummary):
    actions: list[Action]


class Inbox(BaseModel):
    total: int
    counts: dict[str, int] = Field(description="按预警灯计数：green / yellow / red / none")
    items: list[InboxItem]


class ActionBody(BaseModel):
    version: int = Field(ge=1, description="操作所依据的事件版本（防止并发重复处理）")
    comment: str | None = Field(None, max_length=2000, description="意见、理由或处理情况")
    department: str | None = Field(None, max_length=40, description="派遣的承办部门（代码表 department）")
    target_unit: str | None = Field(None, max_length=40, description="同 department（兼容写法）")
    days: int | None = Field(None, ge=1, le=60, description="申请延期的工作日数")
    outcome: str | None = Field(None, description="核查结果：pass / fail")
    satisfaction: int | None = Field(None, ge=1, le=5, description="满意度 1–5")
    color: str | None = Field(None, description="牌色：yellow / red")
    attachment_ids: list[int] = Field(default_factory=list, max_length=20)


class NamedActionBody(ActionBody):
    action: str = Field(max_length=40, description="操作，如 register、dispatch、sign、feedback、verify")


class Created(BaseModel):
    id: int


def _refused(error: events.EventError) -> HTTPException:
    return HTTPException(error.status, str(error))


def _summary(event: dict) -> EventSummary:
    return EventSummary(**{k: event.get(k) for k in EventSummary.model_fields})



def code_pattern(table_key: str) -> str:
    """A pattern admitting exactly the codes of a shipped code table, so the OpenAPI document says which
    values are valid (the service still checks against code_item)."""
    with (DATA_DIR / "codes" / f"{table_key}.csv").open(encoding="utf-8") as f:
        codes = [row["code"] for row in csv.DictReader(f)]
    return rf"^({'|'.join(map(re.escape, codes))})$"

def router(settings: Settings) -> APIRouter:
    routes = APIRouter(prefix="/events", tags=["events"])
    User = Annotated[CurrentUser, Depends(require_user(settings))]
    EventId = Annotated[int, Path(ge=1, le=_MAX_ID, description="事件编号")]
    responses = {**AUTH_RESPONSES, 403: {"model": Problem, "description": "无权限"},
                 404: {"model": Problem, "description": "不存在或不在辖区内"},
                 409: {"model": Problem, "description": "事件已被他人处理或当前状态不允许"},
                 422: {"model": Problem, "description": "请求缺少必填项或有误"}}

    def scoped(user: CurrentUser, request: Request):
        return scoped_connection(settings, user, client_addr(request))

    def run(user: CurrentUser, request: Request, work):
        """Run ``work(conn, actor)`` in the user's scoped transaction, refusals as HTTP errors."""
        try:
            with scoped(user, request) as conn:
                return work(conn, events.actor_for(conn, user))
        except events.EventError as error:
            raise _refused(error) from None
        except DBAPIError as error:
            # Row-level security refusing a write the workflow allowed is a bug, but still a refusal.
            if getattr(error.orig, "sqlstate", None) == "42501":
                raise HTTPException(403, "无权操作该事件 (refused by row-level security)") from None
            raise

    def detail(conn, actor, event: dict) -> EventDetail:
        event["actions"] = events.available_actions(actor, event)
        event["suggested_department"] = events.suggested_department(event)
        return EventDetail(**event)

    @routes.get("/meta")
    def meta(user: User, request: Request) -> dict[str, Any]:
        """代码表与流程表：事件类型、来源、紧急程度、状态、部门、操作及条件 (codes, workflow)."""
        def work(conn, actor):
            codes = {}
            for key in ("event_type", "event_source", "event_urgency", "event_status", "department"):
                codes[key] = [dict(r) for r in conn.execute(text(
                    "SELECT code, name_zh, name_en FROM code_item WHERE table_key = :t ORDER BY sort"),
                    {"t": key}).mappings()]
            transitions = [{"action": t.action, "name": t.zh, "from": list(t.sources), "to": t.target,
                            "outcomes": t.outcomes, "by": t.by, "permission": t.permission,
                            "roles": sorted(t.roles), "levels": list(t.levels),
                            "requires": sorted(t.requires), "when": t.when}
                           for t in events.TRANSITIONS.values()]
            return {"codes": codes, "transitions": transitions, "places": ACTOR_PLACES,
                    "levels": LEVEL_NAMES, "crs": list(CRS)}
        return run(user, request, work)

    @routes.post("", status_code=201, response_model=EventDetail, responses=responses)
    def report(
        user: User,
        request: Request,
        response: Response,
        title: Annotated[str, Form(min_length=1, max_length=200, description="事件标题")],
        type: Annotated[str, Form(pattern=code_pattern("event_type"),
                                  description="事件类型（代码表 event_type）")],
        content: Annotated[str | None, Form(max_length=5000, description="事件描述")] = None,
        urgency: Annotated[str, Form(pattern=code_pattern("event_urgency"),
                                     description="紧急程度：normal / urgent / major")] = "normal",
        source: Annotated[str, Form(pattern=code_pattern("event_source"),
                                    description="来源（代码表 event_source）")] = "app",
        reporter_name: Annotated[str | None, Form(max_length=50)] = None,
        reporter_phone: Annotated[str | None, Form(max_length=32)] = None,
        address: Annotated[str | None, Form(max_length=300)] = None,
        lon: Annotated[float | None, Form(ge=-180, le=180, description="经度")] = None,
        lat: Annotated[float | None, Form(ge=-90, le=90, description="纬度")] = None,
        crs: Annotated[str, Form(pattern=rf"^({'|'.join(CRS)})$",
                                 description="坐标系：cgcs2000 / wgs84 / gcj02 / bd09")] = "cgcs2000",
        grid_id: Annotated[int | None, Form(ge=1, le=_MAX_ID, description="所属网格（无坐标时必填）")] = None,
        client_id: Annotated[str | None, Form(max_length=64, description="客户端 UUID，重试幂等")] = None,
        photos: Annotated[list[UploadFile] | None, File(description="现场照片")] = None,
    ) -> EventDetail:
        """上报事件（表单 + 照片；坐标按 crs 转换为 CGCS2000 并落到网格）(report an event)."""
        uploads = [events.Upload(p.filename or "photo", p.content_type or "application/octet-stream",
                                 p.file.read(events.service.MAX_ATTACHMENT_BYTES + 1)) for p in photos or []]
        fields = events.ReportFields(title=title, type=type, content=content, urgency=urgency, source=source,
                                     reporter_name=reporter_name, reporter_phone=reporter_phone,
                                     address=address, lon=lon, lat=lat, crs=crs, grid_id=grid_id,
                                     client_id=client_id)

        def work(conn, actor):
            event, created = events.report(conn, actor, fields, uploads=uploads)
            return detail(conn, actor, event), created

        body, created = run(user, request, work)
        response.status_code = 201 if created else 200
        response.headers.update(NO_STORE)
        return body

    @routes.get("", response_model=EventPage, responses=responses)
    def list_events(
        user: User,
        request: Request,
        response: Response,
        status: Annotated[list[str] | None, Query(description="状态，可多选")] = None,
        type: Annotated[str | None, Query(pattern=r"^[0-9]{2,4}$", description="类型或大类")] = None,
        within: Annotated[str | None, Query(pattern=_PATH, description="事发区划路径")] = None,
        reported_from: Annotated[dt.date | None, Query(description="上报日期起（含）")] = None,
        reported_to: Annotated[dt.date | None, Query(description="上报日期止（不含）")] = None,
        light: Annotated[str | None, Query(pattern="^(green|yellow|red)$")] = None,
        unit: Annotated[str | None, Query(pattern=_PATH, description="当前承办单位路径")] = None,
        department: Annotated[str | None, Query(max_length=40, description="当前承办部门")] = None,
        q: Annotated[str | None, Query(max_length=50, pattern=_NO_CONTROL, description="关键词")] = None,
        limit: Annotated[int, Query(ge=1, le=events.service.MAX_PAGE)] = 50,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> EventPage:
        """辖区内的事件（按状态、类型、区划、时段、预警灯、承办单位筛选）(events in your territory)."""
        def work(conn, actor):
            return events.list_events(conn, status=status, type=type, within=within,
                                      reported_from=reported_from, reported_to=reported_to, light=light,
                                      unit=unit, department=department, q=q, limit=limit, offset=offset)
        page = run(user, request, work)
        response.headers.update(NO_STORE)
        return EventPage(total=page.total, limit=page.limit, offset=page.offset,
                         items=[_summary(e) for e in page.items])

    @routes.get("/inbox", response_model=Inbox, responses=responses)
    def inbox(user: User, request: Request, response: Response,
              limit: Annotated[int, Query(ge=1, le=events.service.MAX_PAGE)] = 200) -> Inbox:
        """待办：等待我处理的事件，按时限排序，并按预警灯计数 (what waits for me)."""
        box = run(user, request, lambda conn, actor: events.inbox(conn, actor, limit=limit))
        response.headers.update(NO_STORE)
        return Inbox(total=box["total"], counts=box["counts"],
                     items=[InboxItem(**{k: e.get(k) for k in InboxItem.model_fields}) for e in box["items"]])

    @routes.get("/{event_id}", response_model=EventDetail, responses=responses)
    def get_event(event_id: EventId, user: User, request: Request, response: Response) -> EventDetail:
        """事件详情：流转记录、督办、红黄牌、附件，以及我现在可执行的操作 (one event, with its history)."""
        def work(conn, actor):
            event = events.get_event(conn, event_id)
            if event is None:
                raise events.EventNotFound(event_id)
            return detail(conn, actor, event)
        body = run(user, request, work)
        response.headers.update(NO_STORE)
        return body

    @routes.get("/{event_id}/actions", response_model=list[Action], responses=responses)
    def actions(event_id: EventId, user: User, request: Request) -> list[Action]:
        """我现在可以对该事件执行的操作 (the actions you may take now)."""
        def work(conn, actor):
            event = events.get_event(conn, event_id)
            if event is None:
                raise events.EventNotFound(event_id)
            return [Action(**a) for a in events.available_actions(actor, event)]
        return run(user, request, work)

    def take(event_id: int, action: str, body: ActionBody, user: CurrentUser,
             request: Request) -> EventDetail:
        action_request = events.ActionRequest(
            version=body.version, comment=body.comment, department=body.department or body.target_unit,
            days=body.days, outcome=body.outcome, satisfaction=body.satisfaction, color=body.color,
            attachment_ids=body.attachment_ids)

        def work(conn, actor):
            return detail(conn, actor, events.act(conn, actor, event_id, action, action_request))
        return run(user, request, work)

    @routes.post("/{event_id}/actions", response_model=EventDetail, responses=responses)
    def act(event_id: EventId, body: NamedActionBody, user: User, request: Request,
            response: Response) -> EventDetail:
        """执行操作：立案、派遣、签收、退回、延期、反馈、核查、评价、督办…… (take an action)."""
        response.headers.update(NO_STORE)
        return take(event_id, body.action, body, user, request)

    @routes.post("/{event_id}/actions/{action}", response_model=EventDetail, responses=responses)
    def act_named(event_id: EventId, action: Annotated[str, Path(max_length=40)], body: ActionBody,
                  user: User, request: Request, response: Response) -> EventDetail:
        """执行操作（操作名在路径中）(take the action named in the path)."""
        response.headers.update(NO_STORE)
        return take(event_id, action, body, user, request)

    @routes.post("/{event_id}/attachments", status_code=201, response_model=list[Created],
                 responses=responses)
    def upload(event_id: EventId, user: User, request: Request,
               files: Annotated[list[UploadFile], File(description="照片或文件")]) -> list[Created]:
        """上传附件，供下一步操作的 attachment_ids 引用 (upload photos or files for the next action)."""
        uploads = [events.Upload(f.filename or "file", f.content_type or "application/octet-stream",
                                 f.file.read(events.service.MAX_ATTACHMENT_BYTES + 1)) for f in files]

        def work(conn, actor):
            return [Created(id=events.add_attachment(conn, actor, event_id, u)) for u in uploads]
        return run(user, request, work)

    @routes.get("/{event_id}/attachments/{attachment_id}", responses=responses)
    def download(event_id: EventId, attachment_id: Annotated[int, Path(ge=1, le=_MAX_ID)], user: User,
                 request: Request) -> Response:
        """下载附件 (an attachment's bytes)."""
        def work(conn, actor):
            found = events.get_attachment(conn, event_id, attachment_id)
            if found is None:
                raise events.EventNotFound(event_id)
            return found
        found = run(user, request, work)
        return Response(found.data, media_type=found.content_type, headers={
            **NO_STORE, "Content-Disposition": f"attachment; filename*=UTF-8''{_quote(found.filename)}"})

    return routes


def _quote(name: str) -> str:
    return quote(name, safe="")
