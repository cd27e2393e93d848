"""A small district for the event tests: two streets, three communities, four grids (one with a
boundary, for snapping positions), a user of every role the workflow involves, and an app with the auth
and events routers mounted the way ``create_app`` mounts them."""

from __future__ import annotations

from types import SimpleNamespace

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis import db
from gis.api import events as events_api
from gis.security import users
from gis.settings import Settings
from tests import access_helpers
from tests.access_helpers import PASSWORD, add_district, add_unit, bearer, wipe

# Who is who: username → (role, unit key, department).
USERS = {
    "wg1": ("grid_worker", "g1", None),
    "wg2": ("grid_worker", "g2", None),
    "sq1": ("community_staff", "c1", None),
    "jd1": ("street_staff", "s1", None),
    "jd2": ("street_staff", "s2", None),
    "qu": ("district_commander", "district", "区综治中心"),
    # Department officers deliberately scoped to the *other* street: what they see of street 1's events
    # comes from dispatch alone. One names its department by its Chinese name, one by its code.
    "cg": ("department_officer", "s2", "区城管局"),
    "sf": ("department_officer", "s2", "justice"),
    "fx": ("analyst", "district", None),
}

# G1: a 0.01° square around (118.775, 32.065).
G1_BOUNDARY = "ST_Multi(ST_MakeEnvelope(118.77, 32.06, 118.78, 32.07, 4490))"


def build_world(settings: Settings) -> SimpleNamespace:
    wipe(settings)
    with db.owner_engine(settings).begin() as conn:
        conn.execute(text("TRUNCATE event, event_number CASCADE"))
        district = add_district(conn)
        s1 = add_unit(conn, "street", "320106001", "宁海路街道", district)
        s2 = add_unit(conn, "street", "320106002", "华侨路街道", district)
        c1 = add_unit(conn, "community", "320106001001", "山西路社区", s1)
        c2 = add_unit(conn, "community", "320106001002", "江苏路社区", s1)
        c3 = add_unit(conn, "community", "320106002001", "五台山社区", s2)
        g1 = add_unit(conn, "grid", "320106001001001", "山西路第一网格", c1)
        g2 = add_unit(conn, "grid", "320106001001002", "山西路第二网格", c1)
        g3 = add_unit(conn, "grid", "320106001002001", "江苏路第一网格", c2)
        g4 = add_unit(conn, "grid", "320106002001001", "五台山第一网格", c3)
        conn.execute(text(f"UPDATE territory_unit SET boundary = {G1_BOUNDARY} WHERE id = :id"),
                     {"id": g1.id})
        units = {"district": district, "s1": s1, "s2": s2, "c1": c1, "c2": c2, "c3": c3, "g1": g1, "g2": g2,
                 "g3": g3, "g4": g4}
        ids = {}
        for username, (role, unit, department) in USERS.items():
            ids[username] = users.upsert_user(conn, username, PASSWORD, role, units[unit].path, username,
                                              department)
    client = TestClient(make_app(settings))
    headers = {u: bearer(client, u) for u in USERS}
    return SimpleNamespace(settings=settings, client=client, units=units, headers=headers, ids=ids)


def make_app(settings) -> FastAPI:
    return access_helpers.make_app(settings, events_api.router)


class Api:
    """The event API as one user sees it; every call asserts the status it expects."""

    def __init__(self, world: SimpleNamespace, username: str):
        self.client, self.headers = world.client, world.headers[username]

    def report(self, expect: int = 201, files=None, **fields) -> dict:
        data = {"title": "楼道堆放杂物", "type": "0502", **fields}
        response = self.client.post("/api/v1/events", data=data, files=files, headers=self.headers)
        assert response.status_code == expect, response.text
        return response.json()

    def get(self, event_id: int, expect: int = 200) -> dict:
        response = self.client.get(f"/api/v1/events/{event_id}", headers=self.headers)
        assert response.status_code == expect, response.text
        return response.json()

    def actions(self, event_id: int) -> list[str]:
        response = self.client.get(f"/api/v1/events/{event_id}/actions", headers=self.headers)
        assert response.status_code == 200, response.text
        return [a["action"] for a in response.json()]

    def act(self, event: dict, action: str, expect: int = 200, **body) -> dict:
        body.setdefault("version", event["version"])
        response = self.client.post(f"/api/v1/events/{event['id']}/actions/{action}", json=body,
                                    headers=self.headers)
        assert response.status_code == expect, response.text
        return response.json()

    def list(self, **params) -> dict:
        response = self.client.get("/api/v1/events", params=params, headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json()

    def inbox(self) -> dict:
        response = self.client.get("/api/v1/events/inbox", headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json()
