"""The explorer in a real Chromium: drill-down with breadcrumbs, 以房找人, 以人找房, permissions, the
workbench — offline, with no console errors. Screenshots are kept under /tmp as test artifacts."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect
from pyproj import Transformer
from sqlalchemy import text

from gis import db
from gis.masking import mask_id_number, mask_phone
from tests.ui.conftest import BrowserLog
from tests.ui.explorer_data import COMPOUND, EVENT_AT, FOOTPRINTS, GRID_WORKER, RESIDENTS, insert_places
from tests.ui.support import running_server
from tests.ui.test_map_page import load_map, log_in

pytestmark = pytest.mark.ui

SHOTS = "/tmp/gridgov_explorer_{}.png"

# The figure's ranges as BokehJS holds them: [x0, x1, y0, y1] in Web Mercator.
_RANGES_JS = """() => {
  for (const doc of Bokeh.documents) {
    for (const model of doc.all_models) {
      if (model.x_range && model.y_range && model.renderers && model.renderers.length > 3
          && model.x_range.start != null) {
        return [model.x_range.start, model.x_range.end, model.y_range.start, model.y_range.end];
      }
    }
  }
  return null;
}"""


@pytest.fixture(scope="module")
def places_db(territory_db):
    insert_places(territory_db)
    return territory_db


@pytest.fixture(scope="module")
def explorer_server(places_db):
    with running_server(places_db) as base_url:
        yield base_url


def ranges(page) -> list[float]:
    return page.evaluate(_RANGES_JS)


def wait_for_ranges_change(page, before: list[float]) -> list[float]:
    page.wait_for_function(f"() => JSON.stringify(({_RANGES_JS})()) !== {str(before)!r}.replace(/ /g, '')",
                           timeout=15_000)
    return ranges(page)


def click_child(page, name: str) -> None:
    page.locator(".gg-children .tabulator-cell", has_text=name).first.click()


def crumbs(page):
    return page.locator(".gg-breadcrumbs")


def test_explorer_loads_offline_and_drills_down(explorer_server, page, browser_log: BrowserLog):
    load_map(page, explorer_server)
    expect(crumbs(page)).to_contain_text("鼓楼区")
    expect(page.locator(".gg-children")).to_contain_text("宁海路街道")
    expect(page.locator(".gg-children-title")).to_contain_text(f"实有人口合计 {2 + len(RESIDENTS)}")
    start = ranges(page)
    assert start is not None

    click_child(page, "宁海路街道")
    expect(crumbs(page)).to_contain_text("宁海路街道", timeout=15_000)
    click_child(page, "仙霞路社区居委会")
    expect(crumbs(page)).to_contain_text("仙霞路社区居委会", timeout=15_000)
    click_child(page, "仙霞路社区第二网格")
    expect(crumbs(page)).to_contain_text("仙霞路社区第二网格", timeout=15_000)
    expect(page.locator(".gg-children")).to_contain_text(COMPOUND)
    grid = wait_for_ranges_change(page, start)
    # the grid (118.74–118.755 E, 32.075–32.09 N) fills the view: narrower than the whole district
    assert grid[1] - grid[0] < start[1] - start[0]
    page.screenshot(path=SHOTS.format("drill"))

    crumbs(page).get_by_role("button", name="鼓楼区").click()
    expect(crumbs(page)).not_to_contain_text("宁海路街道", timeout=15_000)

    assert browser_log.blocked == [], f"requests left the machine: {browser_log.blocked}"
    assert browser_log.console_errors == []
    assert browser_log.failed_responses == []


def test_a_building_shows_its_housing_grid_and_household(explorer_server, territory_db, page,
                                                         browser_log: BrowserLog):
    load_map(page, explorer_server)
    for name in ("宁海路街道", "仙霞路社区居委会", "仙霞路社区第二网格", COMPOUND, "2幢"):
        click_child(page, name)
        expect(crumbs(page)).to_contain_text(name, timeout=15_000)
    housing = page.locator(".gg-housing")
    expect(housing).to_contain_text("楼盘表", timeout=15_000)
    expect(housing.locator(".gg-flat")).to_have_count(12)
    expect(housing.locator(".gg-special")).to_have_count(2)  # the commander sees every category
    housing.get_by_role("button", name="1-101 赵大").click()

    with db.owner_engine(territory_db).connect() as conn:
        expected = conn.execute(text(
            "SELECT p.name, p.id_number, p.phone FROM residence r JOIN person p ON p.id = r.person_id "
            "JOIN house h ON h.id = r.house_id JOIN building b ON b.id = h.building_id "
            "WHERE b.name = '2幢' AND h.room_no = '1-101' AND r.until IS NULL ORDER BY r.is_head DESC, p.id"
        )).all()
    members = page.locator(".gg-members")
    expect(members).to_contain_text(expected[0][0], timeout=15_000)
    for name, id_number, phone in expected:
        expect(members).to_contain_text(name)
        expect(members).to_contain_text(mask_id_number(id_number))
        expect(members).to_contain_text(mask_phone(phone))
    assert members.locator(".tabulator-row").count() == len(expected)
    content = page.content()
    assert all(id_number not in content and phone not in content for _, id_number, phone in expected)
    page.screenshot(path=SHOTS.format("housing"))
    assert browser_log.console_errors == [] and browser_log.blocked == []


def test_searching_an_id_zooms_to_the_building_and_opens_the_household(explorer_server, page,
                                                                        browser_log: BrowserLog):
    load_map(page, explorer_server)
    start = ranges(page)
    page.get_by_role("button", name="身份证号").click()
    page.locator(".gg-search input").fill("320106198507080047")  # 孙四, 2幢 1-201
    page.get_by_role("button", name="以人找房").click()
    expect(crumbs(page)).to_contain_text("2幢", timeout=15_000)
    expect(page.locator(".gg-members")).to_contain_text("孙四", timeout=15_000)
    expect(page.locator(".gg-members")).to_contain_text("320106********0047")
    expect(page.locator(".gg-housing")).to_contain_text("2幢")
    after = wait_for_ranges_change(page, start)
    x0, x1, y0, y1 = after
    # 2幢's centre in Web Mercator, inside a view a few hundred metres across
    (bx0, by0, bx1, by1) = FOOTPRINTS["2幢"]
    cx, cy = Transformer.from_crs(4490, 3857, always_xy=True).transform((bx0 + bx1) / 2, (by0 + by1) / 2)
    assert x0 < cx < x1 and y0 < cy < y1, after
    assert x1 - x0 < 1000
    page.screenshot(path=SHOTS.format("search"))
    assert browser_log.console_errors == [] and browser_log.blocked == []


def test_a_grid_worker_sees_no_drug_user(explorer_server, browser, browser_log: BrowserLog):
    from tests.ui.conftest import open_page

    context, page = open_page(browser, browser_log)
    try:
        page.goto(explorer_server + "/map")
        log_in(page, GRID_WORKER[0], GRID_WORKER[1])
        page.locator(".bk-Canvas").first.wait_for(state="visible", timeout=60_000)
        expect(crumbs(page)).to_contain_text("仙霞路社区第二网格", timeout=30_000)
        special_layers = page.locator(".gg-special-layer")
        expect(special_layers).to_contain_text("刑满释放人员")
        expect(special_layers).not_to_contain_text("吸毒人员")
        click_child(page, COMPOUND)
        expect(crumbs(page)).to_contain_text(COMPOUND, timeout=15_000)
        click_child(page, "2幢")
        housing = page.locator(".gg-housing")
        expect(housing.locator(".gg-flat")).to_have_count(12, timeout=15_000)
        expect(housing.locator(".gg-special")).to_have_count(1)  # the released prisoner only
        housing.get_by_role("button", name="1-201 孙四").click()
        expect(page.locator(".gg-members")).to_contain_text("孙四", timeout=15_000)
        expect(page.locator(".gg-members")).not_to_contain_text("吸毒")
        assert "吸毒" not in page.content()
        page.screenshot(path=SHOTS.format("grid_worker"))
    finally:
        context.close()
    assert browser_log.console_errors == [] and browser_log.blocked == []


def to_pixel(page, lon: float, lat: float) -> tuple[float, float]:
    """Where a CGCS2000 point is on the page now (the figure's frame, through its current ranges)."""
    x0, x1, y0, y1 = ranges(page)
    frame = page.evaluate("""() => { for (const doc of Bokeh.documents) for (const m of doc.all_models)
        if (m.x_range && m.renderers && m.renderers.length > 3) {
          const v = Bokeh.index.find_one(m); const b = v.frame.bbox;
          const c = v.el.getBoundingClientRect(); return [c.left + b.left, c.top + b.top, b.width, b.height] }
        return null }""")
    ex, ey = Transformer.from_crs(4490, 3857, always_xy=True).transform(lon, lat)
    left, top, width, height = frame
    return left + (ex - x0) / (x1 - x0) * width, top + (y1 - ey) / (y1 - y0) * height


def circle_around_the_event(page, base_url: str) -> None:
    """Drill to grid 2, give a radius of 300 m, click at the reported event and count."""
    load_map(page, base_url)
    for name in ("宁海路街道", "仙霞路社区居委会", "仙霞路社区第二网格"):
        click_child(page, name)
        expect(crumbs(page)).to_contain_text(name, timeout=15_000)
    page.wait_for_timeout(1500)  # the zoom to the grid
    px, py = to_pixel(page, *EVENT_AT)
    page.locator(".gg-radius input").fill("300")
    page.locator(".gg-radius input").press("Enter")
    page.mouse.click(px, py)
    page.wait_for_timeout(1500)
    page.get_by_role("button", name="统计绘制范围").click()


def test_a_circle_drawn_on_the_map_counts_like_sql(explorer_server, territory_db, page,
                                                   browser_log: BrowserLog):
    """Radius 300 m, a click at the reported event: the counts shown are those of the same circle in SQL."""
    circle_around_the_event(page, explorer_server)
    counts = page.locator(".gg-area-counts")
    expect(counts).to_contain_text("楼栋", timeout=15_000)
    with db.owner_engine(territory_db).connect() as conn:
        people, buildings = conn.execute(text(
            "SELECT count(p.id), count(DISTINCT b.id) FROM building b JOIN house h ON h.building_id = b.id "
            "JOIN residence r ON r.house_id = h.id AND r.until IS NULL JOIN person p ON p.id = r.person_id "
            "WHERE ST_DWithin(ST_PointOnSurface(b.footprint)::geography, "
            "ST_SetSRID(ST_MakePoint(:x, :y), 4490)::geography, 300)"),
            {"x": EVENT_AT[0], "y": EVENT_AT[1]}).one()
    assert (people, buildings) == (len(RESIDENTS), 2)
    expect(counts.get_by_role("row", name=f"实有人口 {people}", exact=True)).to_be_visible()
    expect(counts.get_by_role("row", name=f"楼栋 {buildings}", exact=True)).to_be_visible()
    page.screenshot(path=SHOTS.format("workbench"))
    assert browser_log.console_errors == [] and browser_log.blocked == []



def test_the_workbench_exports_the_table_it_shows(explorer_server, territory_db, page,
                                                  browser_log: BrowserLog):
    """The CSV downloaded from the workbench holds the people the table shows (masked), with a BOM, and
    the export is in the access log."""
    import csv
    import io

    circle_around_the_event(page, explorer_server)
    table = page.locator(".gg-workbench .tabulator")
    expect(table).to_contain_text("320106********0013", timeout=15_000)
    shown = sorted(table.locator(".tabulator-row").all_inner_texts())
    with page.expect_download(timeout=30_000) as download:
        page.locator(".gg-export button").click()
    raw = open(download.value.path(), "rb").read()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][:3] == ["编号", "名称", "性别"] and len(rows) - 1 == len(shown) == len(RESIDENTS)
    names = sorted(r[1] for r in rows[1:])
    assert names == sorted(name for name, *_ in RESIDENTS)
    text_out = raw.decode("utf-8-sig")
    assert all(id_number not in text_out and phone not in text_out for _, id_number, phone, *_ in RESIDENTS)
    assert all(mask_id_number(id_number) in text_out for _, id_number, *_ in RESIDENTS)
    with db.owner_engine(territory_db).connect() as conn:
        logged = conn.execute(text("SELECT detail->>'format', (detail->>'rows')::int FROM access_log "
                                   "WHERE action = 'export' AND target_table = 'spatial_query'")).all()
    assert ("csv", len(RESIDENTS)) in [tuple(r) for r in logged]
    assert browser_log.console_errors == [] and browser_log.blocked == []


def test_a_grid_prints_its_notice_board_from_the_map(explorer_server, page, browser_log: BrowserLog):
    load_map(page, explorer_server)
    assert page.locator(".gg-notice-board a").count() == 0  # the district: no board
    for name in ("宁海路街道", "仙霞路社区居委会", "仙霞路社区第二网格"):
        click_child(page, name)
        expect(crumbs(page)).to_contain_text(name, timeout=15_000)
    link = page.locator(".gg-notice-board a")
    expect(link).to_contain_text("打印网格服务公示牌", timeout=15_000)
    href = link.get_attribute("href")
    answer = page.request.get(explorer_server + href)  # with the page's login cookie
    assert answer.ok and answer.headers["content-type"] == "application/pdf"
    assert answer.body().startswith(b"%PDF")
    click_child(page, COMPOUND)
    expect(crumbs(page)).to_contain_text(COMPOUND, timeout=15_000)
    expect(link).to_have_count(0)
    assert browser_log.console_errors == [] and browser_log.blocked == []



# What the big layer holds as BokehJS has it: the raster's lit pixels (the datashaded Image) and the
# footprints drawn as vectors (the polygons with a "people" column), visible renderers only.
_BIG_LAYER_JS = """() => {
  const out = {raster: 0, footprints: 0};
  for (const doc of Bokeh.documents) for (const m of doc.all_models) {
    if (!m.data_source || !m.glyph || !m.visible) continue;
    const src = m.data_source;
    if (m.glyph.type === "Image") {
      for (const array of src.get_column("image") || []) for (const v of array) if (v > 0) out.raster += 1;
    }
    const people = src.get_column("people");
    if (people) out.footprints += people.length;
  }
  return out;
}"""


def wait_for_big_layer(page, test: str, seconds: float = 20) -> dict:
    """Wait until the big layer's state in BokehJS passes ``test`` (a JS expression over ``s``)."""
    page.wait_for_function(f"() => {{ const s = ({_BIG_LAYER_JS})(); return {test}; }}",
                           timeout=seconds * 1000)
    return page.evaluate(_BIG_LAYER_JS)


def test_big_layer_rasterizes_zoomed_out_and_draws_footprints_zoomed_in(explorer_server, territory_db, page,
                                                                         browser_log: BrowserLog):
    from dashboards.explorer import VECTOR_WIDTH

    box = load_map(page, explorer_server)
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.locator(".gg-big-layer select").select_option(label="楼栋")
    page.mouse.move(cx, cy)
    for _ in range(3):  # zoom out: several kilometres across
        page.mouse.wheel(0, 300)
        page.wait_for_timeout(300)
    x0, x1, *_ = ranges(page)
    assert x1 - x0 > VECTOR_WIDTH
    raster = wait_for_big_layer(page, "s.raster > 0 && s.footprints === 0")
    assert raster["raster"] <= 3 * 4  # three buildings, a pixel or so each
    page.screenshot(path=SHOTS.format("big_raster"))

    # A click on the raster, 9 m east of 2幢 (outside its footprint): the nearest building within 15 m.
    lon, lat = FOOTPRINTS["2幢"][2] + 0.000095, (FOOTPRINTS["2幢"][1] + FOOTPRINTS["2幢"][3]) / 2
    page.mouse.click(*to_pixel(page, lon, lat))
    info = page.locator(".gg-click-info")
    expect(info).to_contain_text("2幢", timeout=15_000)
    shown = info.locator("p").first.inner_text()  # the pane renders in a shadow root
    clicked = [float(v) for v in shown.split("点击位置", 1)[1].split("：")[0].split(",")]
    with db.owner_engine(territory_db).connect() as conn:
        nearest = conn.execute(text(
            "SELECT name FROM building WHERE ST_DWithin(footprint::geography, "
            "ST_SetSRID(ST_MakePoint(:x, :y), 4490)::geography, 15) "
            "ORDER BY ST_Distance(footprint, ST_SetSRID(ST_MakePoint(:x, :y), 4490)) LIMIT 1"),
            {"x": clicked[0], "y": clicked[1]}).scalar()
    assert nearest == "2幢"

    page.mouse.move(*to_pixel(page, lon, lat))
    for _ in range(4):  # zoom in on 2幢: a few hundred metres across (each step is about ×2.4)
        page.mouse.wheel(0, -300)
        page.wait_for_timeout(300)
    x0, x1, *_ = ranges(page)
    assert 50 < x1 - x0 < VECTOR_WIDTH  # 2幢 is 9 m west of the mouse: in view
    vectors = wait_for_big_layer(page, "s.footprints > 0 && s.raster === 0")
    assert 1 <= vectors["footprints"] <= 3
    page.screenshot(path=SHOTS.format("big_vectors"))
    assert browser_log.console_errors == [] and browser_log.blocked == []


def grid_workers_explorer(settings):
    """The explorer as the grid worker's page builds it (no browser), with the user and their units."""
    import holoviews as hv

    from dashboards.explorer import Explorer
    from gis.security.scope import scoped_connection
    from gis.security.sessions import login, resolve
    from layers import spatial, territory

    hv.extension("bokeh", logo=False)
    token, _ = login(settings, GRID_WORKER[0], GRID_WORKER[1], client_addr="test")
    user = resolve(settings, token)
    with scoped_connection(settings, user) as conn:
        top = territory.unit_at_path(conn, user.scope)
        units = territory.territory_units(conn, within_path=user.scope)
    explorer = Explorer(user, lambda: scoped_connection(settings, user),
                        spatial.Node(top.level, top.path, top.name), units, spatial.Basemap())
    return explorer, user, units


def test_a_click_on_the_event_layer_opens_the_event(places_db):
    """On the event layer a click within a few metres of an event links to it on the events page; a click
    far from any event keeps the ordinary behaviour."""
    explorer, _, _ = grid_workers_explorer(places_db)
    with db.owner_engine(places_db).connect() as conn:
        event_id = conn.execute(text("SELECT id FROM event WHERE number = '320106202601010001'")).scalar_one()
    explorer.big_layer = "event"
    explorer._tapped(*explorer.map.to_draw(EVENT_AT[0] + 0.00005, EVENT_AT[1]))  # ≈ 5 m east
    assert explorer.record_link.object == (f"<a href='/events?id={event_id}' target='_blank'>"
                                           "打开事件 320106202601010001：占道经营</a>")
    explorer._tapped(*explorer.map.to_draw(EVENT_AT[0] + 0.01, EVENT_AT[1]))  # ≈ 1 km east
    assert "/events?" not in explorer.record_link.object


def test_a_clicked_building_links_to_its_record_and_offers_a_new_one_there(places_db):
    """Without a browser: a grid worker's click on 2幢 gives a link to 2幢's record in the registry side
    panel and a 在此处新建 link carrying the clicked CGCS2000 lon/lat."""
    from urllib.parse import parse_qs, urlparse


    from gis.security.scope import scoped_connection

    explorer, user, units = grid_workers_explorer(places_db)
    assert "在台账中打开" in explorer.record_link.object  # the grid itself, opened at the start
    assert explorer.new_link.object == ""  # nothing clicked yet
    with db.owner_engine(places_db).connect() as conn:
        building_id = conn.execute(text("SELECT id FROM building WHERE name = '2幢'")).scalar_one()
    x0, y0, x1, y1 = FOOTPRINTS["2幢"]
    lon, lat = (x0 + x1) / 2, (y0 + y1) / 2
    explorer._tapped(*explorer.map.to_draw(lon, lat))

    assert explorer.building_id == building_id
    assert explorer.record_link.object == (f"<a href='/registries?registry=building&id={building_id}' "
                                           "target='_blank'>在台账中打开</a>")
    options = explorer.new_registry.options
    assert "视频监控点位" in options and "楼栋" in options  # a point and a polygon registry it may write
    explorer.new_registry.value = options["视频监控点位"]
    href = explorer.new_link.object.split("href='")[1].split("'")[0]
    query = parse_qs(urlparse(href).query)
    assert urlparse(href).path == "/registries" and query["registry"] == ["camera"] and query["new"] == ["1"]
    assert abs(float(query["lon"][0]) - lon) < 1e-6 and abs(float(query["lat"][0]) - lat) < 1e-6

    # What the links open (the registry page, built without a browser): the record, or a new one placed
    # at the click -- the point set for a point registry, the drawing map centred there for a polygon.
    from dashboards.registries import RegistryBrowser, link_args

    def browser_for(href: str) -> RegistryBrowser:
        args = {k: [v[0].encode()] for k, v in parse_qs(urlparse(href).query).items()}
        return RegistryBrowser(user, lambda: scoped_connection(places_db, user), units=units,
                               initial=args["registry"][0].decode(), **link_args(args))

    opened = browser_for(f"/registries?registry=building&id={building_id}")
    assert opened.record is not None and opened.record["name"] == "2幢"
    placed = browser_for(href)
    assert placed.record is None and placed.location == (float(query["lon"][0]), float(query["lat"][0]))
    drawn = browser_for(href.replace("registry=camera", "registry=building"))
    assert drawn.record is None and "新增楼栋" in drawn.side.objects[0].object
    x, y = drawn.maps["polygon"].to_draw(lon, lat)
    x0, y0, x1, y1, _ = json.loads(drawn.maps["polygon"]._zoom_request.value)
    assert x0 < x < x1 and y0 < y < y1 and x1 - x0 < 1000
    assert link_args({"id": [b"1;drop"], "new": [b"1"], "lon": [b"abc"], "lat": [b"32"]}) == {
        "record_id": None, "new_at": None}
