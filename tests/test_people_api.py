"""``/api/v1/people`` through HTTP: masked everywhere unless revealed, reveals logged with their reason,
refusals logged too, and nothing outside the user's territory."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from gis import db
from gis.masking import mask_id_number, mask_phone
from tests.access_helpers import (
    add_building, add_district, add_house, add_person, add_unit, add_user, bearer, client_for, wipe,
)

FOREIGN_DOCUMENT = "E12345678"


@pytest.fixture(scope="module")
def world(fresh_db):
    wipe(fresh_db)
    with db.owner_engine(fresh_db).begin() as conn:
        district = add_district(conn)
        street = add_unit(conn, "street", "320106001", "宁海路街道", district)
        community = add_unit(conn, "community", "320106001001", "山西路社区", street)
        other_community = add_unit(conn, "community", "320106001002", "江苏路社区", street)
        grid = add_unit(conn, "grid", "320106001001001", "第一网格", community)
        other_grid = add_unit(conn, "grid", "320106001001002", "第二网格", community)
        far_grid = add_unit(conn, "grid", "320106001002001", "江苏路第一网格", other_community)
        house = add_house(conn, add_building(conn, grid, "3幢"), "1-502")
        mine = [add_person(conn, house, "张伟", id_number="320106199003071234", phone="13812348000"),
                add_person(conn, house, "张伟华", id_number="32010619850101123X", phone="025-83451234"),
                add_person(conn, house, "李娜")]
        conn.execute(text(
            "INSERT INTO person_foreign (person_id, english_name, nationality, document_type,"
            " document_number) VALUES (:p, 'Anna Li', 'USA', '414', :doc)"
        ), {"p": mine[2], "doc": FOREIGN_DOCUMENT})
        neighbour = add_person(conn, add_house(conn, add_building(conn, other_grid)), "王芳",
                               id_number="320106197001011111", phone="13900001111")
        far = add_person(conn, add_house(conn, add_building(conn, far_grid)), "赵磊")
        add_user(conn, "wangge", "grid_worker", grid, "网格员小王")
        add_user(conn, "shequ", "community_staff", community, "社区小李")
        add_user(conn, "fenxi", "analyst", district, "分析员")
        numbers = conn.execute(text(
            "SELECT id_number FROM person UNION SELECT phone FROM person UNION SELECT :doc"
        ), {"doc": FOREIGN_DOCUMENT}).scalars().all()
    client = client_for(fresh_db)
    return {"settings": fresh_db, "client": client, "mine": mine, "neighbour": neighbour, "far": far,
            "numbers": numbers, "headers": {u: bearer(client, u) for u in ("wangge", "shequ", "fenxi")}}


def assert_no_full_number(world, body: str) -> None:
    for number in world["numbers"]:
        assert number not in body, f"unmasked {number} in a response"


def last_access(world, n: int = 1) -> list:
    with db.owner_engine(world["settings"]).connect() as conn:
        return conn.execute(text(
            "SELECT action, username, target_id, reason, outcome, client_addr, detail FROM access_log"
            " ORDER BY id DESC LIMIT :n"), {"n": n}).all()[::-1]


def test_the_list_is_the_users_territory_masked(world):
    client = world["client"]
    response = client.get("/api/v1/people", headers=world["headers"]["wangge"])
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["total"] == 3 and {p["id"] for p in body["items"]} == set(world["mine"])
    zhang = next(p for p in body["items"] if p["name"] == "张伟")
    assert (zhang["id_number"], zhang["phone"]) == ("320106********1234", "138****8000")
    assert zhang["address"].endswith("1-502")
    assert_no_full_number(world, response.text)
    wider = client.get("/api/v1/people", headers=world["headers"]["fenxi"])
    assert wider.json()["total"] == 5
    assert_no_full_number(world, wider.text)
    assert last_access(world)[0][:2] == ("search_people", "fenxi")


def test_detail_is_masked_and_logged(world):
    person_id = world["mine"][2]
    response = world["client"].get(f"/api/v1/people/{person_id}", headers=world["headers"]["wangge"])
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["english_name"] == "Anna Li" and body["document_number"] == mask_id_number(FOREIGN_DOCUMENT)
    assert_no_full_number(world, response.text)
    action, username, target_id, _, outcome, client_addr, _ = last_access(world)[0]
    assert (action, username, target_id, outcome, client_addr) == (
        "read_person", "wangge", str(person_id), "ok", "testclient")


def test_every_person_response_is_masked(world):
    client, headers = world["client"], world["headers"]["fenxi"]
    for person_id in [*world["mine"], world["neighbour"], world["far"]]:
        response = client.get(f"/api/v1/people/{person_id}", headers=headers)
        assert response.status_code == 200
        assert_no_full_number(world, response.text)


def test_exact_lookup_by_full_number_finds_without_revealing(world):
    client, headers = world["client"], world["headers"]["wangge"]
    found = client.get("/api/v1/people", params={"id_number": "32010619850101123x"}, headers=headers)
    assert [p["name"] for p in found.json()["items"]] == ["张伟华"]
    assert_no_full_number(world, found.text)
    logged = last_access(world)[0]
    assert logged.detail["id_number"] == mask_id_number("32010619850101123X")  # not the full number
    by_phone = client.get("/api/v1/people", params={"phone": "+86 138-1234-8000"}, headers=headers)
    assert [p["name"] for p in by_phone.json()["items"]] == ["张伟"]
    # Someone outside the grid is not found, not even by their exact number.
    outside = client.get("/api/v1/people", params={"id_number": "320106197001011111"}, headers=headers)
    assert outside.json() == {"total": 0, "limit": 50, "offset": 0, "items": []}


def test_name_search_by_prefix(world):
    response = world["client"].get("/api/v1/people", params={"name": "张伟"},
                                   headers=world["headers"]["wangge"])
    assert [p["name"] for p in response.json()["items"]] == ["张伟", "张伟华"]  # the exact match first


def test_reveal_with_permission_and_reason(world):
    person_id = world["mine"][0]
    response = world["client"].post(f"/api/v1/people/{person_id}/reveal", json={"reason": "核实低保申请"},
                                     headers=world["headers"]["shequ"])
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == {"id": person_id, "name": "张伟", "id_number": "320106199003071234",
                               "phone": "13812348000", "document_number": None}
    action, username, target_id, reason, outcome, _, detail = last_access(world)[0]
    assert (action, username, target_id, reason, outcome) == ("reveal", "shequ", str(person_id),
                                                              "核实低保申请", "granted")
    assert "13812348000" not in str(detail)


def test_reveal_without_permission_is_403_and_logged(world):
    person_id = world["mine"][0]
    response = world["client"].post(f"/api/v1/people/{person_id}/reveal", json={"reason": "好奇"},
                                     headers=world["headers"]["wangge"])
    assert response.status_code == 403 and "权限" in response.json()["detail"]
    assert_no_full_number(world, response.text)
    action, username, target_id, reason, outcome, client_addr, _ = last_access(world)[0]
    assert (action, username, target_id, reason, outcome, client_addr) == (
        "reveal_denied", "wangge", str(person_id), "好奇", "denied", "testclient")


def test_reveal_needs_a_reason(world):
    response = world["client"].post(f"/api/v1/people/{world['mine'][0]}/reveal", json={"reason": "  "},
                                     headers=world["headers"]["shequ"])
    # The document says a reason must hold a non-blank character: refused before anything is read.
    assert response.status_code == 422 and "reason" in str(response.json()["detail"])


def test_outside_the_territory_is_not_found(world):
    client, headers = world["client"], world["headers"]["shequ"]
    assert client.get(f"/api/v1/people/{world['far']}", headers=headers).status_code == 404
    response = client.post(f"/api/v1/people/{world['far']}/reveal", json={"reason": "查询"}, headers=headers)
    assert response.status_code == 404
    assert last_access(world)[0][:5] == ("reveal_denied", "shequ", str(world["far"]), "查询", "not_found")


def test_not_logged_in_is_401(world):
    client = client_for(world["settings"])
    for method, url in (("get", "/api/v1/people"), ("get", f"/api/v1/people/{world['mine'][0]}"),
                        ("post", f"/api/v1/people/{world['mine'][0]}/reveal")):
        response = getattr(client, method)(url, **({"json": {"reason": "x"}} if method == "post" else {}))
        assert response.status_code == 401 and "登录" in response.json()["detail"]


def test_access_log_holds_no_full_numbers(world):
    with db.owner_engine(world["settings"]).connect() as conn:
        logged = " ".join(str(row) for row in conn.execute(text("SELECT * FROM access_log")))
    for number in world["numbers"]:
        assert number not in logged
    assert mask_phone("13812348000") in logged


def test_openapi_documents_the_masked_models(world):
    document = world["client"].app.openapi()
    listing = document["paths"]["/api/v1/people"]["get"]["responses"]["200"]["content"]["application/json"]
    assert listing["schema"]["$ref"].endswith("/PersonPage")
    reveal = document["paths"]["/api/v1/people/{person_id}/reveal"]["post"]
    assert {"200", "401", "403", "404", "422"} <= set(reveal["responses"])
    assert "/api/v1/auth/login" in document["paths"]
