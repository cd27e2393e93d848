"""The command wall's figures (指挥大屏): today's counts, events by type, closure ranking by street, the
newest events, open events with their warning lights, and new notices — each one query, all read
through the caller's scoped connection (row-level security decides what is counted).

>>> with scoped_connection(settings, user) as conn:     # doctest: +SKIP
...     kpis(conn)
{'reported': 12, 'registered': 9, 'closed': 7, 'overdue': 3, 'closure_rate': 0.81, 'on_patrol': 41}
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, text

from layers.events import calendar
from layers.patrol import ON_PATROL

OPEN = ("reported", "registered", "dispatched", "handling", "extension_requested", "handled")
DONE = ("closed", "evaluated")
URGENT = ("urgent", "major")
URGENCY_NAMES = {"normal": "一般", "urgent": "紧急", "major": "重大"}
LIGHT_COLORS = {"green": "#2fbf71", "yellow": "#f5c518", "red": "#ef4444", None: "#8ab4f8"}
CLOSURE_WINDOW = dt.timedelta(days=30)

KPI_LABELS = {
    "reported": "今日上报", "registered": "今日立案", "closed": "今日结案", "overdue": "超期未办",
    "closure_rate": "近30日结案率", "on_patrol": "在岗巡查",
}


def _today(now: dt.datetime) -> dt.datetime:
    return dt.datetime.combine(now.astimezone(calendar.BEIJING).date(), dt.time(0), calendar.BEIJING)


def kpis(conn: Connection, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """Today's reported, registered and closed events, open events past their deadline, the share of the
    last 30 days' events closed, and workers with a fix in the last 15 minutes."""
    now = now or dt.datetime.now(dt.UTC)
    row = conn.execute(text(
        "SELECT count(*) FILTER (WHERE reported_at >= :today) AS reported,"
        "       count(*) FILTER (WHERE registered_at >= :today) AS registered,"
        "       count(*) FILTER (WHERE closed_at >= :today) AS closed,"
        "       count(*) FILTER (WHERE status = ANY(:open) AND due_at <= :now) AS overdue,"
        "       count(*) FILTER (WHERE reported_at >= :window AND status <> 'cancelled') AS recent,"
        "       count(*) FILTER (WHERE reported_at >= :window AND status = ANY(:done)) AS recent_done"
        " FROM event WHERE reported_at >= :window OR closed_at >= :today OR registered_at >= :today"
        "    OR status = ANY(:open)"),
        {"today": _today(now), "now": now, "open": list(OPEN), "done": list(DONE),
         "window": now - CLOSURE_WINDOW}).mappings().one()
    on_patrol = conn.execute(text("SELECT count(*) FROM worker_latest WHERE fixed_at >= :since"),
                             {"since": now - ON_PATROL}).scalar()
    return {"reported": row["reported"], "registered": row["registered"], "closed": row["closed"],
            "overdue": row["overdue"],
            "closure_rate": round(row["recent_done"] / row["recent"], 3) if row["recent"] else None,
            "on_patrol": on_patrol}


def events_by_type(conn: Connection, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    """Events reported in ``[start, end)`` by class (the 2-digit code): ``code, name, events``."""
    return [dict(r) for r in conn.execute(text(
        "SELECT left(e.type, 2) AS code, coalesce(c.name_zh, left(e.type, 2)) AS name, count(*) AS events"
        " FROM event e LEFT JOIN code_item c ON c.table_key = 'event_type' AND c.code = left(e.type, 2)"
        " WHERE e.reported_at >= :start AND e.reported_at < :end AND e.status <> 'cancelled'"
        " GROUP BY 1, 2 ORDER BY events DESC, code"), {"start": start, "end": end}).mappings()]


def closure_ranking(conn: Connection, scope: str, start: dt.datetime,
                    end: dt.datetime) -> list[dict[str, Any]]:
    """The units one level below ``scope`` ranked by the share of their events (reported in the
    period) that are closed: ``path, name, events, closed, rate``."""
    depth = conn.execute(text("SELECT nlevel(CAST(:s AS ltree))"), {"s": scope}).scalar() + 1
    return [dict(r) for r in conn.execute(text(
        "SELECT t.path::text AS path, t.name, count(*) AS events,"
        "       count(*) FILTER (WHERE e.status = ANY(:done)) AS closed,"
        "       round(count(*) FILTER (WHERE e.status = ANY(:done))::numeric / count(*), 3)::float8 AS rate"
        " FROM event e JOIN territory_unit t ON nlevel(e.org_path) >= :depth"
        "      AND t.path = subpath(e.org_path, 0, :depth)"
        " WHERE e.reported_at >= :start AND e.reported_at < :end AND e.status <> 'cancelled'"
        " GROUP BY t.path, t.name ORDER BY rate DESC, events DESC, t.path"),
        {"depth": depth, "done": list(DONE), "start": start, "end": end}).mappings()]


def recent_events(conn: Connection, *, limit: int = 20, after_id: int = 0,
                  now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """The newest events (highest id first), with names and warning light."""
    now = now or dt.datetime.now(dt.UTC)
    rows = conn.execute(text(
        "SELECT e.id, e.number, e.title, e.type, ty.name_zh AS type_name, e.urgency, e.status,"
        "       e.reported_at, e.yellow_at, e.due_at, g.name AS grid_name,"
        "       ST_X(e.location) AS lon, ST_Y(e.location) AS lat"
        " FROM event e LEFT JOIN code_item ty ON ty.table_key = 'event_type' AND ty.code = e.type"
        " LEFT JOIN territory_unit g ON g.id = e.grid_id"
        " WHERE e.id > :after ORDER BY e.id DESC LIMIT :limit"), {"after": after_id, "limit": limit})
    return [_with_light(dict(r), now) for r in rows.mappings()]


def open_events(conn: Connection, *, limit: int = 5000,
                now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Open events with a location, for the live markers: ``id, title, urgency, lon, lat, light``."""
    now = now or dt.datetime.now(dt.UTC)
    rows = conn.execute(text(
        "SELECT e.id, e.number, e.title, e.urgency, e.status, e.yellow_at, e.due_at,"
        "       ST_X(e.location) AS lon, ST_Y(e.location) AS lat"
        " FROM event e WHERE e.status = ANY(:open) AND e.location IS NOT NULL"
        " ORDER BY e.due_at NULLS LAST LIMIT :limit"), {"open": list(OPEN), "limit": limit})
    return [_with_light(dict(r), now) for r in rows.mappings()]


def _with_light(row: dict, now: dt.datetime) -> dict:
    row["light"] = calendar.light(now, row.pop("yellow_at"), row.pop("due_at"))
    row["urgency_name"] = URGENCY_NAMES.get(row["urgency"], row["urgency"])
    return row


def recent_notices(conn: Connection, *, after_id: int = 0, limit: int = 5) -> list[dict[str, Any]]:
    """Notices sent (newest first): ``id, title, sender, sent_at``."""
    return [dict(r) for r in conn.execute(text(
        "SELECT id, title, sender, sent_at FROM notice WHERE deleted_at IS NULL AND id > :after"
        " ORDER BY id DESC LIMIT :limit"), {"after": after_id, "limit": limit}).mappings()]


def latest_ids(conn: Connection) -> tuple[int, int]:
    """The highest event and notice ids the caller may see: what a screen opened with."""
    return tuple(conn.execute(text(
        "SELECT (SELECT coalesce(max(id), 0) FROM event), (SELECT coalesce(max(id), 0) FROM notice)")).one())
