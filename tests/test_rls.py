"""Row-level security by territory, on a real PostGIS: every path into the data -- the ORM, raw SQL, the
REST API and the notebook API -- returns exactly the rows inside the user's subtree, and nothing at all
(an error, not an empty answer) when no scope is set."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, ProgrammingError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from gis import db, notebook
from gis.security.scope import scoped_connection, scoped_session
from gis.security.sessions import CurrentUser
from tests.access_helpers import (
    add_building, add_district, add_house, add_person, add_unit, add_user, bearer, client_for, wipe,
)

PROTECTED = ("territory_unit", "compound", "building", "house", "person", "person_floating",
             "person_foreign", "residence")


class Base(DeclarativeBase):
    pass


class Person(Base):
    __tablename__ = "person"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


def as_user(user_id: int, scope: str) -> CurrentUser:
    return CurrentUser(id=user_id, username=f"u{user_id}", name="测试", role="grid_worker", scope_path=scope)


@pytest.fixture(scope="module")
def two_grids(fresh_db):
    """A district with one street, one community and two grids, each with a building, a house, a person."""
    wipe(fresh_db)
    with db.owner_engine(fresh_db).begin() as conn:
        district = add_district(conn)
        street = add_unit(conn, "street", "320106001", "宁海路街道", district)
        community = add_unit(conn, "community", "320106001001", "山西路社区", street)
        grids, persons = [], []
        for i in (1, 2):
            grid = add_unit(conn, "grid", f"32010600100100{i}", f"第{i}网格", community)
            house = add_house(conn, add_building(conn, grid))
            grids.append(grid)
            persons.append(add_person(conn, house, f"网格{i}居民"))
        user_id = add_user(conn, "grid_one", "grid_worker", grids[0])
    return {"settings": fresh_db, "district": district, "community": community, "grids": grids,
            "persons": persons, "user": as_user(user_id, grids[0].path)}


def test_app_role_is_not_owner_superuser_or_bypassrls(two_grids):
    settings = two_grids["settings"]
    with db.app_engine(settings).connect() as conn:
        role = conn.execute(text(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")).one()
        owners = set(conn.execute(text(
            "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class WHERE relname = ANY(:t)"
        ), {"t": list(PROTECTED)}).scalars())
    assert role == (False, False)
    assert owners == {settings.owner_role}


# Tables protected by row-level security that deliberately keep no change history: the history itself,
# the GPS fixes and each worker's latest fix (a history row per fix would double the writes; fixes are
# never edited by hand).
WITHOUT_HISTORY = {"change_log", "worker_position", "worker_latest"}


def test_every_table_with_org_path_is_protected(two_grids):
    """A table added later with an org_path but without app.protect() fails here."""
    with db.owner_engine(two_grids["settings"]).connect() as conn:
        rows = conn.execute(text(
            "SELECT c.relname, c.relrowsecurity,"
            "  (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies,"
            "  EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = 'change_log')"
            "    AS history"
            " FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'org_path'"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'p') AND n.nspname = 'public'"
        )).all()
    tables = {row.relname: row for row in rows}
    assert set(PROTECTED) <= set(tables)
    for name, row in tables.items():
        assert row.relrowsecurity and row.policies >= 1, f"{name} has no row-level security"
        assert row.history or name in WITHOUT_HISTORY, f"{name} has no change history"


@pytest.mark.parametrize("table", PROTECTED)
def test_no_scope_raises_instead_of_returning_rows(two_grids, table):
    with db.app_engine(two_grids["settings"]).connect() as conn:
        with pytest.raises(DBAPIError) as raised:
            conn.execute(text(f"SELECT * FROM {table}")).all()
    assert raised.value.orig.sqlstate == "42501"
    assert "未设置访问范围" in str(raised.value)


def test_empty_scope_raises(two_grids):
    with db.app_engine(two_grids["settings"]).begin() as conn:
        conn.execute(text("SELECT set_config('app.scope', '', true)"))
        with pytest.raises(ProgrammingError):
            conn.execute(text("SELECT count(*) FROM person")).scalar()


def test_scope_does_not_outlive_its_transaction(two_grids):
    settings, user = two_grids["settings"], two_grids["user"]
    with scoped_connection(settings, user) as conn:
        assert conn.execute(text("SELECT count(*) FROM person")).scalar() == 1
        assert conn.execute(text("SELECT current_setting('app.scope')")).scalar() == user.scope_path
    # The pool hands the same connection back; the scope must be gone with the transaction.
    with db.app_engine(settings).connect() as conn:
        assert conn.execute(text("SELECT current_setting('app.scope', true)")).scalar() in ("", None)
        with pytest.raises(ProgrammingError):
            conn.execute(text("SELECT count(*) FROM person")).scalar()


def test_orm_session_is_scoped_in_every_transaction(two_grids):
    settings, user = two_grids["settings"], two_grids["user"]
    with scoped_session(settings, user) as session:
        assert session.scalars(select(Person.id)).all() == [two_grids["persons"][0]]
        session.commit()  # the next query begins a new transaction: scoped again
        assert session.scalars(select(Person.name)).all() == ["网格1居民"]


def test_ancestors_are_visible_but_not_writable(two_grids):
    settings, user = two_grids["settings"], two_grids["user"]
    with scoped_connection(settings, user) as conn:
        names = conn.execute(text("SELECT level FROM territory_unit ORDER BY path")).scalars().all()
        assert names == ["province", "city", "district", "street", "community", "grid"]  # not the other grid
        renamed = conn.execute(text("UPDATE territory_unit SET name = '改名' WHERE level = 'district'"))
        assert renamed.rowcount == 0
    with pytest.raises(DBAPIError):  # a new unit beside the user's grid: outside the scope
        with scoped_connection(settings, user) as conn:
            conn.execute(text(
                "INSERT INTO territory_unit (level, code, name, parent_id) VALUES ('grid', '320106001001009',"
                " '新网格', :parent)"), {"parent": two_grids["community"].id})


def test_cannot_write_into_another_grid(two_grids):
    settings, user = two_grids["settings"], two_grids["user"]
    other_grid = two_grids["grids"][1]
    with pytest.raises(DBAPIError, match="不存在"):  # the other grid is invisible: no parent row
        with scoped_connection(settings, user) as conn:
            add_building(conn, other_grid)
    with pytest.raises(DBAPIError, match="row-level security"):
        with scoped_connection(settings, user) as conn:
            conn.execute(text("UPDATE person SET org_path = CAST(:p AS ltree)"), {"p": other_grid.path})
    with scoped_connection(settings, user) as conn:
        deleted = conn.execute(text("DELETE FROM residence WHERE person_id = :id"),
                               {"id": two_grids["persons"][1]})
        assert deleted.rowcount == 0


def test_figures_views_count_only_what_the_reader_sees(two_grids):
    settings, user = two_grids["settings"], two_grids["user"]
    with scoped_connection(settings, user) as conn:
        grids = conn.execute(text("SELECT grid_id, person_count FROM grid_figures")).all()
        buildings = conn.execute(text("SELECT sum(person_count) FROM building_figures")).scalar()
    assert grids == [(two_grids["grids"][0].id, 1)]
    assert buildings == 1


def test_change_history_is_masked_scoped_and_skips_the_owner(two_grids):
    settings, user = two_grids["settings"], two_grids["user"]
    person_id = two_grids["persons"][0]
    with db.owner_engine(settings).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM change_log")).scalar() == 0  # the loads above
    with scoped_connection(settings, user) as conn:
        conn.execute(text("UPDATE person SET phone = '13812348000', id_number = '110101199003071234'"
                          " WHERE id = :id"), {"id": person_id})
        history = conn.execute(text(
            "SELECT table_name, row_id, op, user_id, before, after FROM change_log")).one()
    assert history.table_name == "person" and history.row_id == str(person_id) and history.op == "update"
    assert history.user_id == user.id
    assert history.after == {"phone": "138****8000", "id_number": "110101********1234"}
    assert "*" in history.before["phone"] and "*" in history.before["id_number"]
    # Someone in the other grid does not see this grid's history.
    with scoped_connection(settings, as_user(999, two_grids["grids"][1].path)) as conn:
        assert conn.execute(text("SELECT count(*) FROM change_log")).scalar() == 0


# ---------------------------------------------------------------- the property test

@st.composite
def worlds(draw):
    """Streets → communities → grids (each grid: how many residents), and the units users are scoped to."""
    streets = draw(st.lists(
        st.lists(st.lists(st.integers(0, 3), min_size=1, max_size=2), min_size=1, max_size=2),
        min_size=1, max_size=3,
    ))
    scopes = draw(st.lists(st.integers(0, 10_000), min_size=1, max_size=3))
    return streets, scopes


def _build(conn, streets):
    district = add_district(conn)
    units, residents = [district], {}  # residents: person id -> grid path
    for s, communities in enumerate(streets, 1):
        street = add_unit(conn, "street", f"320106{s:03d}", parent=district)
        units.append(street)
        for c, grids in enumerate(communities, 1):
            community = add_unit(conn, "community", f"{street.path.split('.')[-1]}{c:03d}", parent=street)
            units.append(community)
            for g, people in enumerate(grids, 1):
                grid = add_unit(conn, "grid", f"{community.path.split('.')[-1]}{g:03d}", parent=community)
                units.append(grid)
                house = add_house(conn, add_building(conn, grid))
                for _ in range(people):
                    residents[add_person(conn, house)] = grid.path
    return units, residents


def _inside(path: str, scope: str) -> bool:
    return path == scope or path.startswith(scope + ".")


@hypothesis_settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world=worlds())
def test_every_path_returns_exactly_the_subtree(fresh_db, world):
    streets, scope_picks = world
    settings = fresh_db
    wipe(settings)
    with db.owner_engine(settings).begin() as conn:
        units, residents = _build(conn, streets)
        accounts = []
        for i, pick in enumerate(scope_picks):
            unit = units[pick % len(units)]
            accounts.append((add_user(conn, f"user{i}", "community_staff", unit), f"user{i}", unit.path))
    client = client_for(settings)
    for user_id, username, scope in accounts:
        expected = {pid for pid, path in residents.items() if _inside(path, scope)}
        user = as_user(user_id, scope)

        with scoped_session(settings, user) as session:
            assert set(session.scalars(select(Person.id))) == expected, "ORM"

        with scoped_connection(settings, user) as conn:
            assert set(conn.execute(text("SELECT id FROM person")).scalars()) == expected, "raw SQL"
            houses = conn.execute(text("SELECT org_path::text FROM house")).scalars().all()
            assert all(_inside(path, scope) for path in houses)
            visible_grids = set(conn.execute(text(
                "SELECT path::text FROM territory_unit WHERE level = 'grid'")).scalars())
            grids = {u.path for u in units if u.path.count(".") == 5}
            assert visible_grids == {path for path in grids if _inside(path, scope)}

        headers = bearer(client, username)
        seen, offset = set(), 0
        while True:
            page = client.get("/api/v1/people", params={"limit": 7, "offset": offset}, headers=headers).json()
            seen |= {item["id"] for item in page["items"]}
            offset += 7
            if offset >= page["total"]:
                break
        assert page["total"] == len(expected) and seen == expected, "API"

        token = headers["Authorization"].split()[1]
        frame = notebook.connect(token=token, settings=settings).read("person")
        assert set(frame["id"]) == expected, "notebook API"


def test_a_bounding_box_query_under_rls_can_use_the_footprint_index(two_grids):
    """PostGIS's ``&&`` is not declared leakproof, so under row-level security PostgreSQL would not use it
    as an index condition ahead of the policy: the app role read its whole territory and tested each
    footprint. ``db up`` declares the box operators leakproof; the plan must probe the footprint index."""
    from gis.cluster import LEAKPROOF_BOX_OPERATORS

    with scoped_connection(two_grids["settings"], two_grids["user"]) as conn:
        marked = conn.execute(text(
            "SELECT bool_and(proleakproof) FROM pg_proc WHERE oid = ANY(CAST(:f AS regprocedure[]))"),
            {"f": list(LEAKPROOF_BOX_OPERATORS)}).scalar()
        conn.execute(text("SET LOCAL enable_seqscan = off"))  # a two-row table would be read whole anyway
        plan = "\n".join(conn.execute(text(
            "EXPLAIN SELECT id FROM building "
            "WHERE footprint && ST_MakeEnvelope(118.7, 32.0, 118.8, 32.1, 4490)")).scalars())
    index_conditions = [line for line in plan.splitlines() if "Index Cond" in line or "Recheck Cond" in line]
    assert any("footprint &&" in line for line in index_conditions), plan
    assert marked
