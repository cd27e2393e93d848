"""The assessment page (考核督办) in a real Chromium: the ranking and the dispute screening show the same
numbers as the API, for a small set of cases walked through the real services in October 2024."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from openpyxl import load_workbook
from playwright.sync_api import expect

from gis import db
from gis.security import users
from gis.security.scope import scoped_connection
from layers import events
from layers.events.calendar import BEIJING
from tests.ui.conftest import BrowserLog
from tests.ui.support import VIEWER, running_server
from tests.ui.test_map_page import log_in

pytestmark = pytest.mark.ui

COMMUNITY = "320106.320106001.320106001003"
G1, G2 = f"{COMMUNITY}.320106001003001", f"{COMMUNITY}.320106001003002"
PASSWORD = "Gridgov#2024ui"
START, END = "2024-10-01", "2024-10-15"


def at(d, h=10):
    return dt.datetime(2024, 10, d, h, 0, tzinfo=BEIJING)


def walk(settings, people, reporter, grid_id, type_, when, steps):
    """Report a case as ``reporter`` and take ``steps`` [(who, action, hours later, extra)] on it."""
    def run(who, work):
        with scoped_connection(settings, people[who]) as conn:
            return work(conn, events.actor_for(conn, people[who]))

    fields = events.ReportFields(title=f"测试{type_}", type=type_, grid_id=grid_id)
    event, _ = run(reporter, lambda c, a: events.report(c, a, fields, now=when))
    for hours, (who, action, extra) in enumerate(steps, start=1):
        request = events.ActionRequest(version=event["version"], **extra)
        event = run(who, lambda c, a, e=event, r=request, n=action, h=hours:
                    events.act(c, a, e["id"], n, r, now=when + dt.timedelta(hours=h)))


@pytest.fixture(scope="module")
def assessment_server(territory_db):
    people = {}
    with db.owner_engine(territory_db).begin() as conn:
        for username, role, scope in (("wg_a", "grid_worker", G1), ("wg_b", "grid_worker", G2),
                                      ("sq_x", "community_staff", COMMUNITY)):
            user_id = users.upsert_user(conn, username, PASSWORD, role, scope, username)
            people[username] = SimpleNamespace(id=user_id, name=username, role=role, scope_path=scope,
                                                department=None)
        grids = dict(conn.exec_driver_sql(
            "SELECT path::text, id FROM territory_unit WHERE level = 'grid'").all())
    closed = [("wg_a", "self_handle", {}), ("wg_a", "feedback", {"comment": "已处理"}),
              ("sq_x", "verify", {"outcome": "pass"})]
    # wg_a: five cases (three closed, two open) — ranked; wg_b: one closed — listed, unranked.
    for day, type_, steps in ((8, "0102", closed), (9, "0101", closed), (9, "0502", closed),
                              (10, "0105", closed[:1]), (11, "0102", [])):
        walk(territory_db, people, "wg_a", grids[G1], type_, at(day), steps)
    walk(territory_db, people, "wg_b", grids[G2], "0103", at(8), [
        ("wg_b", "self_handle", {}), ("wg_b", "feedback", {"comment": "已处理"}),
        ("sq_x", "verify", {"outcome": "pass"})])
    with running_server(territory_db) as base_url:
        yield base_url


def api(base_url: str, path: str, **params) -> dict:
    with httpx.Client(base_url=base_url, timeout=120) as client:
        token = client.post("/api/v1/auth/login",
                            json={"username": VIEWER[0], "password": VIEWER[1]}).json()["token"]
        response = client.get(f"/api/v1/reports/{path}", params={"start": START, "end": END, **params},
                              headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response.json()


def shown(value) -> str:
    """A value as the table shows it: numbers without a trailing .0, nothing for None."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def table_rows(page, css: str, count: int) -> list[list[str]]:
    rows = page.locator(f"{css} .tabulator-row")
    expect(rows).to_have_count(count, timeout=60_000)
    # The cells of the frame's columns, not Tabulator's own (the hidden index, the layout's filler).
    script = ("cells => cells.filter(c => { const f = c.getAttribute('tabulator-field');"
              " return f && f !== 'index' && !f.startsWith('_'); }).map(c => c.innerText.trim())")
    return [rows.nth(i).locator(".tabulator-cell").evaluate_all(script) for i in range(count)]


def test_the_page_shows_the_apis_numbers(assessment_server, territory_db, page, browser_log: BrowserLog):
    base_url = assessment_server
    ranking = api(base_url, "assessment", by="worker")
    disputes = api(base_url, "dispute-screening")
    page.goto(f"{base_url}/assessment?start={START}&end={END}")
    if "/login" in page.url:
        log_in(page)    # and back to the page, with its period (the login form's ``next``)
    expect(page.get_by_text(f"统计时段：{START} 至 {END}")).to_be_visible(timeout=60_000)

    fields = ["reported", "registered", "closed", "closure_rate", "on_time", "on_time_rate", "overdue",
              "rework", "extensions", "yellow_cards", "red_cards", "avg_working_days", "diary",
              "overdue_visits", "points"]
    expected = [[shown(r["rank"]) if r["ranked"] else "不参与排名", r["name"], r["unit_name"],
                 *(shown(r[k]) for k in fields)] for r in ranking["rows"]]
    assert [r["name"] for r in ranking["rows"]] == ["wg_a", "wg_b"] and ranking["rows"][1]["ranked"] is False
    assert table_rows(page, ".gg-ranking", len(expected)) == expected

    page.locator(".bk-tab", has_text="矛盾纠纷排查").click()
    kinds = [k["code"] for k in disputes["kinds"]]
    counts = ("screened", "resolved", "escalated", "outstanding", "cancelled")
    expected = [[r["name"], r["street"] or "", *(shown(r[k]) for k in counts),
                 *(shown(r["by_kind"][k]) for k in kinds),
                 *(shown(r[k]) for k in ("closed", "closed_at_grid", "closed_in_community", "grid_share",
                                         "community_share"))]
                for r in [*disputes["communities"], disputes["total"]]]
    assert disputes["total"]["screened"] == 5          # 0102 ×2, 0101 and 0105 of wg_a; 0103 of wg_b
    assert table_rows(page, ".gg-screening", len(expected)) == expected
    expect(page.locator(".gg-share")).to_contain_text("小事不出格")

    # The download is the API's workbook: the same per-community rows.
    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name="下载排查表（XLSX）").click()
    assert download.value.suggested_filename == f"dispute-screening-320106-{START}-{END}.xlsx"
    sheet = load_workbook(io.BytesIO(Path(download.value.path()).read_bytes()))["分社区"]
    assert [[shown(v) for v in row] for row in sheet.iter_rows(min_row=3, values_only=True)] == expected
    with db.owner_engine(territory_db).connect() as conn:
        logged = conn.exec_driver_sql(
            "SELECT count(*) FROM access_log WHERE action = 'export'"
            " AND target_table = 'report:dispute_screening' AND detail->>'page' = 'assessment'").scalar()
    assert logged == 1
    assert browser_log.blocked == []
    assert browser_log.console_errors == []


def test_overdue_events_are_supervised_from_their_row(assessment_server, territory_db, page,
                                                      browser_log: BrowserLog):
    """wg_a's two open October cases are long past their deadlines: listed in 超期督办; the district
    commander's 督办 with a note writes a supervision row and the row's count goes up; so does a 黄牌."""
    base_url = assessment_server
    with db.owner_engine(territory_db).connect() as conn:
        overdue = conn.exec_driver_sql(
            "SELECT id, number FROM event WHERE status <> ALL(ARRAY['closed', 'evaluated', 'cancelled'])"
            " AND due_at <= now() ORDER BY due_at").all()
    assert len(overdue) == 2
    event_id, number = overdue[0]
    page.goto(f"{base_url}/assessment")
    if "/login" in page.url:
        log_in(page)
    page.locator(".bk-tab", has_text="超期督办").click()
    rows = page.locator(".gg-overdue .tabulator-row")
    expect(rows).to_have_count(2, timeout=60_000)
    row = rows.filter(has_text=number)
    expect(row.locator(f"a[href='/events?id={event_id}']")).to_have_text(number)
    expect(row.locator("[tabulator-field='督办次数']")).to_have_text("0")

    row.locator(".gg-supervise-button").click()
    page.locator(".gg-overdue-text textarea").fill("请尽快办结并回复")
    page.get_by_role("button", name="确定督办").click()
    expect(page.locator(".gg-overdue-message")).to_contain_text("已督办", timeout=60_000)
    expect(rows.filter(has_text=number).locator("[tabulator-field='督办次数']")).to_have_text("1")
    with db.owner_engine(territory_db).connect() as conn:
        notes = conn.exec_driver_sql(
            f"SELECT note FROM event_supervision WHERE event_id = {int(event_id)}").scalars().all()
    assert notes == ["请尽快办结并回复"]

    # 红黄牌: without a reason the service's refusal is shown; with one, the yellow count goes up.
    rows.filter(has_text=number).locator(".gg-card-button").click()
    page.get_by_role("button", name="确定红黄牌").click()
    expect(page.locator(".gg-overdue-message")).to_contain_text("须填写：意见/理由", timeout=60_000)
    page.locator(".gg-overdue-text textarea").fill("超期未办结")
    page.get_by_role("button", name="确定红黄牌").click()
    expect(page.locator(".gg-overdue-message")).to_contain_text("已亮黄牌", timeout=60_000)
    expect(rows.filter(has_text=number).locator("[tabulator-field='黄牌']")).to_have_text("1")
    assert browser_log.blocked == []
    assert browser_log.console_errors == []
