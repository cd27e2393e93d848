"""Every registry, generated from the declarations: create → read → search by each query field → update →
stale update refused → delete, through the service and through the API; the metadata against the spec;
field-level messages; exports read back; 周边重点人员 against a hand-computed distance query."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json
import zipfile
from pathlib import Path

import pytest
import yaml
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis import db
from gis.api import auth
from gis.api import registries as registries_api
from gis.paths import DATA_DIR
from gis.security import roles
from gis.security.scope import scoped_connection
from gis.security.sessions import CurrentUser
from gis.validation import make_id_number
from layers import registry_export
from layers import registry_service as service
from layers.registries import REGISTRIES
from layers.registry import Field, Registry
from tests.access_helpers import Unit, add_district, add_unit, add_user, bearer

SPEC = Path(__file__).resolve().parents[2] / "shared" / "spec" / "registries.yaml"
if not SPEC.exists():
    SPEC = Path("/work/shared/spec/registries.yaml")
CRUD = [r for r in REGISTRIES.values() if r.crud]

# The grid the records live in: a square whose centre is (118.76, 32.06).
GRID_BOX = (118.75, 32.05, 118.77, 32.07)
_serial = itertools.count(1)


def _box(x0: float, y0: float, x1: float, y1: float) -> str:
    return f"ST_Multi(ST_MakeEnvelope({x0}, {y0}, {x1}, {y1}, 4490))"


def _first_code(table: str) -> str:
    with (DATA_DIR / "codes" / f"{table}.csv").open(encoding="utf-8") as f:
        codes = [row["code"] for row in csv.DictReader(f)]
    return "1" if table == "sex" else codes[-1] if table == "relation" else codes[0]


def _user(conn, username: str, role: str, unit: Unit) -> CurrentUser:
    user_id = add_user(conn, username, role, unit)
    return CurrentUser(id=user_id, username=username, name=username, role=role, scope_path=unit.path,
                       permissions=roles.ROLES[role].permissions)


@pytest.fixture(scope="module")
def world(fresh_db):
    with db.owner_engine(fresh_db).begin() as conn:
        district = add_district(conn)
        street = add_unit(conn, "street", "320106002", "宁海路街道", district)
        community = add_unit(conn, "community", "320106002001", "颐和路社区", street)
        grid = add_unit(conn, "grid", "320106002001001", "颐和路第一网格", community)
        other_street = add_unit(conn, "street", "320106003", "华侨路街道", district)
        boxes = {district: (118.70, 32.00, 118.80, 32.10), street: (118.72, 32.02, 118.78, 32.08),
                 community: (118.74, 32.04, 118.775, 32.075), grid: GRID_BOX,
                 other_street: (118.80, 32.10, 118.85, 32.15)}
        for unit, box in boxes.items():
            conn.execute(text(f"UPDATE territory_unit SET boundary = {_box(*box)} WHERE id = :id"),
                         {"id": unit.id})
        users = {
            "street": _user(conn, "jiedao", "street_staff", street),
            "worker": _user(conn, "wangge", "grid_worker", grid),
            "analyst": _user(conn, "fenxi", "analyst", district),
            "outsider": _user(conn, "huaqiao", "street_staff", other_street),
        }
    app = FastAPI()
    api = APIRouter(prefix="/api/v1")
    api.include_router(auth.router(fresh_db))
    api.include_router(registries_api.router(fresh_db))
    app.include_router(api)
    client = TestClient(app)
    return {"settings": fresh_db, "grid": grid, "community": community, "street": street, "users": users,
            "client": client, "headers": {name: bearer(client, login) for name, login in (
                ("street", "jiedao"), ("worker", "wangge"), ("outsider", "huaqiao"))}}


# ---------------------------------------------------------------- sample records, made from the declarations

def _geometry(registry: Registry, dx: float = 0.0) -> dict | None:
    if not registry.geometry_column or registry.lonlat:
        return None
    x, y = 118.755 + dx, 32.055
    kind = registry.geometry_type
    if kind == "Point":
        return {"type": "Point", "coordinates": [x, y]}
    if kind in ("MultiLineString", "LineString"):
        return {"type": "LineString", "coordinates": [[x, y], [x + 0.002, y + 0.002]]}
    ring = [[x, y], [x + 0.001, y], [x + 0.001, y + 0.001], [x, y + 0.001], [x, y]]
    return {"type": "Polygon", "coordinates": [ring]}


def sample(world, conn, user, registry: Registry) -> dict:
    """Valid values for every stored field, creating the records referred to (through the service)."""
    n = next(_serial)
    birth = dt.date(1980 + n % 20, 1 + n % 12, 1 + n % 28)
    values: dict = {}
    for f in registry.stored_fields:
        values[f.name] = _value(world, conn, user, registry, f, n, birth)
    if registry.territory == "input" or registry.territory.startswith("ref:"):
        values["org_path"] = world["grid"].path
    if (geometry := _geometry(registry, dx=(n % 10) * 0.001)) is not None:
        values["geometry"] = geometry
    return values


def _value(world, conn, user, registry: Registry, f: Field, n: int, birth: dt.date):
    if f.type == "ref":
        if not f.required and registry.territory != f"ref:{f.name}":
            return None
        if f.ref == "territory":
            return world["community"].id if registry.key == "grid" else world["grid"].id
        if f.ref == "grid":  # the fixture's grid, whose boundary the samples' locations lie in
            return world["grid"].id
        target = REGISTRIES[f.ref]
        return service.create_record(conn, user, target, sample(world, conn, user, target))["id"]
    if f.pattern:  # a grid code: under the community's
        return f"{world['community'].path.split('.')[-1]}{n % 1000:03d}"
    if f.type == "code":
        return _first_code(f.code_table)
    if f.type in ("id_number", "document_number"):
        return make_id_number("320106", birth, n % 100, "1")
    if f.type == "phone":
        return f"139{n:08d}"
    if f.type == "date":
        return birth.isoformat()
    return {"text": f"测试{f.zh}{n}", "longtext": f"测试{f.zh}{n}", "int": 3 + n % 5, "number": "12.5",
            "datetime": "2024-05-01T08:30:00+08:00", "bool": True, "lon": 118.76, "lat": 32.06}[f.type]


def _editable(registry: Registry) -> Field:
    """A field to change in the update step: a plain one where there is one."""
    for types in (("text", "longtext", "int"), ("date",), ("code",), ("ref",)):
        for f in registry.stored_fields:
            if f.type in types and not f.pattern:
                return f
    raise AssertionError(f"{registry.key} has nothing to edit")


def _changed(f: Field, current: dict):
    """The new value (a code or a reference: the same one again, which still makes a new version)."""
    if f.type in ("code", "ref"):
        return current[f.name]
    return {"int": 42, "date": "2021-02-03"}.get(f.type, f"改后{f.zh}")


def raw_value(world, registry: Registry, record_id: int, f: Field):
    """The unmasked value of a field, as the owner reads it (to search by a full number)."""
    with db.owner_engine(world["settings"]).connect() as conn:
        return conn.execute(text(
            f"SELECT {f.read_expr} FROM {service._from(registry)} WHERE t.id = :id"
        ), {"id": record_id}).scalar()


def search_filters(world, registry: Registry, record_id: int) -> list[tuple[str, dict]]:
    out = []
    for f in registry.query_fields:
        value = raw_value(world, registry, record_id, f)
        if value is None:
            continue
        if f.search_mode == "range":
            out.append((f.name, {f"{f.name}_min": value, f"{f.name}_max": value}))
        elif f.search_mode == "trgm":
            out.append((f.name, {f.name: value[1:]}))  # part of a name finds it
        elif f.search_mode == "prefix":
            out.append((f.name, {f.name: value[:-1] or value}))
        else:
            out.append((f.name, {f.name: value}))
    return out


def user_for(world, registry: Registry) -> CurrentUser:
    return world["users"]["street"]


# ---------------------------------------------------------------- the metadata against the spec

def test_every_registry_and_field_label_of_the_spec_is_declared():
    spec = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    assert {r["key"] for r in spec["registries"]} == set(REGISTRIES)
    for entry in spec["registries"]:
        registry = REGISTRIES[entry["key"]]
        meta = registry.metadata()
        keys = ("zh", "module", "geometry")
        assert [meta[k] for k in keys] == [entry[k] for k in keys]
        labels = {f["zh"] for f in meta["fields"]}
        assert set(entry["fields"]) <= labels, f"{registry.key}: missing {set(entry['fields']) - labels}"
        assert set(entry["query"]) <= {q["zh"] for q in meta["query"]}, registry.key
        assert set(entry.get("ops", [])) <= set(meta["ops"]), registry.key


def test_views_are_not_copies():
    for key in ("household_head", "resident", "floating_person", "foreigner", "deceased"):
        assert REGISTRIES[key].table_name == "person" and not REGISTRIES[key].new_table
    assert REGISTRIES["rental"].table_name == "house" and REGISTRIES["building_head"].table_name == "building"
    for key in ("released_prisoner", "community_correction", "mental_patient", "drug_user", "aids_risk",
                "cult_member", "key_youth"):
        registry = REGISTRIES[key]
        assert registry.visits and registry.field("person_id").ref == "person"
        assert registry.field("name").derived and registry.field("id_number").derived
    for key, name in (("building", "household_count"), ("building", "person_count"),
                      ("grid", "household_count"), ("grid", "area_m2"), ("person", "age")):
        assert REGISTRIES[key].field(name).derived


def test_the_migrated_database_has_every_stored_column(world):
    with db.owner_engine(world["settings"]).connect() as conn:
        columns = {(r.table_name, r.column_name) for r in conn.execute(text(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'"))}
        protected = set(conn.execute(text(
            "SELECT relname FROM pg_class WHERE relrowsecurity AND relkind = 'r'")).scalars())
    for registry in CRUD:
        tables = {"t": registry.table_name, **{e.alias: e.table for e in registry.extensions}}
        for f in registry.stored_fields:
            assert (tables[f.store], f.stored_column) in columns, f"{registry.key}.{f.name}"
        for column in ("org_path", "district_code", "version", "deleted_at", "deleted_by"):
            assert (registry.table_name, column) in columns
        assert registry.table_name in protected


def test_metadata_api_and_cli_agree(world):
    response = world["client"].get("/api/v1/meta/registries", headers=world["headers"]["worker"])
    assert response.status_code == 200
    body = response.json()
    assert [r["key"] for r in body] == list(REGISTRIES)
    person = next(r for r in body if r["key"] == "person")
    id_field = next(f for f in person["fields"] if f["zh"] == "身份证号")
    assert id_field["sensitive"] == "id" and id_field["name"] == "id_number"
    age = {"name": "age", "zh": "年龄区间", "mode": "range", "params": ["age_min", "age_max"]}
    assert age in person["query"]
    from typer.testing import CliRunner

    from gis.cli import app
    result = CliRunner().invoke(app, ["registries", "--json"])
    assert result.exit_code == 0 and json.loads(result.output) == body


def test_openapi_has_the_generated_routes(world):
    paths = world["client"].app.openapi()["paths"]
    for registry in CRUD:
        assert f"/api/v1/registries/{registry.key}" in paths
        assert "get" in paths[f"/api/v1/registries/{registry.key}/{{record_id}}"]
    params = {p["name"] for p in paths["/api/v1/registries/person"]["get"]["parameters"]}
    assert {"name", "id_number", "age_min", "age_max", "sort", "limit", "offset"} <= params
    assert "/api/v1/registries/event" not in paths  # the workflow's: /api/v1/events


# ---------------------------------------------------------------- the life of a record, for every registry

@pytest.mark.parametrize("registry", CRUD, ids=lambda r: r.key)
def test_lifecycle_through_the_service(world, registry):
    user = user_for(world, registry)
    with scoped_connection(world["settings"], user) as conn:
        created = service.create_record(conn, user, registry, sample(world, conn, user, registry))
    record_id = created["id"]
    assert created["version"] == 1 and created["org_path"].startswith(world["street"].path)
    with scoped_connection(world["settings"], user) as conn:
        assert service.get_record(conn, user, registry, record_id)["id"] == record_id
        for name, filters in search_filters(world, registry, record_id):
            page = service.list_records(conn, user, registry, filters, limit=500)
            assert record_id in {r["id"] for r in page.items}, f"search by {name}: {filters}"
            assert page.total >= 1
    f = _editable(registry)
    new = _changed(f, created)
    with scoped_connection(world["settings"], user) as conn:
        updated = service.update_record(conn, user, registry, record_id, {f.name: new}, version=1)
    assert str(updated[f.name]) == str(new) and updated["version"] == 2
    with pytest.raises(service.StaleVersion, match="已被他人修改"):
        with scoped_connection(world["settings"], user) as conn:
            service.update_record(conn, user, registry, record_id, {f.name: new}, version=1)
    with scoped_connection(world["settings"], user) as conn:
        service.delete_record(conn, user, registry, record_id, version=2)
    with pytest.raises(service.NotFound):
        with scoped_connection(world["settings"], user) as conn:
            service.get_record(conn, user, registry, record_id)
    with db.owner_engine(world["settings"]).connect() as conn:  # soft: the row stays, with who and when
        row = conn.execute(text(f"SELECT deleted_at, deleted_by FROM {registry.table_name} WHERE id = :id"),
                           {"id": record_id}).one()
    assert row.deleted_at is not None and row.deleted_by == user.id


def _jsonable(values: dict) -> dict:
    return {k: (v if not isinstance(v, dt.date) else v.isoformat()) for k, v in values.items()}


@pytest.mark.parametrize("registry", CRUD, ids=lambda r: r.key)
def test_lifecycle_through_the_api(world, registry):
    client, headers, user = world["client"], world["headers"]["street"], user_for(world, registry)
    base = f"/api/v1/registries/{registry.key}"
    with scoped_connection(world["settings"], user) as conn:
        values = sample(world, conn, user, registry)  # the records it refers to are made here
    response = client.post(base, json=_jsonable(values), headers=headers)
    assert response.status_code == 201, response.text
    record = response.json()
    assert response.headers["cache-control"] == "no-store"
    for f in registry.fields:
        if f.sensitive == "id" and record[f.name]:
            assert "*" in record[f.name]
    assert client.get(f"{base}/{record['id']}", headers=headers).json()["id"] == record["id"]
    for name, filters in search_filters(world, registry, record["id"]):
        params = {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in filters.items()}
        found = client.get(base, params={**params, "limit": 500}, headers=headers)
        assert found.status_code == 200, found.text
        assert record["id"] in {r["id"] for r in found.json()["items"]}, f"search by {name}"
    f = _editable(registry)
    new = _changed(f, record)
    changed = client.put(f"{base}/{record['id']}", json={"version": 1, f.name: new}, headers=headers)
    assert changed.status_code == 200 and changed.json()["version"] == 2, changed.text
    stale = client.put(f"{base}/{record['id']}", json={"version": 1, f.name: new}, headers=headers)
    assert stale.status_code == 409 and "刷新" in stale.json()["detail"]
    assert client.get(f"{base}/{record['id']}", headers=headers).json()[f.name] == new
    assert client.delete(f"{base}/{record['id']}", params={"version": 2}, headers=headers).status_code == 204
    assert client.get(f"{base}/{record['id']}", headers=headers).status_code == 404


# ---------------------------------------------------------------- validation, permissions, territory

def test_invalid_input_gets_field_level_messages(world):
    client, headers = world["client"], world["headers"]["street"]
    response = client.post("/api/v1/registries/person", headers=headers, json={
        "name": "", "sex": "5", "id_number": "320106199003071235", "birth_date": "1990-13-01",
        "phone": "12345", "ethnicity": "99", "org_path": world["grid"].path, "nickname": "x"})
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert errors["name"] == "请填写姓名"
    assert "代码" in errors["sex"] and "不是有效日期" in errors["birth_date"]
    assert "校验位" in errors["id_number"] and "手机号码" in errors["phone"]
    assert "没有" in errors["nickname"]
    assert "民族" in errors["ethnicity"]
    missing = client.post("/api/v1/registries/drug_user", headers=headers, json={"cause": "x"})
    assert missing.json()["errors"] == {"person_id": "请填写人员"}


def test_id_number_must_agree_with_sex_and_birth_date(world):
    response = world["client"].post("/api/v1/registries/person", headers=world["headers"]["street"], json={
        "name": "王芳", "sex": "2", "birth_date": "1990-03-07", "id_number": make_id_number(
            "320106", dt.date(1990, 3, 7), 1, "1"), "org_path": world["grid"].path})
    assert response.status_code == 422 and "性别与身份证号不符" in response.json()["errors"]["sex"]


def test_a_location_outside_the_territory_is_refused(world):
    response = world["client"].post("/api/v1/registries/camera", headers=world["headers"]["street"], json={
        "name": "越界点位", "org_path": world["grid"].path,
        "geometry": {"type": "Point", "coordinates": [118.79, 32.09]}})
    assert response.status_code == 422 and "范围内" in response.json()["errors"]["geometry"]
    wrong_kind = world["client"].post("/api/v1/registries/camera", headers=world["headers"]["street"], json={
        "name": "面点位", "org_path": world["grid"].path, "geometry": _geometry(REGISTRIES["compound"])})
    assert "应绘制为点" in wrong_kind.json()["errors"]["geometry"]


def test_a_territory_outside_the_scope_is_refused(world):
    response = world["client"].post("/api/v1/registries/camera", headers=world["headers"]["outsider"], json={
        "name": "别处点位", "org_path": world["grid"].path})
    assert response.status_code == 422 and "辖区" in response.json()["errors"]["org_path"]


def test_special_population_needs_its_permission(world):
    worker = world["headers"]["worker"]  # a grid worker: released prisoners yes, drug users no
    assert world["client"].get("/api/v1/registries/released_prisoner", headers=worker).status_code == 200
    denied = world["client"].get("/api/v1/registries/drug_user", headers=worker)
    assert denied.status_code == 403 and "权限" in denied.json()["detail"]


def test_visits_are_dated_records_of_a_special_population_record(world):
    user = world["users"]["street"]
    registry = REGISTRIES["community_correction"]
    with scoped_connection(world["settings"], user) as conn:
        record = service.create_record(conn, user, registry, sample(world, conn, user, registry))
        service.add_visit(conn, user, registry, record["id"], {
            "visited_on": "2024-03-01", "visitor": "网格员小王", "content": "走访谈心",
            "next_due": "2024-04-01"})
        with pytest.raises(service.Invalid) as refused:
            service.add_visit(conn, user, registry, record["id"], {
                "visited_on": "2024-03-01", "visitor": "", "content": "x", "next_due": "2024-02-01"})
        assert refused.value.errors == {"visitor": "请填写走访人"}
        visits = service.list_visits(conn, user, registry, record["id"])
        again = service.get_record(conn, user, registry, record["id"])
    assert [v["visitor"] for v in visits] == ["网格员小王"]
    assert again["visits"] == "共1次，最近 2024-03-01，下次 2024-04-01"


# ---------------------------------------------------------------- 周边重点人员

def test_key_persons_near_a_school_equal_a_hand_computed_distance_query(world):
    user = world["users"]["street"]
    with scoped_connection(world["settings"], user) as conn:
        school = service.create_record(conn, user, REGISTRIES["school"], {
            "name": "颐和路小学", "org_path": world["grid"].path,
            "geometry": {"type": "Point", "coordinates": [118.757, 32.0555]}})
        for registry in ("drug_user", "released_prisoner", "mental_patient", "key_youth"):
            target = REGISTRIES[registry]
            service.create_record(conn, user, target, sample(world, conn, user, target))
    with db.owner_engine(world["settings"]).connect() as conn:
        # By hand: every key person's building, its distance to the school point, within 200 m.
        expected = {row.id: round(row.d, 1) for row in conn.execute(text("""
            SELECT p.id, min(ST_Distance(ST_SetSRID(ST_MakePoint(118.757, 32.0555), 4490)::geography,
                                         ST_PointOnSurface(b.footprint)::geography)) AS d
              FROM person p JOIN residence r ON r.person_id = p.id AND r.until IS NULL
              JOIN house h ON h.id = r.house_id JOIN building b ON b.id = h.building_id
             WHERE p.id IN (SELECT person_id FROM drug_user WHERE deleted_at IS NULL
                            UNION SELECT person_id FROM released_prisoner WHERE deleted_at IS NULL
                            UNION SELECT person_id FROM mental_patient WHERE deleted_at IS NULL
                            UNION SELECT person_id FROM key_youth WHERE deleted_at IS NULL
                            UNION SELECT person_id FROM community_correction WHERE deleted_at IS NULL
                            UNION SELECT person_id FROM aids_risk WHERE deleted_at IS NULL
                            UNION SELECT person_id FROM cult_member WHERE deleted_at IS NULL)
             GROUP BY p.id""")) if row.d <= 200}
        far = conn.execute(text("SELECT count(*) FROM drug_user")).scalar()
    assert expected, "the samples put some key persons near the school"
    response = world["client"].get(f"/api/v1/registries/school/{school['id']}/nearby",
                                   headers=world["headers"]["street"])
    assert response.status_code == 200
    found = response.json()["found"]
    assert {p["person_id"]: p["distance_m"] for p in found} == expected
    assert all("*" in (p["id_number"] or "*") for p in found) and far >= 1
    closer = world["client"].get(f"/api/v1/registries/school/{school['id']}/nearby",
                                 params={"distance_m": 50}, headers=world["headers"]["street"])
    closer = closer.json()["found"]
    assert {p["person_id"] for p in closer} == {k for k, d in expected.items() if d <= 50}


# ---------------------------------------------------------------- exports

def _listed(world, registry: Registry, filters: dict) -> list[dict]:
    user = world["users"]["street"]
    with scoped_connection(world["settings"], user) as conn:
        return service.list_records(conn, user, registry, filters, limit=500, geometry=True).items


@pytest.fixture(scope="module")
def people_for_export(world):
    user, registry = world["users"]["street"], REGISTRIES["person"]
    with scoped_connection(world["settings"], user) as conn:
        for _ in range(3):
            service.create_record(conn, user, registry, sample(world, conn, user, registry))
    return registry


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "geojson", "gpkg", "shp"])
def test_exports_equal_the_listed_rows_masked(world, people_for_export, fmt):
    registry = people_for_export
    filters = {"sex": "1"}
    listed = _listed(world, registry, filters)
    assert len(listed) >= 3
    response = world["client"].get(f"/api/v1/registries/person/export.{fmt}", params=filters,
                                   headers=world["headers"]["street"])
    assert response.status_code == 200, response.text
    content = response.content
    for item in listed:
        assert item["id_number"] is None or "*" in item["id_number"]
    ids = [item["id"] for item in listed]
    masked = [item["id_number"] for item in listed]
    if fmt == "csv":
        assert content.startswith(b"\xef\xbb\xbf")
        rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
        header, rows = rows[0], rows[1:]
        assert header[:3] == ["编号", "姓名", "性别"]
        assert [int(r[0]) for r in rows] == ids
        assert [r[header.index("身份证号")] or None for r in rows] == masked
        assert {r[header.index("性别")] for r in rows} == {"男"}
    elif fmt == "xlsx":
        from openpyxl import load_workbook
        sheet = load_workbook(io.BytesIO(content)).active
        values = list(sheet.values)
        header = list(values[0])
        assert [r[0] for r in values[1:]] == ids
        assert [r[header.index("身份证号")] for r in values[1:]] == masked
    else:
        import geopandas as gpd
        suffix = {"geojson": ".geojson", "gpkg": ".gpkg", "shp": ".zip"}[fmt]
        path = Path(world["settings"].var_dir) / f"export_test{suffix}"
        path.write_bytes(content)
        frame = gpd.read_file(path)
        path.unlink()
        assert list(frame["id"]) == ids and list(frame["id_number"]) == masked
        if fmt == "shp":  # the .cpg travels with it, so the Chinese names survive any reader
            with zipfile.ZipFile(io.BytesIO(content)) as archive:
                assert archive.read("person.cpg") == b"UTF-8"
                fields = archive.read("person_fields.csv").decode("utf-8-sig")
            assert "id_number,身份证号" in fields
            assert set(frame["name"]) == {item["name"] for item in listed}
        assert frame.crs.to_epsg() == 4490
        assert frame.geometry.notna().all()
    with db.owner_engine(world["settings"]).connect() as conn:
        logged = conn.execute(text(
            "SELECT action, username, target_table, detail FROM access_log ORDER BY id DESC LIMIT 1")).one()
    assert (logged.action, logged.username, logged.target_table) == ("export", "jiedao", "person")
    assert logged.detail["rows"] == len(listed) and logged.detail["format"] == fmt
    for item in listed:
        raw = raw_value(world, registry, item["id"], registry.field("id_number"))
        assert raw.encode() not in content


def test_export_needs_the_export_permission(world):
    analyst = bearer(world["client"], "fenxi")  # reads, masked; exports no rows
    response = world["client"].get("/api/v1/registries/person/export.csv", headers=analyst)
    assert response.status_code == 403


def test_exports_of_every_registry_are_readable(world):
    """A GeoJSON of every registry (the writer copes with every field type and geometry kind)."""
    user = world["users"]["street"]
    for registry in CRUD:
        with scoped_connection(world["settings"], user) as conn:
            result = registry_export.export_records(conn, user, registry, "geojson")
        document = json.loads(result.content)
        assert document["type"] == "FeatureCollection" and len(document["features"]) == result.rows


def test_registries_written_elsewhere_are_metadata_only(world):
    """事件 is declared for the metadata; its rows and routes are the workflow's (/api/v1/events)."""
    client, headers = world["client"], world["headers"]["street"]
    meta = {m["key"]: m for m in client.get("/api/v1/meta/registries", headers=headers).json()}
    assert meta["event"]["crud"] is False
    assert client.get("/api/v1/registries/event", headers=headers).status_code == 404
