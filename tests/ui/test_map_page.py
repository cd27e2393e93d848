"""The map explorer in a real Chromium: offline, drawn, with hover, click selection and layer switching."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.ui.conftest import BrowserLog, open_page
from tests.ui.support import CENTRE_GRID, COMMUNITIES, VIEWER, running_server

pytestmark = pytest.mark.ui

TITLE = "鼓楼区 网格化服务管理 · 地图"
SCREENSHOT = "/tmp/gridgov_map_page.png"


def log_in(page, username: str = VIEWER[0], password: str = VIEWER[1]) -> None:
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()


def load_map(page, base_url: str):
    """Open ``/`` (which lands on the map, through the login form the first time) and wait until the map
    canvas is drawn; returns its box."""
    page.goto(base_url + "/")
    if "/login" in page.url:
        log_in(page)
    canvas = page.locator(".bk-Canvas").first
    canvas.wait_for(state="visible", timeout=60_000)
    expect(page.get_by_text(TITLE)).to_be_visible(timeout=30_000)
    page.wait_for_load_state("networkidle")
    return canvas.bounding_box()


def centre_of(box) -> tuple[float, float]:
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def test_map_page_renders_offline(map_server, page, browser_log: BrowserLog):
    load_map(page, map_server)

    assert page.url == map_server + "/map"
    assert page.locator(".bk-Canvas canvas").count() >= 1
    side = page.locator("#sidebar")
    for label, value in [("街道", "2"), ("社区", "2"), ("网格", "3"), ("楼栋", "1"), ("房屋", "2"),
                         ("实有人口", "2")]:
        expect(side.get_by_role("row", name=f"{label} {value}", exact=True)).to_be_visible()
    page.screenshot(path=SCREENSHOT)

    assert browser_log.blocked == [], f"requests left the machine: {browser_log.blocked}"
    assert browser_log.console_errors == []
    assert browser_log.failed_responses == []


def test_hover_and_click_name_the_grid_under_the_cursor(map_server, page, browser_log: BrowserLog):
    x, y = centre_of(load_map(page, map_server))

    page.mouse.move(x, y)
    expect(page.get_by_text(CENTRE_GRID).first).to_be_visible(timeout=10_000)  # the tooltip
    page.mouse.click(x, y)
    expect(page.get_by_text(f"已选：{CENTRE_GRID}")).to_be_visible(timeout=10_000)  # the side panel

    assert browser_log.console_errors == []
    assert browser_log.blocked == []


def test_switching_grids_off_hovers_the_community(map_server, page, browser_log: BrowserLog):
    x, y = centre_of(load_map(page, map_server))
    community = COMMUNITIES[0][1]

    page.get_by_role("button", name="网格", exact=True).click()
    page.mouse.move(x, y)
    expect(page.get_by_text(community).first).to_be_visible(timeout=10_000)
    # the grid layer is hidden, so it neither answers the hover nor the click
    expect(page.get_by_text(CENTRE_GRID)).to_be_hidden()
    page.mouse.click(x, y)
    expect(page.get_by_text(f"已选：{community}")).to_be_visible(timeout=10_000)

    assert browser_log.console_errors == []


def test_pages_need_a_real_login(map_server, page, browser_log: BrowserLog):
    """No session: the map sends the visitor to the login form. A wrong password is refused there in
    Chinese; the right one opens the map as that user; after logout the map is closed again."""
    page.goto(map_server + "/map")
    expect(page.get_by_role("button", name="登录")).to_be_visible(timeout=30_000)
    assert "/login?next=/map" in page.url
    assert page.locator(".bk-Canvas canvas").count() == 0

    page.context.add_cookies([{"name": "gridgov_session", "value": "forged-token", "url": map_server}])
    page.goto(map_server + "/map")
    assert "/login" in page.url

    log_in(page, password="wrong-password-1")
    expect(page.get_by_role("alert")).to_contain_text("用户名或密码错误", timeout=10_000)

    log_in(page)
    page.locator(".bk-Canvas").first.wait_for(state="visible", timeout=60_000)
    expect(page.get_by_text(f"当前用户：{VIEWER[2]}")).to_be_visible()

    assert page.request.post(map_server + "/api/v1/auth/logout").ok
    page.goto(map_server + "/map")
    assert "/login" in page.url
    assert browser_log.blocked == []


def test_local_tiles_come_from_this_server(territory_db, browser, tmp_path):
    """With a tile folder configured, the basemap is requested from our /tiles/ route and nowhere else."""
    log = BrowserLog()
    tiles: list[tuple[int, str]] = []
    with running_server(territory_db.model_copy(update={"tile_dir": tmp_path})) as base_url:
        context, page = open_page(browser, log)
        page.on("response", lambda r: "/tiles/" in r.url and tiles.append((r.status, r.url)))
        try:
            load_map(page, base_url)
        finally:
            context.close()
    assert tiles and all(status == 200 and url.startswith(base_url + "/tiles/") for status, url in tiles)
    assert log.blocked == [] and log.console_errors == [] and log.failed_responses == []


_CURSOR_TEXT = """() => { for (const doc of Bokeh.documents) {
  const label = doc.get_model_by_name("gg-cursor"); if (label) return label.text } return null }"""


def _lonlat(text: str, frame: str = "CGCS2000") -> tuple[float, float]:
    after = text.split(frame, 1)[1].split("·")[0]
    lon, lat = (float(v) for v in after.split(","))
    return lon, lat


def test_cursor_coordinates_follow_the_mouse(map_server, page, browser_log: BrowserLog):
    """The readout names the lon/lat (CGCS2000) under the cursor: moving right and up grows both."""
    box = load_map(page, map_server)
    x, y = centre_of(box)
    page.mouse.move(x, y)
    page.wait_for_function(f"() => ({_CURSOR_TEXT})()", timeout=10_000)
    first = page.evaluate(_CURSOR_TEXT)
    lon, lat = _lonlat(first)
    # the centre of the view is the district's centre (118.75, 32.08), give or take the padding
    assert 118.74 < lon < 118.76 and 32.07 < lat < 32.09, first
    assert "GCJ-02" not in first  # no Gaode basemap: one frame only
    page.mouse.move(x + 100, y - 60)
    page.wait_for_function(f"() => ({_CURSOR_TEXT})() !== {first!r}", timeout=10_000)
    lon2, lat2 = _lonlat(page.evaluate(_CURSOR_TEXT))
    assert lon2 > lon and lat2 > lat
    assert browser_log.console_errors == [] and browser_log.blocked == []


def test_cursor_reads_both_frames_over_gaode(territory_db, browser):
    """Over a Gaode basemap the readout gives GCJ-02 (what is drawn) and CGCS2000 (what is stored), a few
    hundred metres apart, as the published transform says. The tiles themselves are blocked offline."""
    from gis.crs import from_wgs84_to_gcj02

    log = BrowserLog()
    with running_server(territory_db.model_copy(update={"basemap": "gaode"})) as base_url:
        context, page = open_page(browser, log)
        try:
            x, y = centre_of(load_map(page, base_url))
            page.mouse.move(x, y)
            page.wait_for_function(f"() => ({_CURSOR_TEXT})()", timeout=10_000)
            text = page.evaluate(_CURSOR_TEXT)
        finally:
            context.close()
    lon, lat = _lonlat(text)
    glon, glat = _lonlat(text, "GCJ-02")
    elon, elat = from_wgs84_to_gcj02(lon, lat)
    assert abs(glon - elon) < 2e-6 and abs(glat - elat) < 2e-6, text
    # the only errors are the Gaode tiles this offline test refuses
    assert all("autonavi.com" in url for url in log.blocked)
    assert all(error.startswith("Failed to load resource") for error in log.console_errors)


def test_tianditu_without_a_key_falls_back_offline_with_a_notice(territory_db, browser):
    log = BrowserLog()
    settings = territory_db.model_copy(update={"basemap": "tianditu", "tianditu_key": None})
    with running_server(settings) as base_url:
        context, page = open_page(browser, log)
        try:
            load_map(page, base_url)
            expect(page.locator(".gg-basemap-notice")).to_contain_text("未配置天地图密钥，已使用离线底图")
            assert page.locator(".bk-Canvas canvas").count() >= 1
            page.screenshot(path="/tmp/gridgov_map_tianditu_no_key.png")
        finally:
            context.close()
    assert log.blocked == [] and log.console_errors == [] and log.failed_responses == []
