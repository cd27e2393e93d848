"""OGC API Features and vector tiles: GDAL's OAPIF driver (through pyogrio, with the user's token as
GDAL_HTTP_BEARER) reads exactly the people in the user's scope, masked; paging, bbox and tiles."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyogrio
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis import db
from gis.api import ogc
from gis.security.scope import scoped_connection
from layers.catalogue import LAYERS
from tests import access_helpers
from tests.access_helpers import (
    Unit, add_building, add_district, add_house, add_person, add_unit, add_user, bearer, wipe,
)
from tests.conftest import create_database, drop_database


ROOT = Path(__file__).resolve().parents[1]


def make_app(settings) -> FastAPI:
    return access_helpers.make_app(settings, ogc.router)


@pytest.fixture(scope="module")
def world(fresh_db):
    wipe(fresh_db)
    with db.owner_engine(fresh_db).begin() as conn:
        district = add_district(conn)
        street = add_unit(conn, "street", "320106001", "宁海路街道", district)
        community = add_unit(conn, "community", "320106001001", "山西路社区", street)
        g1 = add_unit(conn, "grid", "320106001001001", "第一网格", community)
        g2 = add_unit(conn, "grid", "320106001001002", "第二网格", community)
        mine = [add_person(conn, add_house(conn, add_building(conn, g1)), f"甲{i}") for i in range(5)]
        theirs = [add_person(conn, add_house(conn, add_building(conn, g2)), f"乙{i}") for i in range(3)]
        add_user(conn, "wg1", "grid_worker", g1)
        add_user(conn, "sq", "community_staff", community)
    return {"mine": mine, "theirs": theirs}


@pytest.fixture(scope="module")
def client(fresh_db, world):
    return TestClient(make_app(fresh_db))


def test_items_are_scoped_masked_and_paged(client, world):
    headers = bearer(client, "wg1")
    assert TestClient(client.app).get("/api/v1/ogc/collections/person/items").status_code == 401
    landing = client.get("/api/v1/ogc", headers=headers).json()
    assert {link["rel"] for link in landing["links"]} >= {"conformance", "data"}
    ids = {c["id"] for c in client.get("/api/v1/ogc/collections", headers=headers).json()["collections"]}
    assert {"person", "building", "grid"} <= ids

    page = client.get("/api/v1/ogc/collections/person/items?limit=3", headers=headers).json()
    assert page["numberMatched"] == 5 and page["numberReturned"] == 3
    assert any(link["rel"] == "next" for link in page["links"])
    rest = client.get("/api/v1/ogc/collections/person/items?limit=3&offset=3", headers=headers).json()
    got = {f["id"] for f in page["features"] + rest["features"]}
    assert got == set(world["mine"])
    person = page["features"][0]["properties"]
    assert "*" in person["id_number"] and "*" in person["phone"]
    assert page["features"][0]["geometry"]["type"] == "Point"

    # bbox: the first buildings sit at 118.77 + n * 0.001; a box around nothing returns nothing.
    empty = client.get("/api/v1/ogc/collections/person/items?bbox=100,30,100.1,30.1", headers=headers).json()
    assert empty["numberMatched"] == 0
    one = client.get(f"/api/v1/ogc/collections/person/items?name={person['name']}", headers=headers).json()
    assert [f["properties"]["name"] for f in one["features"]] == [person["name"]]
    theirs = world["theirs"][0]
    assert client.get(f"/api/v1/ogc/collections/person/items/{theirs}", headers=headers).status_code == 404


def test_vector_tiles_hold_only_the_scope(client, world):
    headers = bearer(client, "wg1")
    tilejson = client.get("/api/v1/ogc/collections/building/tiles.json", headers=headers).json()
    assert tilejson["tiles"][0].endswith("/tiles/{z}/{x}/{y}.mvt")
    # the z12 tile holding every building (118.77 + n * 0.001, 32.06)
    z = 12
    import math

    x = int((118.775 + 180) / 360 * 2 ** z)
    y = int((1 - math.asinh(math.tan(math.radians(32.06))) / math.pi) / 2 * 2 ** z)
    mine = client.get(f"/api/v1/ogc/collections/building/tiles/{z}/{x}/{y}.mvt", headers=headers)
    assert mine.status_code == 200 and mine.headers["content-type"] == ogc.MVT
    wide = client.get(f"/api/v1/ogc/collections/building/tiles/{z}/{x}/{y}.mvt", headers=bearer(client, "sq"))
    assert 0 < len(mine.content) < len(wide.content)
    person_tile = client.get(f"/api/v1/ogc/collections/person/tiles/{z}/{x}/{y}.mvt", headers=headers)
    assert person_tile.status_code == 200 and b"id_number" not in person_tile.content


@pytest.fixture(scope="module")
def dated(fresh_db, world):
    """Person i of either grid last changed on 2024-10-0(i+1) at 08:00 China time (00:00 UTC)."""
    with db.owner_engine(fresh_db).begin() as conn:
        for group in ("mine", "theirs"):
            for i, person in enumerate(world[group]):
                conn.execute(text("UPDATE person SET updated_at = TIMESTAMPTZ '2024-10-01 00:00:00+00' "
                                  "+ make_interval(days => :i) WHERE id = :id"), {"i": i, "id": person})
    return world


def _ids(client, headers, query: str) -> set[int]:
    response = client.get(f"/api/v1/ogc/collections/person/items?limit=1000&{query}", headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["numberMatched"] == len(body["features"])
    return {f["id"] for f in body["features"]}


def _sql_ids(settings, where: str, params: dict | None = None, grid: str = "320106001001001") -> set[int]:
    """What SQL says: people living in ``grid`` (the user's scope) whose row meets ``where``."""
    with db.owner_engine(settings).connect() as conn:
        return set(conn.execute(text(
            "SELECT p.id FROM person p JOIN residence r ON r.person_id = p.id AND r.until IS NULL "
            "JOIN house h ON h.id = r.house_id JOIN building b ON b.id = h.building_id "
            f"WHERE p.org_path <@ (SELECT path FROM territory_unit WHERE code = :grid) AND {where}"),
            {"grid": grid, **(params or {})}).scalars())


@pytest.mark.parametrize(("datetime", "where"), [
    # An instant: the rows changed exactly then.
    ("2024-10-02T00:00:00Z", "p.updated_at = TIMESTAMPTZ '2024-10-02 00:00:00+00'"),
    ("2024-10-02T08:00:00%2B08:00", "p.updated_at = TIMESTAMPTZ '2024-10-02 00:00:00+00'"),
    ("2024-10-02T08:00:00+08:00", "p.updated_at = TIMESTAMPTZ '2024-10-02 00:00:00+00'"),  # + unencoded
    ("2024-10-02T00:00:01Z", "false"),
    # A date: that whole day in China time.
    ("2024-10-03", "p.updated_at >= TIMESTAMPTZ '2024-10-03 00:00+08' AND p.updated_at < TIMESTAMPTZ "
                   "'2024-10-04 00:00+08'"),
    # Intervals, closed at both ends, and open.
    ("2024-10-02T00:00:00Z/2024-10-04T00:00:00Z",
     "p.updated_at BETWEEN TIMESTAMPTZ '2024-10-02 00:00+00' AND TIMESTAMPTZ '2024-10-04 00:00+00'"),
    ("../2024-10-02T00:00:00Z", "p.updated_at <= TIMESTAMPTZ '2024-10-02 00:00+00'"),
    ("2024-10-04T00:00:00Z/..", "p.updated_at >= TIMESTAMPTZ '2024-10-04 00:00+00'"),
    ("2024-10-02/2024-10-03", "p.updated_at >= TIMESTAMPTZ '2024-10-02 00:00+08' AND p.updated_at < "
                              "TIMESTAMPTZ '2024-10-04 00:00+08'"),
    ("../..", "true"),
])
def test_datetime_filters_exactly_what_sql_says_within_the_scope(client, dated, fresh_db, datetime, where):
    headers = bearer(client, "wg1")
    expected = _sql_ids(fresh_db, where)
    got = _ids(client, headers, f"datetime={datetime}")
    assert got == expected
    # The other grid's people changed at the same times: none of them ever shows.
    assert not got & set(dated["theirs"])
    if where != "false":
        assert expected  # the case filters something real
    # The community's worker sees both grids' rows for the same datetime.
    wide = _ids(client, bearer(client, "sq"), f"datetime={datetime}")
    assert wide == expected | _sql_ids(fresh_db, where, grid="320106001001002")


def test_datetime_with_bbox_and_the_layers_time_metadata(client, dated, fresh_db):
    headers = bearer(client, "wg1")
    # Paging keeps the filter: the next link, followed as is, gives the rest of the same rows.
    first = client.get("/api/v1/ogc/collections/person/items?limit=2&datetime=2024-10-02T08:00:00%2B08:00/..",
                       headers=headers).json()
    link = next(k["href"] for k in first["links"] if k["rel"] == "next")
    rest = client.get(link.removeprefix("http://testserver"), headers=headers).json()
    # Pages after the first are walked by id (no OFFSET) and carry no count (a scope's count is a read of
    # the whole scope; the standard makes numberMatched optional).
    assert "after=" in link and "offset" not in link and "numberMatched" not in rest
    assert first["numberMatched"] == 4 and first["numberReturned"] + rest["numberReturned"] == 4
    assert not any(k["rel"] == "next" for k in rest["links"])
    # The count stops at COUNT_LIMIT: a scope with more matches is paged without a number.
    again = first["links"][0]["href"].removeprefix("http://testserver")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ogc, "COUNT_LIMIT", 3)
        capped = client.get(again, headers=headers).json()
        patch.setattr(ogc, "COUNT_LIMIT", 4)
        exact = client.get(again, headers=headers).json()
    assert "numberMatched" not in capped and capped["features"] == first["features"]
    assert exact["numberMatched"] == 4
    assert {f["id"] for f in first["features"] + rest["features"]} == set(dated["mine"][1:])
    mine = dated["mine"]
    with db.owner_engine(fresh_db).connect() as conn:
        # The box around the buildings of the first two people.
        box = conn.execute(text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(b.footprint) AS e "
            "FROM residence r JOIN house h ON h.id = r.house_id JOIN building b ON b.id = h.building_id "
            "WHERE r.person_id = ANY(:ids)) x"), {"ids": mine[:2]}).one()
    bbox = ",".join(repr(v) for v in box)
    where = ("p.updated_at >= TIMESTAMPTZ '2024-10-02 00:00+00' AND ST_Intersects(ST_PointOnSurface("
             "b.footprint), ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4490))")
    expected = _sql_ids(fresh_db, where, dict(zip(("x0", "y0", "x1", "y1"), box, strict=True)))
    got = _ids(client, headers, f"bbox={bbox}&datetime=2024-10-02T00:00:00Z/..")
    assert got == expected == {mine[1]}
    # Each filter bites: the box alone keeps the first person, the time alone the third.
    assert mine[0] in _ids(client, headers, f"bbox={bbox}")
    assert mine[2] in _ids(client, headers, "datetime=2024-10-02T00:00:00Z/..")

    feature = client.get(f"/api/v1/ogc/collections/person/items/{mine[1]}", headers=headers).json()
    assert dt.datetime.fromisoformat(feature["properties"]["updated_at"]) == dt.datetime(
        2024, 10, 2, tzinfo=dt.UTC)
    # The collection says what it filters by, over the rows this user sees (their own five people).
    meta = client.get("/api/v1/ogc/collections/person", headers=headers).json()
    first, last = (dt.datetime.fromisoformat(v) for v in meta["extent"]["temporal"]["interval"][0])
    assert (first, last) == (dt.datetime(2024, 10, 1, tzinfo=dt.UTC),
                             dt.datetime(2024, 10, 5, tzinfo=dt.UTC))
    listed = client.get("/api/v1/ogc/collections", headers=headers).json()["collections"]
    by_id = {c["id"]: c for c in listed}
    assert by_id["person"]["extent"]["temporal"] == meta["extent"]["temporal"]
    assert "updated_at" in by_id["building"]["description"]


def _scattered(n: str) -> str:
    """A moment of 2024-2025 picked by the integer expression ``n`` (the same every run)."""
    return f"(TIMESTAMPTZ '2024-01-01 00:00+00' + make_interval(days => (({n}) % 700)::int))"


@pytest.fixture(scope="module")
def crowded(cluster_settings):
    """A database of its own: a district of 40 grids of 250 houses and 500 people, changed at scattered
    moments over two years -- enough rows for the planner to plan the temporal extent as it does for a
    city -- and one person who moved out (no current home: not on the map) and changed before everyone."""
    settings = create_database(cluster_settings)
    with db.owner_engine(settings).begin() as conn:
        district = add_district(conn)
        street = add_unit(conn, "street", "320106002", "湖南路街道", district)
        community = add_unit(conn, "community", "320106002001", "青云巷社区", street)
        grids = [add_unit(conn, "grid", f"320106002001{g:03d}", f"网格{g}", community) for g in range(1, 41)]
        for grid in grids:
            add_building(conn, grid)
        conn.execute(text("INSERT INTO house (building_id, floor, room_no) SELECT b.id, 1, '1-' || i "
                          "FROM building b, generate_series(1, 250) i"))
        conn.execute(text(f"UPDATE house h SET updated_at = {_scattered('h.id * 5')}"))
        conn.execute(text(
            "INSERT INTO person (name, sex, birth_date, org_path, district_code, updated_at) "
            "SELECT '居民' || h.id || '-' || i, '1', DATE '1990-03-07', h.org_path, h.district_code, "
            f"{_scattered('i * 37 + h.id * 11')} + make_interval(secs => i) "
            "FROM house h, generate_series(1, 2) i"))
        conn.execute(text("INSERT INTO residence (person_id, house_id, relation) SELECT p.id, h.id, '01' "
                          "FROM person p JOIN house h ON split_part(p.name, '-', 1) = '居民' || h.id"))
        moved = add_person(conn, add_house(conn, add_building(conn, grids[0])), "已迁出")
        conn.execute(text("UPDATE residence SET since = DATE '2020-01-01', until = DATE '2023-06-01' "
                          "WHERE person_id = :p"), {"p": moved})
        conn.execute(text("UPDATE person SET updated_at = TIMESTAMPTZ '2023-06-01 00:00+00' WHERE id = :p"),
                     {"p": moved})
        conn.execute(text("ANALYZE"))
    yield {"settings": settings, "district": district, "grid": grids[0]}
    drop_database(settings)


class _Scope:
    """A user as :func:`scoped_connection` takes one: the scope is what row-level security reads."""

    def __init__(self, unit: Unit):
        self.id, self.scope_path = None, unit.path


@pytest.mark.parametrize("scope", ["district", "grid"])
def test_temporal_extent_walks_the_scope_index_as_the_app_role(crowded, scope):
    """Each end of the person and house layers' extent is a nearest-neighbour walk of the (org_path,
    updated_at) index with the scope policy as its index condition -- not a scan and sort of the scope --
    as the app role under row-level security, for a district's scope and a grid's alike."""
    with scoped_connection(crowded["settings"], _Scope(crowded[scope])) as conn:
        assert conn.execute(text("SELECT current_user")).scalar() == crowded["settings"].app_role
        for key, table in (("person", "person"), ("house", "house")):
            plan = "\n".join(conn.execute(text("EXPLAIN " + ogc.time_span_sql(LAYERS[key]))).scalars())
            walks = plan.count(f"Index Scan using {table}_org_path_updated_at on {table}")
            assert walks == 2 and plan.count("Order By: (updated_at <-> ") == 2, plan
            assert plan.count("Index Cond: ((org_path <@ $") == 2, plan  # the policy, in the index
            assert "Seq Scan" not in plan and "Sort" not in plan and "Bitmap" not in plan, plan


@pytest.mark.parametrize("scope", ["district", "grid"])
def test_temporal_extent_is_min_and_max_of_the_layers_rows_in_scope(crowded, scope):
    """What the walks give is min/max over each dated layer's own rows (joins included) as the user sees
    them: the person who moved out is in scope but not on the map, and not in the extent."""
    with scoped_connection(crowded["settings"], _Scope(crowded[scope])) as conn:
        for layer in LAYERS.values():
            if layer.temporal is None:
                continue
            expr = layer.temporal.expr
            expected = conn.execute(text(f"SELECT min({expr}), max({expr}) FROM {layer.source} "
                                         f"WHERE ({layer.where})")).one()
            assert tuple(conn.execute(text(ogc.time_span_sql(layer))).one()) == tuple(expected), layer.key
        first_person = conn.execute(text(ogc.time_span_sql(LAYERS["person"]))).scalar()
        # The case bites: the mover is the first change in the person table within the scope.
        moved = dt.datetime(2023, 6, 1, tzinfo=dt.UTC)
        assert conn.execute(text("SELECT min(updated_at) FROM person")).scalar() == moved
    assert first_person >= dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def test_every_layers_time_is_a_not_null_column(crowded):
    """The datetime filter is a plain range, without an ``IS NULL`` arm: right only while every dated
    layer's time is a NOT NULL column."""
    with db.owner_engine(crowded["settings"]).connect() as conn:
        for layer in LAYERS.values():
            if layer.temporal is not None:
                table, column = layer.temporal.table.split()[0], layer.temporal.expr.split(".")[-1]
                assert conn.execute(text("SELECT attnotnull FROM pg_attribute WHERE attrelid = "
                                         "CAST(:t AS regclass) AND attname = :c"),
                                    {"t": table, "c": column}).scalar() is True, layer.key


@pytest.mark.parametrize("scope", ["district", "grid"])
def test_what_changed_since_is_read_through_the_scope_and_time_index(crowded, scope):
    """A week's changes out of two years: the items query walks the (org_path, updated_at) index with both
    the scope policy and the datetime range as index conditions, as the app role — not every row in scope
    tested one by one."""
    from starlette.requests import Request

    layer = LAYERS["person"]
    where, params = ogc._filters(layer, None, Request({"type": "http", "query_string": b"", "headers": []}),
                                 ogc.parse_datetime("2024-06-01T00:00:00Z/2024-06-08T00:00:00Z"))
    with scoped_connection(crowded["settings"], _Scope(crowded[scope])) as conn:
        plan = "\n".join(conn.execute(text("EXPLAIN " + ogc.features_sql(layer, where)),
                                      {**params, "limit": 100, "offset": 0}).scalars())
    assert "person_org_path_updated_at" in plan, plan
    conditions = [line for line in plan.splitlines() if "Index Cond" in line and "updated_at >=" in line]
    assert conditions and "org_path <@" in conditions[0], plan


@pytest.mark.parametrize("datetime", [
    "yesterday", "2024-13-01", "2024-10-01T25:00:00Z", "2024-10-01T08:00:00",  # no offset: not RFC 3339
    "2024-10-01/2024-10-02/2024-10-03", "2024-10-05/2024-10-01", "2024-10-01T00:00:00Z/soon", "",
])
def test_malformed_datetime_is_a_400_in_chinese(client, dated, datetime):
    response = client.get(f"/api/v1/ogc/collections/building/items?datetime={datetime}",
                          headers=bearer(client, "wg1"))
    assert response.status_code == 400, response.text
    assert "datetime" in response.text and any("\u4e00" <= ch <= "\u9fff" for ch in response.json()["detail"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_app() -> FastAPI:
    """The app for the uvicorn subprocess, on the database named in the environment."""
    from gis.settings import Settings

    return make_app(Settings())


def test_gdal_oapif_reads_what_the_user_may_see(fresh_db, world, client):
    token = bearer(client, "wg1")["Authorization"].removeprefix("Bearer ")
    port = _free_port()
    # A process of its own: pyogrio holds the GIL while it fetches features, so a server thread in this
    # process could never answer.
    env = {**os.environ, "GRIDGOV_VAR_DIR": str(fresh_db.var_dir), "GRIDGOV_PG_PORT": str(fresh_db.pg_port),
           "GRIDGOV_PG_DATABASE": fresh_db.pg_database}
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "tests.test_ogc:server_app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"], env=env, cwd=ROOT)
    try:
        for _ in range(200):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        # GDAL_HTTP_HEADERS is overridden by the OAPIF driver's own Accept header (GDAL 3.12); GDAL's
        # bearer authentication sends the same Authorization header and is not.
        pyogrio.set_gdal_config_options({"GDAL_HTTP_AUTH": "BEARER", "GDAL_HTTP_BEARER": token,
                                         "GDAL_HTTP_TIMEOUT": "20"})
        frame = pyogrio.read_dataframe(f"OAPIF:http://127.0.0.1:{port}/api/v1/ogc", layer="person")
    finally:
        pyogrio.set_gdal_config_options({"GDAL_HTTP_AUTH": None, "GDAL_HTTP_BEARER": None,
                                         "GDAL_HTTP_TIMEOUT": None})
        server.terminate()
        server.wait(timeout=10)
    assert sorted(frame["name"]) == [f"甲{i}" for i in range(5)]
    assert frame["id_number"].str.contains(r"\*").all()
    assert frame.geometry.geom_type.eq("Point").all()
