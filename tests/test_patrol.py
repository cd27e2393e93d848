"""Patrol services on a real PostGIS: a known track's distance, stops, coverage and playback order; the
event heat map against SQL counts per cell; hot spots against their own history; the wall's figures; and
the wall feed's memory over many refresh cycles."""

from __future__ import annotations

import datetime as dt
import gc
import math
import threading
import tracemalloc
from types import SimpleNamespace

import numpy as np
import pytest
from sqlalchemy import text

from dashboards.wall import FeedReader, WallFeed, WallScreen, feed_for, stop_feeds
from etl.demo_tracks import load_demo_cameras, load_demo_tracks
from gis import db
from gis.security import roles, users
from gis.security.scope import scoped_connection
from gis.security.sessions import CurrentUser
from layers import command, heatmap, patrol, visits
from layers.events.calendar import BEIJING
from tests.access_helpers import PASSWORD
from tests.patrol_helpers import insert_event
from tests.ui.support import GRIDS, insert_territory

G1 = "320106.320106001.320106001003.320106001003001"
DAY = (dt.datetime.now(BEIJING) - dt.timedelta(days=1)).date()   # yesterday, a whole day in the past
START = dt.datetime.combine(DAY, dt.time(9, 0), BEIJING)
M_PER_DEG_LAT = 111_195.0
HEAT_AT = START - dt.timedelta(days=20)   # out of the hot spots' history windows


def walk(start_lon: float, start_lat: float, start: dt.datetime):
    """A known morning: 10 min east along a street at 1.2 m/s, 6 min at a door, 5 min north.
    Fixes every 10 s; the stop jitters by a few metres, as a phone does."""
    points, lon, lat, t = [], start_lon, start_lat, start
    m_per_deg_lon = M_PER_DEG_LAT * math.cos(math.radians(start_lat))
    for _ in range(60):
        points.append((t, lon, lat))
        lon += 12.0 / m_per_deg_lon
        t += dt.timedelta(seconds=10)
    rng = np.random.default_rng(7)
    for _ in range(36):
        points.append((t, lon + rng.normal(0, 2) / m_per_deg_lon, lat + rng.normal(0, 2) / M_PER_DEG_LAT))
        t += dt.timedelta(seconds=10)
    for _ in range(30):
        lat += 12.0 / M_PER_DEG_LAT
        points.append((t, lon, lat))
        t += dt.timedelta(seconds=10)
    return points


@pytest.fixture(scope="module")
def world(fresh_db):
    insert_territory(fresh_db)
    with db.owner_engine(fresh_db).begin() as conn:
        worker_id = users.upsert_user(conn, "wg_track", PASSWORD, "grid_worker", G1, "轨迹网格员")
        commander_id = conn.execute(text("SELECT id FROM users WHERE username = 'zhihui_test'")).scalar_one()
    worker = SimpleNamespace(id=worker_id, scope_path=G1)
    commander = SimpleNamespace(id=commander_id, scope_path="320106")
    points = walk(118.742, 32.0715, START)
    fixes = [patrol.Fix(t, lon, lat, accuracy=5.0, crs="cgcs2000") for t, lon, lat in points]
    with scoped_connection(fresh_db, worker) as conn:
        result = patrol.ingest_fixes(conn, worker, fixes, now=START + dt.timedelta(hours=3))
    assert result.accepted == len(points)
    return SimpleNamespace(settings=fresh_db, worker=worker, commander=commander, points=points)


def test_track_distance_stops_and_coverage(world):
    with scoped_connection(world.settings, world.commander) as conn:
        day = patrol.playback(conn, world.worker.id, DAY)
    assert [p["fixed_at"] for p in day["points"]] == [t for t, _, _ in world.points]
    # 59 steps east + 30 north of 12 m, plus the jitter of the stop
    assert 1068 - 5 < day["distance_m"] < 1068 + 300
    assert len(day["stops"]) == 1
    stop = day["stops"][0]
    assert 5 * 60 <= stop["dwell_seconds"] <= 6 * 60 + 20
    assert abs(stop["arrived"] - (START + dt.timedelta(minutes=10))) <= dt.timedelta(seconds=20)
    # grid 1 is 0.015° × 0.005° (~1.4 km × 0.55 km); a 60 m wide corridor ~1 km long covers roughly 8%
    assert day["grid"]["name"] == GRIDS[0][1]
    assert 0.04 < day["coverage"] < 0.15


def test_playback_passes_through_the_recorded_points_in_order(world):
    points = [{"fixed_at": t, "lon": lon, "lat": lat} for t, lon, lat in world.points]
    for p in points:
        assert patrol.position_at(points, p["fixed_at"]) == pytest.approx((p["lon"], p["lat"]))
    # between two fixes the marker is between them; before the first there is none
    a, b = points[0], points[1]
    mid = patrol.position_at(points, a["fixed_at"] + dt.timedelta(seconds=5))
    assert a["lon"] < mid[0] < b["lon"]
    assert patrol.position_at(points, a["fixed_at"] - dt.timedelta(seconds=1)) is None
    # a slider sweeping the day visits the fixes in their recorded order
    seen, t = [], points[0]["fixed_at"]
    while t <= points[-1]["fixed_at"]:
        where = patrol.position_at(points, t)
        nearest = min(range(len(points)), key=lambda i: (points[i]["lon"] - where[0]) ** 2
                      + (points[i]["lat"] - where[1]) ** 2)
        seen.append(nearest)
        t += dt.timedelta(seconds=30)
    moving = [i for i in seen if i < 60 or i >= 96]       # ignore the jitter at the stop
    assert moving == sorted(moving)


def test_a_worker_sees_their_own_track_and_not_others(world):
    other = SimpleNamespace(id=world.commander.id, scope_path="320106.320106002")
    with scoped_connection(world.settings, other) as conn:
        assert patrol.track(conn, world.worker.id, DAY) == []
        assert patrol.workers(conn, DAY) == []
    with scoped_connection(world.settings, world.worker) as conn:
        assert [w["name"] for w in patrol.workers(conn, DAY)] == ["轨迹网格员"]


def test_heat_map_counts_match_the_database_per_cell(world):
    rng = np.random.default_rng(11)
    lons, lats = rng.uniform(118.7401, 118.7599, 400), rng.uniform(32.0701, 32.0899, 400)
    with db.owner_engine(world.settings).begin() as conn:
        conn.execute(text(
            "INSERT INTO event (number, title, type, urgency, source, location, grid_id, status, unit_path,"
            " unit_level, step_started_at, reported_at, org_path, district_code)"
            " SELECT 'H' || i, '热力测试', '0101', 'normal', 'app', ST_SetSRID(ST_MakePoint(x, y), 4490),"
            "        g.id, 'reported', g.path, 'grid', :at, :at, g.path, '320106'"
            " FROM unnest(CAST(:x AS float8[]), CAST(:y AS float8[])) WITH ORDINALITY AS p(x, y, i)"
            " JOIN territory_unit g ON g.level = 'grid' AND ST_Intersects(g.boundary,"
            "      ST_SetSRID(ST_MakePoint(x, y), 4490))"),
            {"x": lons.tolist(), "y": lats.tolist(), "at": HEAT_AT})
    start, end = HEAT_AT - dt.timedelta(minutes=1), HEAT_AT + dt.timedelta(minutes=1)
    with scoped_connection(world.settings, world.commander) as conn:
        bounds = heatmap.territory_bounds(conn, "320106")
        x, y = heatmap.event_points(conn, start, end)
        width, height = heatmap.canvas_shape(bounds, 40)
        raster = heatmap.density(x, y, bounds, width, height)
        expected = heatmap.cell_counts_sql(conn, start, end, bounds, width, height)
    assert x.size == 400 and int(raster.values.sum()) == 400
    got = {(r, c): int(raster.values[r, c]) for r, c in zip(*np.nonzero(raster.values), strict=True)}
    assert got == expected
    rgba = heatmap.shade(raster)
    assert rgba.shape == (height, width, 4) and rgba[..., 3].any()
    # a grid worker's scope sees only the events of their grid
    with scoped_connection(world.settings, world.worker) as conn:
        assert 0 < heatmap.event_points(conn, start, end)[0].size < 400


def test_hot_spots_compare_a_grid_with_its_own_history(world):
    now = dt.datetime.now(dt.UTC)
    for day in range(1, 9):                       # grid 3: two events a day, every day: not hot today
        for k in range(2):
            insert_event(world.settings, f"历史{day}-{k}", minutes_ago=day * 1440 + 30, grid=GRIDS[2][0],
                         lon=118.757, lat=32.08)
    for k in range(2):
        insert_event(world.settings, f"今日常态{k}", minutes_ago=30, grid=GRIDS[2][0], lon=118.757, lat=32.08)
    for k in range(8):                            # grid 2: quiet for a week, eight today: hot
        insert_event(world.settings, f"突增{k}", minutes_ago=30, grid=GRIDS[1][0])
    with scoped_connection(world.settings, world.commander) as conn:
        spots = heatmap.hot_spots(conn, "320106", now - dt.timedelta(days=1), now, history=7)
    assert [s["name"] for s in spots] == [GRIDS[1][1]]
    assert spots[0]["events"] == 8 and spots[0]["usual"] < 1


def test_wall_figures_count_what_sql_counts(world):
    now = dt.datetime.now(dt.UTC)
    with scoped_connection(world.settings, world.commander) as conn:
        k = command.kpis(conn, now=now)
        today = heatmap.period("today", now=now)
        by_type = command.events_by_type(conn, today.start, today.end)
        ranking = command.closure_ranking(conn, "320106", now - dt.timedelta(days=30), now)
    with db.owner_engine(world.settings).connect() as conn:
        reported = conn.execute(text("SELECT count(*) FROM event WHERE reported_at >= :t"),
                                {"t": today.start}).scalar()
        per_street = dict(conn.execute(text(
            "SELECT subpath(org_path, 0, 2)::text, count(*) FROM event WHERE reported_at >= :t GROUP BY 1"),
            {"t": now - dt.timedelta(days=30)}).all())
    assert k["reported"] == reported and sum(t["events"] for t in by_type) == reported
    assert {r["path"]: r["events"] for r in ranking} == per_street
    assert k["on_patrol"] == 0        # the test track is yesterday's


def test_feed_memory_stays_flat_over_many_refreshes(world):
    feed = WallFeed(world.settings, FeedReader(world.commander.id, "320106"))
    for _ in range(10):                          # warm up caches, pools, numba
        feed.refresh()
    tracemalloc.start()
    # The first traced window replaces what was allocated before tracing began (it looks like growth);
    # the second shows whether anything is kept cycle after cycle.
    for _ in range(10):
        feed.refresh()
    gc.collect()
    before = tracemalloc.take_snapshot()
    for _ in range(40):
        feed.refresh()
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert feed.refreshes == 60
    assert grown < 100_000, f"{grown} bytes kept over 40 refreshes"


def test_one_feed_thread_serves_every_subscriber_and_stops_after_the_last(world):
    feed = WallFeed(world.settings, FeedReader(world.commander.id, "320106"), fast=0.3, slow=0.6)
    got: dict[str, list[int]] = {"a": [], "b": []}
    arrived = threading.Event()

    def screen(name):
        def receive(snapshot):
            got[name].append(snapshot.version)
            if len(got["a"]) >= 4 and len(got["b"]) >= 4:
                arrived.set()
        return receive

    a, b = feed.subscribe(screen("a")), feed.subscribe(screen("b"))
    assert arrived.wait(15)
    feed.unsubscribe(a)
    feed.unsubscribe(b)
    thread = feed._thread
    if thread is not None:
        thread.join(5)
    assert feed._thread is None
    # both screens saw the same snapshots, read once each
    common = sorted(set(got["a"]) & set(got["b"]))
    assert len(common) >= 3
    assert feed.refreshes + feed.fast_refreshes == max(got["a"] + got["b"])


def test_demo_tracks_give_every_grid_a_working_day(world):
    day = DAY - dt.timedelta(days=1)
    report = load_demo_tracks(world.settings, day, seed=3)
    assert report.workers == len(GRIDS) and report.fixes > 1000 * len(GRIDS)
    again = load_demo_tracks(world.settings, day, seed=3)          # a rerun replaces the day
    assert again.fixes == report.fixes
    with scoped_connection(world.settings, world.commander) as conn:
        workers = patrol.workers(conn, day)
        assert len(workers) == len(GRIDS)
        for w in workers:
            played = patrol.playback(conn, w["user_id"], day)
            hours = {p["fixed_at"].astimezone(BEIJING).hour for p in played["points"]}
            assert hours <= set(range(8, 12)) | set(range(14, 18))
            assert len(played["stops"]) >= 5 and played["distance_m"] > 1000
            assert played["grid"] is not None and played["coverage"] > 0
    assert load_demo_cameras(world.settings) == 2                    # the two communities' main roads


def _session_user(conn, username: str, role: str, scope: str, department: str | None = None) -> CurrentUser:
    user_id = users.upsert_user(conn, username, PASSWORD, role, scope, username, department=department)
    return CurrentUser(user_id, username, username, role, scope, department, roles.ROLES[role].permissions)


def test_overdue_visits_tile_counts_what_the_visits_service_counts(world):
    """Two records never visited since registration 200 days ago: a 社区矫正 one (a grid worker sees it)
    and a 吸毒人员 one (they do not). The feed counts what ``overdue_visits`` counts for each viewer."""
    with db.owner_engine(world.settings).begin() as conn:
        person = conn.execute(text(
            "INSERT INTO person (name, sex, birth_date, org_path, district_code)"
            " VALUES ('走访对象', '1', DATE '1985-05-05', CAST(:g AS ltree), '320106') RETURNING id"),
            {"g": G1}).scalar_one()
        registered = dt.datetime.now(dt.UTC) - dt.timedelta(days=200)
        for registry in ("community_correction", "drug_user"):
            conn.execute(text(
                f"INSERT INTO {registry} (person_id, org_path, district_code, created_at)"
                " VALUES (:p, CAST(:g AS ltree), '320106', :at)"), {"p": person, "g": G1, "at": registered})
        commander = _session_user(conn, "wall_cmd2", "district_commander", "320106")
        worker = _session_user(conn, "wall_wg2", "grid_worker", "320106")
    try:
        counts = {}
        for who in (commander, worker):
            with scoped_connection(world.settings, who) as conn:
                expected = len(visits.overdue_visits(conn, user=who))
            feed = WallFeed(world.settings, FeedReader.of(who))
            counts[who.role] = feed.refresh().kpis["overdue_visits"]
            assert counts[who.role] == expected
            assert feed.refresh(full=False).kpis["overdue_visits"] == expected   # kept between full reads
        assert counts == {"district_commander": 2, "grid_worker": 1}
        assert WallScreen._kpi_html({"overdue_visits": 2}).count('data-kpi="overdue_visits"') == 1
    finally:
        with db.owner_engine(world.settings).begin() as conn:
            conn.execute(text("DELETE FROM community_correction; DELETE FROM drug_user;"
                              " DELETE FROM person WHERE name = '走访对象'"))


def test_feeds_are_shared_by_visibility_not_by_scope_alone(world):
    """A department officer in the commander's district sees the events dispatched to the department
    (row-level security) and no special populations; a street officer beside them sees neither. Sharing
    a feed keyed by scope would show one of them the other's view."""
    east = "320106.320106002"
    with db.owner_engine(world.settings).begin() as conn:
        officer = _session_user(conn, "wall_dept", "department_officer", east, department="城管局")
        street = _session_user(conn, "wall_street", "street_staff", east)
        street2 = _session_user(conn, "wall_street2", "street_staff", east)
    event_id = insert_event(world.settings, "西片占道经营", status="dispatched")   # grid 2: the west street
    with db.owner_engine(world.settings).begin() as conn:
        conn.execute(text("UPDATE event SET department = '城管局', departments = ARRAY['城管局']"
                          " WHERE id = :id"), {"id": event_id})
    try:
        officer_feed, street_feed = feed_for(world.settings, officer), feed_for(world.settings, street)
        assert officer_feed is not street_feed
        assert feed_for(world.settings, street2) is street_feed            # the same visibility: shared
        assert event_id in {e["id"] for e in officer_feed.refresh().open_events}
        assert event_id not in {e["id"] for e in street_feed.refresh().open_events}
        assert "special:drug_user" not in officer_feed.reader.permissions
        assert "special:drug_user" in street_feed.reader.permissions
    finally:
        stop_feeds()
        with db.owner_engine(world.settings).begin() as conn:
            conn.execute(text("DELETE FROM event WHERE id = :id"), {"id": event_id})
