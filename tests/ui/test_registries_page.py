"""The registry page in a real Chromium: open a registry, search it, edit a record in the side panel and see
the change; a stale edit is refused in Chinese; a point is set on the small map, or typed in another
coordinate system; polygons and lines are drawn (and their vertices edited) on the small map and read back
from the database; a record is soft-deleted; 帮扶记录 are added; a school lists the key persons living
near it; print and export links work with the login cookie, for a line registry too; no request leaves
the machine."""

from __future__ import annotations

import datetime as dt
import io
import json
import re

import geopandas as gpd
import openpyxl
import panel as pn
import pytest
from playwright.sync_api import expect
from sqlalchemy import text

from gis import db
from gis.crs import to_cgcs2000
from gis.masking import mask_id_number
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
SOCIAL = ("shequ_test", "Gridgov#2024ui", "测试社工")  # community staff: special populations, visits
ZHANG_ID = "11010519491231002X"  # a valid citizen number (GB 11643 check digit), for the masking check
SCHOOL = (118.7500, 32.0790, 118.7510, 32.0800)  # ~70 m east of 1幢 (118.749-118.7495, 32.079-32.0795)
CENTRE_GRID_PATH = "320106.320106001.320106001003.320106001003002"
CAMERAS = [("鼓楼医院东门", "118.745 32.08"), ("人民路口", "118.746 32.081"),
           ("北京西路口", "118.747 32.082")]
WAIT = 30_000  # ms: a side panel with a map takes a while on a busy machine
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
    ids |= _people_near_a_school(territory_db)
    with scoped_connection(territory_db, editor) as conn:
        ids["铁路道口段"] = service.create_record(conn, editor, REGISTRIES["road_line_section"], {
            "name": "铁路道口段", "geometry": {"type": "LineString",
                                            "coordinates": [[118.742, 32.072], [118.758, 32.088]]}})["id"]
        ids["待删除路段"] = service.create_record(conn, editor, REGISTRIES["road_line_section"], {
            "name": "待删除路段", "geometry": {"type": "LineString",
                                            "coordinates": [[118.745, 32.08], [118.75, 32.081]]}})["id"]
    with running_server(territory_db) as base_url:
        yield {"url": base_url, "settings": territory_db, "editor": editor, "ids": ids}


def _people_near_a_school(settings) -> dict[str, int]:
    """A school by 1幢; 张三 (drug user, with an ID number) lives in 1幢; 赵六 lives there too but is on no
    register; 李四 (drug user, key youth) lives in 2幢 across the district, far from the school."""
    with db.owner_engine(settings).begin() as conn:
        social_id = users.upsert_user(conn, SOCIAL[0], SOCIAL[1], "community_staff", "320106", SOCIAL[2])
        conn.execute(text(
            "INSERT INTO building (grid_id, name, floors, footprint) SELECT id, '2幢', 6, "
            "ST_MakeEnvelope(118.757, 32.085, 118.7575, 32.0855, 4490) FROM territory_unit "
            "WHERE code = '320106002002001'"))
        conn.execute(text("INSERT INTO house (building_id, floor, room_no) SELECT id, 1, '101' FROM building"
                          " WHERE name = '2幢'"))
        conn.execute(text(
            "INSERT INTO person (name, sex, birth_date, org_path, district_code) VALUES ('赵六', '1',"
            " '1985-05-05', '320106.320106001.320106001003.320106001003002', '320106')"))
        conn.execute(text("UPDATE person SET id_number = :n WHERE name = '张三'"), {"n": ZHANG_ID})
        person = dict(conn.execute(text("SELECT name, id FROM person")).all())
        house = {(b, r): h for b, r, h in conn.execute(text(
            "SELECT b.name, h.room_no, h.id FROM house h JOIN building b ON b.id = h.building_id")).all()}
        for name, home in (("张三", ("1幢", "101")), ("赵六", ("1幢", "201")), ("李四", ("2幢", "101"))):
            conn.execute(text("INSERT INTO residence (person_id, house_id, relation, is_head)"
                              " VALUES (:p, :h, '01', true)"), {"p": person[name], "h": house[home]})
    social = CurrentUser(id=social_id, username=SOCIAL[0], name=SOCIAL[2], role="community_staff",
                         scope_path="320106", permissions=roles.ROLES["community_staff"].permissions)
    x0, y0, x1, y1 = SCHOOL
    ids = {}
    with scoped_connection(settings, social) as conn:
        for name in ("张三", "李四"):
            service.create_record(conn, social, REGISTRIES["drug_user"], {"person_id": person[name]})
        ids["李四青少年"] = service.create_record(conn, social, REGISTRIES["key_youth"], {
            "person_id": person["李四"], "category": "1"})["id"]
        ids["测试小学"] = service.create_record(conn, social, REGISTRIES["school"], {
            "name": "测试小学", "org_path": CENTRE_GRID_PATH, "geometry": {"type": "Polygon", "coordinates": [
                [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}})["id"]
    return ids


def camera(server, record_id: int) -> dict:
    with db.owner_engine(server["settings"]).connect() as conn:
        return dict(conn.execute(text(
            "SELECT location, version, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM camera WHERE id = :id"),
            {"id": record_id}).mappings().one())


def open_registry(page, base_url: str, key: str, account=EDITOR, more: str = "") -> None:
    page.goto(f"{base_url}/registries?registry={key}{more}")
    if "/login" in page.url:  # the login form returns to the path, without the query: go again
        log_in(page, account[0], account[1])
        expect(page.get_by_text("台账管理").first).to_be_visible(timeout=60_000)
        page.goto(f"{base_url}/registries?registry={key}{more}")
    expect(page.get_by_text("台账管理").first).to_be_visible(timeout=60_000)
    expect(page.locator(".gg-page-info")).to_contain_text("共", timeout=30_000)


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
    expect(page.get_by_text("共 1 条")).to_be_visible(timeout=WAIT)
    expect(rows).to_have_count(1)

    # Open it in the side panel, change a field, save: the table shows the new value, the row is saved.
    rows.first.get_by_text("鼓楼医院东门").click()
    expect(side(page).get_by_text("视频监控点位：鼓楼医院东门")).to_be_visible(timeout=WAIT)
    location = side(page).get_by_label("安装位置")
    expect(location).to_have_value("路口东北角")
    location.fill("医院东门岗亭顶")
    side(page).get_by_role("button", name="保存").click()
    expect(side(page).get_by_text("已保存（第 2 版）")).to_be_visible(timeout=WAIT)
    expect(rows.first.get_by_text("医院东门岗亭顶")).to_be_visible()
    record_id = server["ids"]["鼓楼医院东门"]
    assert camera(server, record_id)["location"] == "医院东门岗亭顶"

    # Someone else saves in between: the page's edit, based on version 2, is refused in Chinese.
    with scoped_connection(server["settings"], server["editor"]) as conn:
        service.update_record(conn, server["editor"], REGISTRIES["camera"], record_id,
                              {"owner_unit": "鼓楼分局"}, version=2)
    side(page).get_by_label("安装位置").fill("覆盖他人的修改")
    side(page).get_by_role("button", name="保存").click()
    expect(side(page).get_by_text("已被他人修改")).to_be_visible(timeout=WAIT)
    assert camera(server, record_id)["location"] == "医院东门岗亭顶"
    page.screenshot(path=SCREENSHOT, full_page=True)

    assert browser_log.blocked == [], f"requests left the machine: {browser_log.blocked}"
    assert browser_log.console_errors == []
    assert browser_log.failed_responses == []


def test_print_and_export_links_open_with_the_login(registry_server, page, browser_log: BrowserLog):
    open_registry(page, registry_server["url"], "camera")
    page.get_by_label("点位名称").fill("路口")
    page.get_by_role("button", name="查询").click()
    expect(page.get_by_text("共 2 条")).to_be_visible(timeout=WAIT)
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
    expect(side(page).get_by_text("视频监控点位：北京西路口")).to_be_visible(timeout=WAIT)
    canvas = side(page).locator(".bk-Canvas").first
    canvas.wait_for(state="visible", timeout=30_000)
    canvas.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    box = canvas.bounding_box()
    # The map is fitted to the district; its centre (118.75, 32.08) lies in the centre grid.
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(side(page).get_by_text("（未保存）")).to_be_visible(timeout=WAIT)
    page.mouse.move(box["x"] - 200, box["y"])  # off the map, so no tooltip hides the marker
    page.wait_for_timeout(300)
    canvas.screenshot(path=MAP_SCREENSHOT)  # the marker moved to the click
    side(page).get_by_role("button", name="保存").click()
    expect(side(page).get_by_text("已保存（第 2 版）")).to_be_visible(timeout=WAIT)
    saved = camera(server, server["ids"]["北京西路口"])
    x0, y0, x1, y1 = GRIDS[1][4]
    assert x0 < saved["lon"] < x1 and y0 < saved["lat"] < y1
    assert (round(saved["lon"], 3), round(saved["lat"], 3)) != (118.747, 32.082)
    assert browser_log.blocked == [] and browser_log.console_errors == []


# ---------------------------------------------------------------- drawing, deleting, visits, nearby, CRS

def small_map(page) -> dict:
    """The side panel's map, scrolled into view; returns its canvas box."""
    canvas = side(page).locator(".bk-Canvas").first
    canvas.wait_for(state="visible", timeout=30_000)
    canvas.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    return canvas.bounding_box()


def long_press(page, x: float, y: float) -> None:
    """Bokeh 3.9's draw tools start and finish a shape with a press (held over 300 ms)."""
    page.mouse.move(x, y)
    page.mouse.down()
    page.wait_for_timeout(500)
    page.mouse.up()
    page.wait_for_timeout(350)


def tap(page, x: float, y: float) -> None:
    page.mouse.move(x, y)
    page.mouse.click(x, y)
    page.wait_for_timeout(400)  # two taps within 300 ms would be a double tap, which adds no vertex


def shape(server, table: str, name: str) -> dict:
    with db.owner_engine(server["settings"]).connect() as conn:
        return dict(conn.execute(text(
            f"SELECT t.id, t.version, ST_GeometryType(t.geom) AS kind, ST_NPoints(t.geom) AS points,"
            f" ST_IsValid(t.geom) AS valid, ST_AsGeoJSON(t.geom) AS geojson,"
            f" ST_CoveredBy(t.geom, u.boundary) AS inside, t.org_path::text AS org_path"
            f" FROM {table} t JOIN territory_unit u ON u.path = t.org_path"
            f" WHERE t.name = :name AND t.deleted_at IS NULL"), {"name": name}).mappings().one())


def test_a_polygon_is_drawn_on_the_small_map(registry_server, page, browser_log: BrowserLog):
    server = registry_server
    open_registry(page, server["url"], "key_area")
    page.get_by_role("button", name="新增记录").click()
    expect(side(page).get_by_text("新增重点地区整治")).to_be_visible(timeout=WAIT)
    side(page).get_by_label("治安重点地区").fill("火车站广场")
    expect(side(page).get_by_text("长按开始")).to_be_visible()
    box = small_map(page)
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    long_press(page, cx - 50, cy - 40)
    tap(page, cx + 50, cy - 40)
    tap(page, cx + 50, cy + 40)
    long_press(page, cx - 50, cy + 40)
    expect(side(page).get_by_text("已绘制 1 个面，共 4 个顶点（未保存）")).to_be_visible(timeout=WAIT)
    page.mouse.move(box["x"] - 200, box["y"])
    side(page).locator(".bk-Canvas").first.screenshot(path="/tmp/gridgov_registries_polygon.png")
    side(page).get_by_role("button", name="保存").click()
    expect(side(page).get_by_text("已保存（第 1 版）")).to_be_visible(timeout=WAIT)

    saved = shape(server, "key_area", "火车站广场")
    assert saved["kind"] == "ST_MultiPolygon" and saved["points"] == 5 and saved["valid"]
    assert saved["inside"] and saved["org_path"] == "320106"
    with db.owner_engine(server["settings"]).connect() as conn:  # the map's centre lies inside it
        assert conn.execute(text("SELECT ST_Contains(geom, ST_SetSRID(ST_MakePoint(118.75, 32.08), 4490))"
                                 " FROM key_area WHERE id = :id"), {"id": saved["id"]}).scalar_one()

    # A second polygon east of the district (the map is wider than the district): the service refuses it.
    box = small_map(page)
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    long_press(page, cx + 140, cy - 20)
    tap(page, cx + 180, cy - 20)
    long_press(page, cx + 180, cy + 20)
    expect(side(page).get_by_text("已绘制 2 个面")).to_be_visible(timeout=WAIT)
    side(page).get_by_role("button", name="保存").click()
    expect(side(page).get_by_text("位置不在所属区域“鼓楼区”范围内")).to_be_visible(timeout=WAIT)
    assert shape(server, "key_area", "火车站广场") == saved
    assert browser_log.blocked == [] and browser_log.console_errors == []


def test_a_line_is_drawn_and_its_vertex_moved(registry_server, page, browser_log: BrowserLog):
    server = registry_server
    open_registry(page, server["url"], "road_line_section")
    page.get_by_role("button", name="新增记录").click()
    side(page).get_by_label("地段名称").fill("中山路测试段")
    box = small_map(page)
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    long_press(page, cx - 60, cy)
    tap(page, cx, cy - 40)
    long_press(page, cx + 60, cy)
    expect(side(page).get_by_text("已绘制 1 个线，共 3 个顶点（未保存）")).to_be_visible(timeout=WAIT)
    side(page).get_by_role("button", name="保存").click()
    expect(side(page).get_by_text("已保存（第 1 版）")).to_be_visible(timeout=WAIT)
    drawn = shape(server, "road_line_section", "中山路测试段")
    assert drawn["kind"] == "ST_MultiLineString" and drawn["points"] == 3 and drawn["inside"]
    middle = json.loads(drawn["geojson"])["coordinates"][0][1]

    # Edit the vertices of the saved line: pick the edit tool, press the line, drag its middle vertex down.
    page.get_by_title("编辑顶点").first.click()
    box = small_map(page)
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    long_press(page, cx, cy - 40)
    page.mouse.move(cx, cy - 40)
    page.mouse.down()
    for step in range(1, 9):
        page.mouse.move(cx, cy - 40 + step * 10)
        page.wait_for_timeout(30)
    page.mouse.up()
    expect(side(page).get_by_text("（未保存）")).to_be_visible(timeout=WAIT)
    side(page).get_by_role("button", name="保存").click()
    expect(side(page).get_by_text("已保存（第 2 版）")).to_be_visible(timeout=WAIT)
    edited = shape(server, "road_line_section", "中山路测试段")
    assert edited["points"] == 3 and edited["inside"] and edited["version"] == 2
    moved = json.loads(edited["geojson"])["coordinates"][0][1]
    assert moved[1] < middle[1] - 0.001, (middle, moved)  # ~80 px further south
    assert browser_log.blocked == [] and browser_log.console_errors == []


def test_exports_and_print_of_line_and_polygon_registries(registry_server, page, browser_log: BrowserLog):
    server = registry_server
    open_registry(page, server["url"], "road_line_section")
    page.get_by_label("地段名称").fill("铁路道口")
    page.get_by_role("button", name="查询").click()
    expect(page.get_by_text("共 1 条")).to_be_visible(timeout=WAIT)

    def fetch(name: str):
        href = page.get_by_role("link", name=name).get_attribute("href")
        response = page.request.get(server["url"] + href)
        assert response.ok, (name, response.status)
        return response

    assert "铁路道口段" in fetch("下载 CSV").text()
    sheet = openpyxl.load_workbook(io.BytesIO(fetch("下载 Excel").body())).active
    assert "铁路道口段" in [cell.value for row in sheet.iter_rows() for cell in row]
    features = fetch("下载 GeoJSON").json()["features"]
    assert [(f["properties"]["name"], f["geometry"]["type"]) for f in features] == [
        ("铁路道口段", "MultiLineString")]
    frame = gpd.read_file(io.BytesIO(fetch("下载 GeoPackage").body()))
    assert list(frame.name) == ["铁路道口段"] and list(frame.geom_type) == ["MultiLineString"]
    assert fetch("打印列表").headers["content-type"] == "application/pdf"
    page.locator(".gg-registry-table .tabulator-row").get_by_text("铁路道口段").click()
    expect(side(page).get_by_text("护路护线：铁路道口段")).to_be_visible(timeout=WAIT)
    assert fetch("打印本条").headers["content-type"] == "application/pdf"

    # A polygon registry (the key area drawn above, if that test ran; a school otherwise) exports too.
    open_registry(page, server["url"], "school")
    polygons = fetch("下载 GeoJSON").json()["features"]
    assert polygons and {f["geometry"]["type"] for f in polygons} == {"Polygon"}
    assert fetch("打印列表").headers["content-type"] == "application/pdf"
    assert browser_log.blocked == [] and browser_log.failed_responses == []


def test_a_record_is_soft_deleted_after_a_confirmation(registry_server, page, browser_log: BrowserLog):
    server = registry_server
    open_registry(page, server["url"], "road_line_section")
    rows = page.locator(".gg-registry-table .tabulator-row")
    expect(rows.get_by_text("待删除路段")).to_be_visible(timeout=WAIT)
    total = rows.count()  # one page holds them all
    rows.get_by_text("待删除路段").click()
    expect(side(page).get_by_text("护路护线：待删除路段")).to_be_visible(timeout=WAIT)
    side(page).get_by_role("button", name="删除").click()
    expect(side(page).get_by_text("确定删除这条护路护线记录吗")).to_be_visible(timeout=WAIT)
    side(page).get_by_role("button", name="取消").click()  # changing one's mind deletes nothing
    expect(side(page).get_by_text("确定删除")).to_have_count(0)
    side(page).get_by_role("button", name="删除").click()
    side(page).get_by_role("button", name="确认删除").click()
    expect(side(page).get_by_text("已删除护路护线记录“待删除路段”")).to_be_visible(timeout=WAIT)
    expect(page.get_by_text(f"共 {total - 1} 条")).to_be_visible(timeout=WAIT)
    expect(rows).to_have_count(total - 1)
    expect(rows.get_by_text("待删除路段")).to_have_count(0)
    with db.owner_engine(server["settings"]).connect() as conn:
        row = conn.execute(text("SELECT deleted_at, deleted_by, version FROM road_line_section"
                                " WHERE id = :id"), {"id": server["ids"]["待删除路段"]}).mappings().one()
    assert row["deleted_at"] is not None and row["deleted_by"] == server["editor"].id and row["version"] == 2
    assert browser_log.blocked == [] and browser_log.console_errors == []


def test_a_visit_is_added_to_a_key_youth_record(registry_server, page, browser_log: BrowserLog):
    server = registry_server
    open_registry(page, server["url"], "key_youth", SOCIAL)
    page.locator(".gg-registry-table .tabulator-row").get_by_text("李四").click()
    expect(side(page).get_by_text("帮扶记录（0 条）")).to_be_visible(timeout=WAIT)
    expect(side(page).get_by_label("走访人 *")).to_have_value(SOCIAL[2])
    today = dt.date.today()
    side(page).get_by_label("帮扶内容 *").fill("走访谈心，了解就业意向，推荐技能培训")
    side(page).get_by_label("下次走访日期").fill((today - dt.timedelta(days=3)).isoformat())
    side(page).get_by_role("button", name="添加帮扶记录").click()
    expect(side(page).get_by_text("下次走访日期不能早于本次走访日期")).to_be_visible(timeout=WAIT)
    side(page).get_by_label("下次走访日期").fill((today + dt.timedelta(days=30)).isoformat())
    side(page).get_by_role("button", name="添加帮扶记录").click()
    expect(side(page).get_by_text("已添加帮扶记录")).to_be_visible(timeout=WAIT)
    expect(side(page).get_by_text("帮扶记录（1 条）")).to_be_visible()
    expect(side(page).get_by_text("推荐技能培训")).to_be_visible()
    with db.owner_engine(server["settings"]).connect() as conn:
        visits = conn.execute(text(
            "SELECT registry, visited_on, visitor, content, next_due, created_by FROM assistance_visit"
            " WHERE record_id = :id"), {"id": server["ids"]["李四青少年"]}).mappings().all()
    assert [dict(v) for v in visits] == [{
        "registry": "key_youth", "visited_on": today, "visitor": SOCIAL[2],
        "content": "走访谈心，了解就业意向，推荐技能培训", "next_due": today + dt.timedelta(days=30),
        "created_by": visits[0]["created_by"]}]
    assert browser_log.blocked == [] and browser_log.console_errors == []


SPECIAL_TABLES = ("released_prisoner", "community_correction", "mental_patient", "drug_user", "aids_risk",
                  "cult_member", "key_youth")


def test_a_school_lists_the_key_persons_living_nearby(registry_server, page, browser_log: BrowserLog):
    server = registry_server
    open_registry(page, server["url"], "school", SOCIAL)
    page.locator(".gg-registry-table .tabulator-row").get_by_text("测试小学").click()
    expect(side(page).get_by_text("周边重点人员", exact=True)).to_be_visible(timeout=WAIT)
    table_rows = side(page).locator(".gg-nearby-table tbody tr")
    expect(table_rows.first).to_be_visible(timeout=WAIT)
    shown = sorted(table_rows.nth(i).locator("td").first.inner_text() for i in range(table_rows.count()))
    union = " UNION ".join(f"SELECT person_id FROM {t} WHERE deleted_at IS NULL" for t in SPECIAL_TABLES)
    with db.owner_engine(server["settings"]).connect() as conn:
        expected = sorted(conn.execute(text(f"""
            SELECT DISTINCT p.name FROM person p
              JOIN residence r ON r.person_id = p.id AND r.until IS NULL
              JOIN house h ON h.id = r.house_id JOIN building b ON b.id = h.building_id
              JOIN school s ON s.id = :school
             WHERE ST_DWithin(s.geom::geography, b.footprint::geography, 200)
               AND p.id IN ({union})"""), {"school": server["ids"]["测试小学"]}).scalars())
    assert shown == expected == ["张三"]
    expect(side(page).get_by_text(mask_id_number(ZHANG_ID))).to_be_visible()
    expect(page.get_by_text(ZHANG_ID)).to_have_count(0)
    assert browser_log.blocked == [] and browser_log.console_errors == []


def cursor_text(page) -> str | None:
    return page.evaluate("""() => {
        for (const doc of Bokeh.documents) {
            for (const model of doc.all_models) {
                if (model.name === "gg-cursor" && model.text) { return model.text }
            }
        }
        return null
    }""")


def test_points_typed_in_other_systems_are_converted(registry_server, page, browser_log: BrowserLog):
    server = registry_server
    record_id = server["ids"]["人民路口"]
    open_registry(page, server["url"], "camera")
    page.locator(".gg-registry-table .tabulator-row").get_by_text("人民路口").click()
    expect(side(page).get_by_text("视频监控点位：人民路口")).to_be_visible(timeout=WAIT)

    # The map shows where the cursor is, in CGCS2000.
    box = small_map(page)
    page.mouse.move(box["x"] + box["width"] / 2 - 3, box["y"] + box["height"] / 2)
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_timeout(300)
    readout = cursor_text(page)
    lon, lat = map(float, re.search(r"CGCS2000 ([\d.]+), ([\d.]+)", readout or "").groups())
    assert 118.74 < lon < 118.76 and 32.07 < lat < 32.09, readout

    def distance_to(lon: float, lat: float) -> float:
        with db.owner_engine(server["settings"]).connect() as conn:
            return conn.execute(text(
                "SELECT ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(:x, :y), 4490)::geography)"
                " FROM camera WHERE id = :id"), {"x": lon, "y": lat, "id": record_id}).scalar_one()

    # WGS84 (GPS), placed with the button.
    side(page).get_by_label("坐标系").select_option(label="WGS84（GPS）")
    side(page).get_by_label("经度").fill("118.7452")
    side(page).get_by_label("纬度").fill("32.0781")
    side(page).get_by_role("button", name="按坐标定位").click()
    expect(side(page).get_by_text("由 WGS84 换算为 CGCS2000，未保存")).to_be_visible(timeout=WAIT)
    side(page).get_by_role("button", name="保存").click()
    expect(side(page).get_by_text("已保存（第 2 版）")).to_be_visible(timeout=WAIT)
    assert distance_to(*to_cgcs2000(118.7452, 32.0781, "wgs84")) < 0.5

    # GCJ-02 (Amap), typed and saved directly: the typed position is what is saved, converted.
    side(page).get_by_label("坐标系").select_option(label="GCJ-02（高德/腾讯）")
    side(page).get_by_label("经度").fill("118.7500")
    side(page).get_by_label("纬度").fill("32.0800")
    side(page).get_by_role("button", name="保存").click()
    expect(side(page).get_by_text("已保存（第 3 版）")).to_be_visible(timeout=WAIT)
    assert distance_to(*to_cgcs2000(118.75, 32.08, "gcj02")) < 0.5
    assert distance_to(118.75, 32.08) > 100  # GCJ-02 is offset by hundreds of metres: it was converted

    # Nonsense is refused in Chinese, nothing saved.
    side(page).get_by_label("坐标系").select_option(label="BD-09（百度）")
    side(page).get_by_label("经度").fill("32.08")
    side(page).get_by_label("纬度").fill("118.75")
    side(page).get_by_role("button", name="保存").click()
    expect(side(page).get_by_text("不在中国境内")).to_be_visible(timeout=WAIT)
    assert camera(server, record_id)["version"] == 3
    assert browser_log.blocked == [] and browser_log.console_errors == []



def test_every_registry_opens_with_its_form_location_and_links(registry_server):
    """A data-staff user gets, for every registry, the search, the table, a form with every stored field
    (a new record, and the first row where there is one), the right kind of location input and the
    export/print links -- without a browser, straight from the page object."""
    import holoviews as hv

    from dashboards.registries import RegistryBrowser, draw_kind, exportable, readable_registries
    from layers import territory

    hv.extension("bokeh", logo=False)  # as the server does when it mounts the pages
    settings, editor = registry_server["settings"], registry_server["editor"]

    def connect():
        return scoped_connection(settings, editor)

    with connect() as conn:
        units = territory.territory_units(conn, within_path=editor.scope)
    browser = RegistryBrowser(editor, connect, units=units)
    registries = readable_registries(editor)
    assert {r.key for r in registries} == {r.key for r in REGISTRIES.values() if not r.special and r.crud}

    def alerts() -> list[str]:
        return [o.object for o in browser.side.objects
                if isinstance(o, pn.pane.Alert) and o.alert_type == "danger"]

    for registry in registries:
        browser._open_registry(registry.key)
        assert alerts() == [], (registry.key, alerts())
        links = browser.links.object
        assert exportable(editor, registry), registry.key
        for fmt in ("csv", "xlsx", "geojson", "gpkg"):
            assert f"/api/v1/registries/{registry.key}/export.{fmt}" in links, registry.key
        assert f"/api/v1/registries/{registry.key}/print" in links
        shown = [browser.items[0]["id"]] if browser.items else []
        for record_id in [None, *shown]:
            browser._show_record(record_id)
            assert alerts() == [], (registry.key, record_id, alerts())
            typed_elsewhere = {"lon", "lat"} if registry.lonlat else set()
            assert set(browser.form) == {f.name for f in registry.fields} - typed_elsewhere, registry.key
            kind = draw_kind(registry)
            if kind is not None:
                assert shows(browser.side, browser.maps[kind].pane), registry.key
                assert bool(browser.location_inputs) == (kind == "point"), registry.key


def shows(layout, pane) -> bool:
    """Whether ``pane`` is somewhere inside ``layout`` (a Viewer is laid out as what it returns)."""
    return any(o is pane or shows(o, pane) for o in getattr(layout, "objects", []))


def test_links_from_the_map_open_a_record_or_a_new_one_placed_there(registry_server, page,
                                                                     browser_log: BrowserLog):
    """The map's links: ``&id=`` opens that record in the side panel; ``&new=1&lon=&lat=`` a new record
    with its point already set there, which saving stores (CGCS2000, to well under a metre)."""
    from dashboards.registries import new_record_url, record_url

    server = registry_server
    record_id = server["ids"]["人民路口"]
    assert record_url("camera", record_id) == f"/registries?registry=camera&id={record_id}"
    open_registry(page, server["url"], "camera", more=f"&id={record_id}")
    expect(side(page).get_by_text("视频监控点位：人民路口")).to_be_visible(timeout=WAIT)
    expect(side(page).get_by_label("安装位置")).to_have_value("路口东北角")

    lon, lat = 118.7512345, 32.0801234  # in the centre grid
    page.goto(server["url"] + new_record_url("camera", lon, lat))
    expect(side(page).get_by_text("新增视频监控点位")).to_be_visible(timeout=WAIT)
    expect(side(page).get_by_text("（未保存）")).to_be_visible(timeout=WAIT)
    side(page).get_by_label("点位名称").fill("地图新建点位")
    side(page).get_by_role("button", name="保存").click()
    expect(side(page).get_by_text("已保存（第 1 版）")).to_be_visible(timeout=WAIT)
    with db.owner_engine(server["settings"]).connect() as conn:
        metres = conn.execute(text(
            "SELECT ST_Distance(ST_Transform(geom, 4326)::geography, "
            "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography) FROM camera "
            "WHERE name = '地图新建点位' AND deleted_at IS NULL"), {"lon": lon, "lat": lat}).scalar_one()
    assert metres < 0.5
    assert browser_log.blocked == [] and browser_log.console_errors == []
