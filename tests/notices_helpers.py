"""A small district with people at every level, for the notices and shared-files tests.

宁海路街道 (s1) has two communities: 山西路社区 (c1, grids g1 g2) and 江苏路社区 (c2, grid g3);
华侨路街道 (s2) has 五台山社区 (c3, grid g4). Users (username: role @ unit [department]):

    zhihui  district_commander @ district     jd1 street_staff @ s1      jd2 street_staff @ s2
    sq1     community_staff @ c1              sq2 community_staff @ c2   sq3 community_staff @ c3
    wg1 wg2 grid_worker @ g1 g2               wg3 grid_worker @ g3       wg4 grid_worker @ g4
    cg1     department_officer @ district [urban]      fx analyst @ district
"""

from __future__ import annotations

import json
from types import SimpleNamespace

from fastapi.testclient import TestClient
from sqlalchemy import text

from gis import db
from gis.api import files as files_api
from gis.api import notices as notices_api
from gis.security import users
from gis.settings import Settings
from tests.access_helpers import PASSWORD, add_district, add_unit, bearer, make_app, wipe

USERS = {
    "zhihui": ("district_commander", "district", None),
    "jd1": ("street_staff", "s1", None),
    "jd2": ("street_staff", "s2", None),
    "sq1": ("community_staff", "c1", None),
    "sq2": ("community_staff", "c2", None),
    "sq3": ("community_staff", "c3", None),
    "wg1": ("grid_worker", "g1", None),
    "wg2": ("grid_worker", "g2", None),
    "wg3": ("grid_worker", "g3", None),
    "wg4": ("grid_worker", "g4", None),
    "cg1": ("department_officer", "district", "urban"),
    "fx": ("analyst", "district", None),
}

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def build_world(settings: Settings) -> SimpleNamespace:
    wipe(settings)
    with db.owner_engine(settings).begin() as conn:
        conn.execute(text("TRUNCATE notice, notice_recipient, notice_attachment, shared_file, shared_folder"
                          " CASCADE"))
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
        units = {"district": district, "s1": s1, "s2": s2, "c1": c1, "c2": c2, "c3": c3, "g1": g1, "g2": g2,
                 "g3": g3, "g4": g4}
        ids = {username: users.upsert_user(conn, username, PASSWORD, role, units[unit].path, username,
                                           department)
               for username, (role, unit, department) in USERS.items()}
    client = TestClient(make_app(settings, notices_api.router, files_api.router))
    headers = {u: bearer(client, u) for u in USERS}
    return SimpleNamespace(settings=settings, client=client, units=units, headers=headers, ids=ids,
                           names={v: k for k, v in ids.items()})


def send(world: SimpleNamespace, sender: str, targets: dict, *, expect: int = 201,
         notice_type: str = "meeting", title: str = "关于召开平安建设推进会的通知", files=None,
         **fields) -> dict:
    data = {"title": title, "notice_type": notice_type, "body": "请各单位负责人准时参加。",
            "targets": json.dumps(targets, ensure_ascii=False), **fields}
    response = world.client.post("/api/v1/notices", data=data, files=files, headers=world.headers[sender])
    assert response.status_code == expect, response.text
    return response.json()
