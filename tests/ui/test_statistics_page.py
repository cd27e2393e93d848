"""The statistics page (大数据统计分析) in a real Chromium: the charts and tables carry the numbers of the
statistics service for the viewer, drilling to a street changes them, and a table downloads as XLSX."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from openpyxl import load_workbook
from playwright.sync_api import expect
from sqlalchemy import text

from gis import db
from gis.security import roles
from gis.security.scope import scoped_connection
from gis.security.sessions import CurrentUser
from layers import statistics
from layers.events.calendar import beijing_today
from tests.patrol_helpers import insert_event
from tests.ui.conftest import BrowserLog
from tests.ui.support import GRIDS, VIEWER, running_server
from tests.ui.test_map_page import log_in

pytestmark = pytest.mark.ui

WEST = "320106.320106001"
_SOURCE = """(column) => { for (const doc of Bokeh.documents) for (const m of doc.all_models)
  if (m.data && m.data[column] !== undefined && m.data.name !== undefined)
    return [Array.from(m.data.name), Array.from(m.data[column])];
  return null }"""
_BAR_AT = """([column, name]) => { for (const doc of Bokeh.documents) for (const m of doc.all_models)
  if (m.x_range && m.x_range.factors !== undefined && m.renderers) for (const r of m.renderers) {
    const data = r.data_source && r.data_source.data;
    if (!data || data[column] === undefined) continue;
    const i = Array.from(data.name).indexOf(name);
    const v = Bokeh.index.find_one(m); const c = v.el.getBoundingClientRect();
    return [c.left + v.frame.x_scale.compute(m.x_range.synthetic(name)),
            c.top + v.frame.y_scale.compute(data[column][i] / 2)] }
  return null }"""


@pytest.fixture(scope="module")
def stats_server(territory_db):
    insert_event(territory_db, "西片纠纷", grid=GRIDS[1][0], status="closed")
    insert_event(territory_db, "东片纠纷", grid=GRIDS[2][0])
    with running_server(territory_db) as base_url:
        yield base_url


def service_figures(settings, path: str):
    with db.owner_engine(settings).connect() as conn:
        row = conn.execute(text("SELECT id, scope_path::text FROM users WHERE username = :u"),
                           {"u": VIEWER[0]}).one()
    user = CurrentUser(row[0], VIEWER[0], VIEWER[2], "district_commander", row[1], None,
                       roles.ROLES["district_commander"].permissions)
    today = beijing_today()
    with scoped_connection(settings, user) as conn:
        return {f.key: f for f in statistics.all_figures(conn, path, user, dt.date(today.year, 1, 1), today)}


def table_rows(page, key: str) -> list[list[str]]:
    table = page.locator(f".gg-table-{key} table")
    return [row.locator("td").all_inner_texts() for row in table.locator("tbody tr").all()]


def test_page_shows_the_service_numbers_and_drills(stats_server, territory_db, page, browser_log: BrowserLog):
    page.goto(stats_server + "/statistics")
    if "/login" in page.url:
        log_in(page)
    page.wait_for_url("**/statistics", timeout=30_000)
    expected = service_figures(territory_db, "320106")
    population = expected["population"]
    expect(page.locator(".gg-table-population table")).to_contain_text("宁海路街道", timeout=60_000)
    assert table_rows(page, "population") == [[r["name"], str(r["people"])] for r in population.rows]
    assert page.evaluate(_SOURCE, "people") == [[r["name"] for r in population.rows],
                                                [r["people"] for r in population.rows]]
    assert page.evaluate(_SOURCE, "events")[1] == [r["events"] for r in expected["events_by_type"].rows]
    assert [r[1] for r in table_rows(page, "closure")] == [str(r["events"]) for r in expected["closure"].rows]
    assert page.locator(".gg-stat-card .bk-Canvas").count() >= 7 or page.locator(".gg-stat-card").count() == 7

    # a click on the west street's bar drills into it: its communities
    page.locator(".gg-card-population .bk-Canvas").first.scroll_into_view_if_needed()
    page.mouse.click(*page.evaluate(_BAR_AT, ["people", "宁海路街道"]))
    west = service_figures(territory_db, WEST)["population"]
    expect(page.locator(".gg-table-population table")).to_contain_text(west.rows[0]["name"], timeout=20_000)
    assert table_rows(page, "population") == [[r["name"], str(r["people"])] for r in west.rows]
    picker = page.locator(".gg-stat-area select")
    assert "宁海路街道" in picker.evaluate("s => s.options[s.selectedIndex].text")

    # the table as XLSX: the same rows
    with page.expect_download() as info:
        page.locator(".gg-xlsx-population").get_by_text("下载表格（XLSX）").click()
    book = load_workbook(io.BytesIO(open(info.value.path(), "rb").read()))
    assert list(book.active.values) == [("区域", "人数"), *((r["name"], r["people"]) for r in west.rows)]
    # back up, then down by the selector
    page.get_by_role("button", name="返回上一级").click()
    expect(page.locator(".gg-table-population table")).to_contain_text("华侨路街道", timeout=20_000)
    options = picker.locator("option").all_inner_texts()
    picker.select_option(label=next(o for o in options if "仙霞路社区" in o))
    grids = service_figures(territory_db, WEST + ".320106001003")["population"]
    expect(page.locator(".gg-table-population table")).to_contain_text(GRIDS[0][1], timeout=20_000)
    assert table_rows(page, "population") == [[r["name"], str(r["people"])] for r in grids.rows]
    page.screenshot(path="/tmp/gridgov_statistics.png", full_page=True)
    assert browser_log.blocked == []
    assert browser_log.console_errors == []
