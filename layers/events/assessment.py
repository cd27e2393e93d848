"""考核: the assessment figures of a period per grid worker, per unit and per department, with points and
a ranking.

Whose events are whose:

- a **grid worker** (role ``grid_worker``, within the caller's scope) is assessed on the events they
  reported in the period, and on the diary entries (民情日记) they wrote dated in it;
- a **unit** (the grids, communities or streets within the caller's scope: ``level``) on the events
  reported in the period in its territory (属地), and the diary entries of its territory;
- a **department** (code table ``department``) on the events reported in the period that were
  dispatched to it by the period's end.

The figures of those events, as they stood at the period's end (:mod:`layers.events.figures`):
``reported``; ``registered`` (立案, or taken up at once by a grid worker); ``closed`` (结案, or evaluated);
``closure_rate`` = closed / registered; ``on_time`` = closed without any step over its time limit, and
``on_time_rate`` = on_time / closed; ``overdue`` = events that went over a limit (a step finished late,
or the open step past its deadline); ``rework`` (failed verifications, poor evaluations) and
``extensions`` (approved) summed over the events; ``yellow_cards`` / ``red_cards`` issued by the
period's end against the one assessed — against the unit or a unit under it, against the department,
or against the worker's grid while it held the worker's case; ``avg_working_days``: report to closure
in working days (:mod:`layers.events.calendar`), over the closed events.

Points come from a :class:`ScoringModel` (weights per figure, overridable in the settings:
``assessment_weights``). The ranking counts only the rows with at least ``min_cases`` events
(``assessment_min_cases``, default 5) so that one quick case does not top the table; the others are
listed, unranked, after the ranked ones.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from gis.errors import ServiceError
from layers import visits
from layers.xlsx import titled_sheet
from layers.events import calendar
from layers.events.figures import EventFacts, event_facts, group_by_unit, within
from layers.events.period import Period

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DIMENSIONS = {"worker": "网格员", "unit": "单位", "department": "职能部门"}
UNIT_LEVELS = {"grid": "网格", "community": "社区", "street": "街道"}
DEFAULT_MIN_CASES = 5

# The figures of a row, with their Chinese headers, in the table's order.
FIGURES = {
    "reported": "事件数", "registered": "立案数", "closed": "结案数", "closure_rate": "结案率（%）",
    "on_time": "按时办结", "on_time_rate": "按时办结率（%）", "overdue": "超期数", "rework": "返工次数",
    "extensions": "延期次数", "yellow_cards": "黄牌", "red_cards": "红牌",
    "avg_working_days": "平均办理工作日", "diary": "民情日记", "overdue_visits": "逾期走访",
    "points": "得分",
}


class AssessmentError(ServiceError):
    status = 422


@dataclass(frozen=True)
class ScoringModel:
    """Points per figure: a row's points are the sum of figure × weight (rates count in percent / 100,
    so a 100 % closure rate earns the full ``closure_rate`` weight). Penalties are negative."""

    reported: float = 1.0
    closed: float = 2.0
    closure_rate: float = 20.0
    on_time_rate: float = 20.0
    overdue: float = -2.0
    rework: float = -3.0
    extensions: float = -1.0
    yellow_cards: float = -5.0
    red_cards: float = -10.0
    diary: float = 0.5
    overdue_visits: float = -2.0

    @classmethod
    def with_overrides(cls, weights: Mapping[str, float] | None) -> ScoringModel:
        """The default weights with ``weights`` replacing some of them (from ``assessment_weights``)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(weights or {}) - names)
        if unknown:
            raise AssessmentError(f"评分权重 {unknown} 无效，可设置 {', '.join(sorted(names))}"
                                  " (unknown assessment weight)")
        return cls(**{k: float(v) for k, v in (weights or {}).items()})

    def points(self, row: Mapping[str, Any]) -> float:
        total = 0.0
        for f in dataclasses.fields(self):
            value = row.get(f.name) or 0
            if f.name.endswith("_rate"):
                value = value / 100
            total += value * getattr(self, f.name)
        return round(total, 1)


def _rate(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def figures(facts: list[EventFacts], cards: Callable[[EventFacts], list],
            diary: int | None, overdue_visits: int | None = None) -> dict[str, Any]:
    """The figures of one row from its events; ``cards(event)`` picks the cards that count against it."""
    closed = [f for f in facts if f.closed]
    on_time = sum(f.on_time for f in closed)
    registered = sum(f.registered for f in facts)
    own_cards = [c for f in facts for c in cards(f)]
    days = [calendar.working_days_between(f.reported_at, f.closed_at) for f in closed if f.closed_at]
    return {
        "reported": len(facts), "registered": registered, "closed": len(closed),
        "closure_rate": _rate(len(closed), registered), "on_time": on_time,
        "on_time_rate": _rate(on_time, len(closed)), "overdue": sum(f.overdue for f in facts),
        "rework": sum(f.reworks for f in facts), "extensions": sum(f.extensions for f in facts),
        "yellow_cards": sum(c.color == "yellow" for c in own_cards),
        "red_cards": sum(c.color == "red" for c in own_cards),
        "avg_working_days": round(sum(days) / len(days), 2) if days else None,
        "diary": diary,
        "overdue_visits": overdue_visits,
    }


def rank(rows: list[dict[str, Any]], min_cases: int) -> list[dict[str, Any]]:
    """Rank by points (ties share a rank: 1, 2, 2, 4), more closed and a better closure rate first among
    equals; rows with fewer than ``min_cases`` events follow, unranked."""
    def order(row):
        return (-row["points"], -row["closed"], -(row["closure_rate"] or 0), row["name"])

    ranked = sorted((r for r in rows if r["reported"] >= min_cases), key=order)
    previous, position = None, 0
    for i, row in enumerate(ranked, start=1):
        if row["points"] != previous:
            position, previous = i, row["points"]
        row["rank"], row["ranked"] = position, True
    unranked = sorted((r for r in rows if r["reported"] < min_cases), key=order)
    for row in unranked:
        row["rank"], row["ranked"] = None, False
    return ranked + unranked


def _diary_counts(conn: Connection, period: Period, column: str) -> dict[Any, int]:
    # Diary entries dated in the period, not deleted; RLS keeps them to the caller's territory.
    key = {"created_by": "created_by", "org_path": "org_path::text"}[column]
    return {r[0]: r[1] for r in conn.execute(text(
        f"SELECT {key}, count(*) FROM diary WHERE deleted_at IS NULL AND diary_date BETWEEN :s AND :e"
        f" GROUP BY {key}"), {"s": period.start, "e": period.end})}


def _worker_rows(conn: Connection, scope_path: str, period: Period, facts: list[EventFacts]) -> list[dict]:
    workers = conn.execute(text(
        "SELECT u.id, u.name, u.scope_path::text AS path, t.name AS unit_name FROM users u"
        " LEFT JOIN territory_unit t ON t.path = u.scope_path"
        " WHERE u.role = 'grid_worker' AND u.active AND u.scope_path <@ CAST(:scope AS ltree)"
        " ORDER BY u.scope_path, u.name"), {"scope": scope_path}).all()
    diary = _diary_counts(conn, period, "created_by")
    # Overdue follow-up visits are a backlog as of today (a visit's due date moves with every visit, so
    # there is no "overdue at the period's end" to reconstruct): they count against the grid's workers.
    overdue = visits.overdue_by_worker(conn)
    by_reporter: dict[int, list[EventFacts]] = {}
    for f in facts:
        by_reporter.setdefault(f.reported_by, []).append(f)
    rows = []
    for w in workers:
        def cards(f, path=w.path):
            return [c for c in f.cards if c.department is None and c.unit_path == path]
        rows.append({"key": str(w.id), "name": w.name, "unit_name": w.unit_name,
                     **figures(by_reporter.get(w.id, []), cards, diary.get(w.id, 0), overdue.get(w.id, 0))})
    return rows


def _unit_rows(conn: Connection, scope_path: str, period: Period, facts: list[EventFacts],
               level: str) -> list[dict]:
    units = conn.execute(text(
        "SELECT u.path::text AS path, u.name, u.code, p.name AS parent_name FROM territory_unit u"
        " LEFT JOIN territory_unit p ON p.id = u.parent_id"
        " WHERE u.level = :level AND u.path <@ CAST(:scope AS ltree) ORDER BY u.path"),
        {"level": level, "scope": scope_path}).all()
    diary = _diary_counts(conn, period, "org_path")
    overdue = [v["org_path"] for v in visits.overdue_visits(conn)]
    groups = group_by_unit(facts, [u.path for u in units])
    rows = []
    for u in units:
        def cards(f, path=u.path):
            return [c for c in f.cards if c.department is None and within(c.unit_path, path)]
        mine = groups[u.path]
        written = sum(n for path, n in diary.items() if within(path, u.path))
        late = sum(within(path, u.path) for path in overdue)
        rows.append({"key": u.code, "name": u.name, "unit_name": u.parent_name,
                     **figures(mine, cards, written, late)})
    return rows


def _department_rows(conn: Connection, facts: list[EventFacts]) -> list[dict]:
    departments = conn.execute(text(
        "SELECT code, name_zh FROM code_item WHERE table_key = 'department' ORDER BY sort, code")).all()
    rows = []
    for d in departments:
        def cards(f, code=d.code):
            return [c for c in f.cards if c.department == code]
        mine = [f for f in facts if d.code in f.departments]
        rows.append({"key": d.code, "name": d.name_zh, "unit_name": None, **figures(mine, cards, None)})
    return rows


def assessment(conn: Connection, scope_path: str, period: Period, *, by: str = "worker",
               level: str = "community", model: ScoringModel | None = None,
               min_cases: int = DEFAULT_MIN_CASES, now: dt.datetime | None = None) -> dict[str, Any]:
    """The assessment table of ``period`` for the caller's territory, ranked (see the module docstring)."""
    if by not in DIMENSIONS:
        raise AssessmentError(f"考核对象只能是 {', '.join(DIMENSIONS)} (by: worker, unit or department)")
    if by == "unit" and level not in UNIT_LEVELS:
        raise AssessmentError(f"单位层级只能是 {', '.join(UNIT_LEVELS)} (level: grid, community or street)")
    now = now or dt.datetime.now(dt.UTC)
    model = model or ScoringModel()
    facts = event_facts(conn, period, now)
    if by == "worker":
        rows = _worker_rows(conn, scope_path, period, facts)
    elif by == "unit":
        rows = _unit_rows(conn, scope_path, period, facts, level)
    else:
        rows = _department_rows(conn, facts)
    for row in rows:
        row["points"] = model.points(row)
    unit = conn.execute(text("SELECT name FROM territory_unit WHERE path = CAST(:p AS ltree)"),
                        {"p": scope_path}).scalar()
    return {"by": by, "level": level if by == "unit" else None,
            "period": {"start": period.start, "end": period.end, "label": period.label},
            "as_of": period.cut(now), "unit_name": unit, "min_cases": min_cases,
            "weights": dataclasses.asdict(model), "rows": rank(rows, min_cases)}


# ---------------------------------------------------------------- XLSX
def title(report: dict) -> str:
    what = DIMENSIONS[report["by"]]
    if report["by"] == "unit":
        what = UNIT_LEVELS[report["level"]]
    return (f"考核排名（{what}）　{report['period']['label']}　单位：{report['unit_name'] or ''}"
            f"　参与排名最少事件数：{report['min_cases']}")


def table(report: dict) -> tuple[list[str], list[list]]:
    """The ranking as a table (the XLSX sheet and the dashboard's table): unranked rows say so."""
    parent = "所属网格" if report["by"] == "worker" else ("上级单位" if report["by"] == "unit" else "")
    header = ["排名", "名称", *([parent] if parent else []), *FIGURES.values()]
    rows = []
    for row in report["rows"]:
        rows.append([row["rank"] if row["ranked"] else "不参与排名", row["name"],
                     *([row["unit_name"] or ""] if parent else []), *(row[k] for k in FIGURES)])
    return header, rows


def to_xlsx(report: dict) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    header, rows = table(report)
    titled_sheet(book, "考核排名", title(report), header, rows, freeze="C3")
    weights = book.create_sheet("评分规则")
    weights.append(["指标", "权重"])
    for key, weight in report["weights"].items():
        weights.append([FIGURES.get(key, key), weight])
    weights.append(["参与排名最少事件数", report["min_cases"]])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def filename(report: dict) -> str:
    return f"assessment-{report['by']}-{report['period']['start']}-{report['period']['end']}.xlsx"
