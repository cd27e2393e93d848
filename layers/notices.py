"""通知公告: sending notices to chosen people, the recipients' inbox, read receipts, attachments.

A notice is sent to any mix of **targets** -- users by id, roles (inside the sender's scope), territory
units (exactly, or with their subtree) and departments -- and the targets are resolved to one
``notice_recipient`` row per user **at send time** (``app.notice_audience`` in 0009): a receipt list is
then exactly the people who were sent it, and ``read_count`` / ``unread_count`` (kept by triggers on
those rows) are exact too. Opening a notice marks it read for the reader.

Who may do what:

- ``notice:send`` sends 会议通知, 事项通知, 工作安排; ``notice:publish_red`` is needed on top for a 红头文件,
  which must carry its 文号, 发文机关 and the signed PDF.
- Territory targets must lie inside the sender's scope (a community cannot address the whole street);
  user and department targets may be anywhere in the sender's district (a street may notify the
  district's departments). Roles are resolved inside the sender's scope.
- Row-level security shows a notice to its recipients, its sender, and the sender's unit and the units
  above; receipts to the sender and those units (the supervisors), and each recipient their own.

Every function takes a connection already scoped to the user (:func:`gis.security.scope.scoped_connection`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, text

from gis.errors import ServiceError
from gis.security.roles import ROLES
from gis.settings import Settings
from layers import file_store

RED_HEADER = "red_header"
MAX_TARGETS = 500
MAX_ATTACHMENTS = 10


class NoticeError(ServiceError):
    status = 400


class NoticeForbidden(NoticeError):
    status = 403


class NoticeNotFound(NoticeError):
    status = 404

    def __init__(self, notice_id: int) -> None:
        super().__init__(f"通知 {notice_id} 不存在或您无权查看 (notice not found)")


class NoticeInvalid(NoticeError):
    status = 422


@dataclass(frozen=True)
class UnitTarget:
    id: int | None = None
    path: str | None = None
    subtree: bool = True


@dataclass
class Targets:
    """Who a notice is for, as the sender chose them."""

    users: list[int] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    units: list[UnitTarget] = field(default_factory=list)
    departments: list[str] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.users or self.roles or self.units or self.departments)


@dataclass(frozen=True)
class Attachment:
    file_name: str
    content_type: str
    data: bytes


def parse_targets(raw: Any) -> Targets:
    """Targets from their JSON form::

        {"users": [12, 15], "roles": ["grid_worker"], "departments": ["urban"],
         "units": [{"id": 7, "subtree": true}, {"path": "32.3201.320106.320106001", "subtree": false}]}

    >>> parse_targets('{"roles": ["grid_worker"], "units": [{"id": 3}]}').units[0].subtree
    True
    """
    if isinstance(raw, str | bytes):
        try:
            raw = json.loads(raw or "{}")
        except ValueError:
            raise NoticeInvalid("发送对象格式有误，应为 JSON (targets must be JSON)") from None
    if not isinstance(raw, dict):
        raise NoticeInvalid("发送对象格式有误 (targets must be an object)")
    unknown = set(raw) - {"users", "roles", "units", "departments"}
    if unknown:
        raise NoticeInvalid(f"未知的发送对象类别：{'、'.join(sorted(unknown))} (unknown target kind)")
    try:
        users = [int(u) for u in raw.get("users") or []]
        roles = [str(r) for r in raw.get("roles") or []]
        departments = [str(d) for d in raw.get("departments") or []]
        units = []
        for u in raw.get("units") or []:
            if isinstance(u, int | str) and not isinstance(u, bool):
                u = {"id": u} if isinstance(u, int) else {"path": u}
            if not isinstance(u, dict) or (u.get("id") is None and not u.get("path")):
                raise ValueError
            units.append(UnitTarget(id=int(u["id"]) if u.get("id") is not None else None,
                                    path=str(u["path"]) if u.get("path") else None,
                                    subtree=bool(u.get("subtree", True))))
    except (TypeError, ValueError):
        raise NoticeInvalid("发送对象格式有误：用户为编号，区划为 {id, subtree} (malformed targets)") \
            from None
    if len(users) + len(roles) + len(units) + len(departments) > MAX_TARGETS:
        raise NoticeInvalid(f"发送对象过多（最多 {MAX_TARGETS} 项）(too many targets)")
    unknown_roles = [r for r in roles if r not in ROLES]
    if unknown_roles:
        raise NoticeInvalid(f"未知角色：{'、'.join(unknown_roles)} (unknown role)")
    return Targets(users=users, roles=roles, units=units, departments=departments)


def notice_types(conn: Connection) -> dict[str, str]:
    """The notice types (code table ``notice_type``): code -> Chinese name."""
    return dict(conn.execute(text(
        "SELECT code, name_zh FROM code_item WHERE table_key = 'notice_type' ORDER BY sort")).all())


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or dt.datetime.now(dt.UTC)


# ---------------------------------------------------------------- sending
def send_notice(conn: Connection, settings: Settings, user: Any, *, title: str, notice_type: str, body: str,
                targets: Targets, doc_no: str | None = None, issuing_office: str | None = None,
                attachments: Sequence[Attachment] = (), now: dt.datetime | None = None) -> dict[str, Any]:
    """Send a notice; returns ``{"id", "recipients"}``. Refusals: 403 no permission, 422 bad request."""
    if not user.has("notice:send"):
        raise NoticeForbidden("您没有发送通知的权限 (notice:send required)")
    types = notice_types(conn)
    if notice_type not in types:
        raise NoticeInvalid(f"通知类型无效，可选：{'、'.join(f'{c}（{n}）' for c, n in types.items())}")
    doc_no, issuing_office = (doc_no or "").strip() or None, (issuing_office or "").strip() or None
    title, body = (title or "").strip(), (body or "").strip()
    if not title or not body:
        raise NoticeInvalid("请填写通知标题和正文 (title and body are required)")
    if notice_type == RED_HEADER:
        if not user.has("notice:publish_red"):
            raise NoticeForbidden("您没有发布红头文件的权限，请联系街道或区综治中心发布"
                                  " (notice:publish_red required)")
        if not doc_no:
            raise NoticeInvalid("红头文件必须填写文号，如“鼓综治〔2026〕3号” (document number required)")
        if not issuing_office:
            raise NoticeInvalid("红头文件必须填写发文机关 (issuing office required)")
        if not any(file_store.extension(a.file_name) == "pdf" and a.data.startswith(b"%PDF-")
                   for a in attachments):
            raise NoticeInvalid("红头文件必须附上正式文件的 PDF (a PDF of the document is required)")
    if len(attachments) > MAX_ATTACHMENTS:
        raise NoticeInvalid(f"附件最多 {MAX_ATTACHMENTS} 个 (too many attachments)")
    for a in attachments:
        file_store.check_upload(settings, a.file_name, len(a.data))
    if targets.empty():
        raise NoticeInvalid("请选择发送对象：人员、角色、区划或部门 (choose at least one target)")

    units = _resolve_units(conn, targets.units)
    departments = _resolve_departments(conn, targets.departments)
    t = _now(now)
    notice_id = conn.execute(text(
        "INSERT INTO notice (title, notice_type, body, sender, sender_id, sent_at, recipients, attachment,"
        " doc_no, issuing_office, targets, read_count, unread_count, org_path, district_code, created_by)"
        " SELECT :title, :type, :body, :sender, :sender_id, :t, :summary, :names, :doc_no, :office,"
        "        CAST(:targets AS jsonb), 0, 0, CAST(:scope AS ltree), app.current_district(), :sender_id"
        " RETURNING id"), {
            "title": title, "type": notice_type, "body": body, "sender": user.name, "sender_id": user.id,
            "t": t, "summary": _summary(targets, units, departments),
            "names": "、".join(a.file_name for a in attachments) or None, "doc_no": doc_no,
            "office": issuing_office, "targets": json.dumps(_targets_doc(targets, units), ensure_ascii=False),
            "scope": user.scope_path}).scalar_one()
    recipients = conn.execute(text(
        "INSERT INTO notice_recipient (notice_id, user_id, user_name, unit_name, department, org_path,"
        "                              district_code)"
        " SELECT :id, a.user_id, a.user_name, a.unit_name, a.department, a.org_path, a.district_code"
        " FROM app.notice_audience(CAST(:users AS bigint[]), CAST(:roles AS text[]),"
        "                          CAST(:exact AS ltree[]), CAST(:subtrees AS ltree[]),"
        "                          CAST(:departments AS text[])) a"
        " WHERE a.user_id <> :sender_id"), {
            "id": notice_id, "users": targets.users, "roles": targets.roles,
            "exact": [p for p, _, subtree in units if not subtree],
            "subtrees": [p for p, _, subtree in units if subtree],
            "departments": list(departments), "sender_id": user.id}).rowcount
    if not recipients:
        # The transaction rolls back: no notice without anyone to read it.
        raise NoticeInvalid("所选发送对象中没有可接收通知的人员，请重新选择 (no recipients)")
    for a in attachments:
        digest = file_store.save(settings, a.data)
        conn.execute(text(
            "INSERT INTO notice_attachment (notice_id, file_name, content_type, size, sha256)"
            " VALUES (:n, :name, :type, :size, :sha)"),
            {"n": notice_id, "name": a.file_name, "type": a.content_type or "application/octet-stream",
             "size": len(a.data), "sha": digest})
    return {"id": notice_id, "recipients": recipients}


def _resolve_units(conn: Connection, units: Sequence[UnitTarget]) -> list[tuple[str, str, bool]]:
    """``(path, name, subtree)`` of each unit target; each must lie inside the sender's scope."""
    resolved = []
    for u in units:
        row = conn.execute(text(
            "SELECT path::text, name, path <@ app.current_scope() AS inside FROM territory_unit"
            " WHERE (CAST(:id AS bigint) IS NOT NULL AND id = :id)"
            "    OR (CAST(:id AS bigint) IS NULL AND path::text = :path)"),
            {"id": u.id, "path": u.path}).first()
        if row is None or not row.inside:
            # Units outside the scope are mostly invisible too (row-level security): one answer for both.
            raise NoticeForbidden(f"区划“{row.name if row else u.id or u.path}”不存在或不在您的辖区内，"
                                  "不能向其发送通知 (unit outside your scope)")
        resolved.append((row.path, row.name, u.subtree))
    return resolved


def _resolve_departments(conn: Connection, codes: Sequence[str]) -> dict[str, str]:
    if not codes:
        return {}
    known = dict(conn.execute(text(
        "SELECT code, name_zh FROM code_item WHERE table_key = 'department' AND code = ANY(:c)"),
        {"c": list(codes)}).all())
    missing = [c for c in codes if c not in known]
    if missing:
        raise NoticeInvalid(f"未知部门：{'、'.join(missing)} (unknown department)")
    return known


def _summary(targets: Targets, units: list[tuple[str, str, bool]], departments: dict[str, str]) -> str:
    """The targets in words, for the registry's 接收对象 column."""
    parts = []
    if units:
        parts.append("区划：" + "、".join(f"{name}{'（含下级）' if subtree else ''}"
                                        for _, name, subtree in units))
    if targets.roles:
        parts.append("角色：" + "、".join(ROLES[r].zh for r in targets.roles))
    if departments:
        parts.append("部门：" + "、".join(departments.values()))
    if targets.users:
        parts.append(f"指定人员 {len(set(targets.users))} 人")
    return "；".join(parts)


def _targets_doc(targets: Targets, units: list[tuple[str, str, bool]]) -> dict[str, Any]:
    return {"users": sorted(set(targets.users)), "roles": targets.roles, "departments": targets.departments,
            "units": [{"path": p, "name": n, "subtree": s} for p, n, s in units]}


# ---------------------------------------------------------------- reading
_TYPE_NAME = ("(SELECT c.name_zh FROM code_item c"
              " WHERE c.table_key = 'notice_type' AND c.code = n.notice_type)")
_ATTACHMENTS = "(SELECT count(*) FROM notice_attachment a WHERE a.notice_id = n.id)"


def inbox(conn: Connection, user_id: int, *, limit: int = 200) -> dict[str, Any]:
    """The notices addressed to the user: unread first, then newest first; and how many are unread."""
    items = [dict(r) for r in conn.execute(text(
        f"SELECT n.id, n.title, n.notice_type, {_TYPE_NAME} AS notice_type_zh, n.sender, n.sent_at,"
        f"       r.read_at, {_ATTACHMENTS}::int AS attachments"
        " FROM notice_recipient r JOIN notice n ON n.id = r.notice_id"
        " WHERE r.user_id = :me AND n.deleted_at IS NULL"
        " ORDER BY r.read_at IS NULL DESC, n.sent_at DESC, n.id DESC LIMIT :limit"),
        {"me": user_id, "limit": limit}).mappings()]
    return {"unread": unread_count(conn, user_id)["unread"], "items": items}


def unread_count(conn: Connection, user_id: int) -> dict[str, Any]:
    """``{"unread", "latest_id"}``: what the popup polls (two index lookups)."""
    row = conn.execute(text(
        "SELECT count(*) FILTER (WHERE r.read_at IS NULL) AS unread,"
        "       coalesce(max(r.notice_id), 0) AS latest_id"
        " FROM notice_recipient r JOIN notice n ON n.id = r.notice_id"
        " WHERE r.user_id = :me AND n.deleted_at IS NULL"), {"me": user_id}).one()
    return {"unread": row.unread, "latest_id": row.latest_id}


def newest_unread(conn: Connection, user_id: int, *, after_id: int = 0) -> dict[str, Any] | None:
    """The newest unread notice addressed to the user with an id above ``after_id`` (for the popup)."""
    row = conn.execute(text(
        f"SELECT n.id, n.title, n.sender, n.sent_at, n.notice_type, {_TYPE_NAME} AS notice_type_zh"
        " FROM notice_recipient r JOIN notice n ON n.id = r.notice_id"
        " WHERE r.user_id = :me AND r.read_at IS NULL AND n.deleted_at IS NULL AND r.notice_id > :after"
        " ORDER BY r.notice_id DESC LIMIT 1"), {"me": user_id, "after": after_id}).mappings().first()
    return dict(row) if row else None


def get_notice(conn: Connection, user: Any, notice_id: int, *, mark_read: bool = True,
               now: dt.datetime | None = None) -> dict[str, Any]:
    """One notice with its attachments; opening it marks it read for the reader (a recipient)."""
    row = conn.execute(text(
        f"SELECT n.id, n.title, n.notice_type, {_TYPE_NAME} AS notice_type_zh, n.body, n.sender,"
        "        n.sender_id, n.sent_at, n.doc_no, n.issuing_office, n.recipients AS targets_text,"
        "        n.read_count, n.unread_count"
        " FROM notice n WHERE n.id = :id AND n.deleted_at IS NULL"), {"id": notice_id}).mappings().first()
    if row is None:
        raise NoticeNotFound(notice_id)
    notice = dict(row)
    read_at = None
    if mark_read:
        read_at = conn.execute(text(
            "UPDATE notice_recipient SET read_at = :t WHERE notice_id = :id AND user_id = :me"
            " AND read_at IS NULL RETURNING read_at"),
            {"id": notice_id, "me": user.id, "t": _now(now)}).scalar()
        if read_at is not None:
            # This read moved the counts (trigger) after the row above was read: read them again.
            notice.update(conn.execute(text(
                "SELECT read_count, unread_count FROM notice WHERE id = :id"),
                {"id": notice_id}).mappings().one())
    if read_at is None:
        read_at = conn.execute(text(
            "SELECT read_at FROM notice_recipient WHERE notice_id = :id AND user_id = :me"),
            {"id": notice_id, "me": user.id}).scalar()
    notice["read_at"] = read_at
    notice["attachments"] = [
        {**dict(a), "url": f"/api/v1/notices/{notice_id}/attachments/{a['id']}"}
        for a in conn.execute(text(
            "SELECT id, file_name, size, content_type FROM notice_attachment"
            " WHERE notice_id = :id ORDER BY id"),
            {"id": notice_id}).mappings()]
    return notice


def sent(conn: Connection, user_id: int, *, limit: int = 200) -> list[dict[str, Any]]:
    """The sender's notices, newest first, with their read and unread counts."""
    return [dict(r) for r in conn.execute(text(
        f"SELECT n.id, n.title, n.notice_type, {_TYPE_NAME} AS notice_type_zh, n.sent_at, n.doc_no,"
        "       n.recipients AS targets_text, n.read_count, n.unread_count,"
        f"       {_ATTACHMENTS}::int AS attachments"
        " FROM notice n WHERE n.sender_id = :me AND n.deleted_at IS NULL"
        " ORDER BY n.sent_at DESC, n.id DESC LIMIT :limit"), {"me": user_id, "limit": limit}).mappings()]


def receipts(conn: Connection, user: Any, notice_id: int) -> dict[str, list[dict[str, Any]]]:
    """Who has read the notice and who has not: for its sender, and for the units above the sender
    (holding ``notice:send``)."""
    row = conn.execute(text(
        "SELECT sender_id, org_path <@ app.current_scope() AS supervised FROM notice"
        " WHERE id = :id AND deleted_at IS NULL"), {"id": notice_id}).first()
    if row is None:
        raise NoticeNotFound(notice_id)
    if row.sender_id != user.id and not (row.supervised and user.has("notice:send")):
        raise NoticeForbidden("只有发送人及其上级可以查看阅读情况 (only the sender and supervisors)")
    rows = conn.execute(text(
        "SELECT user_id, user_name AS name, unit_name AS unit, department, read_at FROM notice_recipient"
        " WHERE notice_id = :id ORDER BY read_at NULLS LAST, org_path, user_name"),
        {"id": notice_id}).mappings()
    result: dict[str, list[dict[str, Any]]] = {"read": [], "unread": []}
    for r in rows:
        result["read" if r["read_at"] else "unread"].append(dict(r))
    return result


def get_attachment(conn: Connection, notice_id: int, attachment_id: int) -> dict[str, Any]:
    row = conn.execute(text(
        "SELECT a.file_name, a.content_type, a.size, a.sha256 FROM notice_attachment a"
        " JOIN notice n ON n.id = a.notice_id AND n.deleted_at IS NULL"
        " WHERE a.id = :a AND a.notice_id = :n"), {"a": attachment_id, "n": notice_id}).mappings().first()
    if row is None:
        raise NoticeNotFound(notice_id)
    return dict(row)


def audience_options(conn: Connection, user: Any) -> dict[str, list[dict[str, Any]]]:
    """What the sender may pick from: units of their scope, roles, departments, users of their scope."""
    units = [dict(r) for r in conn.execute(text(
        "SELECT id, path::text AS path, name, level FROM territory_unit"
        " WHERE path <@ app.current_scope() AND level <> 'grid' ORDER BY path LIMIT 2000")).mappings()]
    departments = [dict(r) for r in conn.execute(text(
        "SELECT code, name_zh FROM code_item WHERE table_key = 'department' ORDER BY sort")).mappings()]
    people = [dict(r) for r in conn.execute(text(
        "SELECT u.id, u.name, u.role FROM users u WHERE u.active AND u.scope_path <@ app.current_scope()"
        " AND u.id <> :me ORDER BY u.scope_path, u.name LIMIT 2000"), {"me": user.id}).mappings()]
    return {"units": units, "roles": [{"code": k, "name_zh": r.zh} for k, r in ROLES.items()],
            "departments": departments, "users": people}
