"""Cameras on a real PostGIS: the nearest cameras equal a hand-written ST_Distance query (so the two-step
KNN is exact, also where degree order and metric order differ), boxes, one camera, scope, FOV wedges,
stream kinds, and the API's Chinese 4xx."""

from __future__ import annotations

import html
import math

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis import db
from gis.api import cameras as cameras_api
from gis.security.scope import scoped_connection
from layers import cameras
from tests.access_helpers import PASSWORD, add_user, bearer, make_app
from tests.patrol_helpers import insert_event
from tests.ui.support import insert_territory

STREET_EAST = "320106.320106002"


def add_camera(conn, name: str, lon: float, lat: float, *, status: str = "1", heading: float | None = 90,
               url: str | None = "/video/x.jpg", org_path: str = "320106.320106001") -> int:
    return conn.execute(text(
        "INSERT INTO camera (name, device_no, location, heading, view_angle, stream_url, status, owner_unit,"
        " geom, org_path, district_code) VALUES (:n, :n, :n, :h, 60, :u, :s, '区综治中心',"
        " ST_SetSRID(ST_MakePoint(:x, :y), 4490), CAST(:p AS ltree), '320106') RETURNING id"),
        {"n": name, "h": heading, "u": url, "s": status, "x": lon, "y": lat, "p": org_path}).scalar_one()


@pytest.fixture(scope="module")
def world(fresh_db):
    insert_territory(fresh_db)
    rng = np.random.default_rng(3)
    with db.owner_engine(fresh_db).begin() as conn:
        # 300 cameras over the district, the east street's ones in that street's scope
        for i, (lon, lat) in enumerate(zip(rng.uniform(118.7401, 118.7599, 300),
                                           rng.uniform(32.0701, 32.0899, 300), strict=True)):
            add_camera(conn, f"点位{i}", lon, lat, status="1" if i % 4 else "0",
                       org_path=STREET_EAST if lon > 118.755 else "320106.320106001")
        # Degree order and metric order disagree: A, 0.0008° north, is nearer in degrees but ~89 m away;
        # B, 0.0009° east, is farther in degrees but ~85 m away (a degree of longitude is short at 32°N).
        far = (118.8, 32.2)   # away from the random ones
        a = add_camera(conn, "北侧A", far[0], far[1] + 0.0008)
        b = add_camera(conn, "东侧B", far[0] + 0.0009, far[1])
        add_user(conn, "cam_commander", "district_commander", "320106")
        add_user(conn, "cam_east", "street_staff", STREET_EAST)
    event_id = insert_event(fresh_db, "路口积水", lon=118.75, lat=32.08)
    return {"settings": fresh_db, "far": far, "a": a, "b": b, "event": event_id}


def hand_nearest(conn, lon, lat, n):
    return [tuple(r) for r in conn.execute(text(
        "SELECT id, ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(:x, :y), 4490)::geography) AS d"
        " FROM camera ORDER BY d, id LIMIT :n"), {"x": lon, "y": lat, "n": n})]


def commander(conn):
    row = conn.execute(text("SELECT id, scope_path::text FROM users WHERE username = 'cam_commander'")).one()
    return type("U", (), {"id": row[0], "scope_path": row[1]})()


def test_nearest_equals_hand_written_st_distance(world):
    settings = world["settings"]
    with db.owner_engine(settings).connect() as owner:
        user = commander(owner)
        rng = np.random.default_rng(5)
        probes = [(118.75, 32.08), *zip(rng.uniform(118.738, 118.762, 20), rng.uniform(32.068, 32.092, 20),
                                        strict=True)]
        for lon, lat in probes:
            for n in (1, 5, 12):
                expected = hand_nearest(owner, lon, lat, n)
                with scoped_connection(settings, user) as conn:
                    got = [(r["id"], r["distance_m"]) for r in cameras.nearest_cameras(conn, lon, lat, n=n)]
                assert [i for i, _ in got] == [i for i, _ in expected]
                assert [d for _, d in got] == pytest.approx([d for _, d in expected], abs=1e-6)


def test_nearest_is_metric_not_degree_order(world):
    lon, lat = world["far"]
    with db.owner_engine(world["settings"]).connect() as owner:
        user = commander(owner)
        degree_first = owner.execute(text(
            "SELECT id FROM camera ORDER BY geom <-> ST_SetSRID(ST_MakePoint(:x, :y), 4490) LIMIT 1"),
            {"x": lon, "y": lat}).scalar()
    assert degree_first == world["a"]                      # in degrees A is nearer ...
    with scoped_connection(world["settings"], user) as conn:
        got = cameras.nearest_cameras(conn, lon, lat, n=1)
    assert [c["id"] for c in got] == [world["b"]]           # ... in metres B is
    assert 80 < got[0]["distance_m"] < 86


def test_nearest_uses_the_spatial_index(world):
    with db.owner_engine(world["settings"]).connect() as owner:
        owner.execute(text("SET enable_seqscan = off"))
        plan = "\n".join(r[0] for r in owner.execute(text(
            "EXPLAIN SELECT id FROM camera ORDER BY geom <-> ST_SetSRID(ST_MakePoint(118.75, 32.08), 4490)"
            " LIMIT 5")))
    assert "camera_geom_gist" in plan


def test_box_scope_and_one_camera(world):
    settings = world["settings"]
    with db.owner_engine(settings).connect() as owner:
        user = commander(owner)
        east = owner.execute(text("SELECT id, scope_path::text FROM users WHERE username = 'cam_east'")).one()
        expected = {r[0] for r in owner.execute(text(
            "SELECT id FROM camera WHERE ST_X(geom) BETWEEN 118.745 AND 118.758"
            " AND ST_Y(geom) BETWEEN 32.075 AND 32.085"))}
        expected_east = {r[0] for r in owner.execute(text(
            f"SELECT id FROM camera WHERE org_path <@ '{STREET_EAST}'"
            " AND ST_X(geom) BETWEEN 118.745 AND 118.758"
            " AND ST_Y(geom) BETWEEN 32.075 AND 32.085"))}
    with scoped_connection(settings, user) as conn:
        assert {c["id"] for c in cameras.cameras_in_box(conn, (118.745, 32.075, 118.758, 32.085))} == expected
        one = cameras.camera(conn, world["a"])
        assert one["name"] == "北侧A" and one["status_name"] == "在线"
    east_user = type("U", (), {"id": east[0], "scope_path": east[1]})()
    with scoped_connection(settings, east_user) as conn:
        got = {c["id"] for c in cameras.cameras_in_box(conn, (118.745, 32.075, 118.758, 32.085))}
        assert got == expected_east and 0 < len(got) < len(expected)
        with pytest.raises(cameras.NotFound):
            cameras.camera(conn, world["a"])      # outside the street's scope: as if it did not exist


def test_fov_wedge_geometry():
    ring = cameras.fov_wedge(118.75, 32.08, heading=90, view_angle=60, range_m=80)
    assert ring[0] == ring[-1] == (118.75, 32.08)
    arc = ring[1:-1]
    m_lon = 111_320 * math.cos(math.radians(32.08))
    for lon, lat in arc:
        d = math.hypot((lon - 118.75) * m_lon, (lat - 32.08) * 110_900)
        assert d == pytest.approx(80, rel=0.01)
    # looking east: every arc point east of the camera, the arc spanning ±30° around due east
    assert all(lon > 118.75 for lon, _ in arc)
    bearing = [math.degrees(math.atan2((lon - 118.75) * m_lon, (lat - 32.08) * 110_900)) for lon, lat in arc]
    assert bearing[0] == pytest.approx(60, abs=0.5) and bearing[-1] == pytest.approx(120, abs=0.5)
    assert cameras.fov_wedge(118.75, 32.08, None, 60) is None


@pytest.mark.parametrize("url, kind", [
    ("http://10.0.0.5/live/1.m3u8", "hls"), ("/video/GATE000001.m3u8?token=1", "hls"),
    ("rtsp://10.0.0.5/1", "unsafe"), ("javascript:alert(1)", "unsafe"), ("//evil/x.jpg", "unsafe"),
    ("http://10.0.0.5/a.flv", "flv"), ("/snap/1.jpg", "image"), ("http://cam/mjpeg", "image"),
    ("http://cam/clip.mp4", "video"), ("", "none"), (None, "none"),
])
def test_stream_kind(url, kind):
    assert cameras.stream_kind(url) == kind


@pytest.fixture(scope="module")
def client(world):
    return TestClient(make_app(world["settings"], cameras_api.router))


def test_api_box_nearest_and_one(world, client):
    headers = bearer(client, "cam_commander", PASSWORD)
    near = client.get("/api/v1/cameras/nearest", params={"event_id": world["event"], "n": 4}, headers=headers)
    assert near.status_code == 200, near.text
    with db.owner_engine(world["settings"]).connect() as owner:
        expected = hand_nearest(owner, 118.75, 32.08, 4)
    assert [c["id"] for c in near.json()] == [i for i, _ in expected]
    assert [c["distance_m"] for c in near.json()] == pytest.approx([d for _, d in expected])
    by_point = client.get("/api/v1/cameras/nearest", params={"lon": 118.75, "lat": 32.08, "n": 4},
                          headers=headers).json()
    assert [c["id"] for c in by_point] == [c["id"] for c in near.json()]
    box = client.get("/api/v1/cameras", params={"bbox": "118.799,32.199,118.801,32.201"}, headers=headers)
    assert {c["name"] for c in box.json()} == {"北侧A", "东侧B"}
    one = client.get(f"/api/v1/cameras/{world['a']}", headers=headers).json()
    assert one["stream_kind"] == "image" and one["status_name"] == "在线"
    assert len(one["fov"]) == 15 and one["fov"][0] == one["fov"][-1]


@pytest.mark.parametrize("path, params, status, words", [
    ("/api/v1/cameras", {"bbox": "a,b,c,d"}, 422, "范围"),
    ("/api/v1/cameras", {"bbox": "118.8,32.2,118.7,32.1"}, 422, "范围无效"),
    ("/api/v1/cameras/nearest", {}, 422, "事件编号"),
    ("/api/v1/cameras/nearest", {"event_id": 1, "lon": 118.7, "lat": 32.0}, 422, "只能给出一种"),
    ("/api/v1/cameras/nearest", {"event_id": 999999}, 404, "不存在"),
    ("/api/v1/cameras/nearest", {"lon": 10.0, "lat": 10.0}, 422, "不在中国境内"),
    ("/api/v1/cameras/99999999", {}, 404, "不存在"),
])
def test_api_refusals_are_chinese(client, path, params, status, words):
    headers = bearer(client, "cam_commander", PASSWORD)
    response = client.get(path, params=params, headers=headers)
    assert response.status_code == status, response.text
    assert words in response.text


def test_api_needs_login(world):
    client = TestClient(make_app(world["settings"], cameras_api.router))   # no login cookie
    assert client.get("/api/v1/cameras", params={"bbox": "118,32,119,33"}).status_code == 401


# ------------------------------------------------------------------ the wall's player HTML (no database)
@pytest.mark.parametrize("url, kind", [("http://10.0.0.5/live/1.m3u8?token=a&b=1", "hls"),
                                       ("/video/GATE01.flv", "flv")])
def test_player_html_hls_and_flv_get_a_video_and_the_attach_hook(url, kind):
    from dashboards import wall

    out = wall.player_html(url)
    assert f'<video class="gg-live" data-stream="{html.escape(url, quote=True)}" data-kind="{kind}"' in out
    assert " muted" in out and " autoplay" in out and " playsinline" in out
    # the hidden image right after the video hands it to gridgovPlay (inline handlers run in the pane)
    assert 'onload="window.gridgovPlay&&gridgovPlay(this.previousElementSibling)"' in out
    assert out.index("<video") < out.index("gg-player-hook") < out.index("视频无法连接")
    assert "<script" not in out.lower()
    assert "播放组件" not in out


def test_player_html_escapes_the_stream_url():
    from dashboards import wall

    out = wall.player_html('http://cam/x.m3u8?a="><script>alert(1)</script>')
    assert "<script" not in out.lower()
    assert 'data-stream="http://cam/x.m3u8?a=&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in out


@pytest.mark.parametrize("url", ["rtsp://10.0.0.5/live.m3u8", "javascript:alert(1)//.flv",
                                 "//evil.example/live.m3u8", "data:text/html,x.flv"])
def test_player_html_refuses_unsafe_urls(url):
    from dashboards import wall

    out = wall.player_html(url)
    assert "<video" not in out and "gridgovPlay" not in out and "data-stream" not in out
    assert 'data-kind="unsafe"' in out and "不是 http(s) 地址" in out
    assert "<script" not in out.lower()


def test_wall_page_loads_the_players_from_our_origin():
    from dashboards import wall

    # relative to the page (/wall): served by gis.app under /assets, never a CDN
    assert set(wall.PLAYER_JS.values()) == {"assets/vendor/hls.min.js", "assets/vendor/mpegts.js",
                                            "assets/player.js"}
    assert all("//" not in path for path in wall.PLAYER_JS.values())
