"""``/api/v1/notices``: 通知公告 -- send notices to chosen people, read the inbox, follow the receipts.

- ``GET /notices/inbox`` the notices addressed to me, unread first, newest first, with the unread count;
- ``GET /notices/unread-count`` ``{"unread", "latest_id"}``, cheap: the pages' popup polls it;
- ``GET /notices/{id}`` one notice with its attachments; opening it marks it read for me;
- ``POST /notices`` (multipart: title, notice_type, body, doc_no, issuing_office, targets as JSON,
  attachments) sends one, resolving the targets to recipients now (201);
- ``GET /notices/sent`` my notices with their read and unread counts;
- ``GET /notices/{id}/receipts`` who has read it and who has not (its sender and the units above);
- ``GET /notices/{id}/attachments/{aid}`` an attachment's bytes;
- ``GET /notices/audience`` what a sender may pick from (units of their scope, roles, departments, users).

Refusals: 403 no permission (a 红头文件 needs ``notice:publish_red``), 404 not found or not addressed to
me, 413/415 an attachment over the size limit or of a refused type, 422 something missing (a 红头文件's
文号) -- each with a Chinese message. See :mod:`layers.notices` for who sees what.
"""

# No `from __future__ import annotations`: FastAPI must evaluate the route signatures, whose
# dependencies are closures over the settings.
import datetime as dt
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, HTTPException, Path, Query, Request, Response, UploadFile
from pydantic import BaseModel, Field

from gis.api.deps import run_scoped
from gis.api.auth import AUTH_RESPONSES, Problem, require_user
from gis.errors import ServiceError
from gis.security.sessions import CurrentUser
from gis.settings import Settings
from layers import file_store, notices

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_MAX_ID = 2**63 - 1


class InboxItem(BaseModel):
    id: int
    title: str
    notice_type: str | None = None
    notice_type_zh: str | None = None
    sender: str | None = None
    sent_at: dt.datetime | None = None
    read_at: dt.datetime | None = Field(None, description="阅读时间，未读为 null")
    attachments: int


class Inbox(BaseModel):
    unread: int
    items: list[InboxItem]


class UnreadCount(BaseModel):
    unread: int
    latest_id: int = Field(description="发给我的最新通知编号（0：没有）")


class AttachmentOut(BaseModel):
    id: int
    file_name: str
    size: int
    content_type: str | None = None
    url: str


class NoticeDetail(BaseModel):
    id: int
    title: str
    notice_type: str | None = None
    notice_type_zh: str | None = None
    body: str
    sender: str | None = None
    sender_id: int | None = None
    sent_at: dt.datetime | None = None
    doc_no: str | None = Field(None, description="文号")
    issuing_office: str | None = Field(None, description="发文机关")
    targets_text: str | None = Field(None, description="发送对象")
    read_count: int | None = None
    unread_count: int | None = None
    read_at: dt.datetime | None = None
    attachments: list[AttachmentOut]


class SentItem(BaseModel):
    id: int
    title: str
    notice_type: str | None = None
    notice_type_zh: str | None = None
    sent_at: dt.datetime | None = None
    doc_no: str | None = None
    targets_text: str | None = None
    read_count: int | None = None
    unread_count: int | None = None
    attachments: int


class Receipt(BaseModel):
    user_id: int
    name: str
    unit: str | None = None
    department: str | None = None
    read_at: dt.datetime | None = None


class Receipts(BaseModel):
    read: list[Receipt]
    unread: list[Receipt]


def router(settings: Settings) -> APIRouter:
    routes = APIRouter(prefix="/notices", tags=["notices"])
    User = Annotated[CurrentUser, Depends(require_user(settings))]
    NoticeId = Annotated[int, Path(ge=1, le=_MAX_ID, description="通知编号")]
    responses = {**AUTH_RESPONSES, 403: {"model": Problem, "description": "无权限"},
                 404: {"model": Problem, "description": "不存在或不是发给您的"},
                 413: {"model": Problem, "description": "附件过大"},
                 415: {"model": Problem, "description": "附件类型不允许"},
                 422: {"model": Problem, "description": "请求缺少必填项或有误"}}

    def run(user: CurrentUser, request: Request, work):
        return run_scoped(settings, user, request, work, refused="无权操作该通知")

    @routes.get("/inbox", response_model=Inbox, responses=responses)
    def inbox(user: User, request: Request, response: Response,
              limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> Inbox:
        """我的通知：未读在前，新的在前 (notices addressed to me, unread first)."""
        box = run(user, request, lambda conn: notices.inbox(conn, user.id, limit=limit))
        response.headers.update(NO_STORE)
        return Inbox(unread=box["unread"], items=[InboxItem(**i) for i in box["items"]])

    @routes.get("/unread-count", response_model=UnreadCount, responses=responses)
    def unread_count(user: User, request: Request, response: Response) -> UnreadCount:
        """未读通知数与最新通知编号（供弹窗轮询）(unread count, for the popup)."""
        counts = run(user, request, lambda conn: notices.unread_count(conn, user.id))
        response.headers.update(NO_STORE)
        return UnreadCount(**counts)

    @routes.get("/sent", response_model=list[SentItem], responses=responses)
    def sent(user: User, request: Request, response: Response,
             limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[SentItem]:
        """我发送的通知及已读、未读人数 (my notices with read and unread counts)."""
        rows = run(user, request, lambda conn: notices.sent(conn, user.id, limit=limit))
        response.headers.update(NO_STORE)
        return [SentItem(**r) for r in rows]

    @routes.get("/audience", responses=responses)
    def audience(user: User, request: Request) -> dict[str, Any]:
        """可选的发送对象：本辖区的区划、角色、部门、人员 (what a sender may pick from)."""
        if not user.has("notice:send"):
            raise HTTPException(403, "您没有发送通知的权限 (notice:send required)")
        return run(user, request, lambda conn: notices.audience_options(conn, user))

    @routes.post("", status_code=201, response_model=NoticeDetail, responses=responses)
    def send(
        user: User,
        request: Request,
        response: Response,
        title: Annotated[str, Form(min_length=1, max_length=200, description="标题")],
        notice_type: Annotated[str, Form(max_length=20, description="通知类型（代码表 notice_type）")],
        body: Annotated[str, Form(min_length=1, max_length=20000, description="正文")],
        targets: Annotated[str, Form(max_length=50000,
                                     description="发送对象 JSON：users, roles, units, departments")],
        doc_no: Annotated[str | None, Form(max_length=100, description="文号（红头文件必填）")] = None,
        issuing_office: Annotated[str | None, Form(max_length=100,
                                                   description="发文机关（红头文件必填）")] = None,
        attachments: Annotated[list[UploadFile] | None, File(description="附件（红头文件须含 PDF）")] = None,
    ) -> NoticeDetail:
        """发送通知：按所选人员、角色、区划（可含下级）、部门确定接收人 (send a notice)."""
        files = []
        for upload in attachments or []:
            try:
                name = file_store.clean_file_name(upload.filename)
            except ServiceError as error:
                raise HTTPException(error.status, str(error)) from None
            files.append(notices.Attachment(name, upload.content_type or "application/octet-stream",
                                            file_store.read_limited(upload.file, settings)))

        def work(conn):
            sent = notices.send_notice(conn, settings, user, title=title, notice_type=notice_type, body=body,
                                       targets=notices.parse_targets(targets), doc_no=doc_no,
                                       issuing_office=issuing_office, attachments=files)
            return notices.get_notice(conn, user, sent["id"], mark_read=False)

        detail = run(user, request, work)
        response.headers.update(NO_STORE)
        return NoticeDetail(**detail)

    @routes.get("/{notice_id}", response_model=NoticeDetail, responses=responses)
    def get_notice(notice_id: NoticeId, user: User, request: Request, response: Response) -> NoticeDetail:
        """通知详情（打开即标记为已读）(one notice; opening it marks it read)."""
        detail = run(user, request, lambda conn: notices.get_notice(conn, user, notice_id))
        response.headers.update(NO_STORE)
        return NoticeDetail(**detail)

    @routes.get("/{notice_id}/receipts", response_model=Receipts, responses=responses)
    def receipts(notice_id: NoticeId, user: User, request: Request, response: Response) -> Receipts:
        """阅读回执：已读、未读人员 (who has read it and who has not)."""
        found = run(user, request, lambda conn: notices.receipts(conn, user, notice_id))
        response.headers.update(NO_STORE)
        return Receipts(read=[Receipt(**r) for r in found["read"]],
                        unread=[Receipt(**r) for r in found["unread"]])

    @routes.get("/{notice_id}/attachments/{attachment_id}", responses=responses)
    def attachment(notice_id: NoticeId, attachment_id: Annotated[int, Path(ge=1, le=_MAX_ID)],
                   user: User, request: Request) -> Response:
        """下载通知附件 (an attachment's bytes)."""
        found = run(user, request, lambda conn: notices.get_attachment(conn, notice_id, attachment_id))
        try:
            data = file_store.load(settings, found["sha256"])
        except FileNotFoundError:
            raise HTTPException(404, "附件内容已丢失，请联系管理员 (attachment content missing)") from None
        return Response(data, media_type=found["content_type"], headers={
            **NO_STORE, "Content-Disposition": content_disposition(found["file_name"])})

    return routes


def content_disposition(file_name: str) -> str:
    """``attachment`` with an ASCII fallback name (old clients) and the real, Chinese name in RFC 5987
    form (``filename*=UTF-8''…``, which every current browser prefers)."""
    ascii_name = file_name.encode("ascii", "ignore").decode().replace('"', "").replace("\\", "").strip()
    if not ascii_name or ascii_name.startswith("."):
        ext = file_store.extension(file_name)
        ascii_name = f"download.{ext}" if ext else "download"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(file_name, safe='')}"
