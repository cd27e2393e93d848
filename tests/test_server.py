"""The one server over real HTTP (uvicorn in a thread) on a fresh database with a tiny territory:
health, the OpenAPI document, 4xx for malformed requests, the pages' wiring, and the territory services
and map component the pages are built from."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import httpx
import pytest
from shapely.geometry import Point

from dashboards.map import TerritoryMap, mercator_scale, to_draw_crs
from gis import db, migrate
from gis.app import create_app
from layers import territory
from tests.conftest import ROOT
from tests.ui.support import CENTRE_GRID, GRIDS, VIEWER, free_port, insert_territory, running_server


@pytest.fixture(scope="module")
def territory_db(fresh_db):
    insert_territory(fresh_db)
    return fresh_db


@pytest.fixture(scope="module")
def base_url(territory_db):
    with running_server(territory_db) as url:
        yield url


@pytest.fixture(scope="module")
def client(base_url):
    """A client logged in (bearer token) as the district-wide viewer of the fixture."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        login = client.post("/api/v1/auth/login", json={"username": VIEWER[0], "password": VIEWER[1]})
        assert login.status_code == 200, login.text
        client.headers["Authorization"] = f"Bearer {login.json()['token']}"
        yield client


# ---------------------------------------------------------------- API
def test_health_reports_database_and_schema_revision(client):
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["database"] is True
    assert body["schema_revision"] == migrate.head_revisions() == body["expected_revision"]


def test_health_is_503_with_a_message_when_the_database_is_down(territory_db):
    unreachable = territory_db.model_copy(update={"pg_port": free_port()})
    with running_server(unreachable) as url:
        response = httpx.get(url + "/api/v1/health", timeout=30)
    assert response.status_code == 503
    assert response.json()["database"] is False
    assert "数据库无法连接" in response.json()["message"]


def test_openapi_document_lists_the_api_and_not_the_pages(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert {"/api/v1/health", "/api/v1/territory/summary"} <= set(document["paths"])
    assert all(path.startswith("/api/v1/") for path in document["paths"]), document["paths"].keys()


def test_no_swagger_page_that_would_load_from_a_cdn(client):
    assert client.get("/docs").status_code == 404
    assert client.get("/api/v1/docs").status_code == 404


def test_territory_summary_counts_the_fixture(client):
    response = client.get("/api/v1/territory/summary")
    assert response.status_code == 200
    body = response.json()
    assert (body["path"], body["name"], body["level"]) == ("320106", "鼓楼区", "district")
    # one deceased person is in the register but not in the population
    assert body["totals"] == {"streets": 2, "communities": 2, "grids": 3, "buildings": 1, "houses": 2,
                              "people": 2}
    street = client.get("/api/v1/territory/summary", params={"within": "320106.320106002"}).json()
    assert street["totals"]["grids"] == 1 and street["totals"]["people"] == 0


@pytest.mark.parametrize(
    ("method", "path", "params", "status", "says"),
    [
        ("GET", "/api/v1/territory/summary", {"within": "abc"}, 422, "请求参数无效"),
        ("GET", "/api/v1/territory/summary", {"within": "320106..1"}, 422, "请求参数无效"),
        ("GET", "/api/v1/territory/summary", {"within": "320106.320106099"}, 404, "未找到区划"),
        ("GET", "/api/v1/territory/summary", {"within": "320107"}, 403, "超出您的查看范围"),
        ("POST", "/api/v1/health", None, 405, ""),
        ("GET", "/components/x/y", None, 400, "请求无效"),  # Panel's resource route, given nonsense
        ("GET", "/api/v1/no-such-thing", None, 404, ""),
    ],
)
def test_malformed_requests_are_4xx_with_a_message(client, method, path, params, status, says):
    response = client.request(method, path, params=params)
    assert response.status_code == status
    assert response.json()["detail"]
    assert says in str(response.json()["detail"])


def test_api_refuses_without_login(territory_db):
    app = create_app(territory_db, current_user=lambda request: None)
    with running_server(territory_db, app=app) as url:
        response = httpx.get(url + "/api/v1/territory/summary", timeout=30)
    assert response.status_code == 401
    assert "登录" in response.json()["detail"]


def test_pages_send_anonymous_visitors_to_the_login_form(base_url):
    response = httpx.get(base_url + "/map", timeout=30, follow_redirects=False)
    assert response.status_code in (302, 307)
    assert response.headers["location"] == "/login?next=/map"
    login = httpx.get(base_url + "/login", timeout=30)
    assert login.status_code == 200 and "登录" in login.text
    assert not re.search(r'(?:src|href)="(https?:)?//', login.text)


# ---------------------------------------------------------------- pages
def test_favicon_is_served(client):
    assert client.get("/favicon.ico").status_code == 200


def test_root_lands_on_the_map(client):
    response = client.get("/", follow_redirects=False)
    assert response.status_code in (302, 307)
    assert response.headers["location"] == "/map"


def test_map_page_loads_everything_from_this_server(client):
    response = client.get("/map")
    assert response.status_code == 200
    html = response.text
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any("static/js/bokeh.min.js" in s for s in sources)
    assert any("static/extensions/panel/panel.min.js" in s for s in sources)
    assert [s for s in sources if re.match(r"(https?:)?//", s)] == []
    for source in sources:
        if source.startswith("static/"):
            assert client.get("/" + source).status_code == 200, source


def test_geoviews_extension_script_is_served(client):
    # bokeh_fastapi mounts extension folders only for what Bokeh had bundled when it was mounted.
    assert client.get("/static/extensions/geoviews/geoviews.min.js").status_code == 200


# ---------------------------------------------------------------- services under the pages
def test_territory_units_by_level_and_within(territory_db):
    with db.owner_engine(territory_db).connect() as conn:
        everything = territory.territory_units(conn)
        grids = territory.territory_units(conn, level="grid")
        west = territory.territory_units(conn, within_path="320106.320106001")
    assert len(everything) == 8 and everything.crs.to_epsg() == 4490
    assert list(everything.level[:1]) == ["district"]  # parents first
    assert sorted(grids.name) == sorted(g[1] for g in GRIDS)
    assert set(west.level) == {"street", "community", "grid"} and len(west) == 4
    assert west.geometry.is_valid.all()


@pytest.mark.parametrize("bad", [dict(level="village"), dict(within_path="320106;drop table x")])
def test_territory_units_refuses_bad_arguments(territory_db, bad):
    with db.owner_engine(territory_db).connect() as conn, pytest.raises(territory.TerritoryError):
        territory.territory_units(conn, **bad)


def test_map_component_reprojects_and_finds_the_unit_under_a_point(territory_db):
    with db.owner_engine(territory_db).connect() as conn:
        units = territory.territory_units(conn)
    drawn = to_draw_crs(units)
    assert drawn.crs.to_epsg() == 3857
    grid = drawn[drawn.name == CENTRE_GRID].iloc[0]
    assert (grid.street_name, grid.community_name) == ("宁海路街道", "仙霞路社区居委会")

    territory_map = TerritoryMap(units)
    centre = drawn.to_crs(3857).iloc[0:1].geometry.iloc[0].centroid  # the district's centre
    assert territory_map.unit_at(centre.x, centre.y)["name"] == CENTRE_GRID
    territory_map.shown = ["street"]
    assert territory_map.unit_at(centre.x, centre.y)["name"] == "宁海路街道"
    assert territory_map.unit_at(0.0, 0.0) is None
    outside = Point(centre.x + 1e6, centre.y)
    assert territory_map.unit_at(outside.x, outside.y) is None


def test_mercator_scale_bar_factor():
    assert mercator_scale(0) == pytest.approx(1)
    assert mercator_scale(32.08) == pytest.approx(0.8473, abs=1e-4)


# ---------------------------------------------------------------- local tiles
def test_local_tile_folder_is_served_and_gaps_are_blank(territory_db, tmp_path):
    from gis.app import BLANK_TILE

    tile = tmp_path / "15" / "27196" / "13253.png"
    tile.parent.mkdir(parents=True)
    tile.write_bytes(b"\x89PNG not really")
    with running_server(territory_db.model_copy(update={"tile_dir": tmp_path})) as url:
        found = httpx.get(url + "/tiles/15/27196/13253", timeout=30)
        missing = httpx.get(url + "/tiles/15/27196/13254", timeout=30)
        nonsense = httpx.get(url + "/tiles/15/27196/..%2F..%2Fetc", timeout=30)
    assert found.status_code == 200 and found.content == tile.read_bytes()
    assert missing.status_code == 200 and missing.content == BLANK_TILE
    assert 400 <= nonsense.status_code < 500


def test_no_tile_route_without_a_tile_folder(client):
    assert client.get("/tiles/15/27196/13253").status_code == 404


# ---------------------------------------------------------------- the command
@pytest.mark.slow
def test_gridgov_serve_warms_up_prints_the_address_and_serves(territory_db):
    port = free_port()
    env = dict(os.environ, GRIDGOV_VAR_DIR=str(territory_db.var_dir), GRIDGOV_PORT=str(port),
               GRIDGOV_PG_PORT=str(territory_db.pg_port), GRIDGOV_PG_DATABASE=territory_db.pg_database)
    env.pop("DATABASE_URL", None)
    env.pop("GRIDGOV_DATABASE_URL", None)
    process = subprocess.Popen([sys.executable, "-m", "gis.cli", "serve"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, health = time.monotonic() + 120, None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.5)
        assert health is not None, "server did not come up"
        assert health.status_code == 200, health.text
        login = httpx.post(f"http://127.0.0.1:{port}/api/v1/auth/login", timeout=30,
                           json={"username": VIEWER[0], "password": VIEWER[1]})
        assert login.status_code == 200, login.text
        page = httpx.get(f"http://127.0.0.1:{port}/map", timeout=30, cookies=login.cookies)
        assert page.status_code == 200 and "bokeh" in page.text
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    assert "预热" in output
    assert f"http://127.0.0.1:{port}/" in output


def test_https_when_a_certificate_is_configured(territory_db, tmp_path):
    """Phones grant GPS and offline pages only to a secure origin: the server speaks TLS itself."""
    import shutil
    import threading

    from gis.server import display_address, uvicorn_config

    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    port = free_port()
    settings = territory_db.model_copy(update={"ssl_certfile": cert, "ssl_keyfile": key, "port": port})
    assert display_address(settings) == f"https://127.0.0.1:{port}/"
    import uvicorn

    server = uvicorn.Server(uvicorn_config(create_app(settings), settings, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        response = httpx.get(f"https://127.0.0.1:{port}/api/v1/health", verify=False, timeout=10)
        assert response.status_code == 200
        with pytest.raises(httpx.HTTPError):  # plain HTTP on the TLS port is not served
            httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=5)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
