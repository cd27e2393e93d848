"""帮扶走访: follow-up visits of special-population and key-youth records, on a schedule per category.

Each category has a visit interval in days (``Settings.visit_intervals``; defaults there, documented).
A record's next visit is due from its latest 帮扶记录 (``assistance_visit``): the ``next_due`` that visit
set, else its date plus the interval; a record never visited is due one interval after it was registered
(the record's ``created_at``). A visit recorded from the phone -- position, photos, a ``client_id`` for
the offline queue's resend -- *is* the 帮扶记录: it goes through :func:`layers.registry_service.add_visit`
(same permission checks, same validation) and sets ``next_due`` one interval on.

What a user sees is their scope (row-level security on the records, the people and the visits) and only
the categories they hold ``special:<category>`` for; names are shown as the registries show them (ID and
phone numbers are not part of these lists at all).

Distances are straight-line (great-circle, PostGIS geography) from the caller's position to the person's
building, not walking routes: the demo district has no street network to route on, and within a grid the
order they give is close to the walking order.

>>> with scoped_connection(settings, worker) as conn:                              # doctest: +SKIP
...     due = visits_due(conn, worker, lon=118.75, lat=32.07, crs="wgs84")
...     saved, created = record_visit(conn, worker, VisitInput("community_correction", 12, "谈话教育"))
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from gis.validation import ValidationError, validate_client_id
from gis.crs import PositionError, optional_point
from gis.errors import ServiceError
from gis.security import audit
from gis.settings import Settings
from layers import registry_service
from layers.events.calendar import beijing_today
from layers.events.service import Upload
from layers.photos import check_uploads, photo, photos_of, store_photos
from layers.registries import REGISTRIES
from layers.registries.population import HOME_ADDRESS, HOME_POINT
from layers.registry import Registry

DEFAULT_INTERVALS: dict[str, int] = Settings.model_fields["visit_intervals"].default_factory()
CATEGORIES: dict[str, Registry] = {key: r for key, r in REGISTRIES.items() if r.visits}
MAX_ITEMS = 500


class VisitError(ServiceError):
    """A refused request about visits."""


class Invalid(VisitError):
    status = 422


@dataclass
class VisitInput:
    registry: str
    record_id: int
    content: str
    visited_on: dt.date | None = None
    lon: float | None = None
    lat: float | None = None
    crs: str = "cgcs2000"
    client_id: str | None = None
    uploads: Sequence[Upload] = field(default_factory=tuple)


def intervals_from(settings: Settings | Mapping[str, int] | None) -> dict[str, int]:
    """Every category's interval in days: the defaults, overridden by what the settings give."""
    given = settings.visit_intervals if isinstance(settings, Settings) else (settings or {})
    merged = {**DEFAULT_INTERVALS, **{k: int(v) for k, v in given.items() if k in CATEGORIES}}
    for key in CATEGORIES:
        merged.setdefault(key, 30)
    bad = [k for k, v in merged.items() if v < 1]
    if bad:
        raise ValueError(f"visit_intervals: {bad} must be at least 1 day")
    return merged


def categories_for(user: Any | None) -> list[Registry]:
    """The categories whose records ``user`` may see (all of them without a user: a job, the wall)."""
    if user is None:
        return list(CATEGORIES.values())
    return [r for r in CATEGORIES.values()
            if user.has(f"special:{r.special}") and user.has(r.permission("read"))]


# ---------------------------------------------------------------- what is due
def _with_due(categories: list[Registry]) -> str:
    """``WITH records, latest, due``: one row per record of the categories -- its person, home, last visit
    and due date. The latest visits are found in one pass over the visits and joined to all records at
    once: joined per category (or looked up per record), the planner, which cannot estimate the scope's
    selectivity, loops over them -- ten times slower on a district."""
    keys = ", ".join(f"'{r.key}'" for r in categories)
    parts = []
    for r in categories:
        parts.append(f"""
        SELECT '{r.key}' AS registry, t.id AS record_id, t.person_id, p.name, {HOME_ADDRESS} AS address,
               ST_X({HOME_POINT}) AS lon, ST_Y({HOME_POINT}) AS lat, t.org_path::text AS org_path,
               CAST(timezone('Asia/Shanghai', t.created_at) AS date) + CAST(:i_{r.key} AS integer)
                   AS first_due, CAST(:i_{r.key} AS integer) AS interval_days
          FROM {r.table_name} t {r.joins}
         WHERE t.deleted_at IS NULL AND p.deleted_at IS NULL AND p.died_on IS NULL""")
    return f"""WITH records AS ({" UNION ALL ".join(parts)}),
    latest AS (
        SELECT DISTINCT ON (v.registry, v.record_id) v.registry, v.record_id, v.visited_on, v.next_due
          FROM assistance_visit v WHERE v.registry IN ({keys})
         ORDER BY v.registry, v.record_id, v.visited_on DESC, v.id DESC),
    due AS (
        SELECT r.registry, r.record_id, r.person_id, r.name, r.address, r.lon, r.lat, r.org_path,
               l.visited_on AS last_visited_on,
               coalesce(l.next_due, l.visited_on + r.interval_days, r.first_due) AS due_on
          FROM records r LEFT JOIN latest l ON l.registry = r.registry AND l.record_id = r.record_id)"""


def _point(lon: float | None, lat: float | None, crs: str) -> tuple[float, float] | None:
    try:
        return optional_point(lon, lat, crs)
    except PositionError as error:
        raise Invalid(str(error)) from None


def _due_rows(conn: Connection, categories: list[Registry], intervals: Mapping[str, int], *,
              on: dt.date, horizon: dt.date | None, point: tuple[float, float] | None,
              limit: int | None, grouped_by_worker: bool = False) -> list[dict]:
    if not categories:
        return []
    params: dict[str, Any] = {f"i_{r.key}": intervals[r.key] for r in categories}
    params |= {"today": on, "horizon": horizon, "lon": point[0] if point else None,
               "lat": point[1] if point else None, "limit": limit}
    distance = ("CASE WHEN CAST(:lon AS float8) IS NULL OR due.lon IS NULL THEN NULL ELSE"
                " round(ST_Distance(ST_SetSRID(ST_MakePoint(due.lon, due.lat), 4490)::geography,"
                " ST_SetSRID(ST_MakePoint(:lon, :lat), 4490)::geography)::numeric, 1) END")
    where = "due.due_on <= CAST(:horizon AS date)" if horizon is not None else "true"
    rows = conn.execute(text(f"""
        {_with_due(categories)}
        SELECT due.*, CAST(:today AS date) - due.due_on AS overdue_days, {distance} AS distance_m,
               count(*) FILTER (WHERE due.due_on < CAST(:today AS date)) OVER () AS overdue_total
          FROM due WHERE {where}
         ORDER BY due.due_on, distance_m NULLS LAST, due.registry, due.record_id
         LIMIT CAST(:limit AS integer)"""), params).mappings()
    found = []
    for row in rows:
        row = dict(row)
        row["registry_zh"] = CATEGORIES[row["registry"]].zh
        row["distance_m"] = float(row["distance_m"]) if row["distance_m"] is not None else None
        found.append(row)
    return found


def visits_due(conn: Connection, user: Any, *, lon: float | None = None, lat: float | None = None,
               crs: str = "wgs84", within_days: int = 14, intervals: Mapping[str, int] | None = None,
               on: dt.date | None = None, limit: int = MAX_ITEMS) -> dict:
    """The caller's visits due within ``within_days`` and overdue: ``{"overdue", "items"}``, earliest due
    first, then nearest to the caller's position (straight-line metres; None without a position).
    ``overdue`` counts every overdue record in scope, ``items`` are at most ``limit``."""
    if not 0 <= int(within_days) <= 366:
        raise Invalid("within_days 须在 0 到 366 之间 (within_days out of range)")
    on = on or beijing_today()
    point = _point(lon, lat, crs)
    categories = categories_for(user)
    rows = _due_rows(conn, categories, intervals_from(intervals), on=on,
                     horizon=on + dt.timedelta(days=int(within_days)), point=point,
                     limit=max(1, min(int(limit), MAX_ITEMS)))
    overdue = rows[0]["overdue_total"] if rows else 0
    audit.record(conn, "list_visits_due", target_table="assistance_visit", detail={
        "categories": [r.key for r in categories], "within_days": within_days, "rows": len(rows),
        "overdue": overdue})
    keys = ("registry", "registry_zh", "record_id", "person_id", "name", "address", "due_on",
            "overdue_days", "distance_m", "lon", "lat", "last_visited_on")
    return {"overdue": overdue, "items": [{k: r[k] for k in keys} for r in rows]}


def overdue_visits(conn: Connection, *, user: Any | None = None, intervals: Mapping[str, int] | None = None,
                   on: dt.date | None = None, limit: int | None = None) -> list[dict]:
    """Every overdue visit in the connection's scope (of the categories ``user`` may see, all without a
    user), most overdue first: for the command wall. ``len()`` of it is the count."""
    on = on or beijing_today()
    rows = _due_rows(conn, categories_for(user), intervals_from(intervals), on=on,
                     horizon=on - dt.timedelta(days=1), point=None, limit=limit)
    keys = ("registry", "registry_zh", "record_id", "person_id", "name", "address", "due_on",
            "overdue_days", "lon", "lat", "org_path", "last_visited_on")
    return [{k: r[k] for k in keys} for r in rows]


def overdue_by_worker(conn: Connection, *, intervals: Mapping[str, int] | None = None,
                      on: dt.date | None = None) -> dict[int, int]:
    """Per grid worker (user id), the overdue visits of the records in their grid: for the assessment
    figures. A grid with two workers counts against both. Within the connection's scope."""
    on = on or beijing_today()
    categories = categories_for(None)
    days = intervals_from(intervals)
    params: dict[str, Any] = {f"i_{r.key}": days[r.key] for r in categories}
    rows = conn.execute(text(f"""
        {_with_due(categories)}
        SELECT u.id AS user_id, count(*) AS n
          FROM due JOIN users u ON u.role = 'grid_worker' AND CAST(due.org_path AS ltree) <@ u.scope_path
         WHERE due.due_on < CAST(:today AS date)
         GROUP BY u.id"""), {**params, "today": on})
    return {r.user_id: r.n for r in rows}


def visits_by_worker(conn: Connection, start: dt.date, end: dt.date) -> dict[int, int]:
    """Per user, the 帮扶记录 they recorded with visit dates in ``start``..``end`` (inclusive)."""
    return {r.uid: r.n for r in conn.execute(text(
        "SELECT coalesce(visitor_id, created_by) AS uid, count(*) AS n FROM assistance_visit"
        " WHERE visited_on BETWEEN :start AND :end AND coalesce(visitor_id, created_by) IS NOT NULL"
        " GROUP BY 1"), {"start": start, "end": end})}


# ---------------------------------------------------------------- recording a visit
def _client_id(value: str | None) -> str | None:
    try:
        return validate_client_id(value)
    except ValidationError as error:
        raise Invalid(error.message) from None


def _seen(conn: Connection, user: Any, client_id: str) -> dict | None:
    row = conn.execute(text(
        "SELECT id, next_due FROM assistance_visit WHERE created_by = :u AND client_id = :c"),
        {"u": user.id, "c": client_id}).mappings().first()
    return dict(row) if row else None


def record_visit(conn: Connection, user: Any, visit: VisitInput,
                 intervals: Mapping[str, int] | None = None) -> tuple[dict, bool]:
    """Record a visit as the record's 帮扶记录: ``({"id", "next_due"}, created)``. A ``client_id`` this
    user has sent before returns the visit it made then, with ``created`` False."""
    registry = CATEGORIES.get(visit.registry)
    if registry is None:
        raise Invalid(f"“{visit.registry}”不是需要走访的类别，可选 {', '.join(CATEGORIES)}"
                      " (unknown registry)")
    registry_service.require(user, registry, "write")
    client_id = _client_id(visit.client_id)
    if client_id and (seen := _seen(conn, user, client_id)) is not None:
        return seen, False
    point = _point(visit.lon, visit.lat, visit.crs)
    uploads = check_uploads(visit.uploads)
    # Today in Beijing -- but registry_service.add_visit refuses dates after the server's own today, which
    # on a UTC server is still yesterday until 08:00 Beijing: take the earlier, never a refusal.
    visited_on = visit.visited_on or beijing_today()
    next_due = visited_on + dt.timedelta(days=intervals_from(intervals)[registry.key])
    try:
        with conn.begin_nested():
            row = registry_service.add_visit(conn, user, registry, visit.record_id, {
                "visited_on": visited_on, "visitor": user.name, "content": visit.content,
                "next_due": next_due})
            conn.execute(text(
                "UPDATE assistance_visit SET visitor_id = :uid, client_id = :client_id, source_crs = :crs,"
                " geom = CASE WHEN CAST(:lon AS float8) IS NULL THEN NULL"
                "             ELSE ST_SetSRID(ST_MakePoint(:lon, :lat), 4490) END"
                " WHERE id = :id"), {
                "uid": user.id, "client_id": client_id, "crs": visit.crs if point else None,
                "lon": point[0] if point else None, "lat": point[1] if point else None, "id": row["id"]})
    except IntegrityError as error:
        # A concurrent resend committed the same client_id first: answer with its visit.
        if getattr(error.orig, "sqlstate", None) == "23505" and client_id:
            seen = _seen(conn, user, client_id)
            if seen is not None:
                return seen, False
        raise
    store_photos(conn, user, "assistance_visit", row["id"], uploads)
    return {"id": row["id"], "next_due": row["next_due"]}, True


class NotFound(VisitError):
    status = 404


def visit_photos(conn: Connection, visit_ids: list[int]) -> dict[int, list[dict]]:
    """The photos of visits, by visit id (for the record's visit list)."""
    return photos_of(conn, "assistance_visit", visit_ids)


def visit_photo(conn: Connection, user: Any, visit_id: int, photo_id: int) -> Any:
    """``(filename, content_type, data)`` of a visit's photo: the visit in scope, and its category one the
    user holds ``special:<category>`` for."""
    registry = conn.execute(text("SELECT registry FROM assistance_visit WHERE id = :id"),
                            {"id": visit_id}).scalar()
    found = None
    if registry in CATEGORIES:
        registry_service.require(user, CATEGORIES[registry], "read")
        found = photo(conn, "assistance_visit", visit_id, photo_id)
    if found is None:
        raise NotFound(f"未找到走访照片 {photo_id}，或其不在您的辖区内 (no such photo in your scope)")
    return found


__all__ = ["CATEGORIES", "DEFAULT_INTERVALS", "VisitError", "VisitInput", "categories_for", "intervals_from",
           "overdue_by_worker", "overdue_visits", "record_visit", "visit_photo", "visit_photos",
           "visits_by_worker", "visits_due"]
