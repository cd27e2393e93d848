"""Track playback in a real Chromium: a known day is drawn and summarised, and play moves the clock."""

from __future__ import annotations

import datetime as dt
import re
from types import SimpleNamespace

import pytest
from playwright.sync_api import expect

from gis import db
from gis.security import users
from gis.security.scope import scoped_connection
from layers import patrol
from layers.events.calendar import BEIJING
from tests.ui.conftest import BrowserLog
from tests.ui.support import running_server
from tests.ui.test_map_page import log_in

pytestmark = pytest.mark.ui

G1 = "320106.320106001.320106001003.320106001003001"
DAY = (dt.datetime.now(BEIJING) - dt.timedelta(days=1)).date()


@pytest.fixture(scope="module")
def playback_server(territory_db):
    with db.owner_engine(territory_db).begin() as conn:
        worker_id = users.upsert_user(conn, "wg_play", "Gridgov#2024ui", "grid_worker", G1, "回放网格员")
    worker = SimpleNamespace(id=worker_id, scope_path=G1)
    start = dt.datetime.combine(DAY, dt.time(9, 0), BEIJING)
    # 20 minutes east along the grid's middle, a fix every 10 s (about 1.4 km)
    fixes = [patrol.Fix(start + dt.timedelta(seconds=10 * i), 118.741 + i * 0.0001, 32.0725,
                        accuracy=5, crs="cgcs2000") for i in range(120)]
    with scoped_connection(territory_db, worker) as conn:
        assert patrol.ingest_fixes(conn, worker, fixes, now=start + dt.timedelta(hours=1)).accepted == 120
    with running_server(territory_db) as base_url:
        yield base_url, worker_id


def test_a_day_is_replayed(playback_server, page, browser_log: BrowserLog):
    base_url, worker_id = playback_server
    page.goto(f"{base_url}/playback?worker={worker_id}&day={DAY.isoformat()}")
    if "/login" in page.url:
        log_in(page)
    page.locator(".bk-Canvas").first.wait_for(state="visible", timeout=60_000)
    summary = page.locator(".gg-summary")
    expect(summary.get_by_role("row", name="定位点 120", exact=True)).to_be_visible(timeout=30_000)
    expect(summary.get_by_text("网格覆盖率")).to_be_visible()
    clock = page.locator(".gg-clock")
    expect(clock).to_have_text("09:00:00", timeout=10_000)
    page.get_by_role("button", name=re.compile("播放")).click()
    expect(clock).not_to_have_text("09:00:00", timeout=10_000)
    expect(clock).to_have_text("09:19:50", timeout=30_000)        # played to the last fix, then stops
    assert browser_log.blocked == []
    assert browser_log.console_errors == []
