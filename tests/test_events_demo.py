"""The demo events: a year of cases walked through the real state machine over the demo district."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from etl.demo import load_demo
from etl.demo_events import load_demo_events
from gis import db

TODAY = dt.date(2025, 6, 30)


@pytest.fixture(scope="module")
def demo(fresh_db):
    load_demo(fresh_db, scale=6000, seed=7)
    report = load_demo_events(fresh_db, n=400, seed=3, today=TODAY)
    return fresh_db, report


def rows(settings, sql: str, **params):
    with db.owner_engine(settings).connect() as conn:
        return conn.execute(text(sql), params).fetchall()


def test_cases_in_every_status_with_cards(demo):
    settings, report = demo
    assert sum(report.counts.values()) == 400
    assert {"evaluated", "closed", "cancelled", "handling", "reported", "registered"} <= set(report.counts)
    assert report.cards > 0 and report.history_rows > 400 * 3
    late = rows(settings, "SELECT count(*) FROM event WHERE late_steps > 0")[0][0]
    assert 0 < late < 400
    assert rows(settings, "SELECT count(*) FROM event WHERE department IS NOT NULL")[0][0] > 0
    assert rows(settings, "SELECT count(*) FROM event WHERE rework_count > 0")[0][0] > 0


def test_every_history_is_a_walk_of_the_state_machine(demo):
    settings, _ = demo
    broken = rows(settings, """
        WITH h AS (SELECT event_id, action, from_status, to_status, version,
                          lag(to_status) OVER w AS previous, row_number() OVER w AS n
                     FROM event_history WINDOW w AS (PARTITION BY event_id ORDER BY id))
        SELECT event_id FROM h
         WHERE (n = 1 AND (action <> 'report' OR from_status IS NOT NULL))
            OR (n > 1 AND from_status IS DISTINCT FROM previous)
            OR version <> n""")
    assert broken == []
    mismatched = rows(settings, """
        SELECT e.id FROM event e JOIN LATERAL (SELECT count(*) AS n, max(at) AS last_at,
                                                      (array_agg(to_status ORDER BY id DESC))[1] AS status
                                                 FROM event_history h WHERE h.event_id = e.id) h ON true
         WHERE e.version <> h.n OR e.status <> h.status OR h.last_at > :end""",
                      end=dt.datetime(2025, 6, 30, 18, tzinfo=dt.timezone(dt.timedelta(hours=8))))
    assert mismatched == []


def test_cases_lie_in_their_grid_and_cluster(demo):
    settings, _ = demo
    outside = rows(settings, """
        SELECT e.id FROM event e JOIN territory_unit g ON g.id = e.grid_id
         WHERE e.location IS NOT NULL AND NOT ST_Covers(g.boundary, e.location)""")
    assert outside == []
    per_grid = [n for (n,) in rows(settings, "SELECT count(*) FROM event GROUP BY grid_id ORDER BY 1 DESC")]
    assert per_grid[0] >= 2 * per_grid[-1]      # hot spots


def test_the_load_is_deterministic(demo):  # last: it replaces the module's events
    settings, report = demo
    assert report.seconds < 60, f"{report.seconds:.1f}s for 400 cases"
    first = load_demo_events(settings, n=60, seed=5, today=TODAY)
    again = load_demo_events(settings, n=60, seed=5, today=TODAY)
    assert again.counts == first.counts and again.cards == first.cards
    assert again.history_rows == first.history_rows
