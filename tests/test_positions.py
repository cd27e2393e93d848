"""``POST /api/v1/positions`` on a real PostGIS: batches, crs conversion, idempotent resends, day
partitions, the latest fix per worker, and who sees whose positions."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis import db
from gis.api import positions
from gis.security import users
from layers.events.position import from_wgs84_to_gcj02
from tests import access_helpers
from tests.access_helpers import PASSWORD, bearer
from tests.ui.support import GRIDS, insert_territory

G1 = "320106.320106001.320106001003.320106001003001"
G2 = "320106.320106001.320106001003.320106001003002"
G3 = "320106.320106002.320106002002.320106002002001"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def make_app(settings) -> FastAPI:
    return access_helpers.make_app(settings, positions.router)


@pytest.fixture(scope="module")
def world(fresh_db):
    # "Now" is when this module's data is made, not when the file was collected: a long suite would
    # otherwise age every fix past the patrol window before these tests run.
    global NOW
    NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
    insert_territory(fresh_db)
    with db.owner_engine(fresh_db).begin() as conn:
        ids = {name: users.upsert_user(conn, name, PASSWORD, role, scope, label)
               for name, role, scope, label in [("wg1", "grid_worker", G1, "网格员甲"),
                                                ("wg2", "grid_worker", G2, "网格员乙"),
                                                ("wg3", "grid_worker", G3, "网格员丙"),
                                                ("sq", "community_staff", G1.rsplit(".", 1)[0], "社区"),
                                                ("qu", "district_commander", "320106", "指挥长")]}
    client = TestClient(make_app(fresh_db))
    return dict(settings=fresh_db, client=client, ids=ids,
                headers={name: bearer(client, name) for name in ids})


def post(world, who: str, fixes: list[dict], crs: str = "wgs84", expect: int | None = None) -> dict:
    response = world["client"].post("/api/v1/positions", json={"crs": crs, "fixes": fixes},
                                    headers=world["headers"][who])
    if expect is not None:
        assert response.status_code == expect, response.text
    return response.json()


def fix(at: dt.datetime, lon: float, lat: float, **extra) -> dict:
    return {"time": at.isoformat(), "lon": lon, "lat": lat, **extra}


def stored(world, user: str) -> list[tuple]:
    with db.owner_engine(world["settings"]).connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT fixed_at, lon, lat, source_crs, grid_id, org_path::text FROM worker_position"
            " WHERE user_id = :u ORDER BY fixed_at"), {"u": world["ids"][user]})]


def test_a_batch_is_stored_once_and_resending_it_changes_nothing(world):
    batch = [fix(NOW - dt.timedelta(minutes=10 - i), 118.745 + i * 0.0005, 32.072, accuracy=8, speed=1.2)
             for i in range(5)]
    first = post(world, "wg1", batch, expect=201)
    assert first == {"accepted": 5, "duplicates": 0, "rejected": []}
    again = post(world, "wg1", batch, expect=200)
    assert again == {"accepted": 0, "duplicates": 5, "rejected": []}
    rows = stored(world, "wg1")
    assert len(rows) == 5
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)
    grid1_id = next_grid_id(world, GRIDS[0][0])
    assert {r[4] for r in rows} == {grid1_id}          # the grid each fix lies in
    assert {r[5] for r in rows} == {G1}                # the worker's own unit, for row-level security


def next_grid_id(world, code: str) -> int:
    with db.owner_engine(world["settings"]).connect() as conn:
        return conn.execute(text("SELECT id FROM territory_unit WHERE code = :c"), {"c": code}).scalar_one()


def test_gcj02_and_bd09_are_converted_to_cgcs2000(world):
    true_lon, true_lat = 118.750, 32.080
    gcj = from_wgs84_to_gcj02(true_lon, true_lat)
    # The same place, twice, as Amap and as Baidu would report it.
    x, y = gcj
    z = math.sqrt(x * x + y * y) + 0.00002 * math.sin(y * math.pi * 3000.0 / 180.0)
    theta = math.atan2(y, x) + 0.000003 * math.cos(x * math.pi * 3000.0 / 180.0)
    bd = (z * math.cos(theta) + 0.0065, z * math.sin(theta) + 0.006)  # the forward GCJ-02 → BD-09
    t0 = NOW - dt.timedelta(minutes=30)
    post(world, "wg2", [fix(t0, *gcj)], crs="gcj02", expect=201)
    post(world, "wg2", [fix(t0 + dt.timedelta(seconds=10), bd[0], bd[1], crs="bd09")], expect=201)
    rows = stored(world, "wg2")
    assert [r[3] for r in rows] == ["gcj02", "bd09"]
    for _, lon, lat, *_ in rows:
        assert abs(lon - true_lon) < 1e-5 and abs(lat - true_lat) < 1e-5   # about a metre
    assert abs(gcj[0] - true_lon) > 1e-3                                   # the offset was real


def test_bad_fixes_are_listed_and_the_rest_stored(world):
    good = fix(NOW - dt.timedelta(minutes=40), 118.757, 32.08)
    future = fix(NOW + dt.timedelta(hours=1), 118.757, 32.08)
    stale = fix(NOW - dt.timedelta(days=30), 118.757, 32.08)
    abroad = fix(NOW - dt.timedelta(minutes=39), 2.35, 48.85)
    body = post(world, "wg3", [good, future, stale, abroad], expect=201)
    assert body["accepted"] == 1
    assert [r["index"] for r in body["rejected"]] == [1, 2, 3]
    assert "未来" in body["rejected"][0]["reason"] or "晚于" in body["rejected"][0]["reason"]
    assert "7 天" in body["rejected"][1]["reason"]
    assert "中国" in body["rejected"][2]["reason"]
    # nothing valid at all: stored nothing, still 200 with the reasons
    assert post(world, "wg3", [future], expect=200)["accepted"] == 0
    # a time without a zone is refused, and so is an unknown crs and an empty batch
    assert post(world, "wg3", [fix(NOW.replace(tzinfo=None), 118.757, 32.08)], expect=200)["rejected"]
    post(world, "wg3", [good], crs="epsg3857", expect=422)
    post(world, "wg3", [], expect=422)


def test_fixes_land_in_day_partitions(world):
    yesterday = NOW - dt.timedelta(days=1)
    post(world, "wg1", [fix(yesterday, 118.746, 32.071), fix(NOW - dt.timedelta(seconds=5), 118.746, 32.071)],
         expect=201)
    with db.owner_engine(world["settings"]).connect() as conn:
        parts = conn.execute(text(
            "SELECT tableoid::regclass::text, count(*) FROM worker_position WHERE user_id = :u GROUP BY 1"),
            {"u": world["ids"]["wg1"]}).all()
        names = {name for name, _ in parts}
        assert len(names) >= 2 and all(n.startswith("worker_position_p") for n in names)
        # the app role cannot reach a partition past the parent's row-level security
        granted = conn.execute(text(
            "SELECT has_table_privilege(:role, (SELECT min(inhrelid)::regclass FROM pg_inherits"
            " WHERE inhparent = 'worker_position'::regclass), 'SELECT')"),
            {"role": world["settings"].app_role}).scalar()
        assert granted is False


def test_latest_fix_per_worker_moves_forward_only(world):
    latest = world["client"].get("/api/v1/positions/latest", headers=world["headers"]["qu"]).json()
    by_name = {p["worker_name"]: p for p in latest}
    assert set(by_name) == {"网格员甲", "网格员乙", "网格员丙"}
    wg1 = by_name["网格员甲"]
    assert wg1["age_seconds"] < (dt.datetime.now(dt.UTC) - NOW).total_seconds() + 120 and wg1["on_patrol"]
    # a late, older fix (an offline queue) does not move the worker back
    post(world, "wg1", [fix(NOW - dt.timedelta(hours=2), 118.741, 32.071)], expect=201)
    after = {p["worker_name"]: p for p in world["client"].get(
        "/api/v1/positions/latest", headers=world["headers"]["qu"]).json()}
    assert after["网格员甲"]["fixed_at"] == wg1["fixed_at"]


def test_each_sees_the_workers_of_their_territory_only(world):
    def names(who):
        return {p["worker_name"] for p in world["client"].get(
            "/api/v1/positions/latest", headers=world["headers"][who]).json()}

    assert names("sq") == {"网格员甲", "网格员乙"}      # community 仙霞路: grids 1 and 2
    assert names("wg3") == {"网格员丙"}
    response = world["client"].get(f"/api/v1/tracks/{world['ids']['wg1']}/{NOW.date()}",
                                   headers=world["headers"]["wg3"])
    assert response.status_code == 200 and response.json()["points"] == []   # not theirs to see
    anonymous = TestClient(make_app(world["settings"])).post(
        "/api/v1/positions", json={"fixes": [fix(NOW, 118.75, 32.08)]})
    assert anonymous.status_code == 401


def test_wall_api_summary_heat_map_and_hot_spots(world):
    from gis.api import wall as wall_api

    app = make_app(world["settings"])
    app.include_router(wall_api.router(world["settings"]), prefix="/api/v1")
    client = TestClient(app)
    headers = world["headers"]["qu"]
    summary = client.get("/api/v1/wall/summary", headers=headers)
    assert summary.status_code == 200
    assert summary.json()["kpis"]["on_patrol"] == 1   # only 网格员甲 sent a fix in the last 15 minutes
    png = client.get("/api/v1/wall/heatmap.png?period=7d&width=64", headers=headers)
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.headers["X-Events"] == "0"
    assert client.get("/api/v1/wall/heatmap.png?period=custom", headers=headers).status_code == 422
    assert client.get("/api/v1/wall/hotspots", headers=headers).json() == []
    assert client.get("/api/v1/wall/summary").status_code == 401
