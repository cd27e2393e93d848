"""Printing: the PDFs parse, say in Chinese what was printed, by whom and when, carry masked numbers only,
are refused without the export permission, and are written to the access log; the grid notice board
shows the grid's plan, the grid head with photo and work phone in full, and the service items."""

from __future__ import annotations

import base64
import datetime as dt
import io
import re
from pathlib import Path

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy import text

from gis import db
from gis.api import auth
from gis.api import registries as registries_api
from gis.security import roles
from gis.security.scope import scoped_connection
from gis.security.sessions import CurrentUser
from gis.validation import make_id_number
from layers import print_map, registry_print
from layers import registry_service as service
from layers.registries import REGISTRIES
from tests.access_helpers import Unit, add_district, add_unit, add_user, bearer

# The sheets are left here to be looked at (pdftoppm -png), as the map test leaves its screenshot.
SAMPLES = Path("/tmp")
GRID_BOX = (118.75, 32.05, 118.77, 32.07)
HEAD_MOBILE = "13812345678"
HEAD_PHONE = "025-83123456"
# A 2×2 red PNG, the grid head's "photo".
PHOTO = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP8z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg==")


def _user(conn, username: str, role: str, unit: Unit) -> CurrentUser:
    user_id = add_user(conn, username, role, unit)
    return CurrentUser(id=user_id, username=username, name=f"{username}同志", role=role,
                       scope_path=unit.path, permissions=roles.ROLES[role].permissions)


def pdf_text(content: bytes) -> str:
    """All the text of a PDF, with the line breaks and spaces a table cell adds taken out."""
    reader = PdfReader(io.BytesIO(content))
    return re.sub(r"\s+", "", "".join(page.extract_text() for page in reader.pages))


@pytest.fixture(scope="module")
def world(fresh_db):
    settings = fresh_db
    photo = registries_api.photo_dir(settings) / "test_registry_print_head.png"
    photo.parent.mkdir(parents=True, exist_ok=True)
    photo.write_bytes(PHOTO)
    with db.owner_engine(settings).begin() as conn:
        district = add_district(conn)
        street = add_unit(conn, "street", "320106002", "宁海路街道", district)
        community = add_unit(conn, "community", "320106002001", "颐和路社区", street)
        grid = add_unit(conn, "grid", "320106002001001", "颐和路第一网格", community)
        conn.execute(text(
            "UPDATE territory_unit SET boundary = ST_Multi(ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4490)),"
            " head_name = '王建国', head_mobile = :mobile, head_phone = :phone, head_photo = :photo,"
            " worker_count = 3, service_items = :items WHERE id = :id"),
            {"x0": GRID_BOX[0], "y0": GRID_BOX[1], "x1": GRID_BOX[2], "y1": GRID_BOX[3], "id": grid.id,
             "mobile": HEAD_MOBILE, "phone": HEAD_PHONE, "photo": photo.name,
             "items": "1. 政策宣传\n2. 矛盾纠纷调解\n3. 代办证照"})
        conn.execute(text(
            "INSERT INTO building (grid_id, name, floors, footprint) VALUES (:g, '3幢', 6,"
            " ST_MakeEnvelope(118.755, 32.055, 118.756, 32.0556, 4490))"), {"g": grid.id})
        users = {"street": _user(conn, "jiedao_p", "street_staff", street),
                 "analyst": _user(conn, "fenxi_p", "analyst", district)}
    person = REGISTRIES["person"]
    people = []
    with scoped_connection(settings, users["street"]) as conn:
        for i, (name, sex) in enumerate([("张伟", "1"), ("李娜", "2"), ("张强", "1")]):
            birth = dt.date(1985 + i, 3, 7)
            values = {"name": name, "sex": sex, "birth_date": birth.isoformat(), "phone": f"1391234567{i}",
                      "id_number": make_id_number("320106", birth, 10 + i, sex), "org_path": grid.path}
            people.append({**service.create_record(conn, users["street"], person, values), **values})
    app = FastAPI()
    api = APIRouter(prefix="/api/v1")
    api.include_router(auth.router(settings))
    api.include_router(registries_api.router(settings))
    app.include_router(api)
    client = TestClient(app)
    yield {"settings": settings, "grid": grid, "users": users, "people": people, "client": client,
           "headers": {"street": bearer(client, "jiedao_p"), "analyst": bearer(client, "fenxi_p")}}
    photo.unlink()


def last_log(world) -> tuple:
    with db.owner_engine(world["settings"]).connect() as conn:
        return conn.execute(text("SELECT action, username, target_table, target_id, detail FROM access_log"
                                 " ORDER BY id DESC LIMIT 1")).one()


def test_a_filtered_list_prints_masked_with_what_who_and_when(world):
    response = world["client"].get("/api/v1/registries/person/print", params={"sex": "1", "name": "张"},
                                   headers=world["headers"]["street"])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["cache-control"] == "no-store"
    (SAMPLES / "gridgov_print_list.pdf").write_bytes(response.content)
    reader = PdfReader(io.BytesIO(response.content))
    assert reader.pages[0].mediabox.width > reader.pages[0].mediabox.height  # A4 landscape: a wide table
    assert round(float(reader.pages[0].mediabox.width) / 72 * 25.4) == 297
    content = pdf_text(response.content)
    assert "人口信息台账" in content and "查询条件" in content and "姓名：张；性别：男" in content
    today = dt.datetime.now(registry_print.LOCAL_TIME).date().isoformat()
    assert "打印人jiedao_p" in content and f"打印时间{today}" in content
    men = [p for p in world["people"] if p["sex"] == "1"]
    for person in men:
        assert person["name"] in content
        assert person["id_number"][:6] + "********" + person["id_number"][-4:] in content
        assert person["id_number"] not in content and person["phone"] not in content
        assert person["phone"][:3] + "****" + person["phone"][-4:] in content
    assert "李娜" not in content  # filtered out
    assert "记录数2条" in content and "第1页/共1页" in content
    action, username, table, _, detail = last_log(world)
    assert (action, username, table) == ("print", "jiedao_p", "person")
    assert detail["rows"] == 2 and detail["format"] == "pdf" and detail["filters"]["sex"] == "1"


def test_a_single_record_prints_every_label_masked(world):
    person = world["people"][1]
    response = world["client"].get(f"/api/v1/registries/person/{person['id']}/print",
                                   headers=world["headers"]["street"])
    assert response.status_code == 200, response.text
    (SAMPLES / "gridgov_print_record.pdf").write_bytes(response.content)
    reader = PdfReader(io.BytesIO(response.content))
    assert round(float(reader.pages[0].mediabox.height) / 72 * 25.4) == 297  # A4 portrait
    content = pdf_text(response.content)
    assert "人口信息登记表：李娜" in content
    for label in ("姓名", "性别", "身份证号", "出生日期", "联系电话", "所属区域"):
        assert label in content
    assert "女" in content and "宁海路街道颐和路社区颐和路第一网格" in content
    assert person["id_number"] not in content and person["phone"] not in content
    assert person["id_number"][-4:] in content and "********" in content
    action, _, table, target, detail = last_log(world)
    assert (action, table, target, detail["format"]) == ("print", "person", str(person["id"]), "pdf")


def test_printing_needs_the_export_permission(world):
    analyst = world["headers"]["analyst"]
    assert world["client"].get("/api/v1/registries/person/print", headers=analyst).status_code == 403
    record = world["people"][0]["id"]
    refused = world["client"].get(f"/api/v1/registries/person/{record}/print", headers=analyst)
    assert refused.status_code == 403 and "导出" in refused.json()["detail"]
    street = world["headers"]["street"]
    missing = world["client"].get("/api/v1/registries/person/999999/print", headers=street)
    assert missing.status_code == 404


def test_the_grid_notice_board(world):
    grid = world["grid"]
    response = world["client"].get(f"/api/v1/registries/grid/{grid.id}/notice-board",
                                   headers=world["headers"]["analyst"])  # public sheet: read suffices
    assert response.status_code == 200, response.text
    (SAMPLES / "gridgov_notice_board.pdf").write_bytes(response.content)
    reader = PdfReader(io.BytesIO(response.content))
    assert len(reader.pages) == 1
    content = pdf_text(response.content)
    for expected in ("网格服务公示牌", "颐和路第一网格", "320106002001001", "网格平面图", "王建国",
                     HEAD_MOBILE, HEAD_PHONE, "政策宣传", "矛盾纠纷调解", "代办证照", "服务事项", "3名"):
        assert expected in content, expected
    assert "米" in content  # the scale bar
    assert len(reader.pages[0].images) == 1  # the photo, embedded
    action, username, table, target, detail = last_log(world)
    assert (action, username, table, target) == ("print_notice_board", "fenxi_p", "grid", str(grid.id))
    assert detail["revealed"] == ["head_mobile", "head_phone"]


def test_notice_board_of_something_that_is_not_a_grid(world):
    headers = world["headers"]["street"]
    response = world["client"].get("/api/v1/registries/grid/999999/notice-board", headers=headers)
    assert response.status_code == 404 and "网格" in response.json()["detail"]


def test_printing_fetches_nothing():
    fetcher = registry_print.offline_fetcher()
    for url in ("http://example.com/x.png", "https://example.com/", "file:///etc/passwd"):
        with pytest.raises(ValueError, match="disallowed protocol"):
            fetcher.fetch(url)
    inline = "data:image/png;base64," + base64.b64encode(PHOTO).decode()
    assert fetcher.fetch(inline).read() == PHOTO


def test_photos_come_only_from_the_photo_folder(tmp_path):
    (tmp_path / "inside.jpg").write_bytes(b"\xff\xd8\xff")
    (tmp_path.parent / "outside.png").write_bytes(PHOTO)
    assert registry_print.photo_data_uri("inside.jpg", tmp_path).startswith("data:image/jpeg;base64,")
    assert registry_print.photo_data_uri("../outside.png", tmp_path) is None
    assert registry_print.photo_data_uri("/etc/passwd", tmp_path) is None
    assert registry_print.photo_data_uri("inside.jpg", None) is None


def test_service_items_are_listed():
    listed = registry_print.service_items("1. 政策宣传\n2、矛盾调解\n\n- 代办")
    assert listed == ["政策宣传", "矛盾调解", "代办"]
    assert registry_print.service_items("政策宣传；矛盾调解") == ["政策宣传", "矛盾调解"]
    assert registry_print.service_items(None) == []


def test_the_printed_map_keeps_shape_and_scale():
    from shapely.geometry import box

    # About 1 km × 0.5 km at 32°N: drawn twice as wide as high, with a scale bar in metres.
    dx = 1000 / (111_320 * 0.848)
    svg = print_map.svg_map([print_map.Layer([box(118.0, 32.0, 118.0 + dx, 32.0 + 0.0045)])],
                            width=600, height=600, margin=0)
    numbers = [float(v) for v in re.findall(r"M([\d.]+),([\d.]+)", svg)[0]]
    xs = [float(x) for x, _ in re.findall(r"([\d.]+),([\d.]+)", svg.split('d="')[1].split('"')[0])]
    ys = [float(y) for _, y in re.findall(r"([\d.]+),([\d.]+)", svg.split('d="')[1].split('"')[0])]
    assert numbers and abs((max(xs) - min(xs)) / (max(ys) - min(ys)) - 2.0) < 0.05
    assert "200 米" in svg or "250 米" in svg
    assert "暂无地图数据" in print_map.svg_map([])
