"""The event pages in a real Chromium: a grid worker's report followed through every step of the loop to
evaluation, each step by the right user clicking the action button, with the database checked after each;
the inbox tiles equal SQL counts per light; a stale action shows the conflict and writes nothing; a user
of another community does not see the event. No request leaves the machine.

One server for the module and one browser context per user (logged in once, through the login form for
the first and the login API for the rest): the slow part of a UI test is loading Panel pages.
"""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from playwright.sync_api import expect
from sqlalchemy import text

from gis import db
from gis.security import roles, users
from gis.security.scope import scoped_connection
from gis.security.sessions import CurrentUser
from layers import events
from tests.ui.conftest import pages_per_user
from tests.ui.support import running_server
from tests.ui.test_map_page import log_in

pytestmark = pytest.mark.ui

PASSWORD = "Gridgov#2024ui"
DISTRICT = "320106"
STREET = "320106.320106001"
COMMUNITY = "320106.320106001.320106001003"
GRID = "320106.320106001.320106001003.320106001003002"
OTHER_COMMUNITY = "320106.320106002.320106002002"
# username → (role, scope, department, name)
PEOPLE = {
    "wg_evt": ("grid_worker", GRID, None, "网格员陈丽"),
    "sq_evt": ("community_staff", COMMUNITY, None, "社区王静"),
    "jd_evt": ("street_staff", STREET, None, "街道李晓燕"),
    "qu_evt": ("district_commander", DISTRICT, "区综治中心", "指挥长周建华"),
    "cg_evt": ("department_officer", DISTRICT, "区城管局", "城管赵国强"),
    "sq_other": ("community_staff", OTHER_COMMUNITY, None, "慈悲社社区小刘"),
}
# A 1×1 PNG: the feedback photo.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
                       "AAAABJRU5ErkJggg==")
SCREENSHOT = "/tmp/gridgov_events_page.png"
INBOX_SCREENSHOT = "/tmp/gridgov_events_inbox.png"
TIMELINE_SCREENSHOT = "/tmp/gridgov_events_timeline.png"
LOOP_TITLE = "小区门口建筑垃圾堆放"
# Generous: the shared test machine is often busy, and a step is a click, a transaction and a redraw.
STEP_TIMEOUT = 45_000


@pytest.fixture(scope="module")
def world(territory_db, browser):
    """The tiny territory, one account per role of the loop, the server, and a page per user."""
    ids = {}
    with db.owner_engine(territory_db).begin() as conn:
        for username, (role, scope, department, name) in PEOPLE.items():
            ids[username] = users.upsert_user(conn, username, PASSWORD, role, scope, name, department)
    with (running_server(territory_db) as base_url,
          pages_per_user(browser, base_url, PASSWORD, check_console=False) as (page_of, logs, pages)):
        yield {"url": base_url, "settings": territory_db, "ids": ids, "page": page_of, "logs": logs,
               "pages": pages}


def user(world, username: str) -> CurrentUser:
    role, scope, department, name = PEOPLE[username]
    return CurrentUser(id=world["ids"][username], username=username, name=name, role=role, scope_path=scope,
                       department=department, permissions=roles.ROLES[role].permissions)


def state(world, event_id: int) -> dict:
    """The event as the database has it: status, holder, and its history's actions in order."""
    with db.owner_engine(world["settings"]).connect() as conn:
        row = conn.execute(text("SELECT status, unit_path::text AS unit, department, version FROM event"
                                " WHERE id = :id"), {"id": event_id}).mappings().one()
        actions = conn.execute(text("SELECT action FROM event_history WHERE event_id = :id ORDER BY id"),
                               {"id": event_id}).scalars().all()
    return {**row, "actions": list(actions)}


def event_titled(world, title: str) -> int:
    with db.owner_engine(world["settings"]).connect() as conn:
        return conn.execute(text("SELECT id FROM event WHERE title = :t"), {"t": title}).scalar_one()


def open_desk(world, username: str, event_id: int | None = None):
    page = world["page"](username)
    page.goto(world["url"] + "/events" + (f"?id={event_id}" if event_id else ""))
    page.locator(".gg-tile[data-light=total] .gg-value").wait_for(state="visible", timeout=60_000)
    if event_id:
        expect(page.locator(".gg-event-fields")).to_contain_text("事件编号", timeout=30_000)
    return page


def take(page, action: str, fill: dict[str, str] | None = None, files: list | None = None, *,
         opened: bool = False) -> None:
    """Click the action's button (unless its form is ``opened`` already), fill its form, send it, and
    wait for the page to confirm it."""
    if not opened:
        page.locator(".gg-actions").get_by_role("button", name=action, exact=True).click()
    form = page.locator(".gg-action-form")
    confirm = form.get_by_role("button", name=f"确定{action}")
    expect(confirm).to_be_visible(timeout=STEP_TIMEOUT)
    for label, value in (fill or {}).items():
        form.get_by_label(label).fill(value)
    if files:
        form.locator("input[type=file]").set_input_files(files)
    confirm.click()
    expect(page.locator(".gg-event-message")).to_contain_text(f"已{action}。", timeout=STEP_TIMEOUT)


def report_as(world, username: str, title: str, *, at: dt.datetime) -> dict:
    """An event reported by the grid worker and escalated to the community, through the services."""
    who = user(world, username)
    with scoped_connection(world["settings"], who) as conn:
        actor = events.actor_for(conn, who)
        event, _ = events.report(conn, actor, events.ReportFields(title=title, type="0502", lon=118.748,
                                                                  lat=32.08), now=at)
        return events.act(conn, actor, event["id"], "escalate", events.ActionRequest(version=1), now=at)


def test_inbox_tiles_count_per_light_and_a_stale_action_is_refused(world):
    now = dt.datetime.now(dt.UTC)
    made = [report_as(world, "wg_evt", f"待办样例{i}", at=now - dt.timedelta(hours=1)) for i in range(6)]
    # Two overdue, one near its deadline, three in time: set the clocks the lights are read from.
    clocks = [(-48, -1)] * 2 + [(-1, 24)] + [(24, 48)] * 3   # (yellow_at, due_at) in hours from now
    with db.owner_engine(world["settings"]).begin() as conn:
        for event, (yellow, due) in zip(made, clocks, strict=True):
            conn.execute(text("UPDATE event SET yellow_at = :y, due_at = :d,"
                              " red_card_at = :d + interval '9 days' WHERE id = :id"),
                         {"y": now + dt.timedelta(hours=yellow), "d": now + dt.timedelta(hours=due),
                          "id": event["id"]})
        expected = dict(conn.execute(text("""
            SELECT CASE WHEN due_at <= now() THEN 'red' WHEN yellow_at <= now() THEN 'yellow'
                        ELSE 'green' END, count(*)
              FROM event WHERE department IS NULL AND unit_path = CAST(:c AS ltree)
               AND status IN ('reported', 'registered', 'handling') GROUP BY 1"""), {"c": COMMUNITY}).all())
    assert expected == {"red": 2, "yellow": 1, "green": 3}

    page = open_desk(world, "sq_evt")
    tiles = page.locator(".gg-inbox-tiles")
    for light, count in expected.items():
        expect(tiles.locator(f"[data-light={light}] .gg-value")).to_have_text(str(count))
    expect(tiles.locator("[data-light=total] .gg-value")).to_have_text("6")
    rows = page.locator(".gg-inbox-table .tabulator-row")
    expect(rows).to_have_count(6)
    page.screenshot(path=INBOX_SCREENSHOT)
    # The side panel's filters: the overdue ones only, then all again.
    page.locator("#sidebar").get_by_label("预警灯").select_option(label="红灯（已超期）")
    page.get_by_role("button", name="查询").click()
    expect(rows).to_have_count(2, timeout=STEP_TIMEOUT)
    expect(page.locator(".gg-inbox-info")).to_contain_text("筛选后 2 件")
    page.get_by_role("button", name="重置").click()
    expect(rows).to_have_count(6, timeout=STEP_TIMEOUT)

    # Pick a row: the detail opens. Start to register it …
    rows.filter(has_text="待办样例5").click()
    expect(page.locator(".gg-event-title")).to_contain_text("待办样例5", timeout=STEP_TIMEOUT)
    event_id = made[5]["id"]
    page.locator(".gg-actions").get_by_role("button", name="立案", exact=True).click()
    expect(page.get_by_role("button", name="确定立案")).to_be_visible(timeout=STEP_TIMEOUT)
    # … while the same event is registered in another session.
    other = user(world, "sq_evt")
    with scoped_connection(world["settings"], other) as conn:
        events.act(conn, events.actor_for(conn, other), event_id, "register",
                   events.ActionRequest(version=made[5]["version"]))
    before = state(world, event_id)
    page.get_by_role("button", name="确定立案").click()
    expect(page.locator(".gg-event-message")).to_contain_text("已被他人处理", timeout=STEP_TIMEOUT)
    assert state(world, event_id) == before                 # no second history row, nothing moved
    assert before["actions"].count("register") == 1
    # … and the event is shown as it is now: registered, so 立案 is no longer offered.
    expect(page.locator(".gg-event-fields [data-status=registered]")).to_be_visible()
    expect(page.locator(".gg-actions").get_by_role("button", name="立案", exact=True)).to_have_count(0)
    assert world["logs"]["sq_evt"].console_errors == []


def test_a_report_goes_round_the_whole_loop_in_the_dashboard(world):
    # The grid worker logs in through the form and reports a walk-in from the desk.
    page = world["page"]("wg_evt")
    page.context.clear_cookies()
    page.goto(world["url"] + "/events")
    if "/login" in page.url:
        log_in(page, "wg_evt", PASSWORD)
    page.locator(".gg-tile[data-light=total] .gg-value").wait_for(state="visible", timeout=60_000)
    page.locator(".bk-tab", has_text="上报事件").click()
    main = page.locator("#main")
    main.get_by_label("事件标题（必填）").fill(LOOP_TITLE)
    main.get_by_label("事件类型").select_option(label="乱堆乱放")
    main.get_by_label("事件描述").fill("西门外堆放装修垃圾约三方")
    main.get_by_label("联系电话").fill("13800138000")
    main.get_by_label("经度").fill("118.748")
    main.get_by_label("经度").press("Tab")
    main.get_by_label("纬度").fill("32.08")
    main.get_by_label("纬度").press("Tab")
    main.get_by_role("button", name="提交上报").click()
    expect(page.locator(".gg-event-message")).to_contain_text("已上报。", timeout=STEP_TIMEOUT)
    event_id = event_titled(world, LOOP_TITLE)
    s = state(world, event_id)
    assert (s["status"], s["unit"], s["actions"]) == ("reported", GRID, ["report"])
    expect(page.locator(".gg-event-fields")).to_contain_text("138****8000")      # masked as the API does

    take(page, "上报上级")
    s = state(world, event_id)
    assert (s["status"], s["unit"], len(s["actions"])) == ("reported", COMMUNITY, 2)

    # Community → street → district, each from the event's link.
    for username, unit in (("sq_evt", STREET), ("jd_evt", DISTRICT)):
        take(open_desk(world, username, event_id), "上报上级")
        s = state(world, event_id)
        assert (s["status"], s["unit"], s["actions"][-1]) == ("reported", unit, "escalate")

    district = open_desk(world, "qu_evt", event_id)
    take(district, "立案")
    assert state(world, event_id)["status"] == "registered"
    take(district, "派遣")                            # the routing rules' department is preselected
    s = state(world, event_id)
    assert (s["status"], s["department"], len(s["actions"])) == ("dispatched", "urban", 6)
    # The district supervises the department and shows it a yellow card by hand; neither moves the case.
    take(district, "督办", {"督办意见（必填）": "群众反映强烈，请今日处理"})
    district.locator(".gg-actions").get_by_role("button", name="亮牌", exact=True).click()
    district.locator(".gg-action-form").get_by_label("牌色").select_option(label="黄牌")
    take(district, "亮牌", {"亮牌理由（必填）": "签收不及时"}, opened=True)
    expect(district.locator(".gg-supervisions tr.gg-supervision")).to_contain_text("待回复")
    expect(district.locator(".gg-cards tr.gg-card[data-color=yellow]")).to_contain_text("签收不及时")
    assert state(world, event_id)["status"] == "dispatched"

    department = open_desk(world, "cg_evt", event_id)
    take(department, "签收")
    assert state(world, event_id)["status"] == "handling"
    take(department, "督办回复", {"督办回复（必填）": "已安排人员清运"})
    expect(department.locator(".gg-supervisions tr.gg-supervision")).to_contain_text("已安排人员清运")
    take(department, "处理反馈", {"处理情况（必填）": "垃圾已清运，现场恢复整洁"},
         files=[{"name": "清运后.png", "mimeType": "image/png", "buffer": PNG}])
    s = state(world, event_id)
    assert (s["status"], s["actions"][-3:]) == ("handled", ["sign", "reply_supervision", "feedback"])
    expect(department.locator(".gg-attachments img")).to_have_count(1)

    community = world["page"]("sq_evt")               # still on the event since its escalation
    community.get_by_role("button", name="刷新").click()
    expect(community.locator(".gg-event-fields [data-status=handled]")).to_be_visible(timeout=STEP_TIMEOUT)
    take(community, "核查", {"核查意见（选填）": "现场已清理"})
    assert state(world, event_id)["status"] == "closed"

    district.get_by_role("button", name="刷新").click()
    expect(district.locator(".gg-event-fields [data-status=closed]")).to_be_visible(timeout=STEP_TIMEOUT)
    take(district, "评价")
    s = state(world, event_id)
    assert s["status"] == "evaluated"
    assert s["actions"] == ["report", "escalate", "escalate", "escalate", "register", "dispatch", "supervise",
                            "card", "sign", "reply_supervision", "feedback", "verify", "evaluate"]
    timeline = district.locator(".gg-timeline tr.gg-history")
    expect(timeline).to_have_count(13)
    expect(timeline.nth(5)).to_contain_text("区城管局")              # dispatched to the department
    expect(district.locator(".gg-actions")).to_contain_text("没有可执行的操作")
    # The timeline's names come with the history rows (layers.events.get_event).
    commander = user(world, "qu_evt")
    with scoped_connection(world["settings"], commander) as conn:
        history = events.get_event(conn, event_id)["history"]
    assert [(h["to_unit_name"], h["to_department_name"]) for h in history[1:6:4]] == [
        ("仙霞路社区居委会", None), ("鼓楼区", "区城管局")]
    district.screenshot(path=SCREENSHOT, full_page=True)
    timeline.first.scroll_into_view_if_needed()
    district.locator(".gg-timeline").screenshot(path=TIMELINE_SCREENSHOT)
    for username in ("wg_evt", "sq_evt", "jd_evt", "qu_evt", "cg_evt"):
        assert world["logs"][username].console_errors == [], username
        assert world["logs"][username].failed_responses == [], username


def test_a_user_of_another_community_does_not_see_the_event(world):
    event_id = event_titled(world, LOOP_TITLE)
    page = world["page"]("sq_other")
    page.goto(world["url"] + f"/events?id={event_id}")
    expect(page.locator(".gg-event-message")).to_contain_text("不在您的辖区内", timeout=60_000)
    expect(page.locator(".gg-tile[data-light=total] .gg-value")).to_have_text("0")
    page.locator(".bk-tab", has_text="全部事件").click()
    expect(page.locator(".gg-page-info")).to_contain_text("共 0 条")
    expect(page.locator(".gg-actions button")).to_have_count(0)
