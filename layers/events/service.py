"""Event services: report, act, read, list, inbox, attachments, automatic cards.

Every function takes a ``Connection`` in a scoped transaction (:func:`gis.security.scope.scoped_connection`):
which events exist for the caller is row-level security's business (the grid's path and everything
above it; departments for what was dispatched to them). What is decided here is what the caller may *do*,
and that is read from one table, :data:`layers.events.workflow.TRANSITIONS`.

The services take ``now`` (default: the clock) so that the demo generator can walk a year of cases
through the same state machine, and tests can stand on either side of a deadline.

An action names the version of the event it was decided on. The event row is locked first; a second
action on the same version, concurrent or late, finds the version moved on and is refused with
:class:`VersionConflict` — never a double transition.

>>> with scoped_connection(settings, user) as conn:                                  # doctest: +SKIP
...     event = report(conn, actor_for(conn, user), ReportFields(title="楼道堆物", type="0502", grid_id=7))
...     act(conn, actor_for(conn, user), event["id"], "self_handle", version=event["version"])
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, text

from gis.masking import mask_phone
from gis.security import roles
from gis.validation import ValidationError, validate_phone
from gis.errors import ServiceError
from layers.events import calendar
from layers.events.position import PositionError, to_cgcs2000
from layers.events.rules import DEFAULT_RULES, EventRules
from layers.events.workflow import (
    ACTIONS, FINISHED, LEVEL_NAMES, LEVELS, OPEN, STATUSES, TERRITORIAL, TRANSITIONS, Transition,
)

MAX_PAGE = 500
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
ATTACHMENT_TYPES = ("image/jpeg", "image/png", "image/webp", "image/heic", "application/pdf",
                    "video/mp4", "audio/mpeg", "audio/amr")


# ---------------------------------------------------------------- errors (each with its HTTP status)
class EventError(ServiceError):
    """A refused request on an event."""


class EventNotFound(EventError):
    status = 404

    def __init__(self, event_id: int) -> None:
        super().__init__(f"未找到事件 {event_id}，或其不在您的辖区内 (no such event in your scope)")


class ActionForbidden(EventError):
    status = 403


class ActionNotAllowed(EventError):
    """The action does not apply to the event as it is now."""

    status = 409


class VersionConflict(EventError):
    status = 409


class InvalidRequest(EventError):
    status = 422


# ---------------------------------------------------------------- who is acting
@dataclass(frozen=True)
class Actor:
    """The user behind an action, with where they stand: their unit's level and district, their
    department (a code of table ``department``)."""

    id: int | None
    name: str
    role: str
    scope_path: str
    level: str | None = None
    district_code: str | None = None
    department: str | None = None
    permissions: frozenset[str] = field(default_factory=frozenset)

    def has(self, permission: str) -> bool:
        return roles.has_permission(self.permissions, permission)


def actor_for(conn: Connection, user: Any) -> Actor:
    """An :class:`Actor` for a logged-in user (:class:`gis.security.sessions.CurrentUser` or alike)."""
    unit = conn.execute(text(
        "SELECT level, district_code::text FROM territory_unit WHERE path = CAST(:p AS ltree)"
    ), {"p": user.scope_path}).first()
    department = None
    if getattr(user, "department", None):
        department = conn.execute(text(
            "SELECT code FROM code_item WHERE table_key = 'department' AND :d IN (code, name_zh) LIMIT 1"
        ), {"d": user.department}).scalar() or user.department
    permissions = getattr(user, "permissions", None)
    if permissions is None:
        permissions = roles.ROLES[user.role].permissions if user.role in roles.ROLES else frozenset()
    return Actor(id=user.id, name=getattr(user, "name", None) or getattr(user, "username", ""),
                 role=user.role, scope_path=str(user.scope_path), level=unit.level if unit else None,
                 district_code=unit.district_code if unit else None, department=department,
                 permissions=frozenset(permissions))


def _within(path: str, scope: str) -> bool:
    """``path`` is ``scope`` or below it (ltree ``<@``)."""
    return path == scope or path.startswith(scope + ".")


def _stands(actor: Actor, event: dict, by: str) -> bool:
    held_by_department = event["department"] is not None
    if by == "unit":
        return not held_by_department and actor.scope_path == event["unit_path"]
    if by == "department":
        return (held_by_department and actor.department == event["department"]
                and actor.district_code == event["district_code"])
    if by == "holder":
        return _stands(actor, event, "unit") or _stands(actor, event, "department")
    if by == "supervisor":
        if held_by_department:
            return _within(event["unit_path"], actor.scope_path)
        return actor.scope_path != event["unit_path"] and _within(event["unit_path"], actor.scope_path)
    if by == "site":
        return actor.level in ("grid", "community") and _within(event["org_path"], actor.scope_path)
    if by == "area":
        return _within(event["org_path"], actor.scope_path)
    raise ValueError(f"unknown place {by!r}")


_PLACE_REFUSALS = {
    "unit": "只有当前承办单位（{unit}）的人员可以{action}",
    "department": "只有承办部门（{department}）的人员可以{action}",
    "holder": "只有当前承办单位或部门（{holder}）的人员可以{action}",
    "supervisor": "只有承办单位（{holder}）的上级可以{action}",
    "site": "只有事发网格或其所在社区的人员可以现场{action}",
    "area": "只有事发地辖区内的人员可以{action}",
}


def _refusal(actor: Actor, event: dict, t: Transition, conn: Connection | None = None) -> str | None:
    """Why ``actor`` may not take ``t`` on ``event`` now (Chinese), or None when they may."""
    action = f"“{t.zh}”"
    if event["status"] not in t.sources:
        return f"事件当前状态为“{STATUSES[event['status']]}”，不能{action}"
    if actor.role not in t.roles or not actor.has(t.permission):
        role = roles.ROLES[actor.role].zh if actor.role in roles.ROLES else actor.role
        return f"您的角色（{role}）无权{action}"
    if not _stands(actor, event, t.by):
        return _PLACE_REFUSALS[t.by].format(action=action, unit=event.get("unit_name") or event["unit_path"],
                                            department=event.get("department_name") or event["department"],
                                            holder=_holder_name(event))
    if event["department"] is None and event["unit_level"] not in t.levels and t.by == "unit":
        return f"{LEVEL_NAMES[event['unit_level']]}级不能{action}"
    if t.when == "urgent" and event["urgency"] not in ("urgent", "major"):
        return f"只有紧急或重大事件可以{action}"
    if t.when == "open_supervision" and not event.get("open_supervisions"):
        return f"该事件没有待回复的督办，无需{action}"
    return None


def _holder_name(event: dict) -> str:
    if event["department"] is not None:
        return event.get("department_name") or event["department"]
    return event.get("unit_name") or event["unit_path"]


# ---------------------------------------------------------------- reading
_COLUMNS = """
e.id, e.number, e.client_id::text AS client_id, e.title, e.type, ty.name_zh AS type_name, e.content,
e.urgency, e.source, e.reporter_name, e.reporter_phone, e.address,
ST_X(e.location) AS lon, ST_Y(e.location) AS lat,
e.grid_id, g.name AS grid_name, e.status, e.unit_path::text AS unit_path, e.unit_level,
u.name AS unit_name, e.department, d.name_zh AS department_name, e.departments,
e.step_no, e.step_started_at, e.step_limit_days, e.yellow_at, e.due_at, e.red_card_at,
e.late_steps, e.rework_count, e.extension_count, e.extension_days_requested, e.satisfaction,
e.handled_level, e.reported_by, e.reported_at, e.registered_at, e.closed_at, e.evaluated_at, e.version,
e.org_path::text AS org_path, e.district_code::text AS district_code,
(SELECT count(*) FROM event_supervision s WHERE s.event_id = e.id AND s.replied_at IS NULL)
    AS open_supervisions,
(SELECT count(*) FILTER (WHERE c.color = 'yellow') FROM event_card c WHERE c.event_id = e.id) AS yellow_cards,
(SELECT count(*) FILTER (WHERE c.color = 'red') FROM event_card c WHERE c.event_id = e.id) AS red_cards
"""

_FROM = """
FROM event e
LEFT JOIN code_item ty ON ty.table_key = 'event_type' AND ty.code = e.type
LEFT JOIN territory_unit g ON g.id = e.grid_id
LEFT JOIN territory_unit u ON u.path = e.unit_path
LEFT JOIN code_item d ON d.table_key = 'department' AND d.code = e.department
"""


def _now(now: dt.datetime | None) -> dt.datetime:
    return now if now is not None else dt.datetime.now(dt.UTC)


def _decorate(row: dict, now: dt.datetime) -> dict:
    row["status_name"] = STATUSES.get(row["status"], row["status"])
    row["light"] = calendar.light(now, row["yellow_at"], row["due_at"])
    row["overdue"] = row["light"] == "red"
    row["working_days_left"] = (calendar.working_days_between(now, row["due_at"] - dt.timedelta(seconds=1))
                                if row["due_at"] is not None and row["light"] != "red" else None)
    row["holder_name"] = _holder_name(row)
    row["reporter_phone"] = mask_phone(row["reporter_phone"])
    return row


def _load(conn: Connection, event_id: int, *, lock: bool = False) -> dict | None:
    if lock:
        # Lock the event row alone (not the joined code and territory rows), then read it with its names.
        locked = conn.execute(text("SELECT id FROM event WHERE id = :id FOR UPDATE"), {"id": event_id})
        if locked.first() is None:
            return None
    row = conn.execute(text(f"SELECT {_COLUMNS} {_FROM} WHERE e.id = :id"), {"id": event_id})
    row = row.mappings().first()
    return dict(row) if row else None


def get_event(conn: Connection, event_id: int, *, now: dt.datetime | None = None) -> dict | None:
    """One event with its history, supervisions, cards and attachments (without their bytes)."""
    row = _load(conn, event_id)
    if row is None:
        return None
    event = _decorate(row, _now(now))
    event["history"] = [dict(r) for r in conn.execute(text(
        "SELECT h.id, h.at, h.user_id, h.user_name, h.user_role, h.action, h.from_status, h.to_status,"
        " h.from_unit_path::text AS from_unit_path, h.to_unit_path::text AS to_unit_path,"
        " h.from_department, h.to_department, h.comment, h.detail, h.step_no, h.due_at, h.late, h.version,"
        " coalesce((SELECT array_agg(a.id ORDER BY a.id) FROM event_attachment a WHERE a.history_id = h.id),"
        "          ARRAY[]::bigint[]) AS attachment_ids,"
        # Names for the timeline: the units and departments a step went from and to.
        " fu.name AS from_unit_name, tu.name AS to_unit_name,"
        " fd.name_zh AS from_department_name, td.name_zh AS to_department_name"
        " FROM event_history h"
        " LEFT JOIN territory_unit fu ON fu.path = h.from_unit_path"
        " LEFT JOIN territory_unit tu ON tu.path = h.to_unit_path"
        " LEFT JOIN code_item fd ON fd.table_key = 'department' AND fd.code = h.from_department"
        " LEFT JOIN code_item td ON td.table_key = 'department' AND td.code = h.to_department"
        " WHERE h.event_id = :id ORDER BY h.id"), {"id": event_id}).mappings()]
    for h in event["history"]:
        h["action_name"] = ACTIONS.get(h["action"], h["action"])
    event["supervisions"] = [dict(r) for r in conn.execute(text(
        "SELECT id, issued_at, issued_by, issued_by_name, note, unit_path::text AS unit_path, department,"
        " reply_due_at, reply, replied_at, replied_by, replied_by_name"
        " FROM event_supervision WHERE event_id = :id ORDER BY id"), {"id": event_id}).mappings()]
    event["cards"] = [dict(r) for r in conn.execute(text(
        "SELECT id, step_no, color, kind, reason, unit_path::text AS unit_path, department, issued_at,"
        " issued_by, issued_by_name FROM event_card WHERE event_id = :id ORDER BY id"),
        {"id": event_id}).mappings()]
    event["attachments"] = [dict(r) for r in conn.execute(text(
        "SELECT id, history_id, filename, content_type, size, sha256, uploaded_at"
        " FROM event_attachment WHERE event_id = :id ORDER BY id"), {"id": event_id}).mappings()]
    return event


@dataclass(frozen=True)
class EventPage:
    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


_LIGHT_SQL = {
    "red": "e.due_at <= :now",
    "yellow": "e.due_at > :now AND e.yellow_at <= :now",
    "green": "e.due_at > :now AND (e.yellow_at IS NULL OR e.yellow_at > :now)",
}


def list_events(
    conn: Connection,
    *,
    status: Sequence[str] | None = None,
    type: str | None = None,
    within: str | None = None,
    reported_from: dt.datetime | dt.date | None = None,
    reported_to: dt.datetime | dt.date | None = None,
    light: str | None = None,
    unit: str | None = None,
    department: str | None = None,
    q: str | None = None,
    limit: int = 50,
    offset: int = 0,
    now: dt.datetime | None = None,
) -> EventPage:
    """Events the caller may see, filtered; the most urgent (earliest deadline) first.

    ``type`` matches a class and its kinds (``01`` finds every dispute); ``within`` is a territory path
    (where the events happened); ``unit`` / ``department``: held by that unit or department now;
    ``light``: green, yellow or red; the period is on the report time (``reported_to`` exclusive).
    """
    now = _now(now)
    clauses, params = [], {"now": now}
    if status:
        bad = [s for s in status if s not in STATUSES]
        if bad:
            raise InvalidRequest(f"未知的事件状态 {bad}，可选 {', '.join(STATUSES)} (unknown status)")
        clauses.append("e.status = ANY(:status)")
        params["status"] = list(status)
    if type:
        clauses.append("e.type LIKE :type_prefix")
        params["type_prefix"] = type.replace("%", "").replace("_", "") + "%"
    if within:
        clauses.append("e.org_path <@ CAST(:within AS ltree)")
        params["within"] = within
    for key, value, op in (("reported_from", reported_from, ">="), ("reported_to", reported_to, "<")):
        if value is not None:
            if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
                value = dt.datetime.combine(value, dt.time(0), calendar.BEIJING)
            clauses.append(f"e.reported_at {op} :{key}")
            params[key] = value
    if light:
        if light not in _LIGHT_SQL:
            raise InvalidRequest("预警灯只能是 green、yellow 或 red (unknown light)")
        clauses.append(_LIGHT_SQL[light])
    if unit:
        clauses.append("e.department IS NULL AND e.unit_path = CAST(:unit AS ltree)")
        params["unit"] = unit
    if department:
        clauses.append("e.department = :department")
        params["department"] = department
    if q and q.strip():
        clauses.append("(e.title LIKE :q OR e.number LIKE :q OR e.address LIKE :q)")
        params["q"] = "%" + q.strip().replace("%", "").replace("_", "") + "%"
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    limit, offset = max(1, min(int(limit), MAX_PAGE)), max(0, int(offset))
    total = conn.execute(text(f"SELECT count(*) FROM event e {where}"), params).scalar_one()
    rows = conn.execute(text(
        f"SELECT {_COLUMNS} {_FROM} {where}"
        " ORDER BY e.due_at NULLS LAST, e.id DESC LIMIT :limit OFFSET :offset"
    ), {**params, "limit": limit, "offset": offset}).mappings()
    return EventPage([_decorate(dict(r), now) for r in rows], total, limit, offset)


# ---------------------------------------------------------------- what may be done
def available_actions(actor: Actor, event: dict) -> list[dict]:
    """The actions ``actor`` may take on ``event`` now, with what each requires."""
    found = []
    for t in TRANSITIONS.values():
        if _refusal(actor, event, t) is None:
            found.append({"action": t.action, "name": t.zh, "requires": sorted(t.requires),
                          "waits": t.waits})
    return found


def suggested_department(event: dict, rules: EventRules = DEFAULT_RULES) -> str | None:
    """Where the routing rules send this event (the dispatch form's default)."""
    return rules.route(event["type"], event["org_path"])


def inbox(conn: Connection, actor: Actor, *, now: dt.datetime | None = None, limit: int = 200) -> dict:
    """What waits for ``actor``: events on which an action of theirs is due, earliest deadline first,
    with the count per light."""
    now = _now(now)
    rows = conn.execute(text(f"""
        SELECT {_COLUMNS} {_FROM}
         WHERE e.status = ANY(:statuses) AND (
               (e.department IS NULL AND e.unit_path = CAST(:scope AS ltree))
            OR (e.department = :department AND e.district_code = :district)
            OR (e.status = 'extension_requested' AND e.unit_path <@ CAST(:scope AS ltree))
            OR (e.status = 'handled' AND e.org_path <@ CAST(:scope AS ltree))
            OR (e.status = 'closed' AND e.org_path <@ CAST(:scope AS ltree)))
         ORDER BY e.due_at NULLS LAST, e.id LIMIT 5000"""),
        {"statuses": [*OPEN, "closed"], "scope": actor.scope_path, "department": actor.department,
         "district": actor.district_code}).mappings()
    items = []
    for row in rows:
        event = _decorate(dict(row), now)
        actions = [a for a in available_actions(actor, event) if a["waits"]]
        if actions:
            event["actions"] = actions
            items.append(event)
    counts = {light: sum(1 for e in items if e["light"] == light) for light in ("green", "yellow", "red")}
    counts["none"] = sum(1 for e in items if e["light"] is None)
    return {"total": len(items), "counts": counts, "items": items[:limit]}


# ---------------------------------------------------------------- reporting
@dataclass
class ReportFields:
    title: str
    type: str
    content: str | None = None
    urgency: str = "normal"
    source: str = "app"
    reporter_name: str | None = None
    reporter_phone: str | None = None
    address: str | None = None
    lon: float | None = None
    lat: float | None = None
    crs: str = "cgcs2000"
    grid_id: int | None = None
    client_id: str | None = None


@dataclass(frozen=True)
class Upload:
    filename: str
    content_type: str
    data: bytes


def _code_exists(conn: Connection, table: str, code: str) -> bool:
    return conn.execute(text("SELECT 1 FROM code_item WHERE table_key = :t AND code = :c"),
                        {"t": table, "c": code}).first() is not None


def _grid_for(conn: Connection, actor: Actor, fields: ReportFields, point: tuple[float, float] | None) -> Any:
    if fields.grid_id is not None:
        grid = conn.execute(text(
            "SELECT id, path::text AS path, district_code::text AS district_code FROM territory_unit"
            " WHERE id = :id AND level = 'grid'"), {"id": fields.grid_id}).first()
        if grid is None:
            raise InvalidRequest(f"网格 {fields.grid_id} 不存在或不在您的辖区内 (no such grid in your scope)")
    elif point is not None:
        grid = conn.execute(text(
            "SELECT id, path::text AS path, district_code::text AS district_code FROM territory_unit"
            " WHERE level = 'grid' AND path <@ CAST(:scope AS ltree)"
            "   AND ST_Covers(boundary, ST_SetSRID(ST_MakePoint(:lon, :lat), 4490))"
            " ORDER BY id LIMIT 1"), {"scope": actor.scope_path, "lon": point[0], "lat": point[1]}).first()
        if grid is None:
            raise InvalidRequest("事发位置不在您辖区的任何网格内，请核对位置或选择网格"
                                 " (position in no grid of yours)")
    else:
        raise InvalidRequest("请填写事发位置或选择所属网格 (position or grid required)")
    if not _within(grid.path, actor.scope_path):
        raise ActionForbidden("只能上报本辖区内发生的事件 (the grid is outside your territory)")
    return grid


def _validated(conn: Connection, fields: ReportFields) -> ReportFields:
    fields.title = (fields.title or "").strip()
    if not fields.title:
        raise InvalidRequest("请填写事件标题 (title required)")
    if len(fields.title) > 200:
        raise InvalidRequest("事件标题不能超过 200 字 (title too long)")
    for table, code, label in (("event_type", fields.type, "事件类型"),
                               ("event_urgency", fields.urgency, "紧急程度"),
                               ("event_source", fields.source, "事件来源")):
        if not code or not _code_exists(conn, table, code):
            raise InvalidRequest(f"{label} {code!r} 不在代码表 {table} 中 (unknown code)")
    if fields.reporter_phone:
        try:
            fields.reporter_phone = validate_phone(fields.reporter_phone)
        except ValidationError as error:
            raise InvalidRequest(f"反映人电话有误：{error}") from None
    if fields.client_id:
        try:
            fields.client_id = str(uuid.UUID(fields.client_id))
        except ValueError:
            raise InvalidRequest("client_id 须为 UUID (client_id must be a UUID)") from None
    return fields


def _next_number(conn: Connection, district_code: str, now: dt.datetime) -> str:
    day = calendar.beijing_date(now)
    seq = conn.execute(text(
        "INSERT INTO event_number (district_code, day, last) VALUES (:d, :day, 1)"
        " ON CONFLICT (district_code, day) DO UPDATE SET last = event_number.last + 1 RETURNING last"
    ), {"d": district_code, "day": day}).scalar_one()
    return f"{district_code}{day:%Y%m%d}{seq:04d}"


def _clock(start: dt.datetime, limit: int | None, rules: EventRules) -> dict:
    if limit is None:
        return {"step_started_at": start, "step_limit_days": None, "yellow_at": None, "due_at": None,
                "red_card_at": None}
    return {"step_started_at": start, "step_limit_days": limit,
            "yellow_at": calendar.yellow_after(start, limit, rules.warn_days),
            "due_at": calendar.due_after(start, limit),
            "red_card_at": calendar.due_after(start, rules.red_card_days(limit))}


def report(
    conn: Connection,
    actor: Actor,
    fields: ReportFields,
    *,
    uploads: Iterable[Upload] = (),
    now: dt.datetime | None = None,
    rules: EventRules = DEFAULT_RULES,
) -> tuple[dict, bool]:
    """Report an event (上报): ``(event, created)``. A report with a ``client_id`` already seen returns
    the event it created the first time, with ``created`` False: a mobile client may retry safely.

    The event starts at the reporter's own unit — the grid worker's grid, the community's centre for a
    walk-in there, the district for a hotline case — and a major or urgent one goes straight to the
    district (直报).
    """
    now = _now(now)
    if not actor.has("event:report") or actor.role not in TERRITORIAL:
        raise ActionForbidden("您的角色无权上报事件 (no permission to report)")
    fields = _validated(conn, fields)
    if fields.client_id:
        seen = conn.execute(text("SELECT id FROM event WHERE client_id = CAST(:c AS uuid)"),
                            {"c": fields.client_id}).scalar()
        if seen is not None:
            return get_event(conn, seen, now=now), False
    point = None
    if fields.lon is not None and fields.lat is not None:
        try:
            point = to_cgcs2000(float(fields.lon), float(fields.lat), fields.crs)
        except PositionError as error:
            raise InvalidRequest(str(error)) from None
    grid = _grid_for(conn, actor, fields, point)
    # Where it starts: the reporter's unit (or the district when the reporter sits above it).
    units = {r.level: r.path for r in conn.execute(text(
        "SELECT level, path::text AS path FROM territory_unit WHERE path @> CAST(:g AS ltree)"
        " AND level = ANY(:levels)"), {"g": grid.path, "levels": list(LEVELS)})}
    direct = fields.urgency in ("urgent", "major")
    if direct or actor.level not in LEVELS:
        unit_level = "district"
    else:
        unit_level = actor.level
    unit_path = units.get(unit_level)
    if unit_path is None:
        raise InvalidRequest("该网格不在任何区的区划树中，无法受理 (grid has no district above it)")
    number = _next_number(conn, grid.district_code, now)
    clock = _clock(now, rules.limit("reported", fields.type, unit_level, fields.urgency), rules)
    event_id = conn.execute(text("""
        INSERT INTO event (number, client_id, title, type, content, urgency, source, reporter_name,
            reporter_phone, address, location, grid_id, status, unit_path, unit_level, step_started_at,
            step_limit_days, yellow_at, due_at, red_card_at, reported_by, reported_at, org_path,
            district_code)
        VALUES (:number, CAST(:client_id AS uuid), :title, :type, :content, :urgency, :source,
            :reporter_name, :reporter_phone, :address,
            CASE WHEN CAST(:lon AS float8) IS NULL THEN NULL
                 ELSE ST_SetSRID(ST_MakePoint(:lon, :lat), 4490) END,
            :grid_id, 'reported', CAST(:unit_path AS ltree), :unit_level, :step_started_at, :step_limit_days,
            :yellow_at, :due_at, :red_card_at, :reported_by, :now, CAST(:org_path AS ltree), :district_code)
        ON CONFLICT (client_id) DO NOTHING
        RETURNING id"""), {
        "number": number, "client_id": fields.client_id, "title": fields.title, "type": fields.type,
        "content": fields.content, "urgency": fields.urgency, "source": fields.source,
        "reporter_name": fields.reporter_name, "reporter_phone": fields.reporter_phone,
        "address": fields.address, "lon": point[0] if point else None, "lat": point[1] if point else None,
        "grid_id": grid.id, "unit_path": unit_path, "unit_level": unit_level, "reported_by": actor.id,
        "now": now, "org_path": grid.path, "district_code": grid.district_code, **clock,
    }).scalar()
    if event_id is None:  # the same client_id, committed by a concurrent retry meanwhile
        seen = conn.execute(text("SELECT id FROM event WHERE client_id = CAST(:c AS uuid)"),
                            {"c": fields.client_id}).scalar_one()
        return get_event(conn, seen, now=now), False
    comment = "重大/紧急事件直报区综治中心" if direct and actor.level in LEVELS[:3] else None
    history_id = _history(conn, {"id": event_id, "org_path": grid.path, "district_code": grid.district_code},
                          actor, "report", now=now, from_status=None, to_status="reported",
                          to_unit_path=unit_path, comment=comment,
                          detail={"direct": direct} if direct else None, step_no=1, version=1)
    for upload in uploads:
        _store_attachment(conn, actor, event_id, grid.path, grid.district_code, upload, history_id, now)
    return get_event(conn, event_id, now=now), True


# ---------------------------------------------------------------- acting
def _history(conn: Connection, event: dict, actor: Actor, action: str, *, now: dt.datetime,
             from_status: str | None, to_status: str, step_no: int, version: int,
             from_unit_path: str | None = None, to_unit_path: str | None = None,
             from_department: str | None = None, to_department: str | None = None,
             comment: str | None = None, detail: dict | None = None, due_at: dt.datetime | None = None,
             late: bool = False) -> int:
    return conn.execute(text("""
        INSERT INTO event_history (event_id, at, user_id, user_name, user_role, action, from_status,
            to_status, from_unit_path, to_unit_path, from_department, to_department, comment, detail,
            step_no, due_at, late, version, org_path, district_code)
        VALUES (:event_id, :at, :user_id, :user_name, :user_role, :action, :from_status, :to_status,
            CAST(:from_unit AS ltree), CAST(:to_unit AS ltree), :from_department, :to_department, :comment,
            CAST(:detail AS jsonb), :step_no, :due_at, :late, :version, CAST(:org_path AS ltree),
            :district_code)
        RETURNING id"""), {
        "event_id": event["id"], "at": now, "user_id": actor.id, "user_name": actor.name,
        "user_role": actor.role, "action": action, "from_status": from_status, "to_status": to_status,
        "from_unit": from_unit_path, "to_unit": to_unit_path, "from_department": from_department,
        "to_department": to_department, "comment": comment,
        "detail": json.dumps(detail, ensure_ascii=False) if detail else None, "step_no": step_no,
        "due_at": due_at, "late": late, "version": version, "org_path": event["org_path"],
        "district_code": event["district_code"],
    }).scalar_one()


@dataclass
class ActionRequest:
    version: int
    comment: str | None = None
    department: str | None = None
    days: int | None = None
    outcome: str | None = None          # verify: pass | fail
    satisfaction: int | None = None     # evaluate: 1–5
    color: str | None = None            # card: yellow | red
    attachment_ids: Sequence[int] = ()


def _check_requirements(conn: Connection, t: Transition, request: ActionRequest, rules: EventRules) -> None:
    missing = []
    if "comment" in t.requires and not (request.comment or "").strip():
        missing.append("意见/理由")
    if "department" in t.requires and not request.department:
        missing.append("承办部门")
    if "days" in t.requires and request.days is None:
        missing.append("延期天数")
    if "outcome" in t.requires and request.outcome is None:
        missing.append("核查结果")
    if "satisfaction" in t.requires and request.satisfaction is None:
        missing.append("满意度")
    if "color" in t.requires and not request.color:
        missing.append("牌色")
    if "attachment" in t.requires and not request.attachment_ids:
        missing.append("附件")
    if missing:
        raise InvalidRequest(f"“{t.zh}”须填写：{'、'.join(missing)} (missing: {', '.join(missing)})")
    if request.department is not None and not _code_exists(conn, "department", request.department):
        raise InvalidRequest(f"承办部门 {request.department!r} 不在部门代码表中 (unknown department)")
    if request.days is not None and not 1 <= request.days <= rules.extension_max_days:
        raise InvalidRequest(f"延期天数须在 1 到 {rules.extension_max_days} 个工作日之间 (days out of range)")
    if request.outcome is not None and request.outcome not in ("pass", "fail"):
        raise InvalidRequest("核查结果只能是 pass（通过）或 fail（不通过）(outcome: pass or fail)")
    if request.outcome == "fail" and not (request.comment or "").strip():
        raise InvalidRequest("核查不通过须说明理由 (a failed verification needs a comment)")
    if request.satisfaction is not None and not 1 <= request.satisfaction <= 5:
        raise InvalidRequest("满意度须为 1 到 5 (satisfaction 1–5)")
    if request.color is not None and request.color not in ("yellow", "red"):
        raise InvalidRequest("牌色只能是 yellow（黄牌）或 red（红牌）(color: yellow or red)")


def _unit(conn: Connection, sql: str, **params) -> Any:
    return conn.execute(text(
        f"SELECT path::text AS path, level, name FROM territory_unit WHERE {sql}"), params).first()


def act(
    conn: Connection,
    actor: Actor,
    event_id: int,
    action: str,
    request: ActionRequest,
    *,
    now: dt.datetime | None = None,
    rules: EventRules = DEFAULT_RULES,
    full: bool = True,
) -> dict:
    """Take ``action`` on the event, as seen at ``request.version``; returns the event after it (with
    its history, supervisions, cards and attachments unless ``full`` is False: a bulk walk's economy).

    Raises :class:`EventNotFound` (404), :class:`VersionConflict` or :class:`ActionNotAllowed` (409),
    :class:`ActionForbidden` (403), :class:`InvalidRequest` (422) — each with a message in Chinese.
    """
    now = _now(now)
    t = TRANSITIONS.get(action)
    if t is None:
        raise InvalidRequest(f"未知的操作 {action!r}，可选 {', '.join(TRANSITIONS)} (unknown action)")
    event = _load(conn, event_id, lock=True)
    if event is None:
        raise EventNotFound(event_id)
    if request.version != event["version"]:
        raise VersionConflict(
            f"事件 {event['number']} 已被他人处理（当前为“{STATUSES[event['status']]}”，"
            f"第 {event['version']} 版；您看到的是第 {request.version} 版），请刷新后重试 (version conflict)")
    refusal = _refusal(actor, event, t)
    if refusal:
        raise (ActionNotAllowed if event["status"] not in t.sources else ActionForbidden)(refusal)
    _check_requirements(conn, t, request, rules)
    _apply(conn, actor, event, t, request, now, rules)
    if full:
        return get_event(conn, event_id, now=now)
    return _decorate(_load(conn, event_id), now)


def _apply(conn: Connection, actor: Actor, event: dict, t: Transition, request: ActionRequest,
           now: dt.datetime, rules: EventRules) -> None:
    changes: dict[str, Any] = {}
    unit_path, unit_level, department = event["unit_path"], event["unit_level"], event["department"]
    target, clock, detail = t.target, t.clock, {}
    comment = (request.comment or "").strip() or None

    if t.action in ("escalate", "direct_report"):
        if t.action == "escalate":
            up = _unit(conn, "path = subpath(CAST(:p AS ltree), 0, nlevel(CAST(:p AS ltree)) - 1)",
                       p=unit_path)
        else:
            up = _unit(conn, "level = 'district' AND path @> CAST(:p AS ltree)", p=event["org_path"])
        if up is None or up.level not in LEVELS:
            raise ActionNotAllowed("找不到上一级综治中心 (no level above)")
        unit_path, unit_level = up.path, up.level
    elif t.action == "dispatch":
        department = request.department
        changes["departments"] = sorted({*event["departments"], department})
        detail["suggested"] = suggested_department(event, rules)
    elif t.action == "return":
        department = None
    elif t.action == "request_extension":
        changes["extension_days_requested"] = request.days
        detail["days"] = request.days
    elif t.action == "approve_extension":
        days = event["extension_days_requested"] or 0
        detail["days"] = days
        changes["extension_days_requested"] = None
        changes["extension_count"] = event["extension_count"] + 1
        changes.update(_clock(event["step_started_at"], (event["step_limit_days"] or 0) + days, rules))
    elif t.action == "deny_extension":
        detail["days"] = event["extension_days_requested"]
        changes["extension_days_requested"] = None
    elif t.action == "verify":
        target = t.outcomes[request.outcome]
        detail["outcome"] = request.outcome
    elif t.action == "evaluate":
        poor = request.satisfaction <= rules.poor_satisfaction
        target = t.outcomes["fail" if poor else "pass"]
        detail["satisfaction"] = request.satisfaction
        changes["satisfaction"] = request.satisfaction
        changes["evaluated_at"] = now
    elif t.action == "card":
        detail["color"] = request.color

    new_status = target or event["status"]
    if t.action in ("register", "self_handle") and event["registered_at"] is None:
        changes["registered_at"] = now
    if t.action == "feedback":
        changes["handled_level"] = "department" if department else unit_level
    if new_status == "closed":
        changes["closed_at"] = now
    if new_status == "handling" and t.action in ("verify", "evaluate"):
        changes["rework_count"] = event["rework_count"] + 1
        changes["closed_at"] = None

    finishing = clock in ("new", "stop")
    late = finishing and event["due_at"] is not None and now > event["due_at"]
    step_no = event["step_no"]
    if late:
        changes["late_steps"] = event["late_steps"] + 1
        _cards_for_late_step(conn, event, now)
    if finishing:
        step_no += 1
        holder = "department" if department else unit_level
        limit = rules.limit(new_status, event["type"], holder, event["urgency"]) if clock == "new" else None
        changes.update(_clock(now, limit, rules))
        changes["step_no"] = step_no

    version = event["version"] + 1
    changes.update(status=new_status, unit_path=unit_path, unit_level=unit_level, department=department,
                   version=version)
    assignments = ", ".join(
        f"{k} = CAST(:{k} AS ltree)" if k == "unit_path" else f"{k} = :{k}" for k in changes)
    conn.execute(text(f"UPDATE event SET {assignments}, updated_at = now() WHERE id = :id"),
                 {**changes, "id": event["id"]})
    history_id = _history(
        conn, event, actor, t.action, now=now, from_status=event["status"], to_status=new_status,
        from_unit_path=event["unit_path"], to_unit_path=unit_path, from_department=event["department"],
        to_department=department, comment=comment, detail=detail or None, step_no=step_no,
        due_at=event["due_at"] if finishing else None, late=late, version=version)
    _attach(conn, event["id"], history_id, request.attachment_ids)

    if t.action == "supervise":
        conn.execute(text("""
            INSERT INTO event_supervision (event_id, issued_at, issued_by, issued_by_name, issuer_path, note,
                unit_path, department, reply_due_at, org_path, district_code)
            VALUES (:e, :now, :uid, :uname, CAST(:scope AS ltree), :note, CAST(:unit AS ltree), :dep, :due,
                CAST(:org AS ltree), :district)"""), {
            "e": event["id"], "now": now, "uid": actor.id, "uname": actor.name, "scope": actor.scope_path,
            "note": comment, "unit": event["unit_path"], "dep": event["department"],
            "due": calendar.due_after(now, rules.supervision_reply_days), "org": event["org_path"],
            "district": event["district_code"]})
    elif t.action == "reply_supervision":
        conn.execute(text(
            "UPDATE event_supervision SET reply = :reply, replied_at = :now, replied_by = :uid,"
            " replied_by_name = :uname WHERE event_id = :e AND replied_at IS NULL"),
            {"reply": comment, "now": now, "uid": actor.id, "uname": actor.name, "e": event["id"]})
    elif t.action == "card":
        _insert_card(conn, event, request.color, "manual", comment, now, actor)


def _insert_card(conn: Connection, event: dict, color: str, kind: str, reason: str, at: dt.datetime,
                 actor: Actor | None = None) -> None:
    conn.execute(text("""
        INSERT INTO event_card (event_id, step_no, color, kind, reason, unit_path, department, issued_at,
            issued_by, issued_by_name, org_path, district_code)
        VALUES (:e, :step, :color, :kind, :reason, CAST(:unit AS ltree), :dep, :at, :uid, :uname,
            CAST(:org AS ltree), :district)
        ON CONFLICT (event_id, step_no, color) WHERE kind = 'auto' DO NOTHING"""), {
        "e": event["id"], "step": event["step_no"], "color": color, "kind": kind, "reason": reason,
        "unit": event["unit_path"], "dep": event["department"], "at": at,
        "uid": actor.id if actor else None, "uname": actor.name if actor else None,
        "org": event["org_path"], "district": event["district_code"]})


def _cards_for_late_step(conn: Connection, event: dict, now: dt.datetime) -> None:
    """A step finished after its deadline earns its automatic cards now, if the job had not issued them."""
    limit = event["step_limit_days"]
    _insert_card(conn, event, "yellow", "auto", f"超过办结时限（{limit}个工作日）", event["due_at"])
    if event["red_card_at"] is not None and now > event["red_card_at"]:
        _insert_card(conn, event, "red", "auto", f"超过办结时限一倍以上（时限{limit}个工作日）",
                     event["red_card_at"])


def issue_due_cards(conn: Connection, *, now: dt.datetime | None = None) -> dict[str, int]:
    """Issue the automatic cards due by ``now`` on open steps: a yellow card once a step is overdue, a red
    one at its red-card time (twice the limit by default). Each card is dated when it fell due and issued
    once per step and colour, so running this often, or late, changes nothing. Run it as a periodic job
    (as the owner, for every district) or within a user's scope."""
    now = _now(now)
    issued = {}
    for color, column, reason in (
        ("yellow", "due_at", "'超过办结时限（' || e.step_limit_days || '个工作日）'"),
        ("red", "red_card_at", "'超过办结时限一倍以上（时限' || e.step_limit_days || '个工作日）'"),
    ):
        issued[color] = conn.execute(text(f"""
            INSERT INTO event_card (event_id, step_no, color, kind, reason, unit_path, department, issued_at,
                org_path, district_code)
            SELECT e.id, e.step_no, '{color}', 'auto', {reason}, e.unit_path, e.department, e.{column},
                   e.org_path, e.district_code
              FROM event e
             WHERE e.status = ANY(:open) AND e.{column} <= :now
            ON CONFLICT (event_id, step_no, color) WHERE kind = 'auto' DO NOTHING"""),
            {"open": list(OPEN), "now": now}).rowcount
    return issued


# ---------------------------------------------------------------- attachments
def _store_attachment(conn: Connection, actor: Actor, event_id: int, org_path: str, district_code: str,
                      upload: Upload, history_id: int | None, now: dt.datetime) -> int:
    if upload.content_type not in ATTACHMENT_TYPES:
        raise InvalidRequest(f"不支持的附件类型 {upload.content_type}，可上传 {', '.join(ATTACHMENT_TYPES)}"
                             " (unsupported attachment type)")
    if len(upload.data) > MAX_ATTACHMENT_BYTES:
        megabytes = MAX_ATTACHMENT_BYTES // 1024 // 1024
        raise InvalidRequest(f"附件 {upload.filename} 超过 {megabytes} MB (too large)")
    attachment_id = conn.execute(text("""
        INSERT INTO event_attachment (event_id, history_id, filename, content_type, size, sha256,
            uploaded_by, uploaded_at, org_path, district_code)
        VALUES (:e, :h, :name, :type, :size, :sha, :uid, :now, CAST(:org AS ltree), :district)
        RETURNING id"""), {
        "e": event_id, "h": history_id, "name": (upload.filename or "附件")[:200],
        "type": upload.content_type,
        "size": len(upload.data), "sha": hashlib.sha256(upload.data).hexdigest(),
        "uid": actor.id, "now": now, "org": org_path, "district": district_code}).scalar_one()
    conn.execute(text("INSERT INTO event_attachment_data (attachment_id, data) VALUES (:a, :data)"),
                 {"a": attachment_id, "data": upload.data})
    return attachment_id


def add_attachment(conn: Connection, actor: Actor, event_id: int, upload: Upload, *,
                   now: dt.datetime | None = None) -> int:
    """Upload a photo or file to an event, to be named by the next action's ``attachment_ids``."""
    event = _load(conn, event_id)
    if event is None:
        raise EventNotFound(event_id)
    if event["status"] in FINISHED and event["status"] != "closed":
        raise ActionNotAllowed(f"事件已{STATUSES[event['status']]}，不能再上传附件")
    if not available_actions(actor, event):
        raise ActionForbidden("您当前不能对该事件执行任何操作，不能上传附件")
    return _store_attachment(conn, actor, event_id, event["org_path"], event["district_code"], upload, None,
                             _now(now))


def _attach(conn: Connection, event_id: int, history_id: int, ids: Sequence[int]) -> None:
    if not ids:
        return
    attached = conn.execute(text(
        "UPDATE event_attachment SET history_id = :h WHERE event_id = :e AND id = ANY(:ids)"
        " AND history_id IS NULL"), {"h": history_id, "e": event_id, "ids": list(ids)}).rowcount
    if attached != len(set(ids)):
        raise InvalidRequest("附件不属于该事件或已被使用，请重新上传 (attachment not found or already used)")


def get_attachment(conn: Connection, event_id: int, attachment_id: int) -> Any:
    return conn.execute(text(
        "SELECT a.filename, a.content_type, d.data FROM event_attachment a"
        " JOIN event_attachment_data d ON d.attachment_id = a.id WHERE a.id = :a AND a.event_id = :e"),
        {"a": attachment_id, "e": event_id}).first()
