"""民情日记: the grid worker's daily log, reviewed by their supervisor and commented on by leaders.

A worker writes the day's entry -- what they did, the persons and houses they visited (linked to the
registries by id; the registry's ``visited`` column keeps a readable summary), photos and where they were
-- from the phone, with a ``client_id`` so a resend from its offline queue stores it once. The entry is
then reviewed::

    submitted --approve--> approved
    submitted --return (with a note)--> returned --edit--> submitted

The supervisor is anyone with ``diary:review`` whose scope lies above the entry's grid (the community's
staff, the street, the district) -- never the author. Leaders with ``diary:comment`` add 点评, as many as
they like, each with who and when; a comment changes nothing the worker is editing, so it does not move
the entry's version. Every change of the entry itself names the version it was based on: a stale one is
refused (409), never silently overwritten.

Which entries exist for the caller is row-level security's business (the entry's org_path is its grid's).

>>> with scoped_connection(settings, worker) as conn:                               # doctest: +SKIP
...     saved, created = write_entry(conn, worker, DiaryInput(dt.date(2024, 10, 8), "走访独居老人"))
>>> with scoped_connection(settings, community) as conn:                            # doctest: +SKIP
...     review_entry(conn, community, saved["id"], "return", "请补充走访对象", saved["version"])
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from gis.validation import ValidationError, validate_client_id
from gis.crs import PositionError, optional_point
from gis.errors import ServiceError
from gis.security import audit
from layers.events.calendar import beijing_today
from layers.events.service import Upload
from layers.photos import photo, photos_of, store_photos

STATES = {"submitted": "待审批", "approved": "已通过", "returned": "已退回"}
APPROVAL_CODES = {"submitted": "0", "approved": "1", "returned": "2"}  # code table approval_status
DECISIONS = {"approve": "approved", "return": "returned"}
MAX_PAGE = 100
MAX_CONTENT = 5000
MAX_LINKS = 200
# How far back an entry may be dated: a week's offline queue and a late evening's catching up.
MAX_BACKDATE_DAYS = 31
HOUSE_ADDRESS = "nullif(concat_ws(' ', c.name, b.name, h.room_no), '')"


class DiaryError(ServiceError):
    """A refused request on the diary."""


class NotFound(DiaryError):
    status = 404

    def __init__(self, entry_id: int) -> None:
        super().__init__(f"未找到民情日记 {entry_id}，或其不在您的辖区内 (no such diary entry in your scope)")


class Forbidden(DiaryError):
    status = 403


class Conflict(DiaryError):
    status = 409


class Invalid(DiaryError):
    status = 422


@dataclass
class DiaryInput:
    diary_date: dt.date
    content: str
    person_ids: Sequence[int] = ()
    house_ids: Sequence[int] = ()
    lon: float | None = None
    lat: float | None = None
    crs: str = "cgcs2000"
    client_id: str | None = None
    uploads: Sequence[Upload] = field(default_factory=tuple)


# ---------------------------------------------------------------- checks
def _require(user: Any, permission: str, doing: str) -> None:
    if not user.has(permission):
        raise Forbidden(f"您没有{doing}民情日记的权限 ({permission} required)")


def _content(content: str | None) -> str:
    content = (content or "").strip()
    if not content:
        raise Invalid("请填写日记内容 (content required)")
    if len(content) > MAX_CONTENT:
        raise Invalid(f"日记内容不能超过 {MAX_CONTENT} 字 (content too long)")
    return content


def _date(day: dt.date) -> dt.date:
    now = beijing_today()
    if day > now:
        raise Invalid("日记日期不能晚于今天 (diary_date in the future)")
    if (now - day).days > MAX_BACKDATE_DAYS:
        raise Invalid(f"只能补写近 {MAX_BACKDATE_DAYS} 天的日记 (diary_date too old)")
    return day


def _ids(values: Iterable[int], label: str) -> list[int]:
    ids = sorted({int(v) for v in values})
    if len(ids) > MAX_LINKS:
        raise Invalid(f"{label}不能超过 {MAX_LINKS} 个 (too many)")
    if any(i < 1 for i in ids):
        raise Invalid(f"{label}编号有误 (bad id)")
    return ids


def _visited(conn: Connection, person_ids: list[int], house_ids: list[int]) -> tuple[list, list]:
    """The persons and houses named, as the caller may see them; any not found is refused by id."""
    persons = [dict(r) for r in conn.execute(text(
        "SELECT id, name FROM person WHERE id = ANY(:ids) AND deleted_at IS NULL ORDER BY id"),
        {"ids": person_ids}).mappings()] if person_ids else []
    missing = sorted(set(person_ids) - {p["id"] for p in persons})
    if missing:
        raise Invalid(f"走访人员 {', '.join(map(str, missing))} 不存在或不在您的辖区内 (unknown person)")
    houses = [dict(r) for r in conn.execute(text(
        f"SELECT h.id, coalesce({HOUSE_ADDRESS}, '房屋 ' || h.id) AS address FROM house h"
        " JOIN building b ON b.id = h.building_id LEFT JOIN compound c ON c.id = b.compound_id"
        " WHERE h.id = ANY(:ids) AND h.deleted_at IS NULL ORDER BY h.id"), {"ids": house_ids}).mappings()
    ] if house_ids else []
    missing = sorted(set(house_ids) - {h["id"] for h in houses})
    if missing:
        raise Invalid(f"走访房屋 {', '.join(map(str, missing))} 不存在或不在您的辖区内 (unknown house)")
    return persons, houses


def _summary(persons: list[dict], houses: list[dict]) -> str | None:
    """The registry's ``visited`` column: who and where, readable in the list (derived, not typed)."""
    parts = []
    if persons:
        parts.append("走访人员：" + "、".join(p["name"] for p in persons))
    if houses:
        parts.append("走访房屋：" + "、".join(h["address"] for h in houses))
    summary = "；".join(parts)
    return (summary[:497] + "…" if len(summary) > 500 else summary) or None


def _grid(conn: Connection, user: Any, point: tuple[float, float] | None) -> Any:
    """The entry's grid: the worker's own, or (an account above a grid) the grid of their position."""
    own = conn.execute(text(
        "SELECT id, path::text AS path, district_code::text AS district_code FROM territory_unit"
        " WHERE path = CAST(:p AS ltree) AND level = 'grid'"), {"p": user.scope_path}).first()
    if own is not None:
        return own
    if point is not None:
        found = conn.execute(text(
            "SELECT id, path::text AS path, district_code::text AS district_code FROM territory_unit"
            " WHERE level = 'grid' AND path <@ CAST(:scope AS ltree)"
            "   AND ST_Covers(boundary, ST_SetSRID(ST_MakePoint(:lon, :lat), 4490)) ORDER BY id LIMIT 1"),
            {"scope": user.scope_path, "lon": point[0], "lat": point[1]}).first()
        if found is not None:
            return found
    raise Invalid("您的账号不属于某个网格，且当前位置不在您辖区的网格内，无法确定日记所属网格 (no grid)")


def _point(lon: float | None, lat: float | None, crs: str) -> tuple[float, float] | None:
    try:
        return optional_point(lon, lat, crs)
    except PositionError as error:
        raise Invalid(str(error)) from None


def _client_id(value: str | None) -> str | None:
    try:
        return validate_client_id(value)
    except ValidationError as error:
        raise Invalid(error.message) from None


def _link(conn: Connection, entry_id: int, persons: list[int], houses: list[int], *, replace: bool) -> None:
    if replace:
        conn.execute(text("DELETE FROM diary_person WHERE diary_id = :d"), {"d": entry_id})
        conn.execute(text("DELETE FROM diary_house WHERE diary_id = :d"), {"d": entry_id})
    for table, column, ids in (("diary_person", "person_id", persons), ("diary_house", "house_id", houses)):
        if ids:
            conn.execute(text(
                f"INSERT INTO {table} (diary_id, {column}, org_path, district_code)"
                " SELECT d.id, x, d.org_path, d.district_code FROM diary d, unnest(CAST(:ids AS bigint[])) x"
                " WHERE d.id = :d"), {"d": entry_id, "ids": ids})


# ---------------------------------------------------------------- writing
def write_entry(conn: Connection, user: Any, entry: DiaryInput) -> tuple[dict, bool]:
    """Store the worker's entry: ``({"id", "version"}, created)``. A ``client_id`` this worker has sent
    before returns the entry it made then, with ``created`` False (the phone's resend)."""
    _require(user, "diary:write", "填写")
    client_id = _client_id(entry.client_id)
    if client_id:
        seen = _by_client_id(conn, user, client_id)
        if seen is not None:
            return seen, False
    content = _content(entry.content)
    day = _date(entry.diary_date)
    point = _point(entry.lon, entry.lat, entry.crs)
    person_ids, house_ids = _ids(entry.person_ids, "走访人员"), _ids(entry.house_ids, "走访房屋")
    persons, houses = _visited(conn, person_ids, house_ids)
    grid = _grid(conn, user, point)
    saved = conn.execute(text("""
        INSERT INTO diary (worker, worker_id, grid_id, diary_date, content, visited, approval, state,
            client_id, geom, source_crs, submitted_at, org_path, district_code, created_by, updated_by)
        VALUES (:worker, :uid, :grid, :day, :content, :visited, :approval, 'submitted', :client_id,
            CASE WHEN CAST(:lon AS float8) IS NULL THEN NULL
                 ELSE ST_SetSRID(ST_MakePoint(:lon, :lat), 4490) END,
            :crs, now(), CAST(:path AS ltree), :district, :uid, :uid)
        ON CONFLICT (worker_id, client_id) WHERE client_id IS NOT NULL DO NOTHING
        RETURNING id, version"""), {
        "worker": user.name, "uid": user.id, "grid": grid.id, "day": day, "content": content,
        "visited": _summary(persons, houses), "approval": APPROVAL_CODES["submitted"],
        "client_id": client_id, "lon": point[0] if point else None, "lat": point[1] if point else None,
        "crs": entry.crs if point else None, "path": grid.path, "district": grid.district_code,
    }).mappings().first()
    if saved is None:  # the same client_id, committed by a concurrent resend meanwhile
        return _by_client_id(conn, user, client_id), False
    _link(conn, saved["id"], person_ids, house_ids, replace=False)
    store_photos(conn, user, "diary", saved["id"], entry.uploads)
    return dict(saved), True


def _by_client_id(conn: Connection, user: Any, client_id: str) -> dict | None:
    row = conn.execute(text(
        "SELECT id, version FROM diary WHERE worker_id = :u AND client_id = :c"),
        {"u": user.id, "c": client_id}).mappings().first()
    return dict(row) if row else None


def _lock(conn: Connection, entry_id: int, version: int | None) -> dict:
    row = conn.execute(text(
        "SELECT id, version, state, worker_id, org_path::text AS org_path FROM diary"
        " WHERE id = :id AND deleted_at IS NULL FOR UPDATE"), {"id": entry_id}).mappings().first()
    if row is None:
        raise NotFound(entry_id)
    if version is not None and int(version) != row["version"]:
        raise Conflict(f"该日记已被修改或审核（当前为第 {row['version']} 版，您看到的是第 {version} 版），"
                       "请刷新后重试 (stale version)")
    return dict(row)


def edit_entry(conn: Connection, user: Any, entry_id: int, *, version: int, content: str | None = None,
               person_ids: Sequence[int] | None = None, house_ids: Sequence[int] | None = None,
               diary_date: dt.date | None = None) -> dict:
    """The author changes a submitted or returned entry; a returned one goes back to the supervisor
    (resubmitted). The fields left None stay as they are. Returns ``{"id", "version"}``."""
    _require(user, "diary:write", "修改")
    row = _lock(conn, entry_id, version)
    if row["worker_id"] != user.id:
        raise Forbidden("只能修改本人填写的日记 (not your entry)")
    if row["state"] == "approved":
        raise Conflict("日记已审核通过，不能再修改 (already approved)")
    assignments = ["state = 'submitted'", "approval = :approval", "submitted_at = now()",
                   "version = version + 1", "updated_at = now()", "updated_by = :uid"]
    params: dict[str, Any] = {"id": entry_id, "uid": user.id, "approval": APPROVAL_CODES["submitted"]}
    if content is not None:
        assignments.append("content = :content")
        params["content"] = _content(content)
    if diary_date is not None:
        assignments.append("diary_date = :day")
        params["day"] = _date(diary_date)
    if person_ids is not None or house_ids is not None:
        current = _links(conn, [entry_id])
        persons = _ids(person_ids if person_ids is not None
                       else [p["id"] for p in current["persons"][entry_id]], "走访人员")
        houses = _ids(house_ids if house_ids is not None
                      else [h["id"] for h in current["houses"][entry_id]], "走访房屋")
        found_persons, found_houses = _visited(conn, persons, houses)
        assignments.append("visited = :visited")
        params["visited"] = _summary(found_persons, found_houses)
        _link(conn, entry_id, persons, houses, replace=True)
    return dict(conn.execute(text(
        f"UPDATE diary SET {', '.join(assignments)} WHERE id = :id RETURNING id, version"),
        params).mappings().one())


def review_entry(conn: Connection, user: Any, entry_id: int, decision: str, note: str | None,
                 version: int) -> dict:
    """Approve or return (with a note) a submitted entry. Returns ``{"id", "version"}``."""
    _require(user, "diary:review", "审核")
    if decision not in DECISIONS:
        raise Invalid("审核结果只能是 approve（通过）或 return（退回）(decision: approve or return)")
    note = (note or "").strip() or None
    if decision == "return" and not note:
        raise Invalid("退回须填写意见，告诉网格员要补充或修改什么 (a return needs a note)")
    if note and len(note) > 2000:
        raise Invalid("审核意见不能超过 2000 字 (note too long)")
    row = _lock(conn, entry_id, version)
    if row["worker_id"] == user.id:
        raise Forbidden("不能审核本人的日记 (not your own entry)")
    if row["org_path"] == str(user.scope_path):
        raise Forbidden("只有网格所在社区或以上的人员可以审核日记 (a supervisor above the grid reviews)")
    if row["state"] != "submitted":
        raise Conflict(f"日记当前为“{STATES[row['state']]}”，不能再审核 (not awaiting review)")
    state = DECISIONS[decision]
    return dict(conn.execute(text("""
        UPDATE diary SET state = :state, approval = :approval, approval_note = :note, reviewed_at = now(),
            reviewed_by = :uid, reviewed_by_name = :uname, version = version + 1, updated_at = now(),
            updated_by = :uid
        WHERE id = :id RETURNING id, version"""), {
        "state": state, "approval": APPROVAL_CODES[state], "note": note, "uid": user.id, "uname": user.name,
        "id": entry_id}).mappings().one())


def add_comment(conn: Connection, user: Any, entry_id: int, body: str) -> dict:
    """A leader's 点评 on an entry: ``{"id", "by", "at", "text"}``."""
    _require(user, "diary:comment", "点评")
    body = (body or "").strip()
    if not body:
        raise Invalid("请填写点评内容 (text required)")
    if len(body) > 2000:
        raise Invalid("点评不能超过 2000 字 (text too long)")
    try:
        with conn.begin_nested():
            row = conn.execute(text("""
                INSERT INTO diary_comment (diary_id, user_id, user_name, body, org_path, district_code)
                SELECT d.id, :uid, :uname, :body, d.org_path, d.district_code FROM diary d
                 WHERE d.id = :id AND d.deleted_at IS NULL
                RETURNING id, user_name AS by, at, body AS text"""),
                {"id": entry_id, "uid": user.id, "uname": user.name, "body": body}).mappings().first()
    except DBAPIError as error:
        if getattr(error.orig, "sqlstate", None) == "42501":
            raise Forbidden("日记不在您的辖区内，不能点评 (outside your territory)") from None
        raise
    if row is None:
        raise NotFound(entry_id)
    # The registry's ``comment`` column: how many, and the latest (the list shows it; no version bump).
    conn.execute(text(
        "UPDATE diary SET comment = (SELECT '共' || count(*) || '条点评，最近 ' || :uname || '：' || :body"
        " FROM diary_comment WHERE diary_id = :id) WHERE id = :id"),
        {"id": entry_id, "uname": user.name, "body": body[:200]})
    return dict(row)


# ---------------------------------------------------------------- reading
_COLUMNS = """
d.id, d.worker, d.worker_id, d.grid_id, g.name AS grid_name, d.diary_date, d.content, d.state,
d.approval_note AS review_note, d.reviewed_by_name AS reviewed_by, d.reviewed_at, d.visited,
ST_X(d.geom) AS lon, ST_Y(d.geom) AS lat, d.created_at, d.submitted_at, d.version
"""
_FROM = "FROM diary d LEFT JOIN territory_unit g ON g.id = d.grid_id"


def _can_read(user: Any) -> None:
    if not any(user.has(p) for p in ("diary:write", "diary:review", "diary:comment",
                                     "registry:diary:read")):
        raise Forbidden("您没有查看民情日记的权限 (diary permission required)")


def _links(conn: Connection, ids: list[int]) -> dict[str, dict[int, list[dict]]]:
    persons: dict[int, list[dict]] = {i: [] for i in ids}
    houses: dict[int, list[dict]] = {i: [] for i in ids}
    comments: dict[int, list[dict]] = {i: [] for i in ids}
    if ids:
        for r in conn.execute(text(
            "SELECT l.diary_id, p.id, p.name FROM diary_person l JOIN person p ON p.id = l.person_id"
            " WHERE l.diary_id = ANY(:ids) ORDER BY p.id"), {"ids": ids}).mappings():
            persons[r["diary_id"]].append({"id": r["id"], "name": r["name"]})
        for r in conn.execute(text(
            f"SELECT l.diary_id, h.id, coalesce({HOUSE_ADDRESS}, '房屋 ' || h.id) AS address"
            " FROM diary_house l JOIN house h ON h.id = l.house_id JOIN building b ON b.id = h.building_id"
            " LEFT JOIN compound c ON c.id = b.compound_id WHERE l.diary_id = ANY(:ids) ORDER BY h.id"),
                {"ids": ids}).mappings():
            houses[r["diary_id"]].append({"id": r["id"], "address": r["address"]})
        for r in conn.execute(text(
            "SELECT diary_id, id, user_name AS by, at, body AS text FROM diary_comment"
            " WHERE diary_id = ANY(:ids) ORDER BY id"), {"ids": ids}).mappings():
            comments[r["diary_id"]].append({"id": r["id"], "by": r["by"], "at": r["at"], "text": r["text"]})
    return {"persons": persons, "houses": houses, "comments": comments}


def _complete(conn: Connection, rows: list[dict]) -> list[dict]:
    ids = [r["id"] for r in rows]
    links = _links(conn, ids)
    photos = photos_of(conn, "diary", ids)
    for r in rows:
        r["state_name"] = STATES[r["state"]]
        r["visited_persons"] = links["persons"][r["id"]]
        r["visited_houses"] = links["houses"][r["id"]]
        r["comments"] = links["comments"][r["id"]]
        r["photos"] = photos[r["id"]]
    return rows


def list_entries(conn: Connection, user: Any, *, worker: str | int | None = None,
                 date_from: dt.date | None = None, date_to: dt.date | None = None, state: str | None = None,
                 page: int = 1, size: int = 20) -> dict:
    """Entries the caller may see, newest day first: ``{"total", "items"}``. ``worker`` is ``"me"`` or a
    user id; the dates are inclusive."""
    _can_read(user)
    clauses, params = ["d.deleted_at IS NULL"], {}
    if worker not in (None, ""):
        if str(worker) == "me":
            worker = user.id
        try:
            params["worker"] = int(worker)
        except (TypeError, ValueError):
            raise Invalid("worker 只能是 me 或用户编号 (worker: me or a user id)") from None
        clauses.append("d.worker_id = :worker")
    if date_from is not None:
        clauses.append("d.diary_date >= :date_from")
        params["date_from"] = date_from
    if date_to is not None:
        clauses.append("d.diary_date <= :date_to")
        params["date_to"] = date_to
    if state not in (None, ""):
        if state not in STATES:
            raise Invalid(f"未知的日记状态 {state!r}，可选 {', '.join(STATES)} (unknown state)")
        clauses.append("d.state = :state")
        params["state"] = state
    page, size = max(1, int(page)), max(1, min(int(size), MAX_PAGE))
    where = " AND ".join(clauses)
    total = conn.execute(text(f"SELECT count(*) FROM diary d WHERE {where}"), params).scalar_one()
    rows = [dict(r) for r in conn.execute(text(
        f"SELECT {_COLUMNS} {_FROM} WHERE {where} ORDER BY d.diary_date DESC, d.id DESC"
        " LIMIT :limit OFFSET :offset"), {**params, "limit": size, "offset": (page - 1) * size}).mappings()]
    audit.record(conn, "list_diary", target_table="diary", detail={
        **{k: v for k, v in params.items()}, "total": total, "page": page, "rows": len(rows)})
    return {"total": total, "page": page, "size": size, "items": _complete(conn, rows)}


def get_entry(conn: Connection, user: Any, entry_id: int) -> dict:
    """One entry with its visited persons and houses, photos and comments."""
    _can_read(user)
    row = conn.execute(text(f"SELECT {_COLUMNS} {_FROM} WHERE d.id = :id AND d.deleted_at IS NULL"),
                       {"id": entry_id}).mappings().first()
    if row is None:
        raise NotFound(entry_id)
    return _complete(conn, [dict(row)])[0]


def entry_photo(conn: Connection, user: Any, entry_id: int, photo_id: int) -> Any:
    """``(filename, content_type, data)`` of a photo of an entry the caller may see."""
    _can_read(user)
    found = photo(conn, "diary", entry_id, photo_id)
    if found is None:
        raise NotFound(entry_id)
    return found


# ---------------------------------------------------------------- figures
def diary_counts(conn: Connection, start: dt.date, end: dt.date) -> dict[int, int]:
    """Per worker (user id), the days in ``start``..``end`` (inclusive) with an entry that stands -- submitted
    or approved, not returned: several entries on one day count once, and a returned one counts when it
    is resubmitted. Within the connection's scope. For the assessment figures."""
    return {r.worker_id: r.days for r in conn.execute(text(
        "SELECT worker_id, count(DISTINCT diary_date) AS days FROM diary"
        " WHERE deleted_at IS NULL AND worker_id IS NOT NULL AND state IN ('submitted', 'approved')"
        "   AND diary_date BETWEEN :start AND :end GROUP BY worker_id"), {"start": start, "end": end})}


__all__ = ["DECISIONS", "STATES", "DiaryError", "DiaryInput", "add_comment", "diary_counts", "edit_entry",
           "entry_photo", "get_entry", "list_entries", "review_entry", "write_entry"]
