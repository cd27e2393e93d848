"""Demo rows for every registry (etl.demo_registries) on a small demo district: every registry has rows,
each row lies in its territory and hangs on rows of the same territory, codes come from the code tables,
a sample of every registry re-saves through the registry service unchanged (so the bulk rows pass the
service's own validation), 周边重点人员 finds people and agrees with a hand-written distance query, and a
reload gives the same rows."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import text

from etl.demo import load_demo
from etl.demo_registries import OWN_TABLES, SPECIAL, load_demo_registries
from etl.demo_tracks import load_demo_tracks
from gis import db
from gis.security import roles
from gis.security.scope import bind_scope
from gis.security.sessions import CurrentUser
from layers import registry_service as service
from layers.events.calendar import BEIJING
from layers.registries import REGISTRIES
from layers.registry import Registry
from tests.access_helpers import add_user

SCALE, SEED = 4000, 11
# Registries whose demo rows come from elsewhere (their own demo loaders) or that are not registers at all.
ELSEWHERE = {"diary", "notice", "shared_file", "camera"}
FILLED = [r for r in REGISTRIES.values() if r.crud and r.key not in ELSEWHERE]
SAMPLE = 3  # rows of each registry re-saved through the service


@pytest.fixture(scope="module")
def loaded(fresh_db):
    load_demo(fresh_db, scale=SCALE, seed=SEED)
    # Yesterday: a whole working day of tracks whatever the hour the test runs.
    load_demo_tracks(fresh_db, day=dt.datetime.now(BEIJING).date() - dt.timedelta(days=1), seed=SEED)
    report = load_demo_registries(fresh_db, seed=SEED)
    return fresh_db, report


@pytest.fixture(scope="module")
def district_user(loaded):
    settings, _ = loaded
    with db.owner_engine(settings).begin() as conn:
        path = conn.execute(text("SELECT path::text FROM territory_unit WHERE level = 'district'")
                            ).scalar_one()
        user_id = add_user(conn, "demo_registries_staff", "street_staff", path)
    return CurrentUser(id=user_id, username="demo_registries_staff", name="台账演示", role="street_staff",
                       scope_path=path, permissions=roles.ROLES["street_staff"].permissions)


def rows(settings, sql: str, **params):
    with db.owner_engine(settings).connect() as conn:
        return conn.execute(text(sql), params).fetchall()


def test_every_registry_has_rows(loaded):
    settings, report = loaded
    empty = [r.key for r in FILLED if report.counts.get(r.key, 0) == 0]
    assert not empty, f"registries without demo rows: {empty}"
    # The counts reported are the database's.
    assert report.counts["school"] == rows(settings, "SELECT count(*) FROM school")[0][0]
    assert report.counts["building_head"] == rows(
        settings, "SELECT count(*) FROM building WHERE head_name IS NOT NULL")[0][0]
    assert set(report.seconds) == {"read", "clear", "generate", "write", "derive"}


def test_one_person_can_be_on_two_registers(loaded):
    settings, _ = loaded
    both = rows(settings, "SELECT count(*) FROM drug_user d JOIN released_prisoner p USING (person_id)")[0][0]
    assert both > 0
    # ... but at most once on each register.
    for key in SPECIAL:
        assert rows(settings, f"SELECT count(*) - count(DISTINCT person_id) FROM {key}")[0][0] == 0


def test_heads_live_where_they_serve(loaded):
    settings, _ = loaded
    assert rows(settings, "SELECT count(*) FROM territory_unit WHERE level = 'grid'"
                          " AND (head_name IS NULL OR head_mobile IS NULL)")[0][0] == 0
    # A building head (楼栋长) is one of the building's residents, with their phone.
    assert rows(settings, """
        SELECT count(*) FROM building b WHERE b.head_name IS NOT NULL AND NOT EXISTS (
               SELECT 1 FROM house h JOIN residence r ON r.house_id = h.id AND r.until IS NULL
                 JOIN person p ON p.id = r.person_id
                WHERE h.building_id = b.id AND p.name = b.head_name AND p.phone = b.head_phone)
        """)[0][0] == 0
    # A lease's tenant lives in the rented house, when anyone does.
    assert rows(settings, """
        SELECT count(*) FROM house_lease l WHERE EXISTS (
               SELECT 1 FROM residence r WHERE r.house_id = l.house_id AND r.until IS NULL)
           AND NOT EXISTS (SELECT 1 FROM residence r JOIN person p ON p.id = r.person_id
                            WHERE r.house_id = l.house_id AND r.until IS NULL AND p.name = l.tenant)
        """)[0][0] == 0


def _point_tables() -> list[Registry]:
    return [r for r in FILLED if r.table_name in OWN_TABLES and r.geometry_column]


@pytest.mark.parametrize("registry", _point_tables(), ids=lambda r: r.key)
def test_locations_lie_inside_their_territory(loaded, registry):
    settings, _ = loaded
    outside = rows(settings, f"""
        SELECT t.id, t.org_path::text FROM {registry.table_name} t
          LEFT JOIN territory_unit u ON u.path = t.org_path
         WHERE t.{registry.geometry_column} IS NULL OR u.id IS NULL
            OR NOT ST_Covers(u.boundary, t.{registry.geometry_column})""")
    assert outside == []
    assert rows(settings, f"SELECT count(*) FROM {registry.table_name}")[0][0] > 0


def _ref_territories() -> list[tuple[Registry, str]]:
    """(registry, ref field) where the record's territory is that of the record the field points at."""
    names = {r.key: {f.name for f in r.fields} for r in FILLED}
    return [(r, r.territory[4:]) for r in FILLED if r.territory.startswith("ref:")
            and r.territory[4:] in names[r.key] and r.field(r.territory[4:]).store == "t"]


@pytest.mark.parametrize("registry,field_name", _ref_territories(), ids=lambda x: getattr(x, "key", x))
def test_records_share_the_territory_of_what_they_hang_on(loaded, registry, field_name):
    settings, _ = loaded
    target = registry.field(field_name).ref
    table, path = ("territory_unit", "x.path") if target == "territory" else (
        REGISTRIES[target].table_name, "x.org_path")
    column = registry.field(field_name).stored_column
    wrong = rows(settings, f"""
        SELECT t.id FROM {registry.table_name} t JOIN {table} x ON x.id = t.{column}
         WHERE t.org_path <> {path} {('AND ' + registry.where) if registry.where else ''}""")
    assert wrong == []


def test_code_values_come_from_the_code_tables(loaded):
    settings, _ = loaded
    bad = {}
    for registry in FILLED:
        for f in registry.stored_fields:
            if f.type != "code":
                continue
            extension = next((e for e in registry.extensions if e.alias == f.store), None)
            table = extension.table if extension else registry.table_name
            found = rows(settings, f"""
                SELECT DISTINCT x.{f.stored_column} FROM {table} x
                 WHERE x.{f.stored_column} IS NOT NULL AND NOT EXISTS (
                       SELECT 1 FROM code_item c WHERE c.table_key = :t AND c.code = x.{f.stored_column})""",
                         t=f.code_table)
            if found:
                bad[f"{registry.key}.{f.name}"] = [v for (v,) in found]
    assert bad == {}


def _stored_rows(conn, registry: Registry, limit: int) -> list[dict]:
    """The first rows of a registry with their stored values as the database holds them (unmasked)."""
    columns = ["t.id", "t.version", "t.org_path::text AS org_path",
               *(f"{f.read_expr} AS {f.name}" for f in registry.stored_fields)]
    # Only the locations this loader drew (a grid's or building's outline is the demo load's).
    if registry.geometry_column and not registry.lonlat and registry.table_name in OWN_TABLES:
        columns.append(f"ST_AsGeoJSON(t.{registry.geometry_column}, 15) AS geometry")
    return [dict(r) for r in conn.execute(text(
        f"SELECT {', '.join(columns)} FROM {service._from(registry)}"
        f" WHERE {' AND '.join(service._where(registry))} ORDER BY t.id LIMIT :n"), {"n": limit}).mappings()]


@pytest.mark.parametrize("registry", FILLED, ids=lambda r: r.key)
def test_a_sample_resaves_through_the_registry_service(loaded, district_user, registry):
    """Every stored value of the first rows, sent back through the service's update: its validation
    (codes, ID numbers, phones, references, the location inside the territory) accepts them all."""
    settings, _ = loaded
    with db.app_engine(settings).connect() as conn:
        transaction = conn.begin()
        try:
            bind_scope(conn, district_user)
            sample = _stored_rows(conn, registry, SAMPLE)
            assert sample, f"{registry.key} has no rows"
            for row in sample:
                data = {f.name: row[f.name] for f in registry.stored_fields}
                if "geometry" in row:
                    data["geometry"] = json.loads(row["geometry"])
                if registry.territory == "input":
                    data["org_path"] = row["org_path"]
                try:
                    saved = service.update_record(conn, district_user, registry, row["id"], data,
                                                  version=row["version"])
                except service.Invalid as error:
                    pytest.fail(f"{registry.key} #{row['id']} refused: {error.errors}")
                assert saved["org_path"] == row["org_path"]
        finally:
            transaction.rollback()


def _nearby_by_hand(settings, school_id: int, metres: float) -> set[int]:
    union = " UNION ".join(f"SELECT person_id FROM {key} WHERE deleted_at IS NULL" for key in SPECIAL)
    return {pid for (pid,) in rows(settings, f"""
        SELECT DISTINCT p.id FROM school s, building b, house h, residence r, person p
         WHERE s.id = :id AND h.building_id = b.id AND r.house_id = h.id AND r.until IS NULL
           AND p.id = r.person_id AND p.died_on IS NULL AND p.id IN ({union})
           AND ST_DWithin(s.geom::geography, ST_PointOnSurface(b.footprint)::geography, :m)""",
        id=school_id, m=metres)}


def test_key_persons_near_schools_match_a_distance_query(loaded, district_user):
    settings, _ = loaded
    schools = [sid for (sid,) in rows(settings, "SELECT id FROM school ORDER BY id")]
    found_any = 0
    with db.app_engine(settings).connect() as conn:
        transaction = conn.begin()
        bind_scope(conn, district_user)
        for school_id in schools:
            nearby = service.key_persons_near_school(conn, district_user, school_id,
                                                     settings.school_nearby_metres)
            found = {row["person_id"] for row in nearby["found"]}
            assert found == _nearby_by_hand(settings, school_id, settings.school_nearby_metres)
            found_any += bool(found)
            # The ones registered by hand for the school are among those the database finds.
            assert {row["person_id"] for row in nearby["registered"]} <= found
        transaction.rollback()
    # Every school was placed with a key person living near it.
    assert found_any == len(schools) > 0


def _without_clock(settings) -> dict:
    """The rows without their created/updated timestamps (which say when they were written)."""
    out = {}
    for table in OWN_TABLES:
        columns = [c for (c,) in rows(
            settings, "SELECT column_name FROM information_schema.columns WHERE table_name = :t AND"
                      " column_name NOT IN ('created_at', 'updated_at') ORDER BY ordinal_position", t=table)]
        key = "house_id" if table == "house_lease" else "id"
        fingerprint = f"md5(string_agg(md5(row({', '.join(columns)})::text), '' ORDER BY {key}))"
        out[table] = rows(settings, f"SELECT count(*), {fingerprint} FROM {table}")[0]
    out["building_head"] = rows(settings, "SELECT count(*), md5(string_agg(concat(id, head_name, head_phone),"
                                          " '' ORDER BY id)) FROM building WHERE head_name IS NOT NULL")[0]
    return out


def test_reload_replaces_its_rows_with_the_same_ones(loaded):
    settings, report = loaded
    before = _without_clock(settings)
    again = load_demo_registries(settings, seed=SEED)
    assert again.counts == report.counts
    assert _without_clock(settings) == before
    # Ids start again from 1, and new records continue after them.
    assert rows(settings, "SELECT min(id) FROM zz_org")[0][0] == 1
    # Another seed, other rows (the last test of the module: the district stays as that seed made it).
    other = load_demo_registries(settings, seed=SEED + 1)
    assert other.counts["zz_org"] == report.counts["zz_org"]  # one body per unit, whatever the seed
    assert _without_clock(settings)["mass_team_member"] != before["mass_team_member"]
