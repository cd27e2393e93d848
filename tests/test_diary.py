"""民情日记 through the API on a real PostGIS: a worker writes the day's entry (visited persons and houses
linked by id, a photo, a GCJ-02 position), the community returns it with a note, the worker sees the note,
edits and resubmits it, a stale edit is refused, the community approves, the street comments; a resend
with the same client_id stores nothing twice; a worker of another community sees none of it; the photo
comes back byte for byte; the per-worker counts and track playback read the same rows."""

from __future__ import annotations

import datetime as dt
import uuid
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis import db
from gis.api import diary as diary_api
from gis.crs import from_wgs84_to_gcj02
from gis.security.scope import scoped_connection
from layers.events.calendar import beijing_today
from layers import diary, patrol
from tests.access_helpers import Unit, add_building, add_house, add_person, add_user, bearer, make_app
from tests.ui.support import insert_territory

G1 = "320106.320106001.320106001003.320106001003001"
COMMUNITY = "320106.320106001.320106001003"
STREET = "320106.320106001"
OTHER_GRID = "320106.320106002.320106002002.320106002002001"
PHOTO = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40 + b"\xff\xd9"  # a JPEG's framing around some bytes


@pytest.fixture(scope="module")
def world(fresh_db):
    insert_territory(fresh_db)
    with db.owner_engine(fresh_db).begin() as conn:
        g1 = Unit(*conn.execute(text(
            "SELECT id, path::text FROM territory_unit WHERE path = CAST(:p AS ltree)"), {"p": G1}).one())
        house = add_house(conn, add_building(conn, g1))
        person = add_person(conn, house, "赵六")
        ids = {name: add_user(conn, name, role, scope) for name, role, scope in (
            ("wg_diary", "grid_worker", G1), ("wg_other", "grid_worker", OTHER_GRID),
            ("sq_diary", "community_staff", COMMUNITY), ("jd_diary", "street_staff", STREET))}
    client = TestClient(make_app(fresh_db, diary_api.router))
    headers = {name: bearer(client, name) for name in ids}
    return SimpleNamespace(settings=fresh_db, client=client, headers=headers, ids=ids, house=house,
                           person=person, grid_id=g1.id)


def _write(world, day: dt.date, content: str, client_id: str | None = None, **extra):
    data = {"diary_date": day.isoformat(), "content": content, "crs": "gcj02",
            **({"client_id": client_id} if client_id else {}), **extra}
    return world.client.post("/api/v1/diary", data=data, headers=world.headers["wg_diary"],
                             files=[("photos", ("门口.jpg", PHOTO, "image/jpeg"))])


def test_write_return_resubmit_approve_and_comment(world):
    today = beijing_today()
    lon, lat = from_wgs84_to_gcj02(118.745, 32.072)
    created = _write(world, today, "走访独居老人赵六，检查燃气安全", str(uuid.uuid4()),
                     visited_person_ids=str(world.person), visited_house_ids=f"{world.house}",
                     lon=str(lon), lat=str(lat))
    assert created.status_code == 201, created.text
    saved = created.json()
    assert set(saved) == {"id", "version"} and saved["version"] == 1

    mine = world.client.get("/api/v1/diary", params={"worker": "me"}, headers=world.headers["wg_diary"])
    assert mine.status_code == 200, mine.text
    entry = next(e for e in mine.json()["items"] if e["id"] == saved["id"])
    assert entry["state"] == "submitted" and entry["worker_id"] == world.ids["wg_diary"]
    assert entry["visited_persons"] == [{"id": world.person, "name": "赵六"}]
    assert [h["id"] for h in entry["visited_houses"]] == [world.house]
    assert entry["grid_id"] == world.grid_id
    # GCJ-02 in, CGCS2000 (≈ WGS84) stored: within a metre of where the phone was.
    assert abs(entry["lon"] - 118.745) < 1e-5 and abs(entry["lat"] - 32.072) < 1e-5
    with db.owner_engine(world.settings).connect() as conn:
        row = conn.execute(text("SELECT visited, approval FROM diary WHERE id = :i"),
                           {"i": saved["id"]}).one()
    assert "赵六" in row.visited and row.approval == "0"  # the registry's summary and code, kept in step

    # The worker cannot review their own entry; the community returns it with a note.
    own = world.client.post(f"/api/v1/diary/{saved['id']}/review", headers=world.headers["wg_diary"],
                            json={"decision": "approve", "version": 1})
    assert own.status_code == 403, own.text
    no_note = world.client.post(f"/api/v1/diary/{saved['id']}/review", headers=world.headers["sq_diary"],
                                json={"decision": "return", "version": 1})
    assert no_note.status_code == 422, no_note.text
    note = "请写明燃气隐患的处理情况"
    returned = world.client.post(f"/api/v1/diary/{saved['id']}/review", headers=world.headers["sq_diary"],
                                 json={"decision": "return", "note": note, "version": 1})
    assert returned.status_code == 200, returned.text
    assert returned.json()["version"] == 2

    seen = world.client.get(f"/api/v1/diary/{saved['id']}", headers=world.headers["wg_diary"]).json()
    assert seen["state"] == "returned" and seen["review_note"] == "请写明燃气隐患的处理情况"
    listed = world.client.get("/api/v1/diary", params={"worker": "me", "state": "returned"},
                              headers=world.headers["wg_diary"]).json()
    assert [e["id"] for e in listed["items"]] == [saved["id"]]

    # A stale edit (the version before the return) is refused; the current one resubmits.
    stale = world.client.put(f"/api/v1/diary/{saved['id']}", headers=world.headers["wg_diary"],
                             json={"version": 1, "content": "旧版本上的修改"})
    assert stale.status_code == 409, stale.text
    assert "刷新" in stale.json()["detail"]
    edited = world.client.put(f"/api/v1/diary/{saved['id']}", headers=world.headers["wg_diary"],
                              json={"version": 2, "content": "走访赵六，燃气软管老化，已督促更换",
                                    "visited_house_ids": []})
    assert edited.status_code == 200, edited.text
    assert edited.json()["version"] == 3
    again = world.client.get(f"/api/v1/diary/{saved['id']}", headers=world.headers["sq_diary"]).json()
    assert again["state"] == "submitted" and again["content"].startswith("走访赵六，燃气软管老化")
    assert again["visited_houses"] == [] and [p["id"] for p in again["visited_persons"]] == [world.person]

    # Someone else's edit is refused; the community approves; an approved entry can no longer change.
    assert world.client.put(f"/api/v1/diary/{saved['id']}", headers=world.headers["sq_diary"],
                            json={"version": 3, "content": "x"}).status_code == 403
    approved = world.client.post(f"/api/v1/diary/{saved['id']}/review", headers=world.headers["sq_diary"],
                                 json={"decision": "approve", "version": 3})
    assert approved.status_code == 200, approved.text
    assert world.client.post(f"/api/v1/diary/{saved['id']}/review", headers=world.headers["sq_diary"],
                             json={"decision": "return", "note": "再退", "version": 4}).status_code == 409
    assert world.client.put(f"/api/v1/diary/{saved['id']}", headers=world.headers["wg_diary"],
                            json={"version": 4, "content": "改"}).status_code == 409

    # 点评: the street comments twice; the community (no diary:comment) may not; the worker sees both.
    for words in ("工作细致，值得推广", "注意入户安全"):
        posted = world.client.post(f"/api/v1/diary/{saved['id']}/comments", headers=world.headers["jd_diary"],
                                   json={"text": words})
        assert posted.status_code == 201, posted.text
        assert posted.json()["by"] == "jd_diary"
    assert world.client.post(f"/api/v1/diary/{saved['id']}/comments", headers=world.headers["sq_diary"],
                             json={"text": "x"}).status_code == 403
    final = world.client.get(f"/api/v1/diary/{saved['id']}", headers=world.headers["wg_diary"]).json()
    assert [c["text"] for c in final["comments"]] == ["工作细致，值得推广", "注意入户安全"]
    assert all(c["by"] == "jd_diary" and c["at"] for c in final["comments"])
    assert final["state"] == "approved" and final["version"] == 4  # comments leave the version alone


def test_client_id_makes_a_resend_idempotent(world):
    day = beijing_today() - dt.timedelta(days=1)
    client_id = str(uuid.uuid4())
    first = _write(world, day, "离线时写的日记", client_id)
    second = _write(world, day, "离线时写的日记", client_id)
    assert first.status_code == 201 and second.status_code == 200, (first.text, second.text)
    assert first.json() == second.json()
    with db.owner_engine(world.settings).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM diary WHERE client_id = :c"),
                            {"c": client_id}).scalar_one() == 1
        assert conn.execute(text("SELECT count(*) FROM field_photo WHERE owner_table = 'diary'"
                                 " AND owner_id = :i"), {"i": first.json()["id"]}).scalar_one() == 1


def test_an_outsider_sees_nothing(world):
    mine = _write(world, beijing_today(), "外人不可见的日记").json()
    other = world.headers["wg_other"]
    assert world.client.get("/api/v1/diary", headers=other).json() == {
        "total": 0, "page": 1, "size": 20, "items": []}
    assert world.client.get(f"/api/v1/diary/{mine['id']}", headers=other).status_code == 404
    entry = world.client.get(f"/api/v1/diary/{mine['id']}", headers=world.headers["wg_diary"]).json()
    photo_url = entry["photos"][0]["url"]
    assert world.client.get(photo_url, headers=other).status_code == 404
    assert world.client.put(f"/api/v1/diary/{mine['id']}", headers=other,
                            json={"version": 1, "content": "x"}).status_code == 404
    assert world.client.post(f"/api/v1/diary/{mine['id']}/comments", headers=world.headers["wg_other"],
                             json={"text": "x"}).status_code == 403  # no diary:comment at all
    # ... and a person of another grid cannot be linked: not found in the worker's scope.
    with db.owner_engine(world.settings).connect() as conn:
        stranger = conn.execute(text("SELECT id FROM person WHERE name = '张三'")).scalar_one()
    refused = _write(world, beijing_today(), "走访", visited_person_ids=str(stranger))
    assert refused.status_code == 422 and str(stranger) in refused.json()["detail"]


def test_photo_round_trip_and_bad_input(world):
    saved = _write(world, beijing_today(), "带照片的日记").json()
    entry = world.client.get(f"/api/v1/diary/{saved['id']}", headers=world.headers["sq_diary"]).json()
    [photo] = entry["photos"]
    assert photo["url"] == f"/api/v1/diary/{saved['id']}/photos/{photo['id']}"
    got = world.client.get(photo["url"], headers=world.headers["sq_diary"])
    assert got.status_code == 200 and got.content == PHOTO
    assert got.headers["content-type"] == "image/jpeg"
    # Not a photo, a date in the future, no content: 422 with a Chinese message.
    pdf = world.client.post("/api/v1/diary", headers=world.headers["wg_diary"],
                            data={"diary_date": beijing_today().isoformat(), "content": "x"},
                            files=[("photos[]", ("a.pdf", b"%PDF-1.4", "application/pdf"))])
    assert pdf.status_code == 422 and "不是照片" in pdf.json()["detail"]
    future = world.client.post("/api/v1/diary", headers=world.headers["wg_diary"], data={
        "diary_date": (beijing_today() + dt.timedelta(days=1)).isoformat(), "content": "明天的日记"})
    assert future.status_code == 422 and "晚于今天" in future.json()["detail"]
    # The community may not write diaries (diary:write is the grid worker's).
    assert world.client.post("/api/v1/diary", headers=world.headers["sq_diary"], data={
        "diary_date": beijing_today().isoformat(), "content": "x"}).status_code == 403


def test_counts_and_playback_read_the_same_entries(world):
    worker = SimpleNamespace(id=world.ids["wg_diary"], scope_path=G1)
    street = SimpleNamespace(id=world.ids["jd_diary"], scope_path=STREET)
    today = beijing_today()
    with scoped_connection(world.settings, street) as conn:
        counts = diary.diary_counts(conn, today - dt.timedelta(days=7), today)
        entries = conn.execute(text(
            "SELECT count(DISTINCT diary_date) FROM diary WHERE worker_id = :u AND state <> 'returned'"
            " AND deleted_at IS NULL AND diary_date >= :d"),
            {"u": worker.id, "d": today - dt.timedelta(days=7)}).scalar_one()
        day = patrol.playback(conn, worker.id, today)
    assert counts[worker.id] == entries == 2  # today and yesterday, however many entries each
    assert world.ids["wg_other"] not in counts
    assert {d["id"] for d in day["diary"]} >= {r for r in _ids_on(world, today)}


def _ids_on(world, day: dt.date) -> list[int]:
    with db.owner_engine(world.settings).connect() as conn:
        return list(conn.execute(text("SELECT id FROM diary WHERE worker_id = :u AND diary_date = :d"),
                                 {"u": world.ids["wg_diary"], "d": day}).scalars())


def test_rls_fails_closed_without_a_scope(world):
    """The new tables raise under an unset scope, like every protected table."""
    from sqlalchemy.exc import DBAPIError

    for table in ("diary_person", "diary_house", "diary_comment", "field_photo", "field_photo_data"):
        with db.app_engine(world.settings).connect() as conn, pytest.raises(DBAPIError) as raised:
            conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()
        assert "未设置访问范围" in str(raised.value) or "permission denied" in str(raised.value)
