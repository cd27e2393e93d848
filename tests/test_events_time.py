"""Deadlines, lights and automatic cards on a real database, with the clock set by the test: a case
reported on the eve of National Day 2024, overdue (yellow card), at twice its limit (red card), and a
step finished late."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from sqlalchemy import text

from gis import db
from gis.security.scope import scoped_connection
from layers import events
from layers.events.calendar import BEIJING
from tests.events_helpers import USERS, build_world


def at(m, d, h=10):
    return dt.datetime(2024, m, d, h, 0, tzinfo=BEIJING)


@pytest.fixture(scope="module")
def world(fresh_db):
    return build_world(fresh_db)


def user(world, username):
    role, unit, department = USERS[username]
    return SimpleNamespace(id=world.ids[username], name=username, role=role,
                           scope_path=world.units[unit].path, department=department)


def run(world, username, work):
    with scoped_connection(world.settings, user(world, username)) as conn:
        return work(conn, events.actor_for(conn, user(world, username)))


def cards(world, event_id):
    with db.owner_engine(world.settings).connect() as conn:
        return conn.execute(text(
            "SELECT color, kind, step_no, issued_at, unit_path::text FROM event_card WHERE event_id = :e"
            " ORDER BY issued_at, color"), {"e": event_id}).all()


def test_deadline_lights_and_cards_over_national_day(world):
    g1 = world.units["g1"]
    fields = events.ReportFields(title="消防通道堵塞", type="0301", grid_id=g1.id)
    event, _ = run(world, "wg1", lambda c, a: events.report(c, a, fields, now=at(9, 30)))
    event = run(world, "wg1", lambda c, a: events.act(c, a, event["id"], "self_handle",
                                                       events.ActionRequest(version=1), now=at(9, 30, 11)))
    # Fire hazards at the grid: one working day. 1–7 October are off: due at the end of the 8th.
    assert event["step_limit_days"] == 1
    assert event["due_at"] == at(10, 9, 0)
    assert event["red_card_at"] == at(10, 10, 0)       # twice the limit: the end of the 9th
    assert event["light"] == "yellow"                   # a one-day limit is its own last day

    def light(when):
        return run(world, "qu", lambda c, a: events.get_event(c, event["id"], now=when))["light"]

    assert light(at(10, 8, 23)) == "yellow" and light(at(10, 9, 0)) == "red"

    def due_cards(when):
        with db.owner_engine(world.settings).begin() as conn:
            return events.issue_due_cards(conn, now=when)

    assert due_cards(at(10, 8, 23)) == {"yellow": 0, "red": 0}
    assert due_cards(at(10, 9, 8))["yellow"] >= 1
    assert [(c.color, c.kind, c.issued_at) for c in cards(world, event["id"])] == [
        ("yellow", "auto", at(10, 9, 0))]
    assert due_cards(at(10, 9, 9))["yellow"] == 0      # once per step
    due_cards(at(10, 10, 8))
    found = cards(world, event["id"])
    assert [(c.color, c.issued_at) for c in found] == [("yellow", at(10, 9, 0)), ("red", at(10, 10, 0))]
    assert {c.unit_path for c in found} == {g1.path}    # they count against the grid that held it

    # The late step is finished: the history says so, the counter too; the overdue light goes with it.
    event = run(world, "wg1", lambda c, a: events.act(
        c, a, event["id"], "feedback", events.ActionRequest(version=2, comment="已清理"), now=at(10, 10, 9)))
    assert event["late_steps"] == 1 and event["history"][-1]["late"] is True
    assert event["history"][-1]["due_at"] == at(10, 9, 0)
    # Verification: two working days from Thursday 10th → Fri 11th and the make-up Saturday 12th.
    assert event["status"] == "handled" and event["due_at"] == at(10, 13, 0)


def test_a_step_finished_late_gets_its_cards_even_if_the_job_never_ran(world):
    fields = events.ReportFields(title="楼道堆物", type="0502", grid_id=world.units["g1"].id)
    event, _ = run(world, "wg1", lambda c, a: events.report(c, a, fields, now=at(11, 4)))  # Monday
    # Accepting takes one working day: due at the end of Tuesday 5th; twice, the end of Wednesday 6th.
    event = run(world, "wg1", lambda c, a: events.act(c, a, event["id"], "escalate",
                                                       events.ActionRequest(version=1), now=at(11, 7)))
    assert [(c.color, c.kind, c.step_no, c.unit_path) for c in cards(world, event["id"])] == [
        ("yellow", "auto", 1, world.units["g1"].path), ("red", "auto", 1, world.units["g1"].path)]
    assert event["yellow_cards"] == event["red_cards"] == 1
    assert event["step_no"] == 2 and event["unit_level"] == "community"


def test_an_approved_extension_moves_the_deadline_by_working_days(world):
    fields = events.ReportFields(title="邻里纠纷", type="0102", grid_id=world.units["g1"].id)
    event, _ = run(world, "wg1", lambda c, a: events.report(c, a, fields, now=at(9, 23)))
    steps = [("escalate", "wg1", {}), ("self_handle", "sq1", {}),
             ("request_extension", "sq1", {"days": 2, "comment": "双方分歧较大"}),
             ("approve_extension", "jd1", {})]
    for action, who, extra in steps:
        seen = event

        def work(c, a, action=action, extra=extra, seen=seen):
            request = events.ActionRequest(version=seen["version"], **extra)
            return events.act(c, a, seen["id"], action, request, now=at(9, 24))

        event = run(world, who, work)
    # Community mediation: 7 working days from Tuesday 24 September → 25, 26, 27, 29 (make-up), 30,
    # then 8 and 9 October; two more: 10 and 11 October.
    assert event["step_limit_days"] == 9 and event["due_at"] == at(10, 12, 0)
    assert event["extension_count"] == 1


def test_the_inbox_counts_per_light(world):
    now = at(10, 9, 12)
    box = run(world, "sq1", lambda c, a: events.inbox(c, a, now=now))
    assert box["total"] == len(box["items"]) >= 1
    assert sum(box["counts"].values()) == box["total"]
    dues = [e["due_at"] for e in box["items"] if e["due_at"] is not None]
    assert dues == sorted(dues)
    for e in box["items"]:
        assert e["light"] == events.service.calendar.light(now, e["yellow_at"], e["due_at"])


def test_the_history_is_append_only_for_the_app_role(world):
    from sqlalchemy.exc import DBAPIError

    fields = events.ReportFields(title="井盖缺失", type="0404", grid_id=world.units["g1"].id)
    run(world, "wg1", lambda c, a: events.report(c, a, fields, now=at(9, 2)))
    for statement in ("UPDATE event_history SET comment = 'x'", "DELETE FROM event_history",
                      "DELETE FROM event_card", "DELETE FROM event"):
        with pytest.raises(DBAPIError) as refused:
            run(world, "qu", lambda c, a, s=statement: c.execute(text(s)))
        assert refused.value.orig.sqlstate == "42501", statement
