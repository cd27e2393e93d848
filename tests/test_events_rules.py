"""Working-day deadlines over the official calendar, lights, routing, and the workflow table's own
consistency. No database."""

from __future__ import annotations

import datetime as dt

import pytest

from gis.security.roles import ROLES, has_permission
from layers.events import calendar
from layers.events.position import from_wgs84_to_gcj02, to_cgcs2000
from layers.events.rules import DEFAULT_RULES
from layers.events.workflow import ACTOR_PLACES, OPEN, STATUSES, TRANSITIONS

B = calendar.BEIJING


def at(y, m, d, h=10, minute=0):
    return dt.datetime(y, m, d, h, minute, tzinfo=B)


def test_national_day_2024_is_skipped_and_make_up_days_count():
    # 2024: 1–7 October off; Sunday 29 September and Saturday 12 October are working days.
    assert calendar.due_after(at(2024, 9, 30), 3) == at(2024, 10, 11, 0)      # 8, 9, 10 October
    assert calendar.due_after(at(2024, 9, 27), 1) == at(2024, 9, 30, 0)       # the make-up Sunday 29th
    assert calendar.due_after(at(2024, 10, 10), 2) == at(2024, 10, 13, 0)     # Fri 11th, make-up Sat 12th
    assert calendar.due_after(at(2024, 10, 1), 1) == at(2024, 10, 9, 0)       # reported on the holiday
    assert not calendar.is_working_day(dt.date(2024, 10, 3))
    assert calendar.is_working_day(dt.date(2024, 10, 12))
    assert not calendar.is_working_day(dt.date(2024, 10, 19))                # an ordinary Saturday


def test_spring_festival_and_a_plain_week():
    assert calendar.due_after(at(2025, 1, 24), 2) == at(2025, 1, 28, 0)       # Sun 26th is made up, Mon 27th
    assert calendar.due_after(at(2025, 1, 27), 1) == at(2025, 2, 6, 0)        # holiday until 4 Feb, Sat 8th
    assert calendar.due_after(at(2025, 3, 3), 5) == at(2025, 3, 11, 0)        # Mon → next Mon, end of day


def test_the_time_of_day_is_beijing_time():
    late_utc = dt.datetime(2024, 9, 29, 17, 0, tzinfo=dt.UTC)                 # 01:00 on 30 Sept in Beijing
    assert calendar.due_after(late_utc, 3) == at(2024, 10, 11, 0)
    with pytest.raises(ValueError):
        calendar.due_after(dt.datetime(2024, 9, 30), 3)


def test_beyond_the_calendar_only_weekends_are_off():
    assert calendar.is_working_day(dt.date(2040, 10, 1)) is True              # a Monday, no data that far
    assert calendar.is_working_day(dt.date(2040, 10, 6)) is False


def test_lights_turn_yellow_on_the_last_working_day_and_red_after():
    start = at(2024, 9, 30)
    yellow, due = calendar.yellow_after(start, 3, 1), calendar.due_after(start, 3)
    assert yellow == at(2024, 10, 10, 0)
    assert calendar.light(at(2024, 10, 9, 23, 59), yellow, due) == "green"
    assert calendar.light(at(2024, 10, 10, 9), yellow, due) == "yellow"
    assert calendar.light(at(2024, 10, 11, 0), yellow, due) == "red"
    assert calendar.light(at(2024, 10, 11), None, None) is None
    assert calendar.yellow_after(start, 1, 1) == start                       # a one-day limit warns at once


def test_working_days_between():
    assert calendar.working_days_between(at(2024, 9, 30), at(2024, 10, 10)) == 3
    assert calendar.working_days_between(at(2024, 10, 10), at(2024, 10, 9)) == 0


def test_limits_by_type_level_and_urgency():
    r = DEFAULT_RULES
    assert r.limit("handling", "0102", "grid") == 3
    assert r.limit("handling", "0102", "department") == 15
    assert r.limit("handling", "0504", "department") == 5
    assert r.limit("handling", "0402", "street") == 7                         # the default row
    assert r.limit("handling", "0102", "department", "major") == 8           # half, rounded up
    assert r.limit("reported", "0102", "grid") == 1 and r.limit("closed", "0102", "grid") is None
    assert r.red_card_days(3) == 6 and r.red_card_days(1) == 2


def test_routing_picks_the_most_specific_rule():
    r = DEFAULT_RULES
    assert r.route("0102", "32.3201.320106") == "justice"
    assert r.route("0105", "32.3201.320106") == "human_resources"
    assert r.route("0301", "32.3201.320106") == "fire" and r.route("0302", "32.3201.320106") == "emergency"
    assert r.route("0402", "32.3201.320106") == "urban" and r.route("0401", "32") == "water"


def test_the_workflow_table_is_consistent_with_the_role_catalogue():
    assert set(ACTOR_PLACES) >= {t.by for t in TRANSITIONS.values()}
    for t in TRANSITIONS.values():
        assert set(t.sources) <= set(STATUSES), t.action
        assert t.target is None or t.target in STATUSES
        assert set(t.outcomes.values()) <= set(STATUSES)
        assert t.roles <= set(ROLES)
        # Someone can take every action: a role both listed and granted the permission.
        assert any(has_permission(ROLES[r].permissions, t.permission) for r in t.roles), t.action
    # Every open status leads somewhere (no dead end short of the finish).
    for status in OPEN:
        assert any(status in t.sources and (t.target not in (None, status) or t.outcomes)
                   for t in TRANSITIONS.values()), status


def test_positions_from_amap_and_baidu_come_back_to_the_gps_point():
    lon, lat = 118.7800, 32.0600
    gcj = from_wgs84_to_gcj02(lon, lat)
    assert to_cgcs2000(*gcj, "gcj02") == pytest.approx((lon, lat), abs=1e-7)
    assert to_cgcs2000(lon, lat, "wgs84") == (lon, lat)
    # Baidu's offset on top of GCJ-02 (its published forward formula), undone.
    import math
    x, y = gcj
    z = math.sqrt(x * x + y * y) + 0.00002 * math.sin(y * math.pi * 3000 / 180)
    theta = math.atan2(y, x) + 0.000003 * math.cos(x * math.pi * 3000 / 180)
    bd = (z * math.cos(theta) + 0.0065, z * math.sin(theta) + 0.006)
    assert to_cgcs2000(*bd, "bd09") == pytest.approx((lon, lat), abs=2e-6)
    with pytest.raises(ValueError, match="不在中国境内"):
        to_cgcs2000(32.06, 118.78)
