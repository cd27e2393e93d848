"""The upload page in a real Chromium: a boundary file is checked (CRS, features, preview), confirmed and
loaded, and both steps appear in the history; without the permission the page says so."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect
from sqlalchemy import text

from gis import db
from gis.security import users
from tests.ui.conftest import BrowserLog
from tests.ui.support import running_server
from tests.ui.test_map_page import log_in

pytestmark = pytest.mark.ui

PASSWORD = "Gridgov#2024ui"
COMMUNITY = "320106002002"


@pytest.fixture(scope="module")
def loads_server(territory_db):
    with db.owner_engine(territory_db).begin() as conn:
        users.upsert_user(conn, "shuju_ui", PASSWORD, "data_staff", "320106", "数据管理员")
        users.upsert_user(conn, "wangge_ui", PASSWORD, "grid_worker",
                          "320106.320106002.320106002002.320106002002001", "网格员")
    with running_server(territory_db) as base_url:
        yield base_url


def two_grids(path) -> None:
    """The community split in two grids (WGS84 lon/lat, as GeoJSON always is)."""
    def square(y0, y1):
        return [[[118.7552, y0], [118.7598, y0], [118.7598, y1], [118.7552, y1], [118.7552, y0]]]

    features = [{"type": "Feature", "properties": {"网格名称": name, "网格编码": code},
                 "geometry": {"type": "Polygon", "coordinates": square(y0, y1)}}
                for name, code, y0, y1 in [("慈悲社社区第一网格", f"{COMMUNITY}001", 32.0702, 32.0798),
                                           ("慈悲社社区第二网格", f"{COMMUNITY}002", 32.0802, 32.0898)]]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False),
                    encoding="utf-8")


def test_a_boundary_file_is_checked_then_loaded(loads_server, territory_db, page, browser_log: BrowserLog,
                                                tmp_path):
    path = tmp_path / "慈悲社网格.geojson"
    two_grids(path)
    page.goto(f"{loads_server}/loads")
    log_in(page, "shuju_ui", PASSWORD)
    expect(page.get_by_text("检查报告")).to_be_visible(timeout=60_000)
    page.locator("input[type=file]").set_input_files(str(path))
    page.get_by_role("button", name="检查（试运行）").click()
    expect(page.get_by_text("检查通过，可以确认导入")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("要素 2 个", exact=False)).to_be_visible()
    expect(page.get_by_text("预览：2 个单元", exact=False)).to_be_visible(timeout=30_000)
    with db.owner_engine(territory_db).connect() as conn:
        count = "SELECT count(*) FROM territory_unit WHERE code = :code AND deleted_at IS NULL"
        assert conn.execute(text(count), {"code": f"{COMMUNITY}002"}).scalar() == 0  # a rehearsal only
    page.get_by_role("button", name="确认导入").click()
    expect(page.get_by_text("✅ 已导入")).to_be_visible(timeout=60_000)
    with db.owner_engine(territory_db).connect() as conn:
        assert conn.execute(text(count), {"code": f"{COMMUNITY}002"}).scalar() == 1
        loads = conn.execute(text("SELECT outcome, username FROM data_load WHERE kind = 'boundaries'"
                                  " ORDER BY id")).all()
    assert [tuple(r) for r in loads] == [("dry_run", "shuju_ui"), ("loaded", "shuju_ui")]
    history = page.locator(".tabulator")
    expect(history.get_by_text("试运行")).to_be_visible()
    expect(history.get_by_text("已导入")).to_be_visible()
    assert browser_log.blocked == []
    assert browser_log.console_errors == []


def test_without_the_permission_the_page_says_so(loads_server, page):
    page.goto(f"{loads_server}/loads")
    log_in(page, "wangge_ui", PASSWORD)
    expect(page.get_by_text("没有数据导入权限")).to_be_visible(timeout=60_000)
