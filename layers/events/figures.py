"""The facts of each event reported in a period, *as they stood at the period's end*, read from the history.

The screening (:mod:`layers.events.screening`) and the assessment (:mod:`layers.events.assessment`)
count these facts in different ways. Reading them from the append-only history rather than from the
event row makes a report of a finished period the same whenever it is run: a case closed after the
period ends is still open in that period's report; a rework after it is not counted in it.

The rows are those row-level security shows the caller (their territory; for a department, what was
dispatched to it).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, text

from layers.events.period import Period
from layers.events.workflow import OPEN

# One row per event reported in [begins, ends), with its state at :cut.
_FACTS = text("""
SELECT e.id, e.type, e.reported_by, e.reported_at, e.registered_at, e.org_path::text AS org_path,
       s.to_status AS status, s.step_no,
       h.closed_at, h.late_steps, h.reworks, h.extensions, h.escalated,
       coalesce(h.departments, ARRAY[]::text[]) AS departments,
       fb.handled_level,
       CASE WHEN nx.found THEN nx.due_at ELSE e.due_at END AS open_due_at
  FROM event e
  -- the status at the cut: the last action before it
  JOIN LATERAL (
        SELECT to_status, step_no FROM event_history
         WHERE event_id = e.id AND at < :cut ORDER BY at DESC, id DESC LIMIT 1) s ON true
  LEFT JOIN territory_unit c ON c.level = 'community' AND e.org_path <@ c.path
  LEFT JOIN LATERAL (
        SELECT max(at) FILTER (WHERE to_status = 'closed') AS closed_at,
               count(*) FILTER (WHERE late) AS late_steps,
               count(*) FILTER (WHERE action IN ('verify', 'evaluate') AND to_status = 'handling') AS reworks,
               count(*) FILTER (WHERE action = 'approve_extension') AS extensions,
               -- left the community upward: passed up from inside it to a unit above, or reported
               -- by one of its people straight to the district (直报)
               coalesce(bool_or(c.path IS NOT NULL AND (
                   (action IN ('escalate', 'direct_report') AND from_unit_path <@ c.path
                    AND NOT to_unit_path <@ c.path)
                   OR (action = 'report' AND detail->>'direct' = 'true'
                       AND EXISTS (SELECT 1 FROM users r WHERE r.id = user_id AND r.scope_path <@ c.path)))),
                   false) AS escalated,
               array_agg(DISTINCT to_department) FILTER (WHERE action = 'dispatch') AS departments
          FROM event_history WHERE event_id = e.id AND at < :cut) h ON true
  -- who solved it: the holder at the last feedback before the cut
  LEFT JOIN LATERAL (
        SELECT CASE WHEN f.to_department IS NOT NULL THEN 'department' ELSE u.level END AS handled_level
          FROM event_history f LEFT JOIN territory_unit u ON u.path = f.to_unit_path
         WHERE f.event_id = e.id AND f.at < :cut AND f.action = 'feedback'
         ORDER BY f.at DESC, f.id DESC LIMIT 1) fb ON true
  -- the deadline of the step open at the cut: recorded by the action that ended it, if one came later
  LEFT JOIN LATERAL (
        SELECT true AS found, n.due_at FROM event_history n
         WHERE n.event_id = e.id AND n.at >= :cut AND n.step_no > s.step_no
         ORDER BY n.at, n.id LIMIT 1) nx ON true
 WHERE e.reported_at >= :begins AND e.reported_at < :ends
   AND (CAST(:within AS ltree) IS NULL OR e.org_path <@ CAST(:within AS ltree))
 ORDER BY e.id
""")

_CARDS = text("""
SELECT c.event_id, c.color, c.unit_path::text AS unit_path, c.department
  FROM event_card c JOIN event e ON e.id = c.event_id
 WHERE e.reported_at >= :begins AND e.reported_at < :ends AND c.issued_at < :cut
   AND (CAST(:within AS ltree) IS NULL OR e.org_path <@ CAST(:within AS ltree))
 ORDER BY c.id
""")


@dataclass(frozen=True)
class Card:
    event_id: int
    color: str
    unit_path: str
    department: str | None


@dataclass
class EventFacts:
    id: int
    type: str
    reported_by: int | None
    reported_at: dt.datetime
    registered: bool
    org_path: str
    status: str                     # at the cut
    closed_at: dt.datetime | None   # the last closing before the cut, when closed at the cut
    late_steps: int                 # steps finished after their deadline
    reworks: int                    # failed verifications and poor evaluations
    extensions: int                 # approved extensions
    escalated: bool                 # passed up out of its community, or reported from it to the district
    departments: list[str]          # dispatched to, before the cut
    handled_level: str | None       # grid … district, or department: who fed back last
    overdue_open: bool              # open at the cut with its step's deadline passed
    cards: list[Card]

    @property
    def closed(self) -> bool:
        return self.status in ("closed", "evaluated")

    @property
    def cancelled(self) -> bool:
        return self.status == "cancelled"

    @property
    def overdue(self) -> bool:
        """Went over a time limit by the cut: a step finished late, or the open one past its deadline."""
        return self.late_steps > 0 or self.overdue_open

    @property
    def on_time(self) -> bool:
        return self.closed and not self.overdue

    @property
    def is_dispute(self) -> bool:
        return self.type.startswith("01")


def event_facts(conn: Connection, period: Period, now: dt.datetime, *,
                within: str | None = None) -> list[EventFacts]:
    """The events reported in ``period`` (optionally within a territory path), as they stood at
    ``period.cut(now)``."""
    cut = period.cut(now)
    params = {"begins": period.begins, "ends": period.ends, "cut": cut, "within": within}
    cards: dict[int, list[Card]] = {}
    for row in conn.execute(_CARDS, params):
        cards.setdefault(row.event_id, []).append(
            Card(row.event_id, row.color, row.unit_path, row.department))
    facts = []
    for r in conn.execute(_FACTS, params).mappings():
        closed = r["status"] in ("closed", "evaluated")
        facts.append(EventFacts(
            id=r["id"], type=r["type"], reported_by=r["reported_by"], reported_at=r["reported_at"],
            registered=r["registered_at"] is not None and r["registered_at"] < cut, org_path=r["org_path"],
            status=r["status"], closed_at=r["closed_at"] if closed else None, late_steps=r["late_steps"] or 0,
            reworks=r["reworks"] or 0, extensions=r["extensions"] or 0, escalated=bool(r["escalated"]),
            departments=sorted(d for d in r["departments"] if d), handled_level=r["handled_level"],
            overdue_open=(r["status"] in OPEN and r["open_due_at"] is not None and r["open_due_at"] <= cut),
            cards=cards.get(r["id"], [])))
    return facts


def group_by_unit(facts: list[EventFacts], unit_paths: list[str]) -> dict[str, list[EventFacts]]:
    """The events under each of ``unit_paths`` (units of one level, which do not nest): one pass over the
    events, each looked up by the prefixes of its path, rather than every event tested for every unit."""
    groups: dict[str, list[EventFacts]] = {path: [] for path in unit_paths}
    for f in facts:
        labels = f.org_path.split(".")
        for n in range(len(labels), 0, -1):
            group = groups.get(".".join(labels[:n]))
            if group is not None:
                group.append(f)
                break
    return groups


def within(path: str, scope: str) -> bool:
    """``path`` is ``scope`` or below it (ltree ``<@``)."""
    return path == scope or path.startswith(scope + ".")
