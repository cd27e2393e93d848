"""The demo diaries and visit histories on records inserted here (the demo registries' loader is another
module's): a month of entries in mixed states, notes on the returned ones, comments, visit histories whose
due dates agree with the visits service, some overdue; a rerun replaces the demo rows and leaves the
app's own rows alone."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from sqlalchemy import text

from etl.demo_diary import DAYS, load_demo_diary
from gis import db
from gis.security.scope import scoped_connection
from layers import diary, visits
from tests.access_helpers import add_user
from tests.ui.support import insert_territory

G1 = "320106.320106001.320106001003.320106001003001"
G2 = "320106.320106001.320106001003.320106001003002"
COMMUNITY = "320106.320106001.320106001003"
TODAY = dt.date(2026, 11, 20)


@pytest.fixture(scope="module")
def world(fresh_db):
    insert_territory(fresh_db)
    with db.owner_engine(fresh_db).begin() as conn:
        ids = {"wg1": add_user(conn, "wg_demo1", "grid_worker", G1),
               "wg2": add_user(conn, "wg_demo2", "grid_worker", G2),
               "sq": add_user(conn, "sq_demo", "community_staff", COMMUNITY),
               "jd": add_user(conn, "jd_demo", "street_staff", "320106.320106001")}
        people = list(conn.execute(text(
            "INSERT INTO person (name, sex, birth_date, org_path, district_code)"
            " SELECT '帮扶对象' || n, '1', DATE '1980-01-01', CAST(:p AS ltree), '320106'"
            " FROM generate_series(1, 40) n RETURNING id"), {"p": G2}).scalars())
        for i, person in enumerate(people):
            registry = ("community_correction", "drug_user", "released_prisoner", "key_youth")[i % 4]
            conn.execute(text(
                f"INSERT INTO {registry} (person_id, org_path, district_code, created_at"
                + (", category" if registry == "key_youth" else "") + ")"
                " SELECT id, org_path, district_code, now() - interval '300 days'"
                + (", '01'" if registry == "key_youth" else "") + " FROM person WHERE id = :p"),
                {"p": person})
        # A diary entered through the app: a reload must leave it alone.
        conn.execute(text(
            "INSERT INTO diary (worker, worker_id, grid_id, diary_date, content, org_path, district_code)"
            " SELECT 'wg_demo1', :u, id, :d, '自己写的', path, district_code FROM territory_unit"
            " WHERE path = CAST(:g AS ltree)"), {"u": ids["wg1"], "d": TODAY, "g": G1})
    first = load_demo_diary(fresh_db, seed=7, today=TODAY)
    second = load_demo_diary(fresh_db, seed=7, today=TODAY)
    return SimpleNamespace(settings=fresh_db, ids=ids, first=first, second=second)


def test_a_month_of_diaries_in_mixed_states(world):
    report = world.second
    assert report == world.first.__class__(**{**vars(world.first), "seconds": report.seconds})  # rerun: same
    assert report.workers == 2 and 2 * DAYS * 0.5 < report.diaries <= 2 * (DAYS + 1)
    with db.owner_engine(world.settings).connect() as conn:
        rows = conn.execute(text(
            "SELECT state, approval, approval_note, diary_date, reviewed_by, comment, worker_id, grid_id"
            " FROM diary"
            " WHERE client_id LIKE 'demo-d-%'")).mappings().all()
        own = conn.execute(text("SELECT count(*) FROM diary WHERE client_id IS NULL")).scalar_one()
        comments = conn.execute(text("SELECT count(*) FROM diary_comment")).scalar_one()
    assert len(rows) == report.diaries and own == 1
    states = {r["state"] for r in rows}
    assert states == {"submitted", "approved", "returned"}
    assert all(r["approval"] == diary.APPROVAL_CODES[r["state"]] for r in rows)
    assert all(r["approval_note"] for r in rows if r["state"] == "returned")
    assert all(r["reviewed_by"] == world.ids["sq"] for r in rows if r["state"] != "submitted")
    assert all(TODAY - dt.timedelta(days=DAYS) <= r["diary_date"] <= TODAY for r in rows)
    assert comments == report.comments > 0
    assert sum(1 for r in rows if r["comment"]) > 0
    # A worker sees their returned entries with the note, through the service.
    uid = next(r["worker_id"] for r in rows if r["state"] == "returned")
    worker = SimpleNamespace(id=uid, scope_path=G1 if uid == world.ids["wg1"] else G2, name="网格员",
                             has=lambda p: p == "diary:write")
    with scoped_connection(world.settings, worker) as conn:
        returned = diary.list_entries(conn, worker, worker="me", state="returned", size=100)
    assert returned["total"] > 0 and all(e["review_note"] for e in returned["items"])


def test_visit_histories_with_some_overdue(world):
    report = world.second
    assert report.records == 40 and report.visits > 40
    staff = SimpleNamespace(id=world.ids["sq"], scope_path=COMMUNITY)
    with scoped_connection(world.settings, staff) as conn:
        overdue = visits.overdue_visits(conn, on=TODAY)
        by_worker = visits.overdue_by_worker(conn, on=TODAY)
        latest = conn.execute(text(
            "SELECT DISTINCT ON (registry, record_id) registry, visited_on, next_due FROM assistance_visit"
            " ORDER BY registry, record_id, visited_on DESC")).mappings().all()
    assert 0 < len(overdue) == report.overdue < 40
    # The demo's next_due is the latest visit plus the category's interval; what is overdue agrees.
    for row in latest:
        interval = dt.timedelta(days=visits.DEFAULT_INTERVALS[row["registry"]])
        assert row["next_due"] - row["visited_on"] == interval
    late = sum(1 for row in latest if row["next_due"] < TODAY)
    never = 40 - len(latest)  # registered 300 days ago, never visited: overdue too
    assert len(overdue) == late + never
    assert by_worker == {world.ids["wg2"]: len(overdue)}
