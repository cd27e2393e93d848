"""The demo district generator and loader (etl.demo*): a small load into a fresh database, then SQL
checks of every integrity rule the generator promises, determinism, atomicity and the demo accounts.

Area tolerance for "no overlap, no gap" between siblings: 1 m² (measured on the ellipsoid, after the
transform to EPSG:4490). The construction actually gives 0: siblings share their edges exactly.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
import shapely
from sqlalchemy import text
from typer.testing import CliRunner

from etl import demo_geometry, demo_people, demo_places
from etl.cli import demo_app
from etl.demo import DEMO_TABLES, DemoLoadError, demo_accounts, load_demo
from etl.demo_copy import Lookup, Nullable, copy_text
from etl.demo_recipe import RecipeError, check_recipe, code_table, codes_used, load_recipe
from gis import db
from gis.security import passwords, roles
from gis.validation import check_digit, validate_id_number, validate_mobile

SCALE, SEED = 6000, 7
AREA_TOLERANCE_M2 = 1.0
REFERENCE = dt.date(2026, 1, 1)


@pytest.fixture(scope="module")
def schema_before(fresh_db):
    """The fresh database's indexes, keys and triggers before any load."""
    return schema_objects(fresh_db)


@pytest.fixture(scope="module")
def demo(fresh_db, schema_before):
    report = load_demo(fresh_db, scale=SCALE, seed=SEED)
    return fresh_db, report


def rows(settings, sql: str, **params):
    with db.owner_engine(settings).connect() as conn:
        return conn.execute(text(sql), params).fetchall()


def scalar(settings, sql: str, **params):
    return rows(settings, sql, **params)[0][0]


def snapshot(settings) -> dict:
    """Counts of every demo table and the first people, to compare loads."""
    counts = {t: scalar(settings, f"SELECT count(*) FROM {t}") for t in DEMO_TABLES}
    first = rows(settings, "SELECT name, id_number, birth_date FROM person ORDER BY id LIMIT 50")
    grids = rows(settings, "SELECT code, md5(ST_AsBinary(boundary)) FROM territory_unit "
                           "WHERE level = 'grid' ORDER BY code")
    return {"counts": counts, "first": first, "grids": grids}


def schema_objects(settings) -> dict:
    """Indexes, foreign keys and enabled triggers of the demo tables (the loader drops and restores them)."""
    tables = list(DEMO_TABLES)
    return {
        "indexes": rows(settings, "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(:t) "
                                  "ORDER BY 1", t=tables),
        "keys": rows(settings, "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
                               "FROM pg_constraint WHERE contype = 'f' ORDER BY 1, 2"),
        "triggers": rows(settings, "SELECT tgrelid::regclass::text, tgname, tgenabled FROM pg_trigger "
                                   "WHERE NOT tgisinternal ORDER BY 1, 2"),
    }


# ---------------------------------------------------------------- the plan (no database)


def test_recipe_codes_exist_in_code_tables():
    recipe = load_recipe()
    for table, codes in codes_used(recipe).items():
        assert codes <= code_table(table), (table, codes - code_table(table))


def test_recipe_check_refuses_an_unknown_code(monkeypatch):
    recipe = load_recipe()
    broken = dict(recipe.raw, relation=dict(recipe.raw["relation"], head="XX"))
    with pytest.raises(RecipeError, match="relation"):
        check_recipe(type(recipe)(**{**recipe.__dict__, "raw": broken}))


@pytest.mark.parametrize("scale, communities, streets, grids", [
    (6000, 6, 6, 6),            # fewer grids than streets: one community each, as many streets as grids
    (100_000, 13, 13, 93),      # the default: every street, one community each
    (2_000_000, 123, 13, 1852),  # all communities
])
def test_how_many_units_a_scale_gets(scale, communities, streets, grids):
    recipe = load_recipe()
    households = round(scale / 2.7)
    n_grids = demo_places.grid_count(households, recipe)
    chosen = demo_places.choose_communities(recipe, n_grids)
    assert n_grids == grids
    assert sum(map(len, chosen.values())) == communities
    assert sum(1 for c in chosen.values() if c) == streets
    assert chosen["320106001"][0] == "320106001003"  # the first street's first community is always in
    assert 300 <= households / n_grids <= 500


def test_the_largest_layout_nests_exactly():
    """All 123 communities with 15 grids each (the 2 000 000 scale), checked in shapely: every unit
    valid and covered by its parent, siblings sharing edges without overlapping."""
    recipe = load_recipe()
    chosen = demo_places.choose_communities(recipe, 1852)
    grids = {c: [f"{c}{i:03d}" for i in range(1, 16)] for cs in chosen.values() for c in cs}
    territory = demo_geometry.lay_out_territory(np.random.default_rng(3), recipe["district"], list(chosen),
                                                chosen, grids)
    b = territory.boundaries
    children = {"320106": list(chosen), **{s: cs for s, cs in chosen.items()}, **grids}
    for parent, kids in children.items():
        geoms = np.array([b[k] for k in kids], dtype=object)
        assert shapely.is_valid(geoms).all(), parent
        assert shapely.covered_by(geoms, b[parent]).all(), parent
        tree = shapely.STRtree(geoms)
        i, j = tree.query(geoms, predicate="intersects")
        pairs = i < j
        overlap = shapely.area(shapely.intersection(geoms[i[pairs]], geoms[j[pairs]]))
        assert overlap.max(initial=0.0) < 1e-12, parent  # square degrees: about 0.01 m²


def test_share_out_keeps_every_grid_within_bounds():
    rng = np.random.default_rng(1)
    for total in (2222, 37037, 740741):
        n = demo_places.grid_count(total, load_recipe())
        counts = demo_places.share_out(total, rng.uniform(0.9, 1.1, n), 300, 500)
        assert counts.sum() == total and counts.min() >= 300 and counts.max() <= 500


def test_id_numbers_are_valid_and_unique_even_for_crowded_birthdays():
    ids = demo_people.IdNumbers()
    birth = np.full(900, np.datetime64("1990-03-07"))
    sex = np.where(np.arange(900) % 2, "1", "2")
    made = np.concatenate([ids.make(np.full(450, 320106), birth[:450], sex[:450]),
                           ids.make(np.full(450, 320106), birth[450:], sex[450:])])  # two chunks
    assert len(set(made)) == 900
    for number, s in zip(made, sex, strict=True):
        parsed = validate_id_number(number, sex=s, birth_date="1990-03-07")
        assert parsed.region_code == "320106"
        assert number[-1] == check_digit(number[:17])


def test_copy_text_formats_nulls_dates_and_chinese():
    data = copy_text({
        "id": np.array([7, 1234567]), "name": np.array(["王芳", "KIM MINJUN"]),
        "born": np.array(["1990-03-07", "NaT"], dtype="datetime64[D]"),
        "phone": Nullable(np.array(["13812348000", ""]), np.array([False, True])),
        "job": Lookup(np.array(["教师", "学生"]), np.array([1, -1])), "flag": np.array([True, False]),
        "district": "320106",
    }, 2)
    assert data.decode() == ("7\t王芳\t1990-03-07\t13812348000\t学生\tt\t320106\n"
                             "1234567\tKIM MINJUN\t\\N\t\\N\t\\N\tf\t320106\n")


# ---------------------------------------------------------------- the territory


def test_territory_tree_has_real_codes_and_named_grids(demo):
    settings, report = demo
    levels = dict(rows(settings, "SELECT level, count(*) FROM territory_unit GROUP BY level"))
    assert levels == {"province": 1, "city": 1, "district": 1, "street": 13, "community": 6, "grid": 6}
    assert report.counts["territory_unit"] == sum(levels.values())
    bad_paths = scalar(settings, """
        SELECT count(*) FROM territory_unit c JOIN territory_unit p ON p.id = c.parent_id
         WHERE c.path <> p.path || c.code::ltree OR c.org_path <> c.path""")
    assert bad_paths == 0
    grids = rows(settings, """
        SELECT g.code, g.name, c.code, c.name FROM territory_unit g
          JOIN territory_unit c ON c.id = g.parent_id WHERE g.level = 'grid' ORDER BY g.code""")
    for code, name, community_code, community_name in grids:
        assert code.startswith(community_code) and len(code) == 15
        assert name == f"{community_name}第{int(code[-3:])}网格"
    assert ("320106001003001", "仙霞路社区第1网格") in [(g[0], g[1]) for g in grids]
    heads = rows(settings, "SELECT head_name, head_mobile, worker_count FROM territory_unit "
                           "WHERE level = 'grid'")
    for name, mobile, workers in heads:
        assert 2 <= len(name) <= 4 and validate_mobile(mobile) == mobile and 2 <= workers <= 6


def test_district_outline_is_plausible(demo):
    settings, _ = demo
    area, holes, valid, x0, y0, x1, y1 = rows(settings, """
        SELECT ST_Area(boundary::geography), ST_NumInteriorRings(ST_GeometryN(boundary, 1)),
               ST_IsValid(boundary), ST_XMin(boundary), ST_YMin(boundary), ST_XMax(boundary),
               ST_YMax(boundary)
          FROM territory_unit WHERE level = 'district'""")[0]
    assert 52.5e6 < area < 53.5e6
    assert holes == 0 and valid
    assert 118.70 < x0 < x1 < 118.83 and 32.02 < y0 < y1 < 32.15


def test_every_unit_lies_inside_its_parent(demo):
    settings, _ = demo
    outside = rows(settings, """
        SELECT c.code FROM territory_unit c JOIN territory_unit p ON p.id = c.parent_id
         WHERE c.boundary IS NOT NULL AND p.boundary IS NOT NULL
           AND NOT (ST_IsValid(c.boundary) AND ST_CoveredBy(c.boundary, p.boundary))""")
    assert outside == []
    assert scalar(settings, "SELECT count(*) FROM territory_unit WHERE level IN ('district', 'street', "
                            "'community', 'grid') AND boundary IS NULL") == 0


def test_siblings_neither_overlap_nor_leave_gaps(demo):
    settings, _ = demo
    overlaps = rows(settings, """
        SELECT a.code, b.code, ST_Area(ST_Intersection(a.boundary, b.boundary)::geography) AS m2
          FROM territory_unit a JOIN territory_unit b
            ON a.parent_id = b.parent_id AND a.id < b.id AND a.boundary && b.boundary
         WHERE ST_Area(ST_Intersection(a.boundary, b.boundary)::geography) >= :tolerance""",
                    tolerance=AREA_TOLERANCE_M2)
    assert overlaps == []
    # Where a unit is divided, its children's areas add up to its own: no gap (nor overlap) inside it.
    gaps = rows(settings, """
        SELECT p.code, ST_Area(p.boundary::geography) - sum(ST_Area(c.boundary::geography)) AS m2
          FROM territory_unit p JOIN territory_unit c ON c.parent_id = p.id
         WHERE p.boundary IS NOT NULL
         GROUP BY p.id HAVING abs(ST_Area(p.boundary::geography) - sum(ST_Area(c.boundary::geography)))
                              >= :tolerance""", tolerance=AREA_TOLERANCE_M2)
    assert gaps == []


# ---------------------------------------------------------------- places


def test_compounds_and_buildings_lie_inside_their_grid(demo):
    settings, _ = demo
    assert scalar(settings, """
        SELECT count(*) FROM compound c JOIN territory_unit g ON g.id = c.grid_id
         WHERE NOT ST_Within(c.boundary, g.boundary) OR c.org_path <> g.path OR g.level <> 'grid'""") == 0
    assert scalar(settings, """
        SELECT count(*) FROM building b JOIN territory_unit g ON g.id = b.grid_id
          JOIN compound c ON c.id = b.compound_id
         WHERE NOT ST_Within(b.footprint, g.boundary) OR NOT ST_Within(b.footprint, c.boundary)
            OR b.org_path <> g.path OR c.grid_id <> b.grid_id""") == 0
    assert scalar(settings, """
        SELECT count(*) FROM building a JOIN building b ON a.compound_id = b.compound_id AND a.id < b.id
         WHERE ST_Intersects(a.footprint, b.footprint)""") == 0
    assert scalar(settings, "SELECT count(*) FROM building WHERE compound_id IS NULL") == 0


def test_houses_follow_their_building(demo):
    settings, _ = demo
    assert scalar(settings, """
        SELECT count(*) FROM house h JOIN building b ON b.id = h.building_id
         WHERE h.org_path <> b.org_path OR h.floor > b.floors OR h.unit_no > b.units
            OR h.room_no !~ '^[0-9]+-[0-9]+$' OR split_part(h.room_no, '-', 1)::int <> h.unit_no""") == 0
    vacant, rented, total = rows(settings, """
        SELECT count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM residence r WHERE r.house_id = h.id)),
               count(*) FILTER (WHERE is_rented), count(*) FROM house h""")[0]
    assert 0.05 < vacant / total < 0.15
    assert 0.10 < rented / total < 0.20


def test_grids_hold_300_to_500_households(demo):
    settings, _ = demo
    households = [n for (n,) in rows(settings, """
        SELECT count(DISTINCT r.house_id) FROM residence r GROUP BY r.org_path""")]
    assert len(households) == 6 and min(households) >= 300 and max(households) <= 500
    assert abs(sum(households) - SCALE / 2.7) < 2


# ---------------------------------------------------------------- people


def test_people_live_where_their_path_says(demo):
    settings, report = demo
    assert report.counts["person"] == SCALE == scalar(settings, "SELECT count(*) FROM person")
    assert scalar(settings, """
        SELECT count(*) FROM person p JOIN residence r ON r.person_id = p.id AND r.until IS NULL
          JOIN house h ON h.id = r.house_id
         WHERE p.org_path <> h.org_path OR r.org_path <> h.org_path""") == 0
    # Everyone alive lives somewhere now; the dead nowhere, their residence ending the day they died.
    assert scalar(settings, """
        SELECT count(*) FROM person p WHERE p.died_on IS NULL
           AND NOT EXISTS (SELECT 1 FROM residence r WHERE r.person_id = p.id AND r.until IS NULL)""") == 0
    assert scalar(settings, """
        SELECT count(*) FROM person p JOIN residence r ON r.person_id = p.id
         WHERE p.died_on IS NOT NULL AND r.until IS DISTINCT FROM p.died_on""") == 0
    assert scalar(settings, "SELECT count(*) FROM residence WHERE since < '1900-01-01' OR since > :ref",
                  ref=REFERENCE) == 0


def test_every_household_has_exactly_one_head(demo):
    settings, _ = demo
    assert scalar(settings, """
        SELECT count(*) FROM (SELECT house_id, count(*) FILTER (WHERE is_head) AS heads
                                FROM residence WHERE until IS NULL GROUP BY house_id) h
         WHERE heads <> 1""") == 0
    assert scalar(settings, "SELECT count(*) FROM residence WHERE is_head <> (relation = '02')") == 0
    relations = set(r for (r,) in rows(settings, "SELECT DISTINCT relation FROM residence"))
    assert {"02", "10", "20", "30"} <= relations <= code_table("relation")


def test_id_numbers_are_valid_unique_and_agree_with_the_person(demo):
    settings, _ = demo
    people = rows(settings, "SELECT id_number, sex, birth_date, residency FROM person")
    numbers = [p[0] for p in people if p[0] is not None]
    assert len(numbers) == len(set(numbers))
    for number, sex, birth, residency in people:
        if residency == "foreign":
            assert number is None
            continue
        parsed = validate_id_number(number, sex=sex, birth_date=birth, today=REFERENCE)
        if residency == "resident":
            assert parsed.region_code == "320106"
    floating_regions = {p[0][:6] for p in people if p[3] == "floating"}
    assert "320106" not in floating_regions and len(floating_regions) > 10
    owners = rows(settings, "SELECT owner_id_number FROM house WHERE owner_id_number IS NOT NULL")
    for (number,) in owners:
        validate_id_number(number, today=REFERENCE)


def test_people_look_like_a_district(demo):
    settings, _ = demo
    share = dict(rows(settings, "SELECT residency, count(*)::float / :n FROM person GROUP BY 1", n=SCALE))
    assert 0.08 < share["floating"] < 0.16
    assert 0 < share["foreign"] < 0.01
    assert 0.001 < scalar(settings, "SELECT count(*)::float / :n FROM person WHERE died_on IS NOT NULL",
                          n=SCALE) < 0.01
    ages = dict(rows(settings, """
        SELECT CASE WHEN age(:ref, birth_date) < interval '15 years' THEN 'child'
                    WHEN age(:ref, birth_date) >= interval '60 years' THEN 'old' ELSE 'adult' END,
               count(*)::float / :n FROM person GROUP BY 1""", ref=REFERENCE, n=SCALE))
    assert 0.05 < ages["child"] < 0.22 and 0.12 < ages["old"] < 0.35
    assert 0.95 < scalar(settings, "SELECT count(*) FILTER (WHERE ethnicity = '01')::float / "
                                   "count(ethnicity) FROM person") < 1.0
    names = [n for (n,) in rows(settings, "SELECT name FROM person WHERE residency <> 'foreign'")]
    assert all(2 <= len(n) <= 4 for n in names) and len(set(names)) > 0.8 * len(names)
    assert scalar(settings, "SELECT count(*) FROM person "
                            "WHERE phone IS NOT NULL AND phone !~ '^1[3-9][0-9]{9}$'") == 0
    for column, table in (("ethnicity", "ethnicity"), ("political", "political"), ("education", "education"),
                          ("health", "health"), ("marital", "marital"), ("hukou_type", "hukou_type")):
        found = {v for (v,) in rows(settings, f"SELECT DISTINCT {column} FROM person "
                                              f"WHERE {column} IS NOT NULL")}
        assert found and found <= code_table(table), column
    # Education and marital status follow age.
    assert scalar(settings, "SELECT count(*) FROM person WHERE education IS NOT NULL "
                            "AND age(:ref, birth_date) < interval '6 years'", ref=REFERENCE) == 0
    assert scalar(settings, "SELECT count(*) FROM person WHERE marital <> '10' "
                            "AND age(:ref, birth_date) < interval '20 years'", ref=REFERENCE) == 0


def test_floating_and_foreign_details(demo):
    settings, _ = demo
    assert scalar(settings, """
        SELECT count(*) FROM person p
          FULL JOIN person_floating f ON f.person_id = p.id AND p.residency = 'floating'
         WHERE (p.residency = 'floating') IS DISTINCT FROM (f.person_id IS NOT NULL)""") == 0
    assert scalar(settings, """
        SELECT count(*) FROM person p
          FULL JOIN person_foreign f ON f.person_id = p.id AND p.residency = 'foreign'
         WHERE (p.residency = 'foreign') IS DISTINCT FROM (f.person_id IS NOT NULL)""") == 0
    assert scalar(settings, """
        SELECT count(*) FROM person_floating f JOIN person p ON p.id = f.person_id
         WHERE f.org_path <> p.org_path OR f.flow <> 'inflow' OR f.arrived_on IS NULL""") == 0
    nationalities = {n for (n,) in rows(settings, "SELECT DISTINCT nationality FROM person_foreign")}
    assert nationalities and nationalities <= code_table("nationality") - {"CHN"}
    assert scalar(settings, "SELECT count(*) FROM person_foreign WHERE document_number !~ '^[A-Z0-9]{7,9}$' "
                            "OR document_type <> '414' OR document_expiry <= :ref", ref=REFERENCE) == 0


# ---------------------------------------------------------------- the load itself


def test_load_restores_indexes_keys_and_triggers(demo, schema_before):
    settings, _ = demo
    assert schema_objects(settings) == schema_before
    # The identity sequences continue after the loaded ids.
    next_id = scalar(settings, "SELECT nextval(pg_get_serial_sequence('person', 'id'))")
    assert next_id == SCALE + 1


def test_same_seed_same_district_through_the_cli(demo):
    settings, _ = demo
    before = snapshot(settings)
    env = {"GRIDGOV_VAR_DIR": str(settings.var_dir), "GRIDGOV_PG_PORT": str(settings.pg_port),
           "GRIDGOV_PG_DATABASE": settings.pg_database}
    result = CliRunner().invoke(demo_app, ["load", "--scale", str(SCALE), "--seed", str(SEED)], env=env)
    assert result.exit_code == 0, result.output
    assert "person" in result.output and "6,000" in result.output
    assert snapshot(settings) == before


def test_another_seed_another_district():
    recipe = load_recipe()
    plans = [demo_places.plan_demo(3000, seed, recipe) for seed in (1, 2)]
    first = [demo_places.plan_places(p).compounds["name"][:5].tolist() for p in plans]
    assert first[0] != first[1]
    assert plans[0].grid_heads["head_name"].tolist() != plans[1].grid_heads["head_name"].tolist()


def test_a_failed_load_changes_nothing(demo, monkeypatch):
    settings, _ = demo
    before = snapshot(settings)
    objects = schema_objects(settings)

    def broken(state, chunk):
        raise RuntimeError("生成失败 (simulated failure)")

    monkeypatch.setattr(demo_people, "generate_chunk", broken)
    with pytest.raises(RuntimeError, match="simulated failure"):
        load_demo(settings, scale=3000, seed=99)
    assert snapshot(settings) == before
    assert schema_objects(settings) == objects


def test_accounts_scoped_by_path_survive_a_reload_or_stop_it(demo):
    settings, _ = demo
    from gis.security.users import upsert_user

    district = "320000.320100.320106"
    grid = "320000.320100.320106.320106004.320106004002.320106004002001"
    with db.owner_engine(settings).begin() as conn:
        upsert_user(conn, "demo_keep", "Gg!KeepMe#2026x", "analyst", district, "留用账户")
        upsert_user(conn, "demo_gone", "Gg!GoneSoon#2026", "grid_worker", grid, "网格员")
    # At scale 3000 there are three grids, in the first three streets: not the 观音里 grid (fourth street).
    before = snapshot(settings)
    with pytest.raises(DemoLoadError, match="辖区"):
        load_demo(settings, scale=3000, seed=SEED)
    assert snapshot(settings) == before
    with db.owner_engine(settings).begin() as conn:
        conn.execute(text("DELETE FROM users WHERE username = 'demo_gone'"))
    load_demo(settings, scale=SCALE, seed=SEED)
    assert scalar(settings, "SELECT count(*) FROM users WHERE username = 'demo_keep'") == 1
    assert snapshot(settings) == before


# ---------------------------------------------------------------- demo accounts


def test_demo_accounts_are_scoped_to_loaded_units(demo):
    settings, _ = demo
    accounts = demo_accounts(settings)
    assert {a["role"] for a in accounts} >= {"district_commander", "street_staff", "community_staff",
                                            "grid_worker", "department_officer", "analyst", "data_staff",
                                            "auditor", "admin"}
    assert len({a["username"] for a in accounts}) == len(accounts)
    levels = {"district_commander": "district", "street_staff": "street", "community_staff": "community",
              "grid_worker": "grid"}
    for account in accounts:
        roles.role(account["role"])
        passwords.check_policy(account["password"], settings, account["username"])
        level = scalar(settings, "SELECT level FROM territory_unit WHERE path = CAST(:p AS ltree)",
                       p=account["scope_path"])
        assert level == levels.get(account["role"], "district"), account
    officer = next(a for a in accounts if a["role"] == "department_officer")
    assert officer["department"] == "区城管局"
    assert demo_accounts(settings) == accounts


def test_demo_accounts_refused_in_production(demo):
    settings, _ = demo
    with pytest.raises(DemoLoadError):
        demo_accounts(settings.model_copy(update={"production": True}))


def test_users_command_prints_json():
    result = CliRunner().invoke(demo_app, ["users"])
    assert result.exit_code == 0, result.output
    accounts = json.loads(result.output)
    assert accounts[0]["scope_path"] == "320000.320100.320106"
    assert all(len(a["password"]) >= 12 for a in accounts)
