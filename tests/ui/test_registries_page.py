"""The registry page in a real Chromium: open a registry, search it, edit a record in the side panel and see
the change; a stale edit is refused in Chinese; a point is set on the small map; print and export links
work with the login cookie; no request leaves the machine."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import text

from gis import db
from gis.security import roles, users
from gis.security.scope import scoped_connection
from gis.security.sessions import CurrentUser
from layers import registry_service as service
from layers.registries import REGISTRIES
from tests.ui.conftest import BrowserLog
from tests.ui.support import GRIDS, running_server
from tests.ui.test_map_page import log_in

pytestmark = pytest.mark.ui

EDITOR = ("shuju_test", "Gridgov#2024ui", "测试数据员")
CENTRE_GRID_PATH = "320106.320106001.320106001003.320106001003002"
CAMERAS = [("鼓楼医院东门", "118.745 32.08"), ("人民路口", "118.746 32.081"),
           ("北京西路口", "118.747 32.082")]
SCREENSHOT = "/tmp/gridgov_registries_page.png"
MAP_SCREENSHOT = "/tmp/gridgov_registries_map.png"


@pytest.fixture(scope="module")
def registry_server(territory_db):
    """The tiny territory, a data-staff account and three cameras in the centre grid."""
    with db.owner_engine(territory_db).begin() as conn:
        user_id = users.upsert_user(conn, EDITOR[0], EDITOR[1], "data_staff", "320106", EDITOR[2])
    editor = CurrentUser(id=user_id, username=EDITOR[0], name=EDITOR[2], role="data_staff",
                         scope_path="320106", permissions=roles.ROLES["data_staff"].permissions)
    ids = {}
    with scoped_connection(territory_db, editor) as conn:
        for name, lonlat in CAMERAS:
            lon, lat = map(float, lonlat.split())
            ids[name] = service.create_record(conn, editor, REGISTRIES["camera"], {
                "name": name, "location": "路口东北角", "org_path": CENTRE_GRID_PATH,
                "geometry": {"type": "Point", "coordinates": [lon, lat]}})["id"]
    with running_server(territory_db) as base_url:
        yield {"url": base_url, "settings": territory_db, "editor": editor, "ids": ids}


def camera(server, record_id: int) -> dict:
    with db.owner_engine(server["settings"]).connect() as conn:
        return dict(conn.execute(text(
            "SELECT location, version, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM camera WHERE id = :id"),
            {"id": record_id}).mappings().one())


def open_registry(page, base_url: str, key: str) -> None:
    page.goto(f"{base_url}/registries?registry={key}")
    if "/login" in page.url:  # the login form returns to the path, without the query: go again
        log_in(page, EDITOR[0], EDITOR[1])
        expect(page.get_by_text("台账管理").first).to_be_visible(timeout=60_000)
        page.goto(f"{base_url}/registries?registry={key}")
    expect(page.get_by_text("台账管理").first).to_be_visible(timeout=60_000)
    page.locator(".gg-registry-table .tabulator-row").first.wait_for(state="visible", timeout=30_000)


def side(page):
    return page.locator(".gg-side-panel")


def test_search_edit_and_see_the_change(registry_server, page, browser_log: BrowserLog):
    server = registry_server
    open_registry(page, server["url"], "camera")
    rows = page.locator(".gg-registry-table .tabulator-row")
    expect(rows).to_have_count(3)
    expect(page.get_by_text("共 3 条")).to_be_visible()

    # 精准查询 by name (pg_trgm contains): one camera.
    page.get_by_label("点位名称").fill("医院")
    page.get_by_role("button", name="查询").click()
    expect(page.get_by_text("共 1 条")).to_be_visible(timeout=10_000)
    expect(rows).to_have_count(1)

    # Open it in the side panel, change a field, save: the table shows the new value, the row is saved.
    rows.first.get_by_text("鼓楼医院东门").click()
    expect(side(page).get_by_text("视频监控点位：鼓楼医院东门")).to_be_visible(timeout=10_000)
    location = side(page).get_by_label("安装位置")
    expect(location).to_have_value("路口东北角")
    location.fill("医院东门岗亭顶")
    side(page).get_by_role("button", name="保存").click()
    expect(side(page).get_by_text("已保存（第 2 版）")).to_be_visible(timeout=10_000)
    expect(rows.first.get_by_text("医院东门岗亭顶")).to_be_visible()
    record_id = server["ids"]["鼓楼医院东门"]
    assert camera(server, record_id)["location"] == "医院东门岗亭顶"

    # Someone else saves in between: the page's edit, based on version 2, is refused in Chinese.
    with scoped_connection(server["settings"], server["editor"]) as conn:
        service.update_record(conn, server["editor"], REGISTRIES["camera"], record_id,
                              {"owner_unit": "鼓楼分局"}, version=2)
    side(page).get_by_label("安装位置").fill("覆盖他人的修改")
    side(page).get_by_role("button", name="保存").click()
    expect(side(page).get_by_text("已被他人修改")).to_be_visible(timeout=10_000)
    assert camera(server, record_id)["location"] == "医院东门岗亭顶"
    page.screenshot(path=SCREENSHOT, full_page=True)

    assert browser_log.blocked == [], f"requests left the machine: {browser_log.blocked}"
    assert browser_log.console_errors == []
    assert browser_log.failed_responses == []


def test_print_and_export_links_open_with_the_login(registry_server, page, browser_log: BrowserLog):
    open_registry(page, registry_server["url"], "camera")
    page.get_by_label("点位名称").fill("路口")
    page.get_by_role("button", name="查询").click()
    expect(page.get_by_text("共 2 条")).to_be_visible(timeout=10_000)
    link = page.get_by_role("link", name="打印列表")
    href = link.get_attribute("href")
    assert href.startswith("/api/v1/registries/camera/print?") and "name=" in href
    printed = page.request.get(registry_server["url"] + href)
    assert printed.ok and printed.headers["content-type"] == "application/pdf"
    csv_href = page.get_by_role("link", name="下载 CSV").get_attribute("href")
    csv = page.request.get(registry_server["url"] + csv_href)
    assert csv.ok and csv.text().count("路口") >= 2 and "鼓楼医院" not in csv.text()
    assert browser_log.blocked == []


def test_a_point_is_set_on_the_small_map(registry_server, page, browser_log: BrowserLog):
    server = registry_server
    open_registry(page, server["url"], "camera")
    page.locator(".gg-registry-table .tabulator-row").get_by_text("北京西路口").click()
    expect(side(page).get_by_text("视频监控点位：北京西路口")).to_be_visible(timeout=10_000)
    canvas = side(page).locator(".bk-Canvas").first
    canvas.wait_for(state="visible", timeout=30_000)
    canvas.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    box = canvas.bounding_box()
    # The map is fitted to the district; its centre (118.75, 32.08) lies in the centre grid.
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(side(page).get_by_text("（未保存）")).to_be_visible(timeout=10_000)
    page.mouse.move(box["x"] - 200, box["y"])  # off the map, so no tooltip hides the marker
    page.wait_for_timeout(300)
    canvas.screenshot(path=MAP_SCREENSHOT)  # the marker moved to the click
    side(page).get_by_role("button", name="保存").click()
    expect(side(page).get_by_text("已保存（第 2 版）")).to_be_visible(timeout=10_000)
    saved = camera(server, server["ids"]["北京西路口"])
    x0, y0, x1, y1 = GRIDS[1][4]
    assert x0 < saved["lon"] < x1 and y0 < saved["lat"] < y1
    assert (round(saved["lon"], 3), round(saved["lat"], 3)) != (118.747, 32.082)
    assert browser_log.blocked == [] and browser_log.console_errors == []
