"""Statistics on a small hand-made data set (the tiny territory of tests/ui/support.py): every figure
equals what was counted by hand, follows the viewer's scope, and the special-population figure leaves
out the categories the viewer may not see.

    district 鼓楼区 ─ 宁海路街道 (west) ─ 仙霞路社区 ─ grids 1, 2
                   └ 华侨路街道 (east) ─ 慈悲社社区 ─ grid 3
"""

from __future__ import annotations

import datetime as dt
import io

import pytest
from openpyxl import load_workbook
from sqlalchemy import text

from gis import db
from gis.security import roles
from gis.security.scope import scoped_connection
from gis.security.sessions import CurrentUser
from layers import statistics
from layers.events.calendar import BEIJING
from tests.access_helpers import PASSWORD
from tests.patrol_helpers import insert_event
from tests.ui.support import GRIDS, insert_territory

WEST, EAST = "320106.320106001", "320106.320106002"
G1, G2, G3 = (f"{WEST}.320106001003.{GRIDS[0][0]}", f"{WEST}.320106001003.{GRIDS[1][0]}",
              f"{EAST}.320106002002.{GRIDS[2][0]}")
START, END = dt.date(2026, 9, 1), dt.date(2026, 10, 31)


def _user(conn, username: str, role: str, scope: str) -> CurrentUser:
    from gis.security import users
    uid = users.upsert_user(conn, username, PASSWORD, role, scope, username)
    return CurrentUser(uid, username, username, role, scope, None, roles.ROLES[role].permissions)


def _person(conn, name: str, org_path: str, *, deleted: bool = False) -> int:
    return conn.execute(text(
        "INSERT INTO person (name, sex, birth_date, org_path, district_code, deleted_at)"
        " VALUES (:n, '1', DATE '1980-01-01', CAST(:p AS ltree), '320106', :d) RETURNING id"),
        {"n": name, "p": org_path, "d": dt.datetime.now(dt.UTC) if deleted else None}).scalar_one()


def _house(conn, grid_code: str, room: str, *, rented: bool = False, resident: int | None = None) -> None:
    house = conn.execute(text(
        "INSERT INTO house (building_id, floor, room_no, is_rented)"
        " SELECT b.id, 1, :room, :rented FROM building b JOIN territory_unit g ON g.id = b.grid_id"
        " WHERE g.code = :g LIMIT 1 RETURNING id"),
        {"room": room, "rented": rented, "g": grid_code}).scalar_one()
    if resident:
        conn.execute(text("INSERT INTO residence (person_id, house_id, relation) VALUES (:p, :h, '01')"),
                     {"p": resident, "h": house})


def _event(settings, title: str, grid: str, type_: str, status: str, at: dt.datetime) -> None:
    event_id = insert_event(settings, title, grid=grid, status=status)
    with db.owner_engine(settings).begin() as conn:
        conn.execute(text("UPDATE event SET type = :t, reported_at = :at WHERE id = :id"),
                     {"t": type_, "at": at, "id": event_id})


@pytest.fixture(scope="module")
def world(fresh_db):
    insert_territory(fresh_db)      # 3 people in grid 2 (one deceased); 2 empty houses in grid 2's building
    with db.owner_engine(fresh_db).begin() as conn:
        people = [_person(conn, f"东{i}", G3) for i in range(3)]
        _person(conn, "东已删", G3, deleted=True)
        _person(conn, "区直属", "320106")
        conn.execute(text(
            "INSERT INTO building (grid_id, name, floors, footprint) SELECT id, '东1幢', 6,"
            " ST_MakeEnvelope(118.757, 32.08, 118.7575, 32.0805, 4490) FROM territory_unit WHERE code = :g"),
            {"g": GRIDS[2][0]})
        _house(conn, GRIDS[2][0], "101", resident=people[0])
        _house(conn, GRIDS[2][0], "102", rented=True, resident=people[1])
        _house(conn, GRIDS[2][0], "103", rented=True)
        # teams: west 2 in service (10 + 5), east 1 in service (7) and 1 dissolved
        teams = (("西队1", "320106001", 10, None), ("西队2", "320106001", 5, None),
                 ("东队1", "320106002", 7, None), ("东队旧", "320106002", 9, "2025-01-01"))
        for name, code, strength, dissolved in teams:
            org = conn.execute(text(
                "INSERT INTO zz_org (name, level, area_id, org_path, district_code)"
                " SELECT :n || '组织', 'street', id, path, '320106' FROM territory_unit WHERE code = :c"
                " RETURNING id, org_path::text"), {"n": name, "c": code}).one()
            conn.execute(text(
                "INSERT INTO zz_team (name, org_id, member_count, status, dissolved_on, org_path,"
                " district_code) VALUES (:n, :o, :m, '1', CAST(:d AS date), CAST(:p AS ltree), '320106')"),
                {"n": name, "o": org[0], "m": strength, "d": dissolved, "p": org[1]})
        mass_org = conn.execute(text(
            "INSERT INTO mass_org (name, org_id, org_path, district_code)"
            " SELECT '东巡逻队', id, org_path, '320106' FROM zz_org WHERE name = '东队1组织'"
            " RETURNING id")).scalar_one()
        for name, path in (("队员1", G3), ("队员2", G3), ("队员3", EAST), ("队员4", G1)):
            conn.execute(text(
                "INSERT INTO mass_team_member (mass_org_id, name, org_path, district_code)"
                " VALUES (:o, :n, CAST(:p AS ltree), '320106')"), {"o": mass_org, "n": name, "p": path})
        # special populations: 2 community corrections in the west, 1 drug user in the east (+1 deleted)
        west_people = [r[0] for r in conn.execute(text(
            "SELECT id FROM person WHERE org_path = CAST(:p AS ltree) AND died_on IS NULL"), {"p": G2})]
        for person in west_people:
            conn.execute(text("INSERT INTO community_correction (person_id, org_path, district_code)"
                              " VALUES (:p, CAST(:g AS ltree), '320106')"), {"p": person, "g": G2})
        conn.execute(text("INSERT INTO drug_user (person_id, org_path, district_code) VALUES"
                          " (:a, CAST(:g AS ltree), '320106'), (:b, CAST(:g AS ltree), '320106')"),
                     {"a": people[0], "b": people[1], "g": G3})
        conn.execute(text("UPDATE drug_user SET deleted_at = now() WHERE person_id = :b"), {"b": people[1]})
        commander = _user(conn, "stat_cmd", "district_commander", "320106")
        worker = _user(conn, "stat_wg", "grid_worker", "320106")
        east = _user(conn, "stat_east", "street_staff", EAST)
    at = lambda *a: dt.datetime(*a, tzinfo=BEIJING)   # noqa: E731
    _event(fresh_db, "九月纠纷", GRIDS[1][0], "0101", "closed", at(2026, 9, 10, 9))
    _event(fresh_db, "十月纠纷", GRIDS[1][0], "0102", "reported", at(2026, 10, 5, 9))
    _event(fresh_db, "东片事件", GRIDS[2][0], "0201", "evaluated", at(2026, 10, 20, 9))
    _event(fresh_db, "已取消", GRIDS[2][0], "0201", "cancelled", at(2026, 10, 21, 9))
    _event(fresh_db, "月末深夜", GRIDS[0][0], "0301", "handling", at(2026, 10, 31, 23, 30))   # UTC: the 31st
    _event(fresh_db, "十一月", GRIDS[0][0], "0301", "reported", at(2026, 11, 1, 0, 30))      # UTC: Oct 31st
    return {"settings": fresh_db, "commander": commander, "worker": worker, "east": east}


def figures(world, who: str, path: str = "320106"):
    user = world[who]
    with scoped_connection(world["settings"], user) as conn:
        return {f.key: f for f in statistics.all_figures(conn, path, user, START, END)}


def by_name(figure, *columns):
    return {r["name"]: tuple(r[c] for c in columns) if len(columns) > 1 else r[columns[0]]
            for r in figure.rows}


def test_population_by_area_and_drill_down(world):
    f = figures(world, "commander")
    assert by_name(f["population"], "people") == {"宁海路街道": 2, "华侨路街道": 3, "本级直属": 1}
    down = figures(world, "commander", WEST)["population"]
    assert by_name(down, "people") == {"仙霞路社区居委会": 2}
    grids = figures(world, "commander", f"{WEST}.320106001003")["population"]
    assert by_name(grids, "people") == {GRIDS[0][1]: 0, GRIDS[1][1]: 2}


def test_teams_by_area(world):
    f = figures(world, "commander")["teams"]
    assert by_name(f, "teams", "team_strength", "mass_members") == {
        "宁海路街道": (2, 15, 1), "华侨路街道": (1, 7, 3)}


def test_special_populations_only_permitted_categories(world):
    commander = figures(world, "commander")["special"]
    assert by_name(commander, "community_correction", "drug_user") == {
        "宁海路街道": (2, 0), "华侨路街道": (0, 1)}
    worker = figures(world, "worker")["special"]
    keys = [k for k, _ in worker.columns]
    assert "drug_user" not in keys and "mental_patient" not in keys
    assert "community_correction" in keys and worker.values == [k for k in keys if k != "name"]
    assert all("drug_user" not in r for r in worker.rows)
    assert by_name(worker, "community_correction") == {"宁海路街道": 2, "华侨路街道": 0}


def test_events_by_type_month_and_closure(world):
    f = figures(world, "commander")
    assert by_name(f["events_by_type"], "events") == {"矛盾纠纷": 2, **{
        r["name"]: r["events"] for r in f["events_by_type"].rows if r["code"] in ("02", "03")}}
    assert {r["code"]: r["events"] for r in f["events_by_type"].rows} == {"01": 2, "02": 1, "03": 1}
    assert by_name(f["events_by_month"], "events", "closed") == {"2026-09": (1, 1), "2026-10": (3, 1)}
    closure = f["closure"]
    assert [r["name"] for r in closure.rows] == ["华侨路街道", "宁海路街道"]
    assert by_name(closure, "events", "closed", "rate") == {
        "华侨路街道": (1, 1, 1.0), "宁海路街道": (3, 1, 0.333)}


def test_houses_by_use(world):
    f = figures(world, "commander")["houses"]
    # grid 2: two houses nobody lives in; grid 3: one lived in, two rented (one with a tenant)
    assert by_name(f, "houses") == {"自住": 1, "出租": 2, "空置": 2}
    assert by_name(figures(world, "commander", EAST)["houses"], "houses") == {"自住": 1, "出租": 2, "空置": 0}


def test_scope_is_followed(world):
    f = figures(world, "east", EAST)
    assert by_name(f["population"], "people") == {"慈悲社社区居委会": 3}
    assert {r["code"]: r["events"] for r in f["events_by_type"].rows} == {"02": 1}
    # the district seen from the east street: the west street and the district's own rows are not
    # there at all (row-level security); the page refuses such an area anyway
    wide = figures(world, "east", "320106")
    assert by_name(wide["population"], "people") == {"华侨路街道": 3}
    with pytest.raises(statistics.StatisticsError):
        statistics.check_area("320106", EAST)
    assert statistics.check_area(f"{EAST}.320106002002", EAST) == f"{EAST}.320106002002"


def test_xlsx_has_the_table(world):
    f = figures(world, "commander")["teams"]
    sheet = load_workbook(io.BytesIO(f.xlsx())).active
    rows = list(sheet.values)
    assert rows[0] == ("区域", "综治队伍数", "综治队伍人数", "群防群治队员数")
    assert ("宁海路街道", 2, 15, 1) in rows
