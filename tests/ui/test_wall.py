"""The command wall in a real Chromium: offline and clean, live without a reload (a posted position
within 10 s, a new 重大 event as a toast), and one shared refresh task for every open screen."""

from __future__ import annotations

import datetime as dt
import time

import httpx
import pytest
from playwright.sync_api import expect

from dashboards import wall
from gis import db
from gis.security import users
from tests.patrol_helpers import insert_event
from tests.ui.conftest import BrowserLog, open_page
from tests.ui.support import running_server
from tests.ui.test_map_page import log_in

pytestmark = pytest.mark.ui

G2_PATH = "320106.320106001.320106001003.320106001003002"
WORKER = ("wangge_ui", "Gridgov#2024ui", "巡查员小王")
SCREENSHOT = "/tmp/gridgov_wall.png"


@pytest.fixture(scope="module")
def wall_server(territory_db):
    # Events every 5 s instead of 15 s: the test waits less; positions keep their production pace.
    slow, wall.SLOW_SECONDS = wall.SLOW_SECONDS, 5.0
    with db.owner_engine(territory_db).begin() as conn:
        users.upsert_user(conn, WORKER[0], WORKER[1], "grid_worker", G2_PATH, WORKER[2])
    for i in range(3):
        insert_event(territory_db, f"楼道堆物{i}", minutes_ago=10 + i)
    with running_server(territory_db) as base_url:
        yield base_url
    wall.stop_feeds()
    wall.SLOW_SECONDS = slow


def open_wall(page, base_url: str) -> None:
    page.goto(base_url + "/wall")
    if "/login" in page.url:
        log_in(page)
    page.wait_for_url("**/wall", timeout=30_000)
    page.locator(".bk-Canvas").first.wait_for(state="visible", timeout=60_000)
    # the first snapshot arrived: the tiles carry numbers
    expect(page.locator("[data-kpi=reported] .gg-value")).to_have_text("3", timeout=30_000)


def test_wall_loads_offline_and_clean(wall_server, page, browser_log: BrowserLog):
    open_wall(page, wall_server)
    expect(page.get_by_text("综治指挥大屏")).to_be_visible()
    expect(page.locator(".gg-new-events").get_by_text("楼道堆物0")).to_be_visible()
    page.wait_for_load_state("networkidle")
    page.screenshot(path=SCREENSHOT)
    assert browser_log.blocked == [], f"requests left the machine: {browser_log.blocked}"
    assert browser_log.console_errors == []
    assert browser_log.failed_responses == []


def test_live_position_and_major_event_arrive_without_reload(wall_server, territory_db, page, browser,
                                                             browser_log):
    open_wall(page, wall_server)
    feeds = [f for f in wall._FEEDS.values() if f.reader.scope_path == "320106"]
    assert len(feeds) == 1
    screens = feeds[0].subscribers   # this one, and maybe the previous test's until Bokeh expires it
    # a second screen on the same territory subscribes to the same feed: one refresh task for both
    context2, page2 = open_page(browser, BrowserLog())
    try:
        page2.goto(wall_server + "/wall")
        log_in(page2)
        expect(page2.locator("[data-kpi=reported] .gg-value")).to_have_text("3", timeout=60_000)
        assert [f for f in wall._FEEDS.values() if f.reader.scope_path == "320106"] == feeds
        assert feeds[0].subscribers == screens + 1

        workers = page.locator(".gg-workers")
        expect(workers.get_by_text(WORKER[2])).to_have_count(0)
        with httpx.Client(base_url=wall_server) as client:
            token = client.post("/api/v1/auth/login",
                                json={"username": WORKER[0], "password": WORKER[1]}).json()["token"]
            fix = {"time": dt.datetime.now(dt.UTC).isoformat(), "lon": 118.748, "lat": 32.081}
            posted = client.post("/api/v1/positions", json={"crs": "wgs84", "fixes": [fix]},
                                 headers={"Authorization": f"Bearer {token}"})
        assert posted.status_code == 201, posted.text
        sent = time.monotonic()
        expect(workers.get_by_text(WORKER[2])).to_be_visible(timeout=10_000)
        assert time.monotonic() - sent < 10
        expect(page.locator("[data-kpi=on_patrol] .gg-value")).to_have_text("1", timeout=10_000)

        insert_event(territory_db, "化工厂门口聚集", urgency="major", minutes_ago=0)
        expect(page.locator(".gg-toasts").get_by_text("【重大事件】化工厂门口聚集")).to_be_visible(timeout=15_000)
        expect(page2.locator(".gg-toasts").get_by_text("【重大事件】化工厂门口聚集")).to_be_visible(timeout=5_000)
        assert page.url.endswith("/wall")  # never reloaded
    finally:
        context2.close()
    assert browser_log.console_errors == []
    assert browser_log.blocked == []
