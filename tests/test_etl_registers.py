"""Person registers from Excel and GBK CSV: a bad check digit, a duplicate and an unknown address refuse
the whole file with exactly those rows reported; ``skip_bad`` loads the rest; a connection cut in the
middle of a load leaves the database as it was."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import text

from etl import registers
from etl.registers import (RegisterLoadError, RegisterOptions, load_register, map_headers, outside_district,
                           parse_address)
from gis import cluster, db
from gis.validation import make_id_number
from layers.registries import REGISTRIES
from tests.access_helpers import add_district, add_unit, wipe

HEADER = ["序号", "姓名", "性别", "公民身份号码", "出生日期", "手机号", "民族", "居住地址", "备注"]
GOOD_1 = make_id_number("320106", dt.date(1985, 4, 12), 11, "1")
GOOD_2 = make_id_number("320106", dt.date(1992, 9, 30), 22, "2")
GOOD_3 = make_id_number("320102", dt.date(1966, 2, 8), 33, "1")
GOOD_4 = make_id_number("320102", dt.date(1970, 1, 5), 55, "1")
BAD_CHECK = GOOD_2[:17] + ("0" if GOOD_2[17] != "0" else "1")
FRESH = make_id_number("320106", dt.date(2001, 6, 1), 44, "2")


def register_rows():
    """Spreadsheet rows 3..8 (a title line, then the header); rows 5, 6 and 7 are bad."""
    return [
        [1, "张三", "男", GOOD_1, dt.datetime(1985, 4, 12), "13912345678", "汉族",
         "山西路小区3幢2单元502室", ""],
        [2, "李梅", "女", GOOD_2, None, "025-83123456", "01", "鼓楼区山西路小区 3栋 2单元501室", "户主之妻"],
        [3, "王五", "男", BAD_CHECK, None, "", "汉族", "山西路小区3幢1单元101室", "校验位错"],
        [4, "张三", "男", GOOD_1, None, "", "汉族", "山西路小区3幢2单元502室", "重复登记"],
        [5, "赵六", "男", GOOD_3, None, "", "汉族", "山西路小区9幢1单元101室", "没有9幢"],
        [6, "钱七", "", GOOD_4, "1970-01-05", "", "", "江苏省南京市鼓楼区山西路小区3号楼1单元101室", ""],
    ]


def write_xlsx(path, rows, title=True):
    book = Workbook()
    sheet = book.active
    if title:
        sheet.append(["鼓楼区实有人口登记表"])  # a title line above the header, as offices do
    sheet.append(HEADER)
    for row in rows:
        sheet.append(row)
    book.save(path)


@pytest.fixture(scope="module")
def houses(fresh_db):
    wipe(fresh_db)
    with db.owner_engine(fresh_db).begin() as conn:
        district = add_district(conn)
        street = add_unit(conn, "street", "320106001", "宁海路街道", district)
        community = add_unit(conn, "community", "320106001001", "山西路社区", street)
        grid = add_unit(conn, "grid", "320106001001001", "山西路第一网格", community)
        compound = conn.execute(text(
            "INSERT INTO compound (grid_id, name) VALUES (:g, '山西路小区') RETURNING "
            "id"), {"g": grid.id}).scalar()
        building = conn.execute(text(
            "INSERT INTO building (compound_id, grid_id, name, floors, units, footprint) VALUES (:c, :g, "
            "'3幢', 6, 2, "
            "ST_MakeEnvelope(118.77, 32.06, 118.7705, 32.0605, 4490)) RETURNING id"),
            {"c": compound, "g": grid.id}).scalar()
        ids = {}
        for unit, floor, room in ((1, 1, "1-101"), (2, 5, "2-501"), (2, 5, "2-502")):
            ids[room] = conn.execute(text(
                "INSERT INTO house (building_id, unit_no, floor, room_no) VALUES (:b, :u, :f, :r) "
                "RETURNING id"),
                {"b": building, "u": unit, "f": floor, "r": room}).scalar()
    return {"grid_path": grid.path, **ids}


def counts(settings) -> tuple[int, int, int]:
    with db.owner_engine(settings).connect() as conn:
        return conn.execute(text("SELECT (SELECT count(*) FROM person), (SELECT count(*) FROM residence), "
                                 "(SELECT count(*) FROM change_log)")).one()


def test_headers_and_addresses():
    mapping, unmapped = map_headers(HEADER, REGISTRIES["person"])
    assert mapping == {1: "name", 2: "sex", 3: "id_number", 4: "birth_date", 5: "phone", 6: "ethnicity",
                       7: "@address"}
    assert unmapped == ["序号", "备注"]
    assert parse_address("鼓楼区山西路小区 3栋 2单元501室") == {
        "compound": "山西路小区", "building": "3", "unit": "2", "floor": None, "room": "501"}
    assert parse_address("随便写写") is None


def test_addresses_in_another_district_are_named():
    assert outside_district("上海市黄浦区南京东路1号", "320106") == "上海市黄浦区"
    assert outside_district("江苏省苏州市姑苏区观前街1号", "320106") == "江苏省苏州市姑苏区"
    # 鼓楼区 is also in Fuzhou, Xuzhou and Kaifeng: without a city it is ours; 山西路 is a road, not 山西省.
    for ours in ("鼓楼区山西路小区3幢2单元502室", "南京市鼓楼区山西路小区3幢", "山西路小区3幢2单元502室"):
        assert outside_district(ours, "320106") is None, ours
    assert outside_district("福建省福州市鼓楼区五四路1号", "320106") == "福建省福州市鼓楼区"


def test_bad_rows_refuse_the_whole_register_with_exactly_those_rows(houses, fresh_db, tmp_path):
    path = tmp_path / "人口.xlsx"
    write_xlsx(path, register_rows())
    before = counts(fresh_db)

    report = load_register(fresh_db, "person", path)

    assert report.outcome == "refused"
    assert report.rows == 6 and report.good == 3, report.errors
    assert report.bad_rows == [5, 6, 7]  # the title line is row 1, the header row 2
    reasons = {e.row: (e.column, e.reason) for e in report.errors}
    assert reasons[5][0] == "公民身份号码" and "校验位" in reasons[5][1]
    assert reasons[6][0] == "公民身份号码" and "第 3 行重复" in reasons[6][1]
    assert reasons[7][0] == "居住地址" and "未能匹配" in reasons[7][1]
    assert counts(fresh_db) == before

    workbook = tmp_path / "errors.xlsx"
    report.write_workbook(workbook)
    sheet = load_workbook(workbook).worksheets[0]
    lines = list(sheet.iter_rows(values_only=True))
    assert lines[0] == ("行号", "列", "填写的值", "原因")
    assert [line[0] for line in lines[1:]] == [5, 6, 7]


def test_skip_bad_loads_the_rest_into_their_houses(houses, fresh_db, tmp_path):
    path = tmp_path / "人口.xlsx"
    write_xlsx(path, register_rows())

    report = load_register(fresh_db, "person", path, RegisterOptions(skip_bad=True))

    assert report.outcome == "loaded"
    assert report.written == {"people": 3, "residences": 3}
    assert report.bad_rows == [5, 6, 7]
    with db.owner_engine(fresh_db).connect() as conn:
        people = conn.execute(text(
            "SELECT p.name, p.sex, p.birth_date, p.ethnicity, p.phone, h.room_no, p.org_path::text "
            "FROM person p JOIN residence r ON r.person_id = p.id AND r.until IS NULL "
            "JOIN house h ON h.id = r.house_id ORDER BY p.name")).all()
    ethnic_han = people[0][3]
    assert [(p[0], p[1], p[5]) for p in people] == [("张三", "1", "2-502"), ("李梅", "2", "2-501"),
                                                      ("钱七", "1", "1-101")]
    assert people[2][2] == dt.date(1970, 1, 5)     # sex and birth date read from the ID number
    assert ethnic_han == "01" and people[1][3] == "01"   # 汉族 by its name, 01 by its code
    assert people[0][4] == "13912345678"
    assert {p[6] for p in people} == {houses["grid_path"]}

    # Loading the same file again: every good row is now a duplicate of the database.
    again = load_register(fresh_db, "person", path)
    assert again.outcome == "refused"
    assert {e.row for e in again.errors if "库中已有" in e.reason} == {3, 4, 8}


def test_a_load_cut_off_in_the_middle_leaves_the_database_as_it_was(houses, fresh_db, tmp_path):
    path = tmp_path / "new.csv"
    lines = [",".join(HEADER), f"1,孙八,女,{FRESH},,,汉族,山西路小区3幢2单元501室,"]
    path.write_bytes("\n".join(lines).encode("gbk"))
    before = counts(fresh_db)
    with db.owner_engine(fresh_db).connect() as conn:
        loads_before = conn.execute(text("SELECT count(*) FROM data_load")).scalar()

    def cut(conn: psycopg.Connection) -> None:
        with psycopg.connect(db.libpq_dsn(db.owner_url(fresh_db)), autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))

    with pytest.raises(psycopg.Error):
        load_register(fresh_db, "person", path, RegisterOptions(mid_load=cut))

    assert counts(fresh_db) == before
    with db.owner_engine(fresh_db).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM data_load")).scalar() == loads_before

    # The same GBK file, uncut, through the command line.
    from typer.testing import CliRunner

    from gis.cli import app

    env = {"GRIDGOV_VAR_DIR": str(fresh_db.var_dir), "GRIDGOV_PG_PORT": str(fresh_db.pg_port),
           "GRIDGOV_PG_DATABASE": fresh_db.pg_database}
    result = CliRunner().invoke(app, ["etl", "register", "person", str(path)], env=env)
    assert result.exit_code == 0, result.output
    assert counts(fresh_db)[0] == before[0] + 1
    with db.owner_engine(fresh_db).connect() as conn:
        assert conn.execute(text("SELECT name FROM person WHERE id_number = "
                                 ":n"), {"n": FRESH}).scalar() == "孙八"


def add_house(settings, room: str, unit: int) -> int:
    with db.owner_engine(settings).begin() as conn:
        return conn.execute(text(
            "INSERT INTO house (building_id, unit_no, floor, room_no) SELECT id, :u, 1, :r FROM building "
            "WHERE name = '3幢' RETURNING id"), {"u": unit, "r": room}).scalar()


def test_a_house_has_one_household_head(houses, fresh_db, tmp_path):
    """Two heads for one house in a file, or a head for a house that has one, are the rows' errors (the
    database's unique index would otherwise refuse the whole COPY with no row named)."""
    house = add_house(fresh_db, "1-102", 1)
    people = [make_id_number("320106", dt.date(1980, 3, d), 60 + d, "1") for d in (1, 2, 3)]
    header = ["姓名", "公民身份号码", "与户主关系", "居住地址"]
    first = tmp_path / "户主.csv"
    write_csv(first, [header, ["周一", people[0], "户主", "山西路小区3幢1单元102室"],
                      ["周二", people[1], "02", "山西路小区3幢1单元102室"]])

    refused = load_register(fresh_db, "person", first)
    assert refused.outcome == "refused" and refused.bad_rows == [3]
    assert refused.errors[0].column == "与户主关系"
    assert "与第 2 行是同一房屋的户主" in refused.errors[0].reason
    loaded = load_register(fresh_db, "person", first, RegisterOptions(skip_bad=True))
    assert loaded.written == {"people": 1, "residences": 1}

    second = tmp_path / "又一户主.csv"
    write_csv(second, [header, ["周三", people[2], "户主", "山西路小区3幢1单元102室"]])
    again = load_register(fresh_db, "person", second)
    assert again.bad_rows == [2] and "该房屋已登记户主" in again.errors[0].reason
    with db.owner_engine(fresh_db).connect() as conn:
        heads = conn.execute(text("SELECT p.name FROM residence r JOIN person p ON p.id = r.person_id "
                                  "WHERE r.house_id = :h AND r.is_head AND r.until IS NULL"),
                             {"h": house}).scalars().all()
    assert heads == ["周一"]


def test_residences_are_copied_with_their_keys_checked_as_one_set(houses, fresh_db, tmp_path):
    """The loader may skip the per-row foreign-key triggers (``gridgov db up`` grants the owner
    ``session_replication_role``) because it checks the keys itself: a matched house deleted while the
    people are being copied refuses the load, and nothing is left behind. Without the grant the same
    load goes through the ordinary triggers."""
    with db.owner_engine(fresh_db).connect() as conn:
        assert conn.execute(text("SELECT has_parameter_privilege('session_replication_role', 'SET')")
                            ).scalar()
    with psycopg.connect(db.libpq_dsn(db.owner_url(fresh_db)), autocommit=True) as conn:
        writer = registers._PeopleWriter(conn, REGISTRIES["person"], {0: "name"}, None)
        assert writer.skip_triggers  # every insert trigger of residence is one the writer stands in for
    house = add_house(fresh_db, "2-601", 2)
    number = make_id_number("320106", dt.date(1990, 7, 7), 77, "2")
    path = tmp_path / "新房.csv"
    write_csv(path, [["姓名", "公民身份号码", "居住地址"], ["吴九", number, "山西路小区3幢2单元601室"]])
    before = counts(fresh_db)

    def delete_the_house(conn: psycopg.Connection) -> None:
        with db.owner_engine(fresh_db).begin() as other:
            other.execute(text("DELETE FROM house WHERE id = :h"), {"h": house})

    with pytest.raises(RegisterLoadError, match="有房屋被删除"):
        load_register(fresh_db, "person", path, RegisterOptions(mid_load=delete_the_house))
    assert counts(fresh_db) == before

    add_house(fresh_db, "2-601", 2)
    cluster._psql_super(fresh_db, "REVOKE SET ON PARAMETER session_replication_role FROM "
                                  f"{fresh_db.owner_role}")
    try:
        report = load_register(fresh_db, "person", path)
    finally:
        cluster._psql_super(fresh_db, "GRANT SET ON PARAMETER session_replication_role TO "
                                      f"{fresh_db.owner_role}")
    assert report.outcome == "loaded" and report.written == {"people": 1, "residences": 1}
    with db.owner_engine(fresh_db).connect() as conn:
        placed = conn.execute(text(
            "SELECT h.room_no, p.org_path::text = h.org_path::text FROM person p JOIN residence r "
            "ON r.person_id = p.id AND r.until IS NULL JOIN house h ON h.id = r.house_id "
            "WHERE p.id_number = :n"), {"n": number}).one()
    assert tuple(placed) == ("2-601", True)


def test_a_register_is_written_chunk_by_chunk_and_still_all_or_nothing(houses, fresh_db, tmp_path,
                                                                       monkeypatch):
    """Chunks of two rows: the first chunks are already written when the last one's bad row is read, and
    the file is still refused whole; with ``skip_bad`` every good row is in its own house."""
    monkeypatch.setattr(registers, "CHUNK_ROWS", 2)
    rooms = [add_house(fresh_db, f"1-8{k:02d}", 1) for k in range(1, 6)]
    people = [make_id_number("320106", dt.date(1975, 5, k), 80 + k, "1") for k in range(1, 6)]
    rows = [[f"分{k}", people[k], f"山西路小区3幢1单元8{k + 1:02d}室"] for k in range(5)]
    rows[4][2] = "山西路小区3幢1单元899室"  # no such door
    path = tmp_path / "分块.csv"
    write_csv(path, [["姓名", "公民身份号码", "居住地址"], *rows])
    before = counts(fresh_db)
    seen = []

    refused = load_register(fresh_db, "person", path, RegisterOptions(mid_load=seen.append))
    assert refused.outcome == "refused" and refused.bad_rows == [6]
    assert seen, "the first chunk was on its way before the bad row was read"
    assert counts(fresh_db) == before

    loaded = load_register(fresh_db, "person", path, RegisterOptions(skip_bad=True))
    assert loaded.written == {"people": 4, "residences": 4} and loaded.bad_rows == [6]
    with db.owner_engine(fresh_db).connect() as conn:
        placed = dict(conn.execute(text(
            "SELECT p.id_number, r.house_id FROM person p JOIN residence r ON r.person_id = p.id "
            "AND r.until IS NULL WHERE p.id_number = ANY(:n)"), {"n": people}).all())
    assert placed == dict(zip(people[:4], rooms[:4], strict=True))


# ---------------------------------------------------------------- registries other than the person ones
def write_csv(path, rows, encoding="gbk"):
    path.write_bytes("\n".join(",".join(str(c) for c in row) for row in rows).encode(encoding))


def records(settings, table: str) -> list:
    with db.owner_engine(settings).connect() as conn:
        return conn.execute(text(f"SELECT * FROM {table} WHERE deleted_at IS NULL ORDER BY id")
                            ).mappings().all()


def test_an_enterprise_register_is_placed_at_its_buildings(houses, fresh_db, tmp_path):
    """Organisations go through the registry service: codes by name, the building named by the address
    gives the point and the grid; a bad code refuses the file whole, --skip-bad keeps the rest."""
    path = tmp_path / "企业.csv"
    rows = [["企业名称", "企业类别", "企业地址", "法人姓名", "安全隐患类型"],
            ["南京鼓楼山西路便利店", "个体工商户", "鼓楼区山西路小区3幢", "周一", "无"],
            ["金陵快递服务部", "1", "山西路小区3栋一楼", "吴二", "消防隐患"],
            ["无名商行", "国营", "山西路小区3幢", "郑三", "无"]]     # row 4: no such category
    write_csv(path, rows)
    refused = load_register(fresh_db, "private_enterprise", path)
    assert refused.outcome == "refused" and refused.bad_rows == [4]
    assert refused.errors[0].column == "企业类别" and "代码表" in refused.errors[0].reason
    assert records(fresh_db, "private_enterprise") == []

    loaded = load_register(fresh_db, "private_enterprise", path, RegisterOptions(skip_bad=True))
    assert (loaded.outcome, loaded.written) == ("loaded", {"records": 2})
    saved = records(fresh_db, "private_enterprise")
    assert [(r["name"], r["category"], r["hazard_type"]) for r in saved] == [
        ("南京鼓楼山西路便利店", "2", "0"), ("金陵快递服务部", "1", "1")]
    assert {str(r["org_path"]) for r in saved} == {houses["grid_path"]}
    with db.owner_engine(fresh_db).connect() as conn:
        inside = conn.execute(text(
            "SELECT bool_and(ST_Covers(b.footprint, e.geom)) FROM private_enterprise e, building b "
            "WHERE b.name = '3幢'")).scalar()
    assert inside  # at the building's point


def test_a_special_population_register_links_registered_people(houses, fresh_db, tmp_path):
    """A 吸毒人员 record names its person by ID number: an unregistered number is the row's error, the same
    person twice in a file is a duplicate, and a person already in the category is refused by the
    registry's own uniqueness."""
    with db.owner_engine(fresh_db).begin() as conn:
        person = conn.execute(text(
            "INSERT INTO person (name, sex, id_number, birth_date, org_path, district_code) "
            "VALUES ('孙八', '1', :id, '1980-03-03', CAST(:path AS ltree), '320106') RETURNING id"),
            {"id": make_id_number("320106", dt.date(1980, 3, 3), 77, "1"), "path": houses["grid_path"]}
        ).scalar()
    known = make_id_number("320106", dt.date(1980, 3, 3), 77, "1")
    stranger = make_id_number("320106", dt.date(1990, 1, 1), 88, "1")
    path = tmp_path / "吸毒人员.xlsx"
    book = Workbook()
    sheet = book.active
    for row in (["姓名", "身份证号", "吸毒原因", "戒毒情况"], ["孙八", known, "交友不慎", "社区康复"],
                ["某某", stranger, "", "社区戒毒"], ["孙八", known, "", "社区康复"]):
        sheet.append(row)
    book.save(path)
    report = load_register(fresh_db, "drug_user", path, RegisterOptions(skip_bad=True))
    assert report.outcome == "loaded" and report.bad_rows == [3, 4], report.errors
    reasons = {e.row: e.reason for e in report.errors}
    assert "没有此身份证号" in reasons[3] and "与第 2 行重复" in reasons[4]
    saved = records(fresh_db, "drug_user")
    assert [(r["person_id"], r["rehab_status"], r["cause"]) for r in saved] == [(person, "2", "交友不慎")]
    assert str(saved[0]["org_path"]) == houses["grid_path"]  # the person's territory
    again = load_register(fresh_db, "drug_user", path)
    assert again.outcome == "refused" and "不能重复登记" in {e.row: e.reason for e in again.errors}[2]
    assert len(records(fresh_db, "drug_user")) == 1


def test_a_dry_run_of_a_registry_writes_nothing(houses, fresh_db, tmp_path):
    path = tmp_path / "企业2.csv"
    write_csv(path, [["企业名称", "企业类别", "所属网格"], ["试运行商店", "私营企业", "320106001001001"]],
              encoding="utf-8")
    before = len(records(fresh_db, "private_enterprise"))
    report = load_register(fresh_db, "private_enterprise", path, RegisterOptions(dry_run=True))
    assert (report.outcome, report.good, report.errors) == ("dry_run", 1, [])
    assert len(records(fresh_db, "private_enterprise")) == before
    bad = tmp_path / "企业3.csv"
    write_csv(bad, [["企业名称", "所属网格"], ["某店", "不存在的网格"]], encoding="utf-8")
    refused = load_register(fresh_db, "private_enterprise", bad)
    assert refused.outcome == "refused" and refused.errors[0].column == "所属网格"


def test_a_person_living_in_another_district_is_refused_with_the_region(houses, fresh_db, tmp_path):
    path = tmp_path / "外区.csv"
    write_csv(path, [HEADER[1:4] + ["居住地址"], ["周九", "女", FRESH, "上海市黄浦区南京东路1号101室"]],
              encoding="utf-8")
    report = load_register(fresh_db, "person", path)
    assert report.outcome == "refused"
    assert [(e.row, e.column) for e in report.errors] == [(2, "居住地址")]
    assert "上海市黄浦区" in report.errors[0].reason and "不在本区" in report.errors[0].reason


# ---------------------------------------------------------------- the set-based triggers (migration 0013)
def _people_where(conn, ids: list[int]) -> list[tuple]:
    """Per person (in ``ids`` order): its path, its floating record's path, and its residences as
    (house, until, path) in insertion order."""
    out = []
    for pid in ids:
        person = conn.execute(text("SELECT org_path::text, district_code FROM person WHERE id = :p"),
                              {"p": pid}).one()
        floating = conn.execute(text("SELECT org_path::text FROM person_floating WHERE person_id = :p"),
                                {"p": pid}).scalar_one()
        stays = conn.execute(text("SELECT house_id, until, org_path::text FROM residence "
                                  "WHERE person_id = :p ORDER BY id"), {"p": pid}).all()
        out.append((*person, floating, [tuple(s) for s in stays]))
    return out


def test_bulk_moves_end_as_single_row_moves(houses, fresh_db):
    """The residence → person move and the org_path cascades run once per statement over its transition
    table: a many-row statement leaves every person, floating record and residence exactly where the
    same writes made one row at a time (and through the registry service) leave them."""
    from etl.registers import RegisterOptions as Options
    from etl.registers import _loader
    from gis.security.scope import scoped_connection
    from layers import registry_service as service

    a_path = houses["grid_path"]
    with db.owner_engine(fresh_db).begin() as conn:
        kinds = dict(conn.execute(text(
            "SELECT tgname, tgtype & 1 FROM pg_trigger WHERE tgname IN ('residence_moves_person', "
            "'residence_moves_person_update', 'building_org_path_cascade', 'house_org_path_cascade', "
            "'person_org_path_cascade')")).all())
        assert kinds == dict.fromkeys(kinds, 0) and len(kinds) == 5  # all FOR EACH STATEMENT
        community = conn.execute(text("SELECT id FROM territory_unit WHERE code = '320106001001'")).scalar()
        grid_b = conn.execute(text(
            "INSERT INTO territory_unit (level, code, name, parent_id) VALUES ('grid', '320106001001002', "
            "'山西路第二网格', :c) RETURNING id, path::text"), {"c": community}).one()
        grid_c = conn.execute(text(
            "INSERT INTO territory_unit (level, code, name, parent_id) VALUES ('grid', '320106001001003', "
            "'山西路第三网格', :c) RETURNING id, path::text"), {"c": community}).one()
        grid_a = conn.execute(text("SELECT id FROM territory_unit WHERE path::text = :p"),
                              {"p": a_path}).scalar()
        compound = conn.execute(text("INSERT INTO compound (grid_id, name) VALUES (:g, '新村小区') "
                                     "RETURNING id"), {"g": grid_b.id}).scalar()

        def building(grid: int, name: str, compound_id: int | None = None) -> list[int]:
            b = conn.execute(text(
                "INSERT INTO building (compound_id, grid_id, name, floors, units, footprint) VALUES "
                "(:c, :g, :n, 6, 1, ST_MakeEnvelope(118.771, 32.061, 118.7712, 32.0612, 4490)) RETURNING id"),
                {"c": compound_id, "g": grid, "n": name}).scalar()
            return [conn.execute(text("INSERT INTO house (building_id, unit_no, floor, room_no) VALUES "
                                      "(:b, 1, 1, :r) RETURNING id"), {"b": b, "r": f"1-10{i}"}).scalar()
                    for i in range(6)]

        new_houses = building(grid_b.id, "1幢", compound)      # where everyone moves to (grid B)
        old_houses = building(grid_a, "8幢")                   # where everyone lives first (grid A)
        people = []
        for i in range(12):
            pid = conn.execute(text(
                "INSERT INTO person (name, sex, birth_date, org_path, district_code) VALUES (:n, '1', "
                "'1990-01-01', CAST(:p AS ltree), '320106') RETURNING id"),
                {"n": f"迁{i}", "p": a_path}).scalar()
            conn.execute(text("INSERT INTO residence (person_id, house_id, relation, since) VALUES "
                              "(:p, :h, '99', '2020-01-01')"), {"p": pid, "h": old_houses[i % 3]})
            conn.execute(text("INSERT INTO person_floating (person_id, flow) VALUES (:p, 'inflow')"),
                         {"p": pid})
            people.append(pid)
        assert {p[0] for p in _people_where(conn, people)} == {a_path}
    one, bulk = people[:3], people[3:6]          # moved by house_id (the form's 居住房屋)
    one_end, bulk_end = people[6:9], people[9:]   # old residence ended, a new one started
    target = {pid: new_houses[i % 3] for i, pid in enumerate(one + bulk + one_end + bulk_end)}

    # One row at a time: through the registry service (as data staff), and as single-row statements.
    actor = _loader(fresh_db, Options())
    with scoped_connection(fresh_db, actor) as conn:
        for pid in one:
            version = conn.execute(text("SELECT version FROM person WHERE id = :p"), {"p": pid}).scalar()
            service.update_record(conn, actor, REGISTRIES["person"], pid, {"house_id": target[pid]}, version)
    with db.owner_engine(fresh_db).begin() as conn:
        for pid in one_end:
            conn.execute(text("UPDATE residence SET until = '2026-01-31' "
                              "WHERE person_id = :p AND until IS NULL"), {"p": pid})
            conn.execute(text("INSERT INTO residence (person_id, house_id, relation, since, org_path, "
                              "district_code) SELECT :p, h.id, '99', '2026-02-01', h.org_path, "
                              "h.district_code FROM house h WHERE h.id = :h"), {"p": pid, "h": target[pid]})
    # The same writes as one statement each.
    with db.owner_engine(fresh_db).begin() as conn:
        conn.execute(text("UPDATE residence r SET house_id = t.h FROM unnest(CAST(:p AS bigint[]), "
                          "CAST(:h AS bigint[])) AS t(p, h) WHERE r.person_id = t.p AND r.until IS NULL"),
                     {"p": bulk, "h": [target[p] for p in bulk]})
        conn.execute(text("UPDATE residence SET until = '2026-01-31' "
                          "WHERE person_id = ANY(:p) AND until IS NULL"), {"p": bulk_end})
        conn.execute(text("INSERT INTO residence (person_id, house_id, relation, since, org_path, "
                          "district_code) SELECT t.p, h.id, '99', '2026-02-01', h.org_path, h.district_code "
                          "FROM unnest(CAST(:p AS bigint[]), CAST(:h AS bigint[])) AS t(p, h) "
                          "JOIN house h ON h.id = t.h"),
                     {"p": bulk_end, "h": [target[p] for p in bulk_end]})

    with db.owner_engine(fresh_db).connect() as conn:
        def normal(ids: list[int]) -> list[tuple]:   # house ids compared by position in the building
            return [(path, district, floating,
                     [(new_houses.index(h) if h in new_houses else -old_houses.index(h) - 1, until, p)
                      for h, until, p in stays])
                    for path, district, floating, stays in _people_where(conn, ids)]

        assert normal(bulk) == normal(one)
        assert normal(bulk_end) == normal(one_end)
        for path, district, floating, stays in normal(one + bulk):
            assert (path, district, floating) == (grid_b.path, "320106", grid_b.path)
            assert [s[1:] for s in stays] == [(None, grid_b.path)]
        for path, _, floating, stays in normal(one_end + bulk_end):
            assert path == floating == grid_b.path
            # The old residence keeps its end date and its path; the new one is current in grid B.
            assert [s[1:] for s in stays] == [(dt.date(2026, 1, 31), a_path), (None, grid_b.path)]

    # Both new buildings' grids change in one statement: houses, current residences, people and their
    # floating records all follow, as test_cluster's one-building move shows row by row.
    with db.owner_engine(fresh_db).begin() as conn:
        conn.execute(text("UPDATE building SET grid_id = :c WHERE id IN (SELECT building_id FROM house "
                          "WHERE id = ANY(:h))"), {"c": grid_c.id, "h": new_houses + old_houses})
        houses_now = conn.execute(text("SELECT DISTINCT org_path::text FROM house WHERE id = ANY(:h)"),
                                  {"h": new_houses + old_houses}).scalars().all()
        assert houses_now == [grid_c.path]
        for path, _, floating, stays in _people_where(conn, people):
            assert path == floating == grid_c.path
            assert stays[-1][1:] == (None, grid_c.path)
            # An ended residence is history: it stays where it was.
            assert all(s[2] == a_path for s in stays[:-1])
