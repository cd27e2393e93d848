"""大数据统计分析: the statistics page's figures, each one set-based query read through the caller's scoped
connection (row-level security decides what is counted) and limited to one area of the territory tree.

Every figure is a :class:`Figure`: a title, its columns (key, Chinese label) and rows, which the page
draws as a chart, shows as a table and exports as XLSX -- one shape, so nothing is written twice.
Figures "by area" count under each child unit of the chosen area (a district's streets, a street's
communities, a community's grids): a row belongs to the child whose path starts its ``org_path``. Rows
recorded on the area itself, not under any child, are shown as one more row, 本级直属, so the bars add
up to the area's total.

>>> with scoped_connection(settings, user) as conn:                                  # doctest: +SKIP
...     population_by_area(conn, "320106").rows
[{'path': '320106.320106001', 'name': '宁海路街道', 'people': 2}, ...]
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, text

from gis.errors import ServiceError
from layers.events.calendar import BEIJING
from layers.registries import REGISTRIES
from layers.registry import Registry

DONE = ("closed", "evaluated")
SPECIAL: dict[str, Registry] = {r.special: r for r in REGISTRIES.values() if r.special}
OWN_LEVEL = "本级直属"


class StatisticsError(ServiceError):
    status = 422


@dataclass
class Figure:
    key: str
    title: str
    columns: list[tuple[str, str]]          # (key, label); the first one or two name the row
    rows: list[dict[str, Any]] = field(default_factory=list)
    label: str = "name"                     # the column naming a bar
    values: list[str] = field(default_factory=list)   # the columns drawn (stacked when several)

    def total(self, column: str) -> float:
        return sum(r[column] or 0 for r in self.rows)

    def xlsx(self) -> bytes:
        """The figure's table as an XLSX workbook (header row, then the rows)."""
        from openpyxl import Workbook

        book = Workbook()
        sheet = book.active
        sheet.title = self.title[:31]
        sheet.append([label for _, label in self.columns])
        for row in self.rows:
            sheet.append([row.get(key) for key, _ in self.columns])
        buffer = io.BytesIO()
        book.save(buffer)
        return buffer.getvalue()


# ---------------------------------------------------------------- areas
def area(conn: Connection, path: str) -> dict[str, Any]:
    """The unit at ``path`` (in the caller's view): ``path, name, level``; 422 when there is none."""
    row = conn.execute(text("SELECT path::text AS path, name, level FROM territory_unit"
                            " WHERE path = CAST(:p AS ltree)"), {"p": path}).mappings().first()
    if row is None:
        raise StatisticsError(f"区域 {path} 不存在")
    return dict(row)


def children(conn: Connection, path: str) -> list[dict[str, Any]]:
    """The units directly under ``path``: ``path, name, level``, by code."""
    return [dict(r) for r in conn.execute(text(
        "SELECT c.path::text AS path, c.name, c.level FROM territory_unit c"
        " JOIN territory_unit p ON c.parent_id = p.id WHERE p.path = CAST(:p AS ltree)"
        " ORDER BY c.code"), {"p": path}).mappings()]


def check_area(path: str, scope: str) -> str:
    """``path`` if it lies within ``scope`` (an area above the viewer's scope would count only part of
    it, and silently: refuse it instead)."""
    parts, mine = str(path).split("."), str(scope).split(".")
    if parts[:len(mine)] != mine or not all(p.isalnum() for p in parts):
        raise StatisticsError("所选区域不在您的辖区内")
    return str(path)


def _by_child(conn: Connection, path: str, inner: str, values: dict[str, str],
              params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """``values`` (column → aggregate over the rows of ``inner``, a query with ``org_path``) per child
    of ``path``, children with nothing as zeros, and a 本级直属 row when rows sit on ``path`` itself."""
    aggregates = ", ".join(f"{expr} AS {name}" for name, expr in values.items())
    outer = ", ".join(f"coalesce(x.{name}, 0) AS {name}" for name in values)
    sql = f"""
        WITH p AS (SELECT id, path FROM territory_unit WHERE path = CAST(:path AS ltree)),
        x AS (SELECT CASE WHEN nlevel(r.org_path) > nlevel(p.path)
                          THEN subpath(r.org_path, 0, nlevel(p.path) + 1) ELSE p.path END AS child,
                     {aggregates}
                FROM ({inner}) r, p WHERE r.org_path <@ p.path GROUP BY 1)
        SELECT c.path::text AS path, c.name, {outer}, c.code AS sort
          FROM territory_unit c JOIN p ON c.parent_id = p.id LEFT JOIN x ON x.child = c.path
        UNION ALL
        SELECT p.path::text, :own, {outer}, '~' FROM p JOIN x ON x.child = p.path
        ORDER BY sort"""
    rows = conn.execute(text(sql), {"path": path, "own": OWN_LEVEL, **(params or {})}).mappings()
    return [{k: (int(v) if k in values and v is not None else v) for k, v in r.items() if k != "sort"}
            for r in rows]


# ---------------------------------------------------------------- the figures
def population_by_area(conn: Connection, path: str) -> Figure:
    """实有人口 (living, not deleted) per child unit."""
    rows = _by_child(conn, path, "SELECT org_path FROM person WHERE deleted_at IS NULL AND died_on IS NULL",
                     {"people": "count(*)"})
    return Figure("population", "实有人口（按区域）", [("name", "区域"), ("people", "人数")], rows,
                  values=["people"])


def teams_by_area(conn: Connection, path: str) -> Figure:
    """综治队伍 (teams in service, their registered strength) and 群防群治队伍 members, per child unit."""
    inner = ("SELECT org_path, 1 AS team, coalesce(member_count, 0) AS strength, 0 AS member FROM zz_team"
             " WHERE deleted_at IS NULL AND dissolved_on IS NULL"
             " UNION ALL SELECT org_path, 0, 0, 1 FROM mass_team_member WHERE deleted_at IS NULL")
    rows = _by_child(conn, path, inner, {"teams": "sum(team)", "team_strength": "sum(strength)",
                                         "mass_members": "sum(member)"})
    return Figure("teams", "群防群治队伍（按区域）",
                  [("name", "区域"), ("teams", "综治队伍数"), ("team_strength", "综治队伍人数"),
                   ("mass_members", "群防群治队员数")], rows, values=["teams", "mass_members"])


def special_categories(user: Any) -> list[Registry]:
    """The special-population categories ``user`` may count: ``special:<category>`` and read."""
    return [r for r in SPECIAL.values()
            if user.has(f"special:{r.special}") and user.has(r.permission("read"))]


def special_by_area(conn: Connection, path: str, user: Any) -> Figure:
    """Special populations per child unit, one column per category the user holds ``special:<cat>`` for
    (the others are not counted at all, not even as a total)."""
    categories = special_categories(user)
    columns = [("name", "区域"), *((r.key, r.zh) for r in categories)]
    if not categories:
        return Figure("special", "特殊人群（按类别、区域）", columns, [], values=[])
    inner = " UNION ALL ".join(
        f"SELECT org_path, '{r.key}' AS category FROM {r.table_name} WHERE deleted_at IS NULL"
        for r in categories)
    rows = _by_child(conn, path, inner, {r.key: f"count(*) FILTER (WHERE category = '{r.key}')"
                                         for r in categories})
    return Figure("special", "特殊人群（按类别、区域）", columns, rows, values=[r.key for r in categories])


def _local(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), BEIJING)


def events_by_type(conn: Connection, path: str, start: dt.date, end: dt.date) -> Figure:
    """Events reported ``start``..``end`` (inclusive, Beijing dates) under ``path``, by class."""
    rows = [dict(r) for r in conn.execute(text(
        "SELECT left(e.type, 2) AS code, coalesce(c.name_zh, left(e.type, 2)) AS name, count(*) AS events"
        " FROM event e LEFT JOIN code_item c ON c.table_key = 'event_type' AND c.code = left(e.type, 2)"
        " WHERE e.org_path <@ CAST(:path AS ltree) AND e.reported_at >= :start AND e.reported_at < :end"
        "   AND e.status <> 'cancelled'"
        " GROUP BY 1, 2 ORDER BY events DESC, code"),
        {"path": path, "start": _local(start), "end": _local(end + dt.timedelta(days=1))}).mappings()]
    return Figure("events_by_type", "事件（按类型）",
                  [("code", "代码"), ("name", "类型"), ("events", "件数")], rows, values=["events"])


def events_by_month(conn: Connection, path: str, start: dt.date, end: dt.date) -> Figure:
    """Events reported, and of those closed, per Beijing month ``start``..``end``, under ``path``;
    months with none are zeros."""
    rows = [dict(r) for r in conn.execute(text(
        "WITH m AS (SELECT to_char(d, 'YYYY-MM') AS month FROM generate_series("
        "             date_trunc('month', CAST(:d0 AS date)), CAST(:d1 AS date), interval '1 month') d),"
        " e AS (SELECT to_char(reported_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM') AS month, status"
        "         FROM event WHERE org_path <@ CAST(:path AS ltree) AND reported_at >= :start"
        "          AND reported_at < :end AND status <> 'cancelled')"
        " SELECT m.month AS name, count(e.month) AS events,"
        "        count(e.month) FILTER (WHERE e.status = ANY(:done)) AS closed"
        " FROM m LEFT JOIN e ON e.month = m.month GROUP BY m.month ORDER BY m.month"),
        {"path": path, "d0": start, "d1": end, "start": _local(start),
         "end": _local(end + dt.timedelta(days=1)), "done": list(DONE)}).mappings()]
    return Figure("events_by_month", "事件（按月）",
                  [("name", "月份"), ("events", "上报"), ("closed", "已结案")], rows,
                  values=["events", "closed"])


def closure_by_unit(conn: Connection, path: str, start: dt.date, end: dt.date) -> Figure:
    """Per child unit, the events reported ``start``..``end`` and the share of them closed, best first."""
    rows = _by_child(conn, path, (
        "SELECT org_path, (status = ANY(:done))::int AS done FROM event"
        " WHERE reported_at >= :start AND reported_at < :end AND status <> 'cancelled'"),
        {"events": "count(*)", "closed": "sum(done)"},
        {"start": _local(start), "end": _local(end + dt.timedelta(days=1)), "done": list(DONE)})
    for r in rows:
        r["rate"] = round(r["closed"] / r["events"], 3) if r["events"] else None
    rows.sort(key=lambda r: (r["rate"] is None, -(r["rate"] or 0), -r["events"], r["path"]))
    return Figure("closure", "结案率（按单位）",
                  [("name", "单位"), ("events", "上报"), ("closed", "已结案"), ("rate", "结案率")], rows,
                  values=["rate"])


def houses_by_use(conn: Connection, path: str) -> Figure:
    """Houses under ``path`` as 自住 / 出租 / 空置: rented when marked rented (出租房屋), vacant when nobody
    lives there now (no current residence), otherwise lived in by the owner -- derived from what the
    registers hold, so the three always add up to the houses."""
    rows = [dict(r) for r in conn.execute(text(
        "WITH u AS (SELECT CASE WHEN h.is_rented THEN 'rented'"
        "                       WHEN NOT EXISTS (SELECT 1 FROM residence r WHERE r.house_id = h.id"
        "                                         AND r.until IS NULL) THEN 'vacant'"
        "                       ELSE 'owner' END AS code"
        "             FROM house h WHERE h.org_path <@ CAST(:path AS ltree) AND h.deleted_at IS NULL)"
        " SELECT k.code, k.name, count(u.code) AS houses"
        " FROM (VALUES ('owner', '自住', 1), ('rented', '出租', 2), ('vacant', '空置', 3)) k(code, name, n)"
        " LEFT JOIN u ON u.code = k.code GROUP BY k.code, k.name, k.n ORDER BY k.n"),
        {"path": path}).mappings()]
    return Figure("houses", "房屋（自住/出租/空置）",
                  [("code", "代码"), ("name", "用途"), ("houses", "套数")], rows, values=["houses"])


def all_figures(conn: Connection, path: str, user: Any, start: dt.date, end: dt.date) -> list[Figure]:
    """Every figure of the page for one area and period."""
    return [population_by_area(conn, path), teams_by_area(conn, path), special_by_area(conn, path, user),
            events_by_type(conn, path, start, end), events_by_month(conn, path, start, end),
            closure_by_unit(conn, path, start, end), houses_by_use(conn, path)]
