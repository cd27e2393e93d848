"""矛盾纠纷"半月一排查一上报": the half-monthly dispute screening, per community, from the events.

For a period (by custom a half-month: the 1st–15th, the 16th–end) and a unit (the caller's territory by
default; a district, street or community), each community under it — every one, so a quiet community
files its zero report (零报告) too — and the total:

- ``screened`` (排查): disputes (event class ``01``) reported in the period;
- ``resolved`` (化解): of those, closed (结案, or evaluated) by the period's end;
- ``escalated`` (上报): of those, that left the community upward before the period's end — passed up
  from the community or one of its grids to the street or the district, or reported by the community's
  people straight to the district (直报 of an urgent or major case). A case taken in above the community
  (a walk-in at the street, a hotline call at the district) never was the community's to pass up;
- ``outstanding`` (在办): of those, neither resolved nor cancelled at the period's end;
- ``cancelled`` (注销): of those, refused as cases (duplicates, untrue) — so that
  ``screened = resolved + outstanding + cancelled``; ``escalated`` cuts across the three;
- ``by_kind``: screened per dispute kind (the 4-digit ``01xx`` codes of the code table ``event_type``).

The "小事不出格、大事不出社区" share: of the cases reported in the period and closed by its end, those
solved at the grid (the last feedback came from the grid), and at the grid or the community — for
disputes per community and in total, and for all events in total.

The figures stand as at the period's end (:mod:`layers.events.figures`), so the report of a past
half-month does not change when it is run again. Which events count is the caller's business: row-level
security shows their territory only.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from gis.errors import ServiceError
from layers.events.figures import EventFacts, event_facts, group_by_unit, within
from layers.xlsx import titled_sheet
from layers.events.period import Period

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
COUNTS = ("screened", "resolved", "escalated", "outstanding", "cancelled")
COUNT_NAMES = {"screened": "排查数", "resolved": "化解数", "escalated": "上报数", "outstanding": "在办数",
               "cancelled": "注销数"}
SHARE_NAMES = {"closed": "结案数", "closed_at_grid": "网格内结案", "closed_in_community": "社区内结案",
               "grid_share": "小事不出格（%）", "community_share": "大事不出社区（%）"}
SCREENABLE_LEVELS = ("district", "street", "community")


class UnitNotFound(ServiceError):
    status = 404


class UnitNotScreenable(ServiceError):
    status = 422


@dataclass(frozen=True)
class Unit:
    code: str
    name: str
    path: str
    level: str


def _unit(conn: Connection, sql: str, **params) -> Unit | None:
    row = conn.execute(text(f"SELECT code, name, path::text AS path, level FROM territory_unit WHERE {sql}"),
                       params).first()
    return Unit(*row) if row else None


def report_unit(conn: Connection, scope_path: str, code: str | None) -> Unit:
    """The unit a report is for: ``code`` (a district, street or community within the caller's scope),
    else the caller's own unit — for a grid worker, their grid's community, narrowed to what they see."""
    if code:
        unit = _unit(conn, "code = :code", code=code)
        if unit is None or not within(unit.path, scope_path):
            raise UnitNotFound(f"单位 {code} 不存在或不在您的辖区内 (no such unit in your scope)")
        if unit.level not in SCREENABLE_LEVELS:
            raise UnitNotScreenable(
                f"请选择区、街道或社区，而不是{unit.name} (pick a district, street or community)")
        return unit
    unit = _unit(conn, "path = CAST(:p AS ltree)", p=scope_path)
    if unit is None:
        raise UnitNotFound("找不到您所在的单位 (your unit is missing)")
    if unit.level == "grid":
        community = _unit(conn, "level = 'community' AND path @> CAST(:p AS ltree)", p=scope_path)
        return community or unit
    return unit


def dispute_kinds(conn: Connection) -> list[dict[str, str]]:
    """The dispute kinds of the code table, in its order."""
    return [dict(r) for r in conn.execute(text(
        "SELECT code, name_zh AS name FROM code_item WHERE table_key = 'event_type'"
        " AND code LIKE '01%' AND length(code) = 4 ORDER BY sort, code")).mappings()]


def _counts(facts: list[EventFacts], kinds: list[dict]) -> dict[str, Any]:
    disputes = [f for f in facts if f.is_dispute]
    row: dict[str, Any] = {
        "screened": len(disputes),
        "resolved": sum(f.closed for f in disputes),
        "escalated": sum(f.escalated for f in disputes),
        "outstanding": sum(not f.closed and not f.cancelled for f in disputes),
        "cancelled": sum(f.cancelled for f in disputes),
        "by_kind": {k["code"]: sum(f.type == k["code"] for f in disputes) for k in kinds},
    }
    row.update(_share(disputes))
    return row


def _percent(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def _share(facts: list[EventFacts]) -> dict[str, Any]:
    closed = [f for f in facts if f.closed]
    at_grid = sum(f.handled_level == "grid" for f in closed)
    in_community = sum(f.handled_level in ("grid", "community") for f in closed)
    return {"closed": len(closed), "closed_at_grid": at_grid, "closed_in_community": in_community,
            "grid_share": _percent(at_grid, len(closed)),
            "community_share": _percent(in_community, len(closed))}


def screening(conn: Connection, scope_path: str, period: Period, *, unit_code: str | None = None,
              now: dt.datetime | None = None) -> dict[str, Any]:
    """The screening report of ``period`` for a unit (see the module's docstring for the figures)."""
    now = now or dt.datetime.now(dt.UTC)
    unit = report_unit(conn, scope_path, unit_code)
    kinds = dispute_kinds(conn)
    if unit.level == "grid":
        communities = []
    elif unit.level == "community":
        communities = [unit]
    else:
        communities = [Unit(*r) for r in conn.execute(text(
            "SELECT code, name, path::text, level FROM territory_unit WHERE level = 'community'"
            " AND path <@ CAST(:p AS ltree) ORDER BY path"), {"p": unit.path})]
    streets = {r.path: r.name for r in conn.execute(text(
        "SELECT path::text AS path, name FROM territory_unit WHERE level = 'street'"))}
    facts = event_facts(conn, period, now, within=unit.path)
    groups = group_by_unit(facts, [c.path for c in communities])
    rows = []
    for community in communities:
        mine = groups[community.path]
        street = next((name for path, name in streets.items() if within(community.path, path)), None)
        rows.append({"code": community.code, "name": community.name, "path": community.path,
                     "street": street, **_counts(mine, kinds)})
    total = {"code": unit.code, "name": "合计", "path": unit.path, "street": None, **_counts(facts, kinds)}
    disputes = [f for f in facts if f.is_dispute]
    by_kind = []
    for kind in kinds:
        of_kind = [f for f in disputes if f.type == kind["code"]]
        counts = _counts(of_kind, [])
        by_kind.append({"code": kind["code"], "name": kind["name"], **{k: counts[k] for k in COUNTS}})
    share = [{"scope": "disputes", "name": "矛盾纠纷", **_share(disputes)},
             {"scope": "all", "name": "全部事件", **_share(facts)}]
    return {"period": {"start": period.start, "end": period.end, "label": period.label},
            "as_of": period.cut(now), "unit": {"code": unit.code, "name": unit.name, "path": unit.path,
                                               "level": unit.level},
            "kinds": kinds, "communities": rows, "total": total, "by_kind": by_kind, "share": share}


# ---------------------------------------------------------------- XLSX
def title(report: dict) -> str:
    period, unit = report["period"]["label"], report["unit"]["name"]
    return f"矛盾纠纷排查化解情况（半月一排查一上报）　{period}　单位：{unit}"


def community_table(report: dict) -> tuple[list[str], list[list]]:
    """The per-community view as a table (the XLSX sheet and the dashboard's table)."""
    kinds = report["kinds"]
    header = ["社区", "所属街道", *(COUNT_NAMES[k] for k in COUNTS), *(k["name"] for k in kinds),
              *SHARE_NAMES.values()]
    rows = []
    for row in [*report["communities"], report["total"]]:
        rows.append([row["name"], row["street"] or "", *(row[k] for k in COUNTS),
                     *(row["by_kind"][k["code"]] for k in kinds), *(row[k] for k in SHARE_NAMES)])
    return header, rows


def to_xlsx(report: dict) -> bytes:
    """One sheet per view: per community (with the total), per dispute kind, and the share."""
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    heading = title(report)
    header, rows = community_table(report)
    titled_sheet(book, "分社区", heading, header, rows)
    titled_sheet(book, "分类型", heading, ["纠纷类型", *(COUNT_NAMES[k] for k in COUNTS)],
           [[k["name"], *(k[c] for c in COUNTS)] for k in report["by_kind"]])
    titled_sheet(book, "化解层级", heading, ["范围", *SHARE_NAMES.values()],
           [[s["name"], *(s[k] for k in SHARE_NAMES)] for s in report["share"]])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def filename(report: dict) -> str:
    period = report["period"]
    return f"dispute-screening-{report['unit']['code']}-{period['start']}-{period['end']}.xlsx"
