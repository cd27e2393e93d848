"""帮扶走访 through the API on a real PostGIS: what is due and overdue (dates against hand-computed ones),
the order by due date then distance, a visit recorded from the phone moving the next due date by the
category's interval (and becoming the 帮扶记录, with its position and photo), an idempotent resend, and a
grid worker without ``special:drug_user`` never seeing nor visiting a drug user."""

from __future__ import annotations

import datetime as dt
import uuid
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis import db
from gis.api import visits as visits_api
from gis.security.scope import scoped_connection
from layers.events.calendar import beijing_today
from layers import visits
from layers.events.calendar import BEIJING
from tests.access_helpers import add_user, bearer, make_app
from tests.ui.support import insert_territory

G1 = "320106.320106001.320106001003.320106001003001"
COMMUNITY = "320106.320106001.320106001003"
PHOTO = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
INTERVAL = visits.DEFAULT_INTERVALS["community_correction"]
TODAY = beijing_today()
# What a visit recorded now is dated (see layers.visits.record_visit: never after the server's own date).
VISIT_DAY = TODAY


def _person(conn, name: str, lon: float, lat: float) -> int:
    """A resident of a building of their own at (lon, lat) in grid 1."""
    building = conn.execute(text(
        "INSERT INTO building (grid_id, name, floors, footprint)"
        " SELECT id, :name, 6, ST_MakeEnvelope(:x - 0.0001, :y - 0.0001, :x + 0.0001, :y + 0.0001, 4490)"
        " FROM territory_unit WHERE path = CAST(:g AS ltree) RETURNING id"),
        {"name": f"{name}家", "x": lon, "y": lat, "g": G1}).scalar_one()
    house = conn.execute(text("INSERT INTO house (building_id, floor, room_no) VALUES (:b, 1, '101')"
                              " RETURNING id"), {"b": building}).scalar_one()
    person = conn.execute(text(
        "INSERT INTO person (name, sex, birth_date, org_path, district_code)"
        " SELECT :n, '1', DATE '1985-05-05', org_path, district_code FROM house WHERE id = :h RETURNING id"),
        {"n": name, "h": house}).scalar_one()
    conn.execute(text("INSERT INTO residence (person_id, house_id, relation) VALUES (:p, :h, '01')"),
                 {"p": person, "h": house})
    return person


def _record(conn, registry: str, person: int, registered_days_ago: int) -> int:
    at = dt.datetime.combine(TODAY - dt.timedelta(days=registered_days_ago), dt.time(12), BEIJING)
    return conn.execute(text(
        f"INSERT INTO {registry} (person_id, org_path, district_code, created_at)"
        " SELECT id, org_path, district_code, :at FROM person WHERE id = :p RETURNING id"),
        {"p": person, "at": at}).scalar_one()


def _visit(conn, registry: str, record: int, days_ago: int) -> None:
    conn.execute(text(
        "INSERT INTO assistance_visit (registry, record_id, person_id, visited_on, visitor, content,"
        " org_path, district_code)"
        " SELECT :r, t.id, t.person_id, :on, '前任网格员', '谈话', t.org_path, t.district_code"
        f" FROM {registry} t WHERE t.id = :id"),
        {"r": registry, "id": record, "on": TODAY - dt.timedelta(days=days_ago)})


@pytest.fixture(scope="module")
def world(fresh_db):
    insert_territory(fresh_db)
    with db.owner_engine(fresh_db).begin() as conn:
        # never visited, registered 40 days ago: due 10 days ago
        a = _record(conn, "community_correction", _person(conn, "甲", 118.742, 32.071), 40)
        # visited 25 days ago: due in 5 days
        b = _record(conn, "community_correction", _person(conn, "乙", 118.743, 32.071), 200)
        _visit(conn, "community_correction", b, 60)
        _visit(conn, "community_correction", b, 25)
        # both visited 20 days ago (due in 10 days), C far from the worker, D next to them
        c = _record(conn, "community_correction", _person(conn, "丙", 118.741, 32.0705), 200)
        d = _record(conn, "community_correction", _person(conn, "丁", 118.748, 32.073), 200)
        for record in (c, d):
            _visit(conn, "community_correction", record, 20)
        # a drug user, overdue: not for a grid worker's eyes
        e = _record(conn, "drug_user", _person(conn, "戊", 118.7481, 32.0731), 100)
        ids = {"wg_visit": add_user(conn, "wg_visit", "grid_worker", G1),
               "sq_visit": add_user(conn, "sq_visit", "community_staff", COMMUNITY)}
    client = TestClient(make_app(fresh_db, visits_api.router))
    headers = {name: bearer(client, name) for name in ids}
    return SimpleNamespace(settings=fresh_db, client=client, headers=headers, ids=ids,
                           records={"a": a, "b": b, "c": c, "d": d, "e": e})


def _due(world, who: str = "wg_visit", **params):
    response = world.client.get("/api/v1/visits/due", headers=world.headers[who], params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_due_and_overdue_in_order_of_date_then_distance(world):
    # The worker stands at D's door (WGS84 ≈ CGCS2000).
    found = _due(world, lon=118.748, lat=32.073, crs="wgs84", within_days=14)
    keys = [(i["registry"], i["record_id"]) for i in found["items"]]
    r = world.records
    assert keys == [("community_correction", r["a"]), ("community_correction", r["b"]),
                    ("community_correction", r["d"]), ("community_correction", r["c"])]
    a, b, d, c = found["items"]
    assert found["overdue"] == 1
    assert a["name"] == "甲" and a["due_on"] == (TODAY - dt.timedelta(days=40 - INTERVAL)).isoformat()
    assert a["overdue_days"] == 40 - INTERVAL > 0 and a["last_visited_on"] is None
    assert b["due_on"] == (TODAY + dt.timedelta(days=INTERVAL - 25)).isoformat()
    assert b["overdue_days"] == 25 - INTERVAL < 0
    assert c["due_on"] == d["due_on"] and d["distance_m"] < 30 < c["distance_m"]
    assert a["registry_zh"] == "社区矫正人员" and a["address"]
    # Without a position: no distances, still ordered by due date. A short horizon keeps the overdue one.
    near = _due(world, within_days=0)
    assert [i["record_id"] for i in near["items"]] == [r["a"]] and near["items"][0]["distance_m"] is None


def test_a_visit_moves_the_next_due_date_by_the_interval(world):
    r = world.records
    client_id = str(uuid.uuid4())
    form = {"registry": "community_correction", "record_id": str(r["a"]), "content": "入户谈话，了解就业情况",
            "lon": "118.742", "lat": "32.071", "crs": "wgs84", "client_id": client_id}
    posted = world.client.post("/api/v1/visits", headers=world.headers["wg_visit"], data=form,
                               files=[("photos", ("谈话.png", PHOTO, "image/png"))])
    assert posted.status_code == 201, posted.text
    body = posted.json()
    assert body["next_due"] == (VISIT_DAY + dt.timedelta(days=INTERVAL)).isoformat()
    # The resend from the offline queue: the same visit, nothing new.
    again = world.client.post("/api/v1/visits", headers=world.headers["wg_visit"], data=form,
                              files=[("photos", ("谈话.png", PHOTO, "image/png"))])
    assert again.status_code == 200 and again.json() == body

    found = _due(world, within_days=INTERVAL)
    item = next(i for i in found["items"] if i["record_id"] == r["a"])
    assert item["due_on"] == body["next_due"] and item["overdue_days"] == (TODAY - VISIT_DAY).days - INTERVAL
    assert item["last_visited_on"] == VISIT_DAY.isoformat() and found["overdue"] == 0
    assert r["a"] not in [i["record_id"] for i in _due(world, within_days=14)["items"]]

    # It is the record's 帮扶记录: visitor, position, photo; listed by the registry service too.
    with db.owner_engine(world.settings).connect() as conn:
        row = conn.execute(text(
            "SELECT visitor, visitor_id, ST_X(geom) AS lon, ST_Y(geom) AS lat, client_id"
            " FROM assistance_visit WHERE id = :i"), {"i": body["id"]}).mappings().one()
        count = conn.execute(text("SELECT count(*) FROM assistance_visit WHERE client_id = :c"),
                             {"c": client_id}).scalar_one()
        photo_id = conn.execute(text("SELECT id FROM field_photo WHERE owner_table = 'assistance_visit'"
                                     " AND owner_id = :i"), {"i": body["id"]}).scalar_one()
    assert count == 1 and row["visitor"] == "wg_visit" and row["visitor_id"] == world.ids["wg_visit"]
    assert abs(row["lon"] - 118.742) < 1e-9 and abs(row["lat"] - 32.071) < 1e-9
    got = world.client.get(f"/api/v1/visits/{body['id']}/photos/{photo_id}",
                           headers=world.headers["wg_visit"])
    assert got.status_code == 200 and got.content == PHOTO


def test_the_interval_comes_from_the_settings(world):
    worker = SimpleNamespace(id=world.ids["wg_visit"], scope_path=G1, name="wg_visit",
                             has=lambda p: p in {"registry:community_correction:write",
                                                 "registry:community_correction:read",
                                                 "special:community_correction"})
    with scoped_connection(world.settings, worker) as conn:
        saved, created = visits.record_visit(
            conn, worker, visits.VisitInput("community_correction", world.records["c"], "电话回访"),
            intervals={"community_correction": 7})
        due = visits.visits_due(conn, worker, within_days=7, intervals={"community_correction": 7})
    assert created and saved["next_due"] == VISIT_DAY + dt.timedelta(days=7)
    assert any(i["record_id"] == world.records["c"] and i["overdue_days"] == (TODAY - VISIT_DAY).days - 7
               for i in due["items"])


def test_drug_users_are_not_for_a_grid_worker(world):
    e = world.records["e"]
    refused = world.client.post("/api/v1/visits", headers=world.headers["wg_visit"], data={
        "registry": "drug_user", "record_id": str(e), "content": "走访"})
    assert refused.status_code == 403, refused.text
    assert "special:drug_user" in refused.json()["detail"]
    seen = _due(world, lon=118.7481, lat=32.0731, within_days=366)
    assert all(i["registry"] != "drug_user" for i in seen["items"])
    assert e not in {i["record_id"] for i in seen["items"] if i["registry"] == "drug_user"}
    # The community (special:*) sees the same drug user, overdue since 70 days.
    staff = _due(world, "sq_visit", within_days=0)
    drug = [i for i in staff["items"] if i["registry"] == "drug_user"]
    assert [i["record_id"] for i in drug] == [e]
    assert drug[0]["overdue_days"] == 100 - visits.DEFAULT_INTERVALS["drug_user"]
    with db.owner_engine(world.settings).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM assistance_visit WHERE registry = 'drug_user'")
                            ).scalar_one() == 0


def test_overdue_for_the_wall_and_the_assessment(world):
    staff = SimpleNamespace(id=world.ids["sq_visit"], scope_path=COMMUNITY)
    with scoped_connection(world.settings, staff) as conn:
        wall = visits.overdue_visits(conn)
        by_worker = visits.overdue_by_worker(conn)
    # After the visit of A, only the drug user is overdue; the grid's worker answers for it.
    assert [(i["registry"], i["record_id"]) for i in wall] == [("drug_user", world.records["e"])]
    assert wall[0]["overdue_days"] == 100 - visits.DEFAULT_INTERVALS["drug_user"]
    assert by_worker == {world.ids["wg_visit"]: 1}


def test_bad_input_is_a_4xx(world):
    h = world.headers["wg_visit"]
    assert world.client.post("/api/v1/visits", headers=h, data={
        "registry": "person", "record_id": "1", "content": "x"}).status_code == 422
    missing = world.client.post("/api/v1/visits", headers=h, data={
        "registry": "community_correction", "record_id": "999999", "content": "x"})
    assert missing.status_code == 404 and "未找到" in missing.json()["detail"]
    future = world.client.post("/api/v1/visits", headers=h, data={
        "registry": "community_correction", "record_id": str(world.records["b"]), "content": "x",
        "visited_on": (TODAY + dt.timedelta(days=2)).isoformat()})
    assert future.status_code == 422, future.text
    outside = world.client.get("/api/v1/visits/due", headers=h, params={"lon": 0, "lat": 0})
    assert outside.status_code == 422 and "中国境内" in outside.json()["detail"]


def test_a_drug_user_visit_photo_stays_with_those_who_may_see_drug_users(world):
    posted = world.client.post("/api/v1/visits", headers=world.headers["sq_visit"], data={
        "registry": "drug_user", "record_id": str(world.records["e"]), "content": "尿检并谈话"},
        files=[("photos[]", ("尿检.png", PHOTO, "image/png"))])
    assert posted.status_code == 201, posted.text
    with db.owner_engine(world.settings).connect() as conn:
        photo_id = conn.execute(text("SELECT id FROM field_photo WHERE owner_table = 'assistance_visit'"
                                     " AND owner_id = :i"), {"i": posted.json()["id"]}).scalar_one()
    url = f"/api/v1/visits/{posted.json()['id']}/photos/{photo_id}"
    assert world.client.get(url, headers=world.headers["sq_visit"]).content == PHOTO
    refused = world.client.get(url, headers=world.headers["wg_visit"])
    assert refused.status_code == 403 and "special:drug_user" in refused.json()["detail"]
    # ... and the drug user is no longer overdue for the community: the visit counts.
    assert world.records["e"] not in [i["record_id"] for i in _due(world, "sq_visit", within_days=0)["items"]]
