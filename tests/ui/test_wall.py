"""The command wall in a real Chromium: offline and clean, live without a reload (a posted position
within 10 s, a new 重大 event as a toast), and one shared refresh task for every open screen."""

from __future__ import annotations

import datetime as dt
import re
import time

import httpx
import pytest
from playwright.sync_api import expect
from sqlalchemy import text

from dashboards import wall
from gis import db
from gis.security import users
from tests.patrol_helpers import insert_event
from tests.test_cameras import add_camera
from tests.ui.conftest import BrowserLog, open_page
from tests.ui.support import running_server
from tests.ui.test_map_page import log_in

pytestmark = pytest.mark.ui

G2_PATH = "320106.320106001.320106001003.320106001003002"
WORKER = ("wangge_ui", "Gridgov#2024ui", "巡查员小王")
SCREENSHOT = "/tmp/gridgov_wall.png"
# (name, lon, lat, status, stream URL): one whose stream is not there (this server answers 404), one
# HLS that is not there either, one more beside the first for the box selection.
CAMERAS = [("仙霞路小区大门", 118.745, 32.085, "1", "/video/NOPE0001.jpg"),
           ("华侨路主路口", 118.7575, 32.0800, "0", "/video/NOPE0003.m3u8"),
           ("仙霞路小区侧门", 118.7465, 32.0862, "1", "/video/NOPE0002.mjpg")]

_POINT_ON_SCREEN = """([x, y]) => { for (const doc of Bokeh.documents) for (const m of doc.all_models)
  if (m.x_range && m.renderers && m.renderers.length > 3) {
    const v = Bokeh.index.find_one(m); if (!v) continue;
    const c = v.el.getBoundingClientRect();
    return [c.left + v.frame.x_scale.compute(x), c.top + v.frame.y_scale.compute(y)] }
  return null }"""
_CAMERA_NAMES = """() => { const out = [];
  for (const doc of Bokeh.documents) for (const m of doc.all_models)
    if (m.type === 'ColumnDataSource' || (m.data && m.data.status_name)) {
      const names = m.data && m.data.status_name ? Array.from(m.data.name) : null;
      if (names) out.push(...names) }
  return out }"""


@pytest.fixture(scope="module")
def wall_server(territory_db):
    # Events every 5 s instead of 15 s: the test waits less; positions keep their production pace.
    slow, wall.SLOW_SECONDS = wall.SLOW_SECONDS, 5.0
    with db.owner_engine(territory_db).begin() as conn:
        users.upsert_user(conn, WORKER[0], WORKER[1], "grid_worker", G2_PATH, WORKER[2])
    for i in range(3):
        insert_event(territory_db, f"楼道堆物{i}", minutes_ago=10 + i)
    with db.owner_engine(territory_db).begin() as conn:
        for name, lon, lat, status, url in CAMERAS:
            add_camera(conn, name, lon, lat, status=status, url=url, heading=45,
                       org_path="320106.320106001" if lon < 118.755 else "320106.320106002")
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
    # the first snapshot arrived: the tiles carry numbers (later tests add events: any number)
    expect(page.locator("[data-kpi=reported] .gg-value")).to_have_text(re.compile(r"^[0-9]+$"),
                                                                       timeout=30_000)


def test_wall_loads_offline_and_clean(wall_server, page, browser_log: BrowserLog):
    open_wall(page, wall_server)
    expect(page.locator("[data-kpi=reported] .gg-value")).to_have_text("3")
    expect(page.locator("[data-kpi=overdue_visits] .gg-label")).to_have_text("逾期走访")
    expect(page.locator("[data-kpi=overdue_visits] .gg-value")).to_have_text("0")
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


def screen_point(page, lon: float, lat: float) -> tuple[float, float]:
    return tuple(page.evaluate(_POINT_ON_SCREEN, list(wall.mercator(lon, lat))))


def test_cameras_layer_card_unreachable_stream_and_video_wall(wall_server, territory_db, page, browser_log):
    open_wall(page, wall_server)
    page.wait_for_timeout(1000)
    assert sorted(page.evaluate(_CAMERA_NAMES)) == sorted(c[0] for c in CAMERAS)   # the layer is drawn
    # a click on the camera opens its card; its stream is not there: say so
    page.mouse.click(*screen_point(page, *CAMERAS[0][1:3]))
    card = page.locator(".gg-camera-card")
    expect(card.locator("h3")).to_have_text(CAMERAS[0][0] + "在线", timeout=15_000)
    expect(card.get_by_text("视频无法连接")).to_be_visible(timeout=15_000)
    # an HLS camera: hls.js (ours, see test_wall_cameras.py) finds no playlist, the card says so
    page.mouse.click(*screen_point(page, *CAMERAS[1][1:3]))
    expect(card.locator("h3")).to_have_text(CAMERAS[1][0] + "离线", timeout=15_000)
    expect(card.locator("video.gg-live")).to_have_attribute("data-player-state", "error", timeout=20_000)
    expect(card.get_by_text("视频无法连接")).to_be_visible()
    # a box around the two gate cameras opens both in the video wall
    page.locator(".bk-tool-icon-box-select").first.click()
    x0, y0 = screen_point(page, 118.7440, 32.0870)
    x1, y1 = screen_point(page, 118.7475, 32.0840)
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=5)
    page.mouse.move(x1, y1, steps=5)
    page.mouse.up()
    grid = page.locator(".gg-video-wall")
    expect(grid.locator(".gg-cam")).to_have_count(2, timeout=15_000)
    expect(grid.locator("h3", has_text=CAMERAS[2][0])).to_be_visible()
    expect(grid.get_by_text("视频无法连接")).to_have_count(2, timeout=15_000)
    page.get_by_role("button", name="关闭视频").click()
    expect(grid.locator(".gg-cam")).to_have_count(0, timeout=10_000)
    # the only errors: the streams that are not there (which is what the message said)
    assert [e for e in browser_log.console_errors if "404" not in e] == []
    assert all("/video/NOPE" in r for r in browser_log.failed_responses)
    assert browser_log.blocked == []


def test_nearest_cameras_of_a_selected_event(wall_server, territory_db, page):
    open_wall(page, wall_server)
    picker = page.locator(".gg-event-pick select")
    label = next(o for o in picker.locator("option").all_inner_texts() if o.startswith("楼道堆物0"))
    picker.select_option(label=label)
    nearby = page.locator(".gg-nearby")
    expect(nearby.get_by_text("附近摄像头")).to_be_visible(timeout=15_000)
    with db.owner_engine(territory_db).connect() as conn:
        expected = [r[0] for r in conn.execute(text(
            "SELECT c.name FROM camera c, event e WHERE e.title = '楼道堆物0'"
            " ORDER BY ST_Distance(c.geom::geography, e.location::geography) LIMIT 4"))]
    expect(nearby.locator(".gg-main")).to_have_text(expected, timeout=10_000)
    page.get_by_role("button", name="在视频墙打开附近摄像头").click()
    expect(page.locator(".gg-video-wall .gg-cam")).to_have_count(len(expected), timeout=15_000)
