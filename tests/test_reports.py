"""The dispute screening and the assessment table on a small hand-made set of events, every figure checked
against a value counted by hand below.

The cases are walked through the real services (report, act, the card job) on a controlled clock, in the
first half of October 2024 — the National Day holiday (1–7 October off) and the make-up Saturday 12
October inside it. The period is 2024-10-01 … 2024-10-15; the figures stand at its end (16 October 00:00).

Grid g1 (community c1, street s1) is wg1's, g2 (c1) wg2's, g3 (c2, s1) wg3's; g4 (c3) is in street s2.

====  ======  =====  ===================================================================================
case  who     type   walk (2024, Beijing time)
====  ======  =====  ===================================================================================
E1    wg1/g1  0102   rep 2 Oct (holiday), self-handled; feedback 9th; verified 10th → closed at the grid;
                     3 working days (8, 9, 10 Oct)
E2    wg1/g1  0101   rep 8th, self-handled; feedback 11th; verification FAILS 11th (rework); feedback
                     14th; verified 15th → closed, on time; 6 working days (9–12 incl. make-up Sat, 14, 15)
E3    wg1/g1  0502   rep 8th (not a dispute), self-handled (2 days: due 11th 00:00); feedback 11th 10:00
                     LATE → yellow card on g1; verified Sat 12th → closed; 4 working days
E4    wg1/g1  0103   rep 9th, passed up to c1; c1 handles (7 days), asks 3 more, s1 approves (extension);
                     the district gives c1 a manual RED card; open at the end
E5    wg2/g2  0105   rep 3 Oct (holiday); up to c1, up to s1 (escalated); s1 handles and feeds back;
                     verified 11th → closed at street level, on time; 4 working days
E6    wg3/g3  0102   rep 10th, self-handled (3 days: due 15th 00:00); open and overdue at the end; the
                     card job gives g3 a yellow card (dated 15th); fed back on the 17th — after the period
E7    wg1/g1  0102   rep 14th URGENT → district (escalated); registered, dispatched to justice, signed,
                     fed back 15th, verified → closed by a department, on time; 1 working day
E8    wg1/g1  0199   rep 15th, passed up to c1, cancelled (duplicate)
E9    jd2/g4  0102   rep 8th by street s2, self-handled; open (street 2's only case)
E10   wg1/g1  0102   rep 30 September — before the period: counted nowhere (its cards neither)
====  ======  =====  ===================================================================================
"""

from __future__ import annotations

import datetime as dt
import io
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import text

from gis import db
from gis.api import events as events_api
from gis.api import reports as reports_api
from gis.security import users
from gis.security.scope import scoped_connection
from layers import events
from layers.events import assessment, period, screening
from layers.events.calendar import BEIJING
from tests import access_helpers
from tests.access_helpers import PASSWORD, bearer
from tests.events_helpers import USERS, build_world

START, END = "2024-10-01", "2024-10-15"
PERIOD = period.period(dt.date(2024, 10, 1), dt.date(2024, 10, 15))
LATER = dt.datetime(2024, 11, 1, tzinfo=BEIJING)   # "now" when the reports are read: the period is over
WHO = {**USERS, "wg3": ("grid_worker", "g3", None)}


def at(m, d, h=10, minute=0):
    return dt.datetime(2024, m, d, h, minute, tzinfo=BEIJING)


def person(world, username):
    role, unit, department = WHO[username]
    return SimpleNamespace(id=world.ids[username], name=username, role=role,
                           scope_path=world.units[unit].path, department=department)


class Walk:
    """One case walked through the services, each step as a given user at a given time."""

    def __init__(self, world, username, type_, grid, when, urgency="normal"):
        self.world = world
        fields = events.ReportFields(title=f"测试 {type_}", type=type_, grid_id=world.units[grid].id,
                                     urgency=urgency)
        self.event, _ = self._as(username, lambda c, a: events.report(c, a, fields, now=when))

    def _as(self, username, work):
        who = person(self.world, username)
        with scoped_connection(self.world.settings, who) as conn:
            return work(conn, events.actor_for(conn, who))

    def then(self, username, action, when, **extra):
        seen = self.event
        request = events.ActionRequest(version=seen["version"], **extra)
        self.event = self._as(username, lambda c, a: events.act(c, a, seen["id"], action, request, now=when))
        return self

    @property
    def id(self):
        return self.event["id"]


@pytest.fixture(scope="module")
def world(fresh_db):
    world = build_world(fresh_db)
    with db.owner_engine(fresh_db).begin() as conn:
        world.ids["wg3"] = users.upsert_user(conn, "wg3", PASSWORD, "grid_worker", world.units["g3"].path,
                                             "wg3", None)
    cases = {}
    cases["E10"] = Walk(world, "wg1", "0102", "g1", at(9, 30)).then("wg1", "self_handle", at(9, 30, 10, 30))
    cases["E1"] = (Walk(world, "wg1", "0102", "g1", at(10, 2)).then("wg1", "self_handle", at(10, 2, 11))
                   .then("wg1", "feedback", at(10, 9), comment="已调解")
                   .then("sq1", "verify", at(10, 10), outcome="pass"))
    cases["E2"] = (Walk(world, "wg1", "0101", "g1", at(10, 8, 9)).then("wg1", "self_handle", at(10, 8))
                   .then("wg1", "feedback", at(10, 11, 9), comment="已调解")
                   .then("sq1", "verify", at(10, 11, 15), outcome="fail", comment="双方仍有争议")
                   .then("wg1", "feedback", at(10, 14), comment="再次调解，达成协议")
                   .then("sq1", "verify", at(10, 15), outcome="pass"))
    cases["E3"] = (Walk(world, "wg1", "0502", "g1", at(10, 8, 9)).then("wg1", "self_handle", at(10, 8, 9, 30))
                   .then("wg1", "feedback", at(10, 11), comment="已清理")
                   .then("sq1", "verify", at(10, 12), outcome="pass"))
    cases["E4"] = (Walk(world, "wg1", "0103", "g1", at(10, 9)).then("wg1", "escalate", at(10, 9, 11))
                   .then("sq1", "self_handle", at(10, 9, 14))
                   .then("sq1", "request_extension", at(10, 10), days=3, comment="需走法定程序")
                   .then("jd1", "approve_extension", at(10, 10, 15))
                   .then("qu", "card", at(10, 11), color="red", comment="群众多次投诉"))
    cases["E5"] = (Walk(world, "wg2", "0105", "g2", at(10, 3)).then("wg2", "escalate", at(10, 3, 10, 30))
                   .then("sq1", "escalate", at(10, 8, 9)).then("jd1", "self_handle", at(10, 8))
                   .then("jd1", "feedback", at(10, 10), comment="已协调支付工资")
                   .then("sq1", "verify", at(10, 11), outcome="pass"))
    cases["E6"] = Walk(world, "wg3", "0102", "g3", at(10, 10)).then("wg3", "self_handle", at(10, 10, 10, 30))
    cases["E7"] = (Walk(world, "wg1", "0102", "g1", at(10, 14), urgency="urgent")
                   .then("qu", "register", at(10, 14, 11))
                   .then("qu", "dispatch", at(10, 14, 12), department="justice")
                   .then("sf", "sign", at(10, 14, 15))
                   .then("sf", "feedback", at(10, 15), comment="已调处")
                   .then("sq1", "verify", at(10, 15, 16), outcome="pass"))
    cases["E8"] = (Walk(world, "wg1", "0199", "g1", at(10, 15)).then("wg1", "escalate", at(10, 15, 10, 30))
                   .then("sq1", "cancel", at(10, 15, 11), comment="重复上报"))
    cases["E9"] = Walk(world, "jd2", "0102", "g4", at(10, 8)).then("jd2", "self_handle", at(10, 8, 11))
    # The card job runs the morning after the period; E6 is fed back after the period ended.
    with db.owner_engine(fresh_db).begin() as conn:
        events.issue_due_cards(conn, now=at(10, 16, 8))
    cases["E6"].then("wg3", "feedback", at(10, 17), comment="已调解")
    # Diary entries: wg1 two in the period, one deleted, one before it.
    with db.owner_engine(fresh_db).begin() as conn:
        g1 = world.units["g1"]
        for day, deleted in (("2024-10-05", False), ("2024-10-12", False), ("2024-10-13", True),
                             ("2024-09-20", False)):
            conn.execute(text(
                "INSERT INTO diary (worker, grid_id, diary_date, content, org_path, district_code,"
                " created_by, deleted_at) VALUES ('wg1', :g, CAST(:d AS date), '走访', CAST(:p AS ltree),"
                " '320106', :u, CASE WHEN :deleted THEN now() END)"),
                {"g": g1.id, "d": day, "p": g1.path, "u": world.ids["wg1"], "deleted": deleted})
    world.cases = cases
    world.reports = TestClient(access_helpers.make_app(fresh_db, reports_api.router, events_api.router))
    world.auth = {u: bearer(world.reports, u) for u in ("qu", "jd1", "jd2", "wg3")}
    return world


def read(world, username, work):
    who = person(world, username)
    with scoped_connection(world.settings, who) as conn:
        return work(conn, who)


def assess(world, username="qu", **kw):
    return read(world, username, lambda c, who: assessment.assessment(c, who.scope_path, PERIOD, now=LATER,
                                                                       **kw))


def screen(world, username="qu", **kw):
    return read(world, username, lambda c, who: screening.screening(c, who.scope_path, PERIOD, now=LATER,
                                                                     **kw))


def rows_by_key(report):
    return {row["key"]: row for row in report["rows"]}


FIGURE_KEYS = ("reported", "registered", "closed", "closure_rate", "on_time", "on_time_rate", "overdue",
               "rework", "extensions", "yellow_cards", "red_cards", "avg_working_days", "diary", "points")


def figures(row):
    return {k: row[k] for k in FIGURE_KEYS}


# ---------------------------------------------------------------- assessment
def test_grid_workers_figures_equal_the_hand_count(world):
    rows = rows_by_key(assess(world, by="worker"))
    assert set(rows) == {str(world.ids[u]) for u in ("wg1", "wg2", "wg3")}
    # wg1: E1 E2 E3 E4 E7 E8 (E10 is before the period). Registered: all but the cancelled E8. Closed:
    # E1 E2 E3 E7 (E4 open, E8 cancelled) → 4/5. On time: E1 E2 E7 (E3 late) → 3/4. Overdue: E3.
    # Rework: E2's failed verification. Extension: E4. Cards against g1: E3's yellow (E4's red is c1's,
    # E10's are outside the period). Working days: (3 + 6 + 4 + 1) / 4. Diary: 2 (not the deleted one).
    # Points: 6·1 + 4·2 + 0.8·20 + 0.75·20 − 1·2 − 1·3 − 1·1 − 1·5 + 2·0.5 = 35.
    assert figures(rows[str(world.ids["wg1"])]) == {
        "reported": 6, "registered": 5, "closed": 4, "closure_rate": 80.0, "on_time": 3, "on_time_rate": 75.0,
        "overdue": 1, "rework": 1, "extensions": 1, "yellow_cards": 1, "red_cards": 0,
        "avg_working_days": 3.5, "diary": 2, "points": 35.0}
    # wg2: E5, closed on time, 4 working days over the holiday: 1 + 2 + 20 + 20.
    assert figures(rows[str(world.ids["wg2"])]) == {
        "reported": 1, "registered": 1, "closed": 1, "closure_rate": 100.0, "on_time": 1,
        "on_time_rate": 100.0, "overdue": 0, "rework": 0, "extensions": 0, "yellow_cards": 0, "red_cards": 0,
        "avg_working_days": 4.0, "diary": 0, "points": 43.0}
    # wg3: E6 open and past its deadline at the period's end (its late feedback came after), with the
    # yellow card the job dated 15 October: 1 − 2 − 5.
    assert figures(rows[str(world.ids["wg3"])]) == {
        "reported": 1, "registered": 1, "closed": 0, "closure_rate": 0.0, "on_time": 0, "on_time_rate": None,
        "overdue": 1, "rework": 0, "extensions": 0, "yellow_cards": 1, "red_cards": 0,
        "avg_working_days": None, "diary": 0, "points": -6.0}


def test_one_quick_case_does_not_top_the_ranking(world):
    ranking = assess(world, by="worker")
    assert ranking["min_cases"] == 5
    # wg2 has the most points (43) but a single case: listed, unranked, after the ranked wg1 (35).
    assert [(r["name"], r["rank"], r["ranked"]) for r in ranking["rows"]] == [
        ("wg1", 1, True), ("wg2", None, False), ("wg3", None, False)]
    every_case_counts = assess(world, by="worker", min_cases=1)
    assert [(r["name"], r["rank"]) for r in every_case_counts["rows"]] == [("wg2", 1), ("wg1", 2), ("wg3", 3)]


def test_units_figures_equal_the_hand_count(world):
    rows = rows_by_key(assess(world, by="unit", level="community"))
    # Ranked c1 first; then the unranked by points: c3 (1) before c2 (−6).
    assert list(rows) == ["320106001001", "320106002001", "320106001002"]
    # c1: wg1's six and E5. Registered 6 (not E8); closed E1 E2 E3 E5 E7 → 83.3 %; on time 4/5; cards
    # against c1 or a unit under it: E3's yellow (g1) and E4's red (c1). Days (3+6+4+4+1)/5.
    # Points: 7 + 10 + 0.833·20 + 0.8·20 − 2 − 3 − 1 − 5 − 10 + 1 = 29.66.
    assert figures(rows["320106001001"]) == {
        "reported": 7, "registered": 6, "closed": 5, "closure_rate": 83.3, "on_time": 4, "on_time_rate": 80.0,
        "overdue": 1, "rework": 1, "extensions": 1, "yellow_cards": 1, "red_cards": 1,
        "avg_working_days": 3.6, "diary": 2, "points": 29.7}
    assert figures(rows["320106001002"])["points"] == -6.0            # c2: E6, as wg3
    assert figures(rows["320106002001"]) == {                          # c3: E9, open, in time
        "reported": 1, "registered": 1, "closed": 0, "closure_rate": 0.0, "on_time": 0, "on_time_rate": None,
        "overdue": 0, "rework": 0, "extensions": 0, "yellow_cards": 0, "red_cards": 0,
        "avg_working_days": None, "diary": 0, "points": 1.0}
    assert [(r["key"], r["rank"]) for r in assess(world, by="unit", level="community")["rows"]][0] == (
        "320106001001", 1)
    # Grids: the card of the community is not the grid's.
    grids = rows_by_key(assess(world, by="unit", level="grid"))
    assert (grids[world.units["g1"].path.split(".")[-1]]["red_cards"],
            grids[world.units["g1"].path.split(".")[-1]]["yellow_cards"]) == (0, 1)


def test_departments_figures_equal_the_hand_count(world):
    rows = rows_by_key(assess(world, by="department"))
    assert figures(rows["justice"]) == {
        "reported": 1, "registered": 1, "closed": 1, "closure_rate": 100.0, "on_time": 1,
        "on_time_rate": 100.0, "overdue": 0, "rework": 0, "extensions": 0, "yellow_cards": 0, "red_cards": 0,
        "avg_working_days": 1.0, "diary": None, "points": 43.0}
    assert rows["urban"]["reported"] == 0 and rows["urban"]["ranked"] is False


def test_the_scoring_model_is_configurable(world):
    model = assessment.ScoringModel.with_overrides({"red_cards": -20, "diary": 1})
    assert (model.red_cards, model.diary, model.closed) == (-20.0, 1.0, 2.0)
    row = rows_by_key(assess(world, by="unit", level="community", model=model))["320106001001"]
    assert row["points"] == pytest.approx(29.66 - 10 + 2 * 0.5, abs=0.05)
    with pytest.raises(assessment.AssessmentError, match="评分权重"):
        assessment.ScoringModel.with_overrides({"bonus": 3})


# ---------------------------------------------------------------- screening
def test_screening_per_community_equals_the_hand_count(world):
    report = screen(world)
    assert report["unit"]["code"] == "320106" and report["as_of"] == at(10, 16, 0)
    counts = {r["code"]: tuple(r[k] for k in screening.COUNTS) for r in report["communities"]}
    # (screened, resolved, escalated, outstanding, cancelled)
    # c1: disputes E1 E2 E4 E5 E7 E8 (E3 is not one); resolved E1 E2 E5 E7; escalated E5 (street), E7
    # (district, department); outstanding E4; cancelled E8. c2: E6 still open at the end. c3: E9.
    assert counts == {"320106001001": (6, 4, 2, 1, 1), "320106001002": (1, 0, 0, 1, 0),
                      "320106002001": (1, 0, 0, 1, 0)}
    assert tuple(report["total"][k] for k in screening.COUNTS) == (8, 4, 2, 3, 1)
    c1 = report["communities"][0]
    assert {k: n for k, n in c1["by_kind"].items() if n} == {"0101": 1, "0102": 2, "0103": 1, "0105": 1,
                                                             "0199": 1}
    assert {k: n for k, n in report["total"]["by_kind"].items() if n} == {
        "0101": 1, "0102": 4, "0103": 1, "0105": 1, "0199": 1}
    assert len(report["kinds"]) == 12 and report["kinds"][0] == {"code": "0101", "name": "婚姻家庭纠纷"}
    assert {k["code"]: k["screened"] for k in report["by_kind"] if k["screened"]} == {
        "0101": 1, "0102": 4, "0103": 1, "0105": 1, "0199": 1}


def test_small_matters_stay_in_the_grid_share(world):
    report = screen(world)
    # Disputes closed: E1 E2 (grid), E5 (street), E7 (department) → 2/4 at the grid, 2/4 within c1.
    # All events closed: those and E3 (grid) → 3/5, 3/5.
    share = {s["scope"]: (s["closed"], s["closed_at_grid"], s["closed_in_community"], s["grid_share"],
                          s["community_share"]) for s in report["share"]}
    assert share == {"disputes": (4, 2, 2, 50.0, 50.0), "all": (5, 3, 3, 60.0, 60.0)}
    c1 = report["communities"][0]
    assert (c1["closed"], c1["grid_share"], c1["community_share"]) == (4, 50.0, 50.0)
    assert report["communities"][1]["grid_share"] is None           # nothing closed: no share


def test_a_past_period_does_not_change_when_read_later(world):
    # E6 was fed back on the 17th, after the period: the event row has moved on, the report has not —
    # read the morning after the period or weeks later, it is the same, with E6 open and overdue.
    assert world.cases["E6"].event["status"] == "handled"
    morning_after = at(10, 16, 8)
    for username in ("qu", "jd1"):
        assert screen(world, username) == read(world, username, lambda c, who: screening.screening(
            c, who.scope_path, PERIOD, now=morning_after))
    for by in ("worker", "unit", "department"):
        assert assess(world, by=by) == read(world, "qu", lambda c, who, by=by: assessment.assessment(
            c, who.scope_path, PERIOD, by=by, now=morning_after))
    c2 = next(r for r in screen(world)["communities"] if r["code"] == "320106001002")
    assert (c2["outstanding"], c2["resolved"]) == (1, 0)


# ---------------------------------------------------------------- API
def get(world, username, path, expect=200, **params):
    response = world.reports.get(f"/api/v1/reports/{path}", params=params, headers=world.auth[username])
    assert response.status_code == expect, response.text
    return response


def test_the_api_answers_the_same_figures(world):
    body = get(world, "qu", "assessment", by="worker", start=START, end=END).json()
    assert [(r["name"], r["rank"], r["points"]) for r in body["rows"]] == [
        ("wg1", 1, 35.0), ("wg2", None, 43.0), ("wg3", None, -6.0)]
    body = get(world, "qu", "dispute-screening", start=START, end=END).json()
    assert body["total"]["screened"] == 8 and body["share"][0]["grid_share"] == 50.0
    narrowed = get(world, "qu", "dispute-screening", start=START, end=END, unit="320106001").json()
    assert [c["code"] for c in narrowed["communities"]] == ["320106001001", "320106001002"]
    assert narrowed["total"]["screened"] == 7


def test_the_minimum_of_cases_comes_from_the_settings(world):
    settings = world.settings.model_copy(update={"assessment_min_cases": 1,
                                                 "assessment_weights": {"reported": 10}})
    client = TestClient(access_helpers.make_app(settings, reports_api.router))
    response = client.get("/api/v1/reports/assessment", params={"start": START, "end": END},
                          headers=world.auth["qu"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["min_cases"] == 1 and body["weights"]["reported"] == 10
    # wg1 now earns 6·10 instead of 6·1: 35 + 54 = 89, and every row is ranked.
    assert [(r["name"], r["rank"], r["points"]) for r in body["rows"]] == [
        ("wg1", 1, 89.0), ("wg2", 2, 52.0), ("wg3", 3, 3.0)]


def _sheet_rows(content: bytes, sheet: str) -> tuple[str, list, list[list]]:
    book = load_workbook(io.BytesIO(content))
    rows = [list(r) for r in book[sheet].iter_rows(values_only=True)]
    return rows[0][0], rows[1], rows[2:]


def test_xlsx_exports_equal_the_json_and_are_logged(world):
    body = get(world, "qu", "dispute-screening", start=START, end=END).json()
    response = get(world, "qu", "dispute-screening", start=START, end=END, format="xlsx")
    assert response.headers["content-type"] == screening.XLSX
    title, header, rows = _sheet_rows(response.content, "分社区")
    assert "2024-10-01 至 2024-10-15" in title and "鼓楼区" in title
    assert header[:7] == ["社区", "所属街道", "排查数", "化解数", "上报数", "在办数", "注销数"]
    assert "婚姻家庭纠纷" in header and "小事不出格（%）" in header
    expected = [*body["communities"], body["total"]]
    assert [r[0] for r in rows] == [c["name"] for c in expected]
    for row, json_row in zip(rows, expected, strict=True):
        assert row[2:7] == [json_row[k] for k in screening.COUNTS]
        kinds = row[7:7 + len(body["kinds"])]
        assert kinds == [json_row["by_kind"][k["code"]] for k in body["kinds"]]
        assert row[-2:] == [json_row["grid_share"], json_row["community_share"]]
    _, _, kind_rows = _sheet_rows(response.content, "分类型")
    assert [r[1] for r in kind_rows] == [k["screened"] for k in body["by_kind"]]
    _, _, share_rows = _sheet_rows(response.content, "化解层级")
    assert [r[1:] for r in share_rows] == [[s["closed"], s["closed_at_grid"], s["closed_in_community"],
                                            s["grid_share"], s["community_share"]] for s in body["share"]]

    body = get(world, "qu", "assessment", by="worker", start=START, end=END).json()
    response = get(world, "qu", "assessment", by="worker", start=START, end=END, format="xlsx")
    title, header, rows = _sheet_rows(response.content, "考核排名")
    assert "考核排名（网格员）" in title and "最少事件数：5" in title
    assert header[:4] == ["排名", "名称", "所属网格", "事件数"] and header[-1] == "得分"
    assert [[r[0], r[1], *r[3:]] for r in rows] == [
        [j["rank"] if j["ranked"] else "不参与排名", j["name"], *(j[k] for k in assessment.FIGURES)]
        for j in body["rows"]]

    with db.owner_engine(world.settings).connect() as conn:
        logged = conn.execute(text(
            "SELECT target_table, detail->>'format', user_id FROM access_log WHERE action = 'export'"
            " AND target_table LIKE 'report:%' ORDER BY id")).all()
    assert [(t, f) for t, f, _ in logged] == [("report:dispute_screening", "xlsx"),
                                              ("report:assessment", "xlsx")]
    assert {u for _, _, u in logged} == {world.ids["qu"]}


def test_another_street_sees_none_of_it(world):
    body = get(world, "jd2", "dispute-screening", start=START, end=END).json()
    assert [c["code"] for c in body["communities"]] == ["320106002001"]
    assert body["total"]["screened"] == 1                      # E9, its own; nothing of street 1
    refused = get(world, "jd2", "dispute-screening", 404, start=START, end=END, unit="320106001001")
    assert "不在您的辖区内" in refused.json()["detail"]
    assert get(world, "jd2", "assessment", start=START, end=END).json()["rows"] == []   # no grid workers
    units = get(world, "jd2", "assessment", by="unit", start=START, end=END).json()["rows"]
    assert [(u["key"], u["reported"]) for u in units] == [("320106002001", 1)]
    departments = get(world, "jd2", "assessment", by="department", start=START, end=END).json()["rows"]
    assert sum(d["reported"] for d in departments) == 0       # E7 went to justice from street 1
    # A grid worker sees their own grid's figures only.
    mine = get(world, "wg3", "assessment", by="unit", level="grid", start=START, end=END).json()["rows"]
    assert [(u["name"], u["reported"]) for u in mine] == [("江苏路第一网格", 1)]


@pytest.mark.parametrize(("start", "end", "message"), [
    ("2024-10-15", "2024-10-01", "不能早于开始日期"),
    ("2024-01-01", "2025-01-01", "不能超过一年"),
])
def test_bad_periods_are_refused_in_chinese(world, start, end, message):
    for path in ("dispute-screening", "assessment"):
        response = get(world, "qu", path, 422, start=start, end=end)
        assert message in response.json()["detail"]
    assert get(world, "qu", "assessment", start="2024-01-01", end="2024-12-31").status_code == 200


def test_a_grid_is_not_a_screening_unit(world):
    response = get(world, "qu", "dispute-screening", 422, start=START, end=END,
                   unit=world.units["g1"].path.split(".")[-1])
    assert "请选择区、街道或社区" in response.json()["detail"]


def test_periods_and_presets():
    assert period.half_month(dt.date(2024, 10, 16)) == period.Period(dt.date(2024, 10, 16),
                                                                     dt.date(2024, 10, 31))
    assert period.previous_half_month(dt.date(2024, 10, 3)) == period.Period(dt.date(2024, 9, 16),
                                                                            dt.date(2024, 9, 30))
    assert period.quarter(dt.date(2024, 11, 5)) == period.Period(dt.date(2024, 10, 1), dt.date(2024, 12, 31))
    assert period.preset("this_month", dt.date(2024, 2, 10)).end == dt.date(2024, 2, 29)
    assert period.period(dt.date(2024, 2, 29), dt.date(2025, 2, 27)).end == dt.date(2025, 2, 27)
    with pytest.raises(period.PeriodError):
        period.period(dt.date(2024, 2, 29), dt.date(2025, 2, 28))


def test_overdue_visits_count_against_the_grid_and_its_units(world):
    """A community-correction subject in g1 registered 60 days ago and never visited (monthly visits) is
    one overdue visit for wg1 and for g1's community; nobody else's."""
    g1 = world.units["g1"]
    with db.owner_engine(world.settings).begin() as conn:
        person_id = conn.execute(text(
            "INSERT INTO person (name, sex, birth_date, org_path, district_code)"
            " VALUES ('矫正对象', '1', DATE '1980-01-01', CAST(:p AS ltree), '320106') RETURNING id"),
            {"p": g1.path}).scalar_one()
        record = conn.execute(text(
            "INSERT INTO community_correction (person_id, org_path, district_code, created_at)"
            " VALUES (:person, CAST(:p AS ltree), '320106', now() - interval '60 days') RETURNING id"),
            {"person": person_id, "p": g1.path}).scalar_one()
    try:
        workers = rows_by_key(assess(world, by="worker"))
        assert {k: r["overdue_visits"] for k, r in workers.items()} == {
            str(world.ids["wg1"]): 1, str(world.ids["wg2"]): 0, str(world.ids["wg3"]): 0}
        communities = assess(world, by="unit", level="community")["rows"]
        assert [r["overdue_visits"] for r in communities if r["overdue_visits"]] == [1]
    finally:
        with db.owner_engine(world.settings).begin() as conn:
            conn.execute(text("DELETE FROM community_correction WHERE id = :r"), {"r": record})
            conn.execute(text("DELETE FROM person WHERE id = :p"), {"p": person_id})
