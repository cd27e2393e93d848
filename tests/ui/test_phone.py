"""The grid worker's phone pages (/m) in a real Chromium laid out as a phone: 390×844, touch, the
position granted and fixed inside grid 1 of the test territory, every non-local request refused.

A report with a photo and the phone's position lands in the database converted to CGCS2000 with its
photo; with the network cut, a report and a batch of positions wait in the browser and arrive exactly
once when it returns — also when the server stored a report but its answer was lost; the inbox takes a
workflow action (and says so in Chinese when someone else acted first); an ID number finds a masked
match, a building its houses; a notice's unread badge goes when it is opened; an overdue visit is listed
and recorded; a diary entry is written, returned with a note the worker sees, and resubmitted.
"""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import urlparse

import httpx
import pytest
from playwright.sync_api import expect
from sqlalchemy import text

from gis import db
from gis.crs import to_cgcs2000
from gis.security import users
from tests.ui.conftest import LOCAL_HOSTS, BrowserLog
from tests.ui.support import GRIDS, running_server
from tests.ui.test_map_page import log_in

pytestmark = pytest.mark.ui

G1_PATH = "320106.320106001.320106001003.320106001003001"
WORKER = ("wgy_phone", "Gridgov#2024ui", "手机网格员")
COMMUNITY_PATH = "320106.320106001.320106001003"
LEADER = ("sq_phone", "Gridgov#2024ui", "社区审核员")
# Inside grid 1 (118.74–118.755 E, 32.07–32.075 N); GPS (WGS84) as the phone reports it.
LON, LAT, ACCURACY = 118.7481, 32.0725, 12
ID_NUMBER = "11010119900307123"
SCREENSHOT = "/tmp/gridgov_phone_{}.png"
# A 1×1 PNG: what the camera "took".
PHOTO = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNgYGBgAAAABQABeqhXUAAAAABJRU5ErkJggg==")


def _check_char(first17: str) -> str:
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return "10X98765432"[sum(int(c) * w for c, w in zip(first17, weights, strict=True)) % 11]


FULL_ID = ID_NUMBER + _check_char(ID_NUMBER)


@pytest.fixture(scope="module")
def phone_server(territory_db):
    with db.owner_engine(territory_db).begin() as conn:
        worker_id = users.upsert_user(conn, WORKER[0], WORKER[1], "grid_worker", G1_PATH, WORKER[2])
        users.upsert_user(conn, LEADER[0], LEADER[1], "community_staff", COMMUNITY_PATH, LEADER[2])
        conn.execute(text(
            "INSERT INTO person (name, sex, birth_date, id_number, phone, org_path, district_code) VALUES "
            "('赵六', '1', '1990-03-07', :id, '13812348000', CAST(:p AS ltree), '320106')"),
            {"id": FULL_ID, "p": G1_PATH})
        conn.execute(text(
            "INSERT INTO building (grid_id, name, floors, footprint) SELECT id, '3幢', 6, "
            "ST_MakeEnvelope(118.745, 32.071, 118.7455, 32.0715, 4490) FROM territory_unit WHERE code = :g"),
            {"g": GRIDS[0][0]})
        conn.execute(text(
            "INSERT INTO house (building_id, unit_no, floor, room_no, owner_name, owner_phone, org_path,"
            " district_code) SELECT b.id, 1, 3, '301', '钱八', '13912345678', b.org_path, b.district_code"
            " FROM building b WHERE b.name = '3幢'"))
        # 孙七, under community correction for 40 days and never visited: overdue.
        person = conn.execute(text(
            "INSERT INTO person (name, sex, birth_date, org_path, district_code) VALUES "
            "('孙七', '1', '1985-05-05', CAST(:p AS ltree), '320106') RETURNING id"),
            {"p": G1_PATH}).scalar_one()
        conn.execute(text(
            "INSERT INTO community_correction (person_id, org_path, district_code, created_at)"
            " SELECT id, org_path, district_code, now() - interval '40 days' FROM person WHERE id = :p"),
            {"p": person})
    with running_server(territory_db) as base_url:
        yield base_url, worker_id


@pytest.fixture
def phone(browser):
    """A phone-sized context with the position granted; yields (context, page, log)."""
    log = BrowserLog()
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True,
        locale="zh-CN", geolocation={"longitude": LON, "latitude": LAT, "accuracy": ACCURACY},
        permissions=["geolocation"])

    def only_local(route):
        if urlparse(route.request.url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            log.blocked.append(route.request.url)
            route.abort()

    context.route("**/*", only_local)
    page = context.new_page()
    page.on("pageerror", lambda error: log.console_errors.append(f"uncaught: {error}"))
    # A refused or offline request is logged by Chromium as "Failed to load resource": the page expects
    # those (offline sends, a 409); anything else in the console is a fault.
    page.on("console", lambda message: message.type == "error"
            and not message.text.startswith("Failed to load resource")
            and log.console_errors.append(message.text))
    yield context, page, log
    context.close()
    assert log.blocked == [], f"requests left the machine: {log.blocked}"
    assert log.console_errors == []


def open_phone(page, base_url: str) -> None:
    page.goto(base_url + "/m")
    if "/login" in page.url:
        assert "next=/m" in page.url
        log_in(page, WORKER[0], WORKER[1])
    page.wait_for_url(re.compile(r"/m/"), timeout=30_000)
    expect(page.locator("body[data-ready='1']")).to_be_attached(timeout=30_000)


def fill_report(page, title: str, photo: bool = False) -> None:
    page.locator(".tabs a[data-tab=report]").click()
    page.locator("#report-type").select_option("0102")
    page.locator("#report-title").fill(title)
    page.locator("#report-content").fill("楼道堆放杂物，堵塞消防通道")
    if photo:
        page.locator("#view-report input[type=file]").set_input_files(
            files=[{"name": "scene.png", "mimeType": "image/png", "buffer": PHOTO}])
        expect(page.locator("#view-report .thumbs figure")).to_have_count(1)
    expect(page.locator("#view-report [data-role=where]")).to_contain_text(f"精度 ±{ACCURACY} 米")
    page.get_by_role("button", name="上报", exact=True).click()


def count(settings, sql: str, **params) -> int:
    with db.owner_engine(settings).connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


def test_anonymous_visitor_is_sent_to_login(phone_server):
    base_url, _ = phone_server
    with httpx.Client(base_url=base_url, timeout=30) as client:
        answer = client.get("/m")
        assert answer.status_code in (302, 307)
        assert answer.headers["location"] == "/login?next=/m"
        assert client.get("/m/").headers["location"] == "/login?next=/m/"
        worker = client.get("/m/sw.js")
        assert worker.status_code == 200 and "__VERSION__" not in worker.text
        assert client.get("/m/static/app.js").status_code == 200
        assert client.get("/m/static/..%2Fphone.py").status_code == 404


def test_report_with_photo_and_position(phone_server, phone, territory_db):
    base_url, worker_id = phone_server
    context, page, _ = phone
    open_phone(page, base_url)
    fill_report(page, "楼道堆物（照片）", photo=True)
    expect(page.locator("#toast")).to_contain_text("已上报", timeout=15_000)
    page.screenshot(path=SCREENSHOT.format("report"), full_page=True)
    with db.owner_engine(territory_db).connect() as conn:
        row = conn.execute(text(
            "SELECT e.id, ST_X(e.location) AS x, ST_Y(e.location) AS y, e.client_id, e.reported_by, e.source,"
            " (SELECT array_agg(a.content_type) FROM event_attachment a WHERE a.event_id = e.id) AS photos,"
            " (SELECT code FROM territory_unit WHERE id = e.grid_id) AS grid"
            " FROM event e WHERE e.title = '楼道堆物（照片）'")).mappings().one()
    x, y = to_cgcs2000(LON, LAT, "wgs84")
    assert row["x"] == pytest.approx(x, abs=1e-9) and row["y"] == pytest.approx(y, abs=1e-9)
    assert row["photos"] == ["image/png"]
    assert row["client_id"] is not None and row["reported_by"] == worker_id and row["source"] == "app"
    assert row["grid"] == GRIDS[0][0]
    expect(page.locator("#outbox-chip")).to_be_hidden()

    # A point picked on the grid map (no tiles: the grid's boundary) instead of the GPS position.
    page.locator("#report-type").select_option("0201")
    page.locator("#report-title").fill("地图选点的上报")
    page.get_by_role("button", name="在地图上选点").click()
    grid_map = page.locator("#view-report .map svg")
    expect(grid_map.locator("path.grid")).to_have_count(1)
    box = grid_map.bounding_box()
    grid_map.tap(position={"x": box["width"] * 0.75, "y": box["height"] / 2})
    expect(page.locator("#view-report [data-role=where]")).to_contain_text("地图选点")
    page.get_by_role("button", name="上报", exact=True).click()
    expect(page.locator("#report-title")).to_have_value("", timeout=15_000)  # the form is reset once sent
    expect(page.locator("#toast")).to_contain_text("已上报")
    with db.owner_engine(territory_db).connect() as conn:
        picked = conn.execute(text(
            "SELECT ST_X(location) AS x, ST_Y(location) AS y FROM event WHERE title = '地图选点的上报'"
        )).mappings().one()
    x0, y0, x1, y1 = GRIDS[0][4]
    assert x0 < picked["x"] < x1 and y0 < picked["y"] < y1
    assert picked["x"] > (x0 + x1) / 2  # the right half, where it was tapped


def test_offline_report_and_positions_arrive_exactly_once(phone_server, phone, territory_db):
    base_url, worker_id = phone_server
    context, page, _ = phone
    open_phone(page, base_url)
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    positions_before = count(territory_db, "SELECT count(*) FROM worker_position WHERE user_id = :u",
                             u=worker_id)

    context.set_offline(True)
    expect(page.locator("#net")).to_be_visible()
    fill_report(page, "离线上报的事件")
    expect(page.locator("#toast")).to_contain_text("已保存在本机")
    page.locator(".tabs a[data-tab=patrol]").click()
    page.get_by_role("button", name="开始巡查").click()
    expect(page.locator("#patrol-fixes")).to_have_text("1")
    context.set_geolocation({"longitude": LON + 0.0005, "latitude": LAT, "accuracy": 8})
    expect(page.locator("#patrol-fixes")).to_have_text("2")
    page.get_by_role("button", name="结束巡查").click()
    context.set_geolocation({"longitude": LON, "latitude": LAT, "accuracy": ACCURACY})
    expect(page.locator("#outbox-chip")).to_have_text("待发送 2")
    assert count(territory_db, "SELECT count(*) FROM event WHERE title = '离线上报的事件'") == 0

    # Still offline, the page opens again from the service worker's cache, with the queue kept.
    page.reload()
    expect(page.locator("body[data-ready='1']")).to_be_attached(timeout=15_000)
    expect(page.locator("#outbox-chip")).to_have_text("待发送 2")

    context.set_offline(False)
    expect(page.locator("#outbox-chip")).to_be_hidden(timeout=30_000)
    assert count(territory_db, "SELECT count(*) FROM event WHERE title = '离线上报的事件'") == 1
    assert count(territory_db, "SELECT count(*) FROM worker_position WHERE user_id = :u",
                 u=worker_id) == positions_before + 2

    # The server stores a report but its answer is lost: the report stays queued, and sending it again
    # after a reload is answered "already have it" -- one row.
    stored: list[int] = []

    def answer_lost(route):
        stored.append(route.fetch().status)
        route.abort()

    page.route("**/api/v1/events", answer_lost)
    fill_report(page, "回答丢失的上报")
    expect(page.locator("#toast")).to_contain_text("已保存在本机", timeout=15_000)
    expect(page.locator("#outbox-chip")).to_have_text("待发送 1")
    assert stored == [201]
    assert count(territory_db, "SELECT count(*) FROM event WHERE title = '回答丢失的上报'") == 1
    page.unroute("**/api/v1/events", answer_lost)
    page.reload()
    expect(page.locator("body[data-ready='1']")).to_be_attached(timeout=15_000)
    expect(page.locator("#outbox-chip")).to_be_hidden(timeout=30_000)
    assert count(territory_db, "SELECT count(*) FROM event WHERE title = '回答丢失的上报'") == 1


def _api_client(base_url: str, account=WORKER) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=30)
    answer = client.post("/api/v1/auth/login", json={"username": account[0], "password": account[1]})
    assert answer.status_code == 200, answer.text
    client.headers["Authorization"] = f"Bearer {answer.json()['token']}"
    return client


def test_inbox_takes_an_action_and_reports_a_conflict(phone_server, phone, territory_db):
    base_url, _ = phone_server
    context, page, _ = phone
    client = _api_client(base_url)
    try:
        for title in ("待办：井盖缺失", "待办：路灯不亮"):
            answer = client.post("/api/v1/events", data={
                "title": title, "type": "0102", "lon": str(LON), "lat": str(LAT), "crs": "wgs84"})
            assert answer.status_code == 201, answer.text
        raced = answer.json()
        open_phone(page, base_url)
        page.locator(".tabs a[data-tab=inbox]").click()
        page.locator("#inbox-list li", has_text="待办：井盖缺失").click()
        expect(page.locator("#event-detail")).to_contain_text("待办：井盖缺失")
        page.screenshot(path=SCREENSHOT.format("event"), full_page=True)
        page.locator("#event-actions").get_by_role("button", name="自办").click()
        page.get_by_role("button", name="确认自办").click()
        expect(page.locator("#toast")).to_contain_text("已自办")
        assert count(territory_db, "SELECT count(*) FROM event WHERE title = '待办：井盖缺失'"
                                   " AND status = 'handling'") == 1

        # Someone acts on the other event while the page shows it: the page says so and refreshes.
        page.locator("#inbox-list li", has_text="待办：路灯不亮").click()
        page.locator("#event-actions").get_by_role("button", name="自办").click()
        answer = client.post(f"/api/v1/events/{raced['id']}/actions",
                             json={"action": "self_handle", "version": raced["version"]})
        assert answer.status_code == 200, answer.text
        page.get_by_role("button", name="确认自办").click()
        expect(page.locator("#toast")).to_contain_text("操作未执行")
        expect(page.locator("#event-detail")).to_contain_text("处置中")
    finally:
        client.close()


def test_id_number_lookup_is_masked(phone_server, phone):
    base_url, _ = phone_server
    context, page, _ = phone
    open_phone(page, base_url)
    page.locator(".tabs a[data-tab=search]").click()
    page.locator("#search-q").fill(FULL_ID)
    page.get_by_role("button", name="查询", exact=True).click()
    results = page.locator("#search-results")
    expect(page.locator("#search-summary")).to_have_text("身份证号精确匹配：1 人")
    expect(results).to_contain_text("赵六")
    expect(results).to_contain_text(f"{FULL_ID[:6]}********{FULL_ID[-4:]}")
    expect(results).to_contain_text("138****8000")
    assert FULL_ID not in results.inner_text()

    page.locator("#search-kind label", has_text="房屋").click()
    page.locator("#search-field").select_option("building_name")
    page.locator("#search-q").fill("3幢")
    page.get_by_role("button", name="查询", exact=True).click()
    expect(results.locator("li")).to_have_count(1)
    expect(results).to_contain_text("3幢 1单元 301")
    expect(results).to_contain_text("房主 钱八 · 139****5678")
    page.screenshot(path=SCREENSHOT.format("search"))


def test_notice_visit_and_diary(phone_server, phone, territory_db):
    """通知 with its unread badge, a due visit recorded, a diary entry written and then returned with a
    note that the worker sees."""
    base_url, worker_id = phone_server
    context, page, _ = phone
    leader = _api_client(base_url, LEADER)
    try:
        answer = leader.post("/api/v1/notices", data={
            "title": "关于开展消防安全排查的通知", "notice_type": "work", "body": "请于本周内完成辖区排查。",
            "targets": json.dumps({"users": [worker_id]})})
        assert answer.status_code == 201, answer.text
        notice_id = answer.json()["id"]

        open_phone(page, base_url)
        expect(page.locator("#notice-badge")).to_have_text("1")
        page.locator("#bell").click()
        page.locator("#notice-list li", has_text="消防安全排查").click()
        expect(page.locator("#notice-detail")).to_contain_text("请于本周内完成辖区排查。")
        expect(page.locator("#notice-badge")).to_be_hidden()
        assert count(territory_db, "SELECT count(*) FROM notice_recipient WHERE notice_id = :n"
                                   " AND user_id = :u AND read_at IS NOT NULL", n=notice_id, u=worker_id) == 1

        page.locator(".tabs a[data-tab=visits]").click()
        overdue = page.locator("#visits-list li", has_text="孙七")
        expect(overdue).to_contain_text("逾期")
        expect(page.locator("#visits-badge")).to_have_text("1")
        overdue.click()
        page.locator("#visit-content").fill("上门谈话，情绪稳定，按时报到")
        expect(page.locator("#view-visit [data-role=where]")).to_contain_text("精度")
        page.get_by_role("button", name="保存走访").click()
        expect(page.locator("#toast")).to_contain_text("走访已记录，下次走访")
        with db.owner_engine(territory_db).connect() as conn:
            visit = conn.execute(text(
                "SELECT v.content, v.next_due - v.visited_on AS days FROM assistance_visit v"
                " JOIN person p ON p.id = v.person_id WHERE p.name = '孙七' AND v.created_by = :u"),
                {"u": worker_id}).mappings().one()
        assert visit["content"] == "上门谈话，情绪稳定，按时报到" and visit["days"] > 0
        expect(page.locator("#visits-badge")).to_be_hidden()

        page.goto(base_url + "/m/#diary")
        page.locator("#diary-content").fill("走访赵六家，了解邻里纠纷调解进展")
        page.locator("#diary-person-q").fill("赵六")
        page.get_by_role("button", name="查找").first.click()
        page.locator("#diary-person-hits li", has_text="赵六").click()
        expect(page.locator("#diary-people")).to_contain_text("赵六")
        page.locator("#view-diary input[type=file]").set_input_files(
            files=[{"name": "diary.png", "mimeType": "image/png", "buffer": PHOTO}])
        page.get_by_role("button", name="保存日记").click()
        expect(page.locator("#toast")).to_contain_text("日记已保存")
        with db.owner_engine(territory_db).connect() as conn:
            entry = conn.execute(text(
                "SELECT d.id, d.version,"
                " (SELECT count(*) FROM diary_person dp JOIN person p ON p.id = dp.person_id"
                "   WHERE dp.diary_id = d.id AND p.name = '赵六') AS people,"
                " (SELECT count(*) FROM field_photo f WHERE f.owner_table = 'diary' AND f.owner_id = d.id)"
                "   AS photos"
                " FROM diary d WHERE d.worker_id = :u"), {"u": worker_id}).mappings().one()
        assert entry["people"] == 1 and entry["photos"] == 1
        expect(page.locator("#diary-list")).to_contain_text("走访赵六家")

        answer = leader.post(f"/api/v1/diary/{entry['id']}/review", json={
            "decision": "return", "note": "请写明调解结果", "version": entry["version"]})
        assert answer.status_code == 200, answer.text
        page.reload()
        expect(page.locator("#diary-list li").first).to_contain_text("已退回")
        expect(page.locator("#diary-list li").first).to_contain_text("请写明调解结果")
        page.get_by_role("button", name="修改后重新提交").click()
        page.get_by_label("修改日记内容").fill("走访赵六家，邻里纠纷已调解：双方签订协议")
        page.get_by_role("button", name="重新提交").click()
        expect(page.locator("#diary-list li").first).to_contain_text("待审批")
        assert count(territory_db, "SELECT count(*) FROM diary WHERE worker_id = :u AND state = 'submitted'"
                                   " AND content LIKE '%签订协议'", u=worker_id) == 1
    finally:
        leader.close()


# Every control a thumb must hit, as the page lays it out: (what, height) of those under 44 px, and whether
# anything is wider than the screen. A photo's small "×" sits on its thumbnail and is left out.
CONTROLS_TOO_SMALL = """(width) => {
  const small = [];
  let checked = 0;
  for (const el of document.querySelectorAll("button, a, select, textarea, input, fieldset.segmented span")) {
    if (el.closest("figure") || el.type === "radio" || el.type === "file") continue;
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;
    checked += 1;
    if (box.height < 44) small.push(`${el.tagName} ${el.textContent.trim().slice(0, 12)}: ${box.height}`);
  }
  // Against the screen's width: a phone's layout viewport grows to fit what overflows.
  return {small, checked, overflow: document.documentElement.scrollWidth > width};
}"""


def test_every_tab_fits_a_narrow_screen_and_the_thumb(phone_server, phone):
    base_url, _ = phone_server
    context, page, _ = phone
    page.set_viewport_size({"width": 360, "height": 740})  # the narrowest phones in use
    open_phone(page, base_url)
    for route in ("report", "inbox", "patrol", "visits", "search", "diary", "notices", "outbox", "more"):
        page.goto(f"{base_url}/m/#{route}")
        expect(page.locator(f"#view-{route}")).to_be_visible()
        page.wait_for_load_state("networkidle")
        page.screenshot(path=SCREENSHOT.format(route))
        found = page.evaluate(CONTROLS_TOO_SMALL, 360)
        assert found["checked"] >= 7, route  # the six tabs, and something of the view itself
        assert (found["small"], found["overflow"]) == ([], False), route
    expect(page.locator("#me")).to_contain_text("辖区 仙霞路社区第一网格")
