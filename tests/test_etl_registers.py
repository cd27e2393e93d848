"""Person registers from Excel and GBK CSV: a bad check digit, a duplicate and an unknown address refuse
the whole file with exactly those rows reported; ``skip_bad`` loads the rest; a connection cut in the
middle of a load leaves the database as it was."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import text

from etl.registers import RegisterOptions, load_register, map_headers, parse_address
from gis import db
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
        load_register(fresh_db, "person", path, RegisterOptions(before_merge=cut))

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
