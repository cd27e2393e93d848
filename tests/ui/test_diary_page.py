"""The diary page in a real Chromium: a community supervisor returns an entry with a note (the database
shows it returned with the note), a district leader comments (点评), a review based on a stale version
shows the service's conflict message and writes nothing, and the grid worker sees the note and the photo
of a returned entry, edits and resubmits it, and writes a new one. No request leaves the machine.

The entries are written through the service as the grid worker would from the phone.
"""

from __future__ import annotations

import base64

import pytest
from playwright.sync_api import expect
from sqlalchemy import text

from gis import db
from gis.security import roles, users
from gis.security.scope import scoped_connection
from gis.security.sessions import CurrentUser
from layers import diary
from layers.events.calendar import beijing_today
from layers.events.service import Upload
from tests.ui.conftest import pages_per_user
from tests.ui.support import running_server

pytestmark = pytest.mark.ui

PASSWORD = "Gridgov#2024ui"
COMMUNITY = "320106.320106001.320106001003"
GRID = "320106.320106001.320106001003.320106001003002"
PEOPLE = {
    "wg_dia": ("grid_worker", GRID, "网格员陈丽"),
    "sq_dia": ("community_staff", COMMUNITY, "社区王静"),
    "jd_dia": ("street_staff", "320106.320106001", "街道李晓燕"),
    "qu_dia": ("district_commander", "320106", "指挥长周建华"),
}
STEP_TIMEOUT = 45_000
SCREENSHOT = "/tmp/gridgov_diary_page.png"
# A 1×1 PNG: the entry's photo.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
                       "AAAABJRU5ErkJggg==")


@pytest.fixture(scope="module")
def world(territory_db, browser):
    ids = {}
    with db.owner_engine(territory_db).begin() as conn:
        for username, (role, scope, name) in PEOPLE.items():
            ids[username] = users.upsert_user(conn, username, PASSWORD, role, scope, name)
    with (running_server(territory_db) as base_url,
          pages_per_user(browser, base_url, PASSWORD) as (page_of, logs, pages)):
        yield {"url": base_url, "settings": territory_db, "ids": ids, "page": page_of, "logs": logs}


def user(world, username: str) -> CurrentUser:
    role, scope, name = PEOPLE[username]
    return CurrentUser(id=world["ids"][username], username=username, name=name, role=role, scope_path=scope,
                       department=None, permissions=roles.ROLES[role].permissions)


def write(world, content: str) -> dict:
    worker = user(world, "wg_dia")
    with scoped_connection(world["settings"], worker) as conn:
        person = conn.execute(text("SELECT id FROM person WHERE name = '张三'")).scalar_one()
        saved, _ = diary.write_entry(conn, worker, diary.DiaryInput(
            beijing_today(), content, person_ids=[person], lon=118.748, lat=32.08, crs="cgcs2000"))
    return saved


def row(world, entry_id: int) -> dict:
    with db.owner_engine(world["settings"]).connect() as conn:
        found = dict(conn.execute(text("SELECT state, approval_note, version FROM diary WHERE id = :id"),
                                  {"id": entry_id}).mappings().one())
        found["comments"] = conn.execute(text(
            "SELECT user_name || '：' || body FROM diary_comment WHERE diary_id = :id ORDER BY id"),
            {"id": entry_id}).scalars().all()
    return found


def open_diary(world, username: str):
    page = world["page"](username)
    page.goto(world["url"] + "/diary")
    page.locator(".gg-diary-tiles [data-state=total] .gg-value").wait_for(state="visible", timeout=60_000)
    return page


def pick(page, content: str) -> None:
    page.locator(".bk-tab", has_text="日记列表").click()
    page.locator(".gg-diary-table .tabulator-row").filter(has_text=content[:20]).click()
    expect(page.locator(".gg-diary-detail")).to_contain_text(content, timeout=STEP_TIMEOUT)


def test_a_supervisor_returns_an_entry_with_a_note(world):
    first = write(world, "走访独居老人张三，检查燃气安全")
    write(world, "巡查小区消防通道")
    page = open_diary(world, "sq_dia")
    tiles = page.locator(".gg-diary-tiles")
    expect(tiles.locator("[data-state=submitted] .gg-value")).to_have_text("2")
    expect(tiles.locator("[data-state=total] .gg-value")).to_have_text("2")
    pick(page, "走访独居老人张三，检查燃气安全")
    detail = page.locator(".gg-diary-detail")
    expect(detail).to_contain_text("网格员陈丽")
    expect(detail).to_contain_text("仙霞路社区第二网格")
    expect(detail).to_contain_text("张三")
    # A return without a note is refused by the service, and nothing moves.
    page.get_by_role("button", name="退回", exact=True).click()
    expect(page.locator(".gg-diary-danger")).to_contain_text("退回须填写意见", timeout=STEP_TIMEOUT)
    assert row(world, first["id"])["state"] == "submitted"
    page.locator(".gg-review-form textarea").fill("请补充走访对象的家庭情况")
    page.get_by_role("button", name="退回", exact=True).click()
    expect(page.locator(".gg-diary-success")).to_contain_text("已退回", timeout=STEP_TIMEOUT)
    found = row(world, first["id"])
    assert (found["state"], found["approval_note"]) == ("returned", "请补充走访对象的家庭情况")
    expect(detail.locator(".gg-review-note")).to_have_text("请补充走访对象的家庭情况")
    expect(tiles.locator("[data-state=returned] .gg-value")).to_have_text("1")
    expect(page.locator(".gg-review-form")).to_be_hidden()       # nothing more to review on it
    # The community has no diary:comment: no 点评 form.
    expect(page.locator(".gg-comment-form")).to_be_hidden()
    page.screenshot(path=SCREENSHOT, full_page=True)


def test_a_leader_comments(world):
    entry = write(world, "协助调解邻里噪音纠纷")
    page = open_diary(world, "qu_dia")
    pick(page, "协助调解邻里噪音纠纷")
    page.locator(".gg-comment-form textarea").fill("调解及时，值得表扬")
    page.get_by_role("button", name="点评", exact=True).click()
    expect(page.locator(".gg-diary-success")).to_contain_text("已点评", timeout=STEP_TIMEOUT)
    expect(page.locator(".gg-diary-comments .gg-comment")).to_contain_text("调解及时，值得表扬")
    found = row(world, entry["id"])
    assert found["comments"] == ["指挥长周建华：调解及时，值得表扬"]
    assert (found["state"], found["version"]) == ("submitted", entry["version"])   # a comment moves nothing


def test_a_stale_review_shows_the_conflict(world):
    entry = write(world, "检查沿街商铺消防器材")
    page = open_diary(world, "sq_dia")
    pick(page, "检查沿街商铺消防器材")
    # Meanwhile the street approves it in another session.
    street = user(world, "jd_dia")
    with scoped_connection(world["settings"], street) as conn:
        diary.review_entry(conn, street, entry["id"], "approve", None, entry["version"])
    before = row(world, entry["id"])
    page.get_by_role("button", name="通过", exact=True).click()
    expect(page.locator(".gg-diary-warning")).to_contain_text("已被修改或审核", timeout=STEP_TIMEOUT)
    assert row(world, entry["id"]) == before
    # Reloaded: approved now, nothing left to review.
    expect(page.locator(".gg-diary-detail [data-state=approved]")).to_be_visible()
    expect(page.locator(".gg-review-form")).to_be_hidden()


def test_the_worker_sees_the_note_resubmits_and_writes(world):
    worker = user(world, "wg_dia")
    with scoped_connection(world["settings"], worker) as conn:
        entry, _ = diary.write_entry(conn, worker, diary.DiaryInput(
            beijing_today(), "入户核查出租房屋登记", uploads=[Upload("现场.png", "image/png", PNG)]))
    community = user(world, "sq_dia")
    with scoped_connection(world["settings"], community) as conn:
        diary.review_entry(conn, community, entry["id"], "return", "请写明核查的房屋", entry["version"])
    page = open_diary(world, "wg_dia")
    expect(page.locator(".bk-tab", has_text="写日记")).to_be_visible()
    # Only their own entries: the worker filter offers just 本人.
    assert page.locator("#sidebar select").first.locator("option").all_inner_texts() == ["本人"]
    pick(page, "入户核查出租房屋登记")
    expect(page.locator(".gg-review-note")).to_have_text("请写明核查的房屋")
    expect(page.locator(".gg-review-form")).to_be_hidden()
    # The photo is the API's photo route, loaded with the session cookie.
    image = page.locator(".gg-diary-photos img")
    expect(image).to_have_count(1)
    width = image.evaluate("img => img.complete ? img.naturalWidth"
                           " : new Promise(r => { img.onload = () => r(img.naturalWidth); })")
    assert width == 1
    page.get_by_role("button", name="修改此日记").click()
    content = page.locator("#main").get_by_label("工作内容（必填）")
    expect(content).to_have_value("入户核查出租房屋登记", timeout=STEP_TIMEOUT)
    content.fill("入户核查出租房屋登记：仙霞路1幢101、201")
    page.get_by_role("button", name="提交日记").click()
    expect(page.locator(".gg-diary-success")).to_contain_text("已修改并重新提交", timeout=STEP_TIMEOUT)
    found = row(world, entry["id"])
    assert (found["state"], found["version"]) == ("submitted", entry["version"] + 2)
    # A new entry from the page.
    page.locator(".bk-tab", has_text="写日记").click()
    page.locator("#main").get_by_label("工作内容（必填）").fill("参加社区平安建设例会")
    page.get_by_role("button", name="提交日记").click()
    expect(page.locator(".gg-diary-success")).to_contain_text("已提交", timeout=STEP_TIMEOUT)
    with db.owner_engine(world["settings"]).connect() as conn:
        written = conn.execute(text(
            "SELECT state, worker_id, diary_date FROM diary WHERE content = '参加社区平安建设例会'")).one()
    assert tuple(written) == ("submitted", world["ids"]["wg_dia"], beijing_today())
