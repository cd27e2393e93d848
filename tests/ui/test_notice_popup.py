"""The new-notice popup in a real Chromium: with a dashboard page open, a notice sent through the API to
the viewer pops up bottom right within the polling interval, without a reload; a notice to someone else
does not. Its link opens the notice on the notices page (mounted here as the lead mounts it at /notices),
which marks it read: the sender's receipts move."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from playwright.sync_api import expect
from sqlalchemy import text

from gis import db
from gis.security import users
from tests.ui.support import VIEWER, running_server
from tests.ui.test_map_page import load_map

pytestmark = pytest.mark.ui

SENDER = ("jiedao_ui", "Gridgov#2024ui", "李晓燕")
OTHER = ("wangge_ui2", "Gridgov#2024ui", "网格员甲")
POLL_SECONDS = 3.0
SCREENSHOT = "/tmp/gridgov_notice_popup.png"


@pytest.fixture(scope="module")
def popup_server(territory_db, tmp_path_factory):
    settings = territory_db.model_copy(update={"notice_poll_seconds": POLL_SECONDS,
                                               "files_dir": tmp_path_factory.mktemp("files")})
    with db.owner_engine(settings).begin() as conn:
        users.upsert_user(conn, SENDER[0], SENDER[1], "district_commander", "320106", SENDER[2])
        users.upsert_user(conn, OTHER[0], OTHER[1], "grid_worker",
                          "320106.320106001.320106001003.320106001003001", OTHER[2])
        ids = dict(conn.execute(text("SELECT username, id FROM users")).all())
    with running_server(settings, app_with_notices_page(settings)) as base_url:
        yield base_url, ids


def app_with_notices_page(settings):
    """The app as ``create_app`` builds it, plus the notices page at /notices (as pages.py will mount it)."""
    import secrets

    from panel.io.fastapi import add_applications

    from dashboards.notices import notices_page
    from dashboards.pages import guarded
    from gis.api.auth import current_user_hook
    from gis.app import create_app

    app = create_app(settings)
    build = guarded(lambda user: notices_page(settings, user), current_user_hook(settings), settings)
    add_applications({"/notices": build}, app=app, title={"/notices": "通知公告"}, sign_sessions=True,
                     secret_key=secrets.token_bytes(32))
    return app


def as_sender(base_url: str, method: str, path: str, **kwargs) -> httpx.Response:
    with httpx.Client(base_url=base_url, timeout=60) as client:
        login = client.post("/api/v1/auth/login", json={"username": SENDER[0], "password": SENDER[1]})
        assert login.status_code == 200, login.text
        return client.request(method, path, headers={"Authorization": f"Bearer {login.json()['token']}"},
                              **kwargs)


def send_notice(base_url: str, to_user: int, title: str) -> int:
    response = as_sender(base_url, "POST", "/api/v1/notices", data={
        "title": title, "notice_type": "meeting", "body": "请准时参加。",
        "targets": json.dumps({"users": [to_user]})})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_a_new_notice_pops_up_without_reload(popup_server, page, browser_log):
    base_url, ids = popup_server
    load_map(page, base_url)
    popup = page.locator(".gg-notice-popup")
    expect(popup).to_be_hidden()
    page.evaluate("window.__still_the_same_page = true")

    send_notice(base_url, ids[OTHER[0]], "发给别人的通知")
    sent_at = time.monotonic()
    notice_id = send_notice(base_url, ids[VIEWER[0]], "关于召开平安建设推进会的通知")
    # Within one polling interval (plus the time a loaded test machine needs to push the change).
    timeout_ms = (POLL_SECONDS + 12) * 1000
    expect(popup.get_by_text("关于召开平安建设推进会的通知")).to_be_visible(timeout=timeout_ms)
    waited = time.monotonic() - sent_at
    expect(popup.get_by_text(SENDER[2])).to_be_visible()
    expect(popup.get_by_text("发给别人的通知")).to_have_count(0)
    link = popup.get_by_role("link", name="查看通知")
    assert link.get_attribute("href") == f"/notices?id={notice_id}"
    assert page.evaluate("window.__still_the_same_page") is True
    box = popup.bounding_box()
    viewport = page.viewport_size
    assert box["x"] + box["width"] > viewport["width"] - 60     # bottom right
    assert box["y"] + box["height"] > viewport["height"] - 60
    page.screenshot(path=SCREENSHOT)
    print(f"popup shown {waited:.1f} s after the notice was sent (polling every {POLL_SECONDS} s)")

    receipts = as_sender(base_url, "GET", f"/api/v1/notices/{notice_id}/receipts").json()
    assert (len(receipts["read"]), len(receipts["unread"])) == (0, 1)
    with page.context.expect_page() as opened:
        link.click()
    notice_page = opened.value
    expect(notice_page.locator(".gg-notice-detail").get_by_text("请准时参加。")).to_be_visible(timeout=60_000)
    receipts = as_sender(base_url, "GET", f"/api/v1/notices/{notice_id}/receipts").json()
    assert [r["name"] for r in receipts["read"]] == [VIEWER[2]] and receipts["unread"] == []
    notice_page.close()

    popup.get_by_role("button", name="知道了").click()
    expect(popup).to_be_hidden()
    assert browser_log.blocked == [], f"requests left the machine: {browser_log.blocked}"
    assert browser_log.console_errors == []
