"""A year of demo events in the demo district, walked through the real state machine.

Nothing here writes a final state: every case is reported with :func:`layers.events.report` and moved on
with :func:`layers.events.act`, by people at the right units, on a simulated clock — so the history,
deadlines, lights, late steps and cards are exactly what the system itself would have produced. A case
whose walk reaches the present stops where it is: the demo always has open cases in every status, some
of them overdue.

Places cluster: a few grids are hot spots (a market street, an old compound) with several times the
cases of the others, and within them cases gather around a few points.

``load_demo_events(settings, n, seed)`` replaces the previous demo events (it empties the event tables)
and is deterministic for (n, seed, today). Run it after the demo district is loaded.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Connection, text

from gis.db import owner_engine
from gis.security.roles import ROLES
from gis.settings import Settings
from layers import events
from layers.events import calendar
from layers.events.rules import DEFAULT_RULES

DEFAULT_EVENTS = 3000
DEFAULT_SEED = 2026

Progress = Callable[[str, int, int], None]

# Event classes and their share of the cases (city appearance dominates, as in every 数字城管 centre).
CLASS_SHARE = {"05": 0.33, "01": 0.22, "04": 0.15, "03": 0.10, "02": 0.12, "99": 0.08}
SOURCE_SHARE = {"app": 0.62, "walk_in": 0.1, "phone": 0.08, "hotline": 0.12, "superior": 0.03, "camera": 0.05}
# How far a case gets before someone solves it: the grid, the community, the street, a department.
SCENARIO_SHARE = {"grid": 0.42, "community": 0.2, "street": 0.1, "department": 0.2, "direct": 0.03,
                  "cancelled": 0.05}
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国文斌宇浩凯晨雪梅玲燕红鹏飞"
COMMENTS = {
    "escalate": ["本级无法解决，提请上级协调", "涉及多方，需上级统筹", "超出本级职权"],
    "self_handle": ["本级受理处置", "已安排人员处置"],
    "feedback": ["已处理完毕，现场恢复正常", "已协调相关方达成一致", "已整改到位", "已清理完毕"],
    "verify_fail": ["现场问题依旧", "整改不到位", "群众反映仍未解决"],
    "return": ["不属本部门职责，请重新派遣", "事件信息不全，请补充后派遣"],
    "extension": ["需走法定程序，申请延期", "涉及多方协调，申请延期"],
    "cancel": ["重复上报", "经核实不属实", "不属于受理范围"],
    "supervise": ["请加快办理进度", "群众多次反映，请尽快办结"],
}


@dataclass
class DemoEventsReport:
    n: int
    seed: int
    counts: dict[str, int]          # status → events
    history_rows: int
    cards: int
    seconds: float


class _Walk:
    """One case's walk: the clock, the event as last seen, and the people who act on it."""

    def __init__(self, loader: _Loader, event: dict, t: dt.datetime):
        self.loader, self.event, self.t = loader, event, t

    def step(self, action: str, who: events.Actor, *, late: bool | None = None, **request) -> bool:
        """Advance the clock by how long this step took, then act; False once the present is reached."""
        self.t = self.loader.after(self.t, self.event, late)
        if self.t >= self.loader.present:
            return False
        self.event = events.act(self.loader.conn, who, self.event["id"], action,
                                events.ActionRequest(version=self.event["version"], **request), now=self.t,
                                full=False)
        return True


class _Loader:
    def __init__(self, conn: Connection, rng: np.random.Generator, present: dt.datetime):
        self.conn, self.rng, self.present = conn, rng, present
        self.units = {r.path: r for r in conn.execute(text(
            "SELECT id, path::text AS path, level, name, district_code::text AS district_code"
            " FROM territory_unit WHERE level IN ('district', 'street', 'community', 'grid')"))}
        kinds = [k for k in self.codes("event_type") if len(k) == 4]
        self.types = {code: [k for k in kinds if k.startswith(code)] or [code] for code in CLASS_SHARE}
        self.type_names = dict(conn.execute(text(
            "SELECT code, name_zh FROM code_item WHERE table_key = 'event_type'")).all())
        self.accounts = {(r.role, r.scope_path): r for r in conn.execute(text(
            "SELECT id, name, role, scope_path::text AS scope_path, department FROM users"
            # The grids' stand-in workers (etl/demo_tracks.py) report too, so the assessment has a
            # worker per grid; a real account at the same place wins (ordered last).
            " WHERE active OR role = 'grid_worker' ORDER BY active, id"))}
        self._actors: dict[tuple, events.Actor] = {}

    def codes(self, table: str) -> list[str]:
        return list(self.conn.execute(text(
            "SELECT code FROM code_item WHERE table_key = :t ORDER BY sort"), {"t": table}).scalars())

    def name(self) -> str:
        return str(self.rng.choice(list(SURNAMES))) + "".join(self.rng.choice(list(GIVEN), size=2))

    def actor(self, role: str, path: str, department: str | None = None) -> events.Actor:
        """The person of ``role`` at the unit ``path``: a demo account when one sits there, else a
        named stand-in (with no user id)."""
        key = (role, path, department)
        if key not in self._actors:
            unit = self.units[path]
            account = self.accounts.get((role, path)) if department is None else None
            self._actors[key] = events.Actor(
                id=account.id if account else None, name=account.name if account else self.name(), role=role,
                scope_path=path, level=unit.level, district_code=unit.district_code, department=department,
                permissions=ROLES[role].permissions)
        return self._actors[key]

    def after(self, t: dt.datetime, event: dict, late: bool | None) -> dt.datetime:
        """When the next action comes: mostly within the step's limit, sometimes late, now and then very
        late (past the red-card time), during office hours."""
        limit = event.get("step_limit_days") or 3
        if late is None:
            late = self.rng.random() < 0.12
        if late:
            factor = self.rng.uniform(1.05, 1.6) if self.rng.random() < 0.75 else self.rng.uniform(2.1, 3.0)
        else:
            factor = self.rng.uniform(0.0, 0.95)
        days = int(math.floor(limit * factor))
        if days == 0:
            return t + dt.timedelta(hours=float(self.rng.uniform(0.3, 6)))
        day = calendar.nth_working_day(t, days)
        minutes = int(self.rng.integers(8 * 60 + 30, 17 * 60 + 30))
        return dt.datetime.combine(day, dt.time(minutes // 60, minutes % 60), calendar.BEIJING)


def _places(conn: Connection, seed: int) -> list[dict]:
    """Each grid with a few points inside it (none when grids have no boundaries) and its ancestors."""
    grids = [dict(r._mapping) for r in conn.execute(text("""
        SELECT g.id, g.path::text AS path, g.name,
               (SELECT array_agg(ARRAY[ST_X(p.geom), ST_Y(p.geom)])
                  FROM ST_Dump(ST_GeneratePoints(g.boundary, 6, :seed)) p) AS points
          FROM territory_unit g WHERE g.level = 'grid' ORDER BY g.path"""), {"seed": seed})]
    return grids


def load_demo_events(settings: Settings, n: int = DEFAULT_EVENTS, seed: int = DEFAULT_SEED,
                     progress: Progress | None = None, today: dt.date | None = None) -> DemoEventsReport:
    """Replace the demo events with ``n`` cases over the year before ``today``."""
    started = dt.datetime.now()
    rng = np.random.default_rng(seed)
    today = today or dt.date.today()
    present = dt.datetime.combine(today, dt.time(18, 0), calendar.BEIJING)
    with owner_engine(settings).begin() as conn:
        conn.execute(text("TRUNCATE event, event_number CASCADE"))
        grids = _places(conn, seed)
        if not grids:
            raise RuntimeError("没有网格，请先加载演示辖区 gridgov demo load (no grids: load the demo first)")
        loader = _Loader(conn, rng, present)
        weights = rng.pareto(1.5, size=len(grids)) + 1.0      # a few hot spots, a long tail
        weights /= weights.sum()
        for i in range(n):
            grid = grids[int(rng.choice(len(grids), p=weights))]
            reported_at = _report_time(rng, present)
            _walk_one(loader, grid, reported_at)
            if progress and (i + 1) % 50 == 0:
                progress("events", i + 1, n)
        events.issue_due_cards(conn, now=present)
        counts = dict(conn.execute(text("SELECT status, count(*) FROM event GROUP BY status")).all())
        history_rows = conn.execute(text("SELECT count(*) FROM event_history")).scalar_one()
        cards = conn.execute(text("SELECT count(*) FROM event_card")).scalar_one()
        conn.execute(text("ANALYZE event, event_history, event_card, event_supervision"))
    if progress:
        progress("events", n, n)
    return DemoEventsReport(n=n, seed=seed, counts=counts, history_rows=history_rows, cards=cards,
                            seconds=(dt.datetime.now() - started).total_seconds())


def _report_time(rng: np.random.Generator, present: dt.datetime) -> dt.datetime:
    """A moment in the past year, weighted to the recent months, mostly in office hours."""
    days_ago = int(min(364, rng.exponential(120)))
    day = (present - dt.timedelta(days=days_ago)).date()
    minutes = int(rng.normal(13 * 60, 3 * 60)) % (24 * 60)
    moment = dt.datetime.combine(day, dt.time(minutes // 60, minutes % 60), calendar.BEIJING)
    return min(moment, present - dt.timedelta(hours=1))


def _pick(rng: np.random.Generator, shares: dict[str, float]) -> str:
    keys = list(shares)
    p = np.array([shares[k] for k in keys])
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def _ancestors(path: str) -> dict[str, str]:
    labels = path.split(".")
    # grid, community, street, district: the last four labels of a grid's path
    return {level: ".".join(labels[: len(labels) - k]) for k, level in
            enumerate(("grid", "community", "street", "district"))}


def _walk_one(loader: _Loader, grid: dict, reported_at: dt.datetime) -> None:
    rng = loader.rng
    up = _ancestors(grid["path"])
    scenario = _pick(rng, SCENARIO_SHARE)
    cls = _pick(rng, CLASS_SHARE)
    if scenario == "direct":
        cls = "03" if rng.random() < 0.6 else "02"
    kind = str(rng.choice(loader.types[cls]))
    urgency = "major" if scenario == "direct" and rng.random() < 0.4 else (
        "urgent" if scenario == "direct" else "normal")
    point = None
    if grid["points"]:
        base = grid["points"][int(rng.integers(0, min(3, len(grid["points"]))))]
        point = (base[0] + rng.normal(0, 0.0003), base[1] + rng.normal(0, 0.0003))
    source = _pick(rng, SOURCE_SHARE)
    reporter = loader.actor("grid_worker", up["grid"])
    if source in ("walk_in", "phone"):
        reporter = loader.actor("community_staff", up["community"])
    elif source in ("hotline", "superior") or scenario == "direct":
        reporter = loader.actor("district_commander", up["district"]) if source != "app" else reporter
    number = int(rng.integers(1, 300))
    fields = events.ReportFields(
        title=f"{loader.type_names.get(kind, '事件')}：{grid['name']}{number}号附近", type=kind,
        content=f"{grid['name']}{number}号附近发现{loader.type_names.get(kind, '问题')}，请处置。",
        urgency=urgency, source=source, grid_id=None if point else grid["id"],
        lon=point[0] if point else None, lat=point[1] if point else None,
        reporter_name=loader.name() if source in ("walk_in", "phone", "hotline") else None,
        reporter_phone=f"139{int(rng.integers(0, 10**8)):08d}" if source in ("phone", "hotline") else None,
        address=f"{grid['name']}{number}号")
    try:
        event, _ = events.report(loader.conn, reporter, fields, now=reported_at)
    except events.InvalidRequest:  # a generated point on a boundary's edge: take the grid instead
        fields.lon = fields.lat = None
        fields.grid_id = grid["id"]
        event, _ = events.report(loader.conn, reporter, fields, now=reported_at)
    # A jittered point may have landed in the neighbouring grid: the people are those of where it is.
    _continue(_Walk(loader, event, reported_at), scenario, _ancestors(event["org_path"]))


def _say(rng: np.random.Generator, key: str) -> str:
    return str(rng.choice(COMMENTS[key]))


def _continue(walk: _Walk, scenario: str, up: dict[str, str]) -> None:
    loader, rng = walk.loader, walk.loader.rng
    actor = loader.actor
    holder_level = walk.event["unit_level"]
    staff = {"grid": "grid_worker", "community": "community_staff", "street": "street_staff",
             "district": "district_commander"}
    solve_at = {"grid": "grid", "community": "community", "street": "street", "department": "district",
                "direct": "district", "cancelled": "community"}[scenario]
    order = ["grid", "community", "street", "district"]

    # Pass it up until it reaches the level that will take it, registering at each centre.
    while order.index(holder_level) < order.index(solve_at):
        who = actor(staff[holder_level], up[holder_level])
        if holder_level != "grid" and walk.event["status"] == "reported":
            if not walk.step("register", who):
                return
        if not walk.step("escalate", who, comment=_say(rng, "escalate")):
            return
        holder_level = walk.event["unit_level"]
    here = actor(staff[holder_level], up[holder_level])
    if scenario == "cancelled":
        walk.step("cancel", here, comment=_say(rng, "cancel"))
        return
    if holder_level != "grid" and not walk.step("register", here):
        return
    if scenario in ("department", "direct"):
        handler = _dispatch(walk, here, up)
        if handler is None:
            return
    else:
        if not walk.step("self_handle", here):
            return
        handler = here
    _handle_to_the_end(walk, handler, up)


def _dispatch(walk: _Walk, district: events.Actor, up: dict[str, str]) -> events.Actor | None:
    loader, rng = walk.loader, walk.loader.rng
    department = events.suggested_department(walk.event, DEFAULT_RULES) or "urban"
    if rng.random() < 0.1:   # the wrong department first: it returns the case
        wrong = str(rng.choice([d for d in ("urban", "housing", "market", "police") if d != department]))
        if not walk.step("dispatch", district, department=wrong):
            return None
        if not walk.step("return", loader.actor("department_officer", up["district"], wrong),
                         comment=_say(rng, "return")):
            return None
    if not walk.step("dispatch", district, department=department):
        return None
    officer = loader.actor("department_officer", up["district"], department)
    if not walk.step("sign", officer):
        return None
    return officer


def _handle_to_the_end(walk: _Walk, handler: events.Actor, up: dict[str, str]) -> None:
    loader, rng = walk.loader, walk.loader.rng
    supervisor_path = up["district"] if handler.department else _parent(walk.event["unit_path"])
    supervisor = None
    if supervisor_path in loader.units:
        role = "district_commander" if supervisor_path == up["district"] else (
            "street_staff" if loader.units[supervisor_path].level == "street" else "community_staff")
        supervisor = loader.actor(role, supervisor_path)
    if supervisor and handler.has("event:extend") and rng.random() < 0.12:
        if not walk.step("request_extension", handler, days=int(rng.integers(2, 8)),
                         comment=_say(rng, "extension")):
            return
        verdict = "approve_extension" if rng.random() < 0.7 else "deny_extension"
        if not walk.step(verdict, supervisor, late=False,
                         comment=None if verdict == "approve_extension" else "不予延期，请按期办结"):
            return
    if supervisor and supervisor.has("event:supervise") and rng.random() < 0.08:
        if not walk.step("supervise", supervisor, late=False, comment=_say(rng, "supervise")):
            return
        if not walk.step("reply_supervision", handler, late=False, comment="已加快办理"):
            return
    verifier = loader.actor("community_staff", up["community"])
    evaluator = loader.actor("street_staff", up["street"])
    for _attempt in range(3):
        if not walk.step("feedback", handler, comment=_say(rng, "feedback")):
            return
        if rng.random() < 0.07:
            if not walk.step("verify", verifier, outcome="fail", comment=_say(rng, "verify_fail")):
                return
            continue
        if not walk.step("verify", verifier, outcome="pass"):
            return
        if rng.random() < 0.2:       # not every case is evaluated
            return
        satisfaction = int(rng.choice([5, 5, 5, 4, 4, 4, 3, 2, 1], p=None))
        if not walk.step("evaluate", evaluator, late=False, satisfaction=satisfaction):
            return
        if walk.event["status"] == "evaluated":
            return


def _parent(path: str) -> str | None:
    labels = path.split(".")
    return ".".join(labels[:-1]) if len(labels) > 1 else None
