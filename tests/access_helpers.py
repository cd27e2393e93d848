"""Building blocks for the access-control tests: a territory, places, people and users, written as the
owner (as a loader would), and a minimal app with the auth and people routers mounted the way
``create_app`` mounts them."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, text

from gis import db
from gis.api import auth, people
from gis.security import users
from gis.settings import Settings

PASSWORD = "Gridgov#2024test"
_serial = itertools.count(1)

# A small square near 鼓楼区, shifted per building so footprints do not coincide.
_FOOTPRINT = (
    "ST_MakeEnvelope(118.77 + :dx, 32.06, 118.7705 + :dx, 32.0605, 4490)"
)


@dataclass(frozen=True)
class Unit:
    id: int
    path: str


def add_unit(
    conn: Connection, level: str, code: str, name: str | None = None, parent: Unit | None = None
) -> Unit:
    row = conn.execute(text(
        "INSERT INTO territory_unit (level, code, name, parent_id) VALUES (:level, :code, :name, :parent)"
        " RETURNING id, path::text"
    ), {"level": level, "code": code, "name": name or f"{level} {code}",
        "parent": parent.id if parent else None}).one()
    return Unit(*row)


def add_district(conn: Connection) -> Unit:
    province = add_unit(conn, "province", "32", "江苏省")
    city = add_unit(conn, "city", "3201", "南京市", province)
    return add_unit(conn, "district", "320106", "鼓楼区", city)


def add_building(conn: Connection, grid: Unit, name: str = "1幢") -> int:
    n = next(_serial)
    return conn.execute(text(
        f"INSERT INTO building (grid_id, name, floors, footprint) VALUES (:grid, :name, 6, {_FOOTPRINT})"
        " RETURNING id"
    ), {"grid": grid.id, "name": f"{name}-{n}", "dx": (n % 100) * 0.001}).scalar_one()


def add_house(conn: Connection, building_id: int, room_no: str | None = None) -> int:
    return conn.execute(text(
        "INSERT INTO house (building_id, floor, room_no) VALUES (:b, 1, :room) RETURNING id"
    ), {"b": building_id, "room": room_no or f"1-{next(_serial)}"}).scalar_one()


def id_number_for(n: int) -> str:
    return f"320106{1960 + n % 50}0{1 + n % 9}1{n % 10}{n % 1000:03d}{n % 10}"


def phone_for(n: int) -> str:
    return f"139{n:08d}"


def add_person(conn: Connection, house_id: int, name: str | None = None, *, id_number: str | None = None,
               phone: str | None = None) -> int:
    """A resident of ``house_id`` (the loader supplies org_path, as a bulk load does)."""
    n = next(_serial)
    person_id = conn.execute(text(
        "INSERT INTO person (name, sex, id_number, birth_date, phone, org_path, district_code)"
        " SELECT :name, '1', :id_number, DATE '1990-03-07', :phone, org_path, district_code"
        " FROM house WHERE id = :house RETURNING id"
    ), {"name": name or f"居民{n}", "id_number": id_number or id_number_for(n),
        "phone": phone or phone_for(n), "house": house_id}).scalar_one()
    conn.execute(text(
        "INSERT INTO residence (person_id, house_id, relation) VALUES (:p, :h, '01')"
    ), {"p": person_id, "h": house_id})
    return person_id


def add_user(conn: Connection, username: str, role: str, scope: Unit | str, name: str | None = None) -> int:
    path = scope.path if isinstance(scope, Unit) else scope
    return users.upsert_user(conn, username, PASSWORD, role, path, name or username)


def wipe(settings: Settings) -> None:
    """Empty the territory, places, people and accounts (as the owner: no history is written)."""
    with db.owner_engine(settings).begin() as conn:
        conn.execute(text(
            "TRUNCATE residence, person_floating, person_foreign, person, house, building, compound,"
            " user_session, users, login_attempt, login_lock, change_log, territory_unit CASCADE"
        ))


def make_app(settings: Settings, *routers) -> FastAPI:
    """A minimal app: the auth routes plus ``routers`` (factories taking the settings; default the people
    routes) under /api/v1, mounted the way ``create_app`` mounts them."""
    app = FastAPI()
    api = APIRouter(prefix="/api/v1")
    for router in (auth.router, *(routers or (people.router,))):
        api.include_router(router(settings))
    app.include_router(api)
    return app


def client_for(settings: Settings) -> TestClient:
    return TestClient(make_app(settings))


def bearer(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    response = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}
