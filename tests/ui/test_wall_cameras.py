"""The wall plays HLS and HTTP-FLV camera streams in the page, with players served by this server.

Real Chromium, every non-local request refused. The test app serves a live HLS playlist of its own
(``/test-streams/live.m3u8``: two segment entries; the segments are MPEG-TS null packets, not decodable
video — no ffmpeg in CI — so what is asserted is that hls.js, loaded from our origin, read the playlist
and asked for the segments). A stream that is not there (404) makes the card say 视频无法连接, for HLS
and for FLV alike; a card that is closed stops its player.
"""

from __future__ import annotations

import re
import struct
from urllib.parse import urlparse

import pytest
from fastapi import HTTPException, Response
from playwright.sync_api import expect

from dashboards import wall
from gis import db
from gis.app import create_app
from tests.test_cameras import add_camera
from tests.ui.conftest import BrowserLog
from tests.ui.support import running_server
from tests.ui.test_wall import open_wall, screen_point

pytestmark = pytest.mark.ui

PLAYLIST = """#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:0
#EXTINF:2.000,
seg0.ts
#EXTINF:2.000,
seg1.ts
"""
# 188-byte MPEG-TS null packets (PID 0x1FFF): a well-formed transport stream with nothing in it.
NULL_PACKETS = (b"\x47\x1f\xff\x10" + b"\xff" * 184) * 20
# (name, lon, lat, stream URL), far enough apart that a click lands on one camera only.
CAMERAS = [("仙霞路小区大门", 118.745, 32.085, "/test-streams/live.m3u8"),
           ("华侨路主路口", 118.7575, 32.0850, "/test-streams/gone.m3u8"),
           ("仙霞路南口", 118.745, 32.0725, "/test-streams/gone.flv"),
           ("华侨路南口", 118.7575, 32.0740, "/test-streams/busy.m3u8"),
           ("仙霞路北口", 118.7520, 32.0885, "/test-streams/live.flv")]


def _rbsp(fields: list[tuple[str, int, int]]) -> bytes:
    """H.264 RBSP bits from (kind, bits, value): "u" fixed width, "ue" Exp-Golomb; then the stop bit."""
    bits = ""
    for kind, width, value in fields:
        golomb = "0" * ((value + 1).bit_length() - 1) + f"{value + 1:b}"
        bits += f"{value:0{width}b}" if kind == "u" else golomb
    bits += "1"
    bits += "0" * (-len(bits) % 8)
    return bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8))


def flv_stream_header() -> bytes:
    """The start of an HTTP-FLV live stream, video only: the FLV header and the AVC sequence header (a
    baseline 320×240 SPS, a PPS) — enough for mpegts.js to report the stream's media info, no frames."""
    sps = b"\x67" + _rbsp([("u", 8, 66), ("u", 8, 0xC0), ("u", 8, 30), ("ue", 0, 0), ("ue", 0, 0),
                           ("ue", 0, 2), ("ue", 0, 1), ("u", 1, 0), ("ue", 0, 320 // 16 - 1),
                           ("ue", 0, 240 // 16 - 1), ("u", 1, 1), ("u", 1, 1), ("u", 1, 0), ("u", 1, 0)])
    pps = b"\x68\xce\x38\x80"
    record = (bytes([1, sps[1], sps[2], sps[3], 0xFF, 0xE1]) + struct.pack(">H", len(sps)) + sps
              + b"\x01" + struct.pack(">H", len(pps)) + pps)
    data = b"\x17\x00\x00\x00\x00" + record          # key frame, AVC, sequence header
    tag = b"\x09" + struct.pack(">I", len(data))[1:] + b"\x00" * 7 + data
    return b"FLV\x01\x01\x00\x00\x00\x09" + b"\x00" * 4 + tag + struct.pack(">I", len(tag))


def app_with_streams(settings):
    """The real app plus a tiny stream server under ``/test-streams``."""
    app = create_app(settings)
    requests: list[str] = []

    @app.get("/test-streams/{name}")
    def stream(name: str) -> Response:
        requests.append(name)
        if name in ("live.m3u8", "busy.m3u8"):
            playlist = PLAYLIST if name == "live.m3u8" else PLAYLIST.replace("seg", "busy")
            return Response(playlist, media_type="application/vnd.apple.mpegurl",
                            headers={"Cache-Control": "no-store"})
        if name == "live.flv":
            return Response(flv_stream_header(), media_type="video/x-flv")
        if name in ("seg0.ts", "seg1.ts"):
            return Response(NULL_PACKETS, media_type="video/mp2t")
        if name.startswith("busy"):   # an overloaded platform: hls.js keeps retrying, the player lives on
            raise HTTPException(503, "视频平台繁忙")
        raise HTTPException(404, "没有该视频流")

    return app, requests


@pytest.fixture(scope="module")
def stream_server(territory_db):
    with db.owner_engine(territory_db).begin() as conn:
        for name, lon, lat, url in CAMERAS:
            add_camera(conn, name, lon, lat, url=url, heading=45,
                       org_path="320106.320106001" if lon < 118.755 else "320106.320106002")
    app, requests = app_with_streams(territory_db)
    with running_server(territory_db, app) as base_url:
        yield base_url, requests
    wall.stop_feeds()


def open_camera(page, camera):
    """Click ``camera`` on the wall's map; its card's live ``<video>``."""
    page.mouse.click(*screen_point(page, *camera[1:3]))
    expect(page.locator(".gg-camera-card h3")).to_contain_text(camera[0], timeout=15_000)
    return page.locator(".gg-camera-card video.gg-live")


def camera_on_a_new_wall(page, base_url: str, camera):
    open_wall(page, base_url)
    page.wait_for_timeout(1000)
    return open_camera(page, camera)


def test_hls_stream_plays_through_our_own_hls_js(stream_server, page, browser_log: BrowserLog):
    base_url, requests = stream_server
    scripts: list[tuple[str, int]] = []
    page.on("response", lambda r: r.request.resource_type == "script"
            and scripts.append((r.url, r.status)))
    open_wall(page, base_url)
    page.wait_for_timeout(1000)
    # the players come from this server, not a CDN
    ours = {urlparse(url).path: status for url, status in scripts if url.startswith(base_url)}
    for path in ("/assets/vendor/hls.min.js", "/assets/vendor/mpegts.js", "/assets/player.js"):
        assert ours.get(path) == 200, f"{path} not loaded from our origin: {scripts}"
    assert page.evaluate("() => typeof Hls === 'function' && Hls.isSupported() && typeof mpegts === 'object'"
                         " && typeof gridgovPlay === 'function'")

    video = open_camera(page, CAMERAS[0])
    expect(video).to_have_attribute("data-kind", "hls")
    expect(video).to_have_attribute("data-stream", CAMERAS[0][3])
    # hls.js read the playlist ("manifest"; the null packets then fail to parse: "error" may follow)
    expect(video).to_have_attribute("data-player-history", re.compile(r"^loading manifest"), timeout=15_000)
    wait_for_request(page, requests, "seg0.ts")
    assert requests.index("live.m3u8") < requests.index("seg0.ts")
    assert browser_log.blocked == []


def test_flv_stream_plays_through_our_own_mpegts_js(stream_server, page, browser_log: BrowserLog):
    base_url, requests = stream_server
    video = camera_on_a_new_wall(page, base_url, CAMERAS[4])
    expect(video).to_have_attribute("data-kind", "flv")
    # mpegts.js read the stream header (the stream then ends: "error" may follow)
    expect(video).to_have_attribute("data-player-history", re.compile(r"^loading manifest"), timeout=15_000)
    assert "live.flv" in requests
    assert browser_log.blocked == []


def wait_for_request(page, requests: list[str], name: str) -> None:
    for _ in range(75):
        if name in requests:
            return
        page.wait_for_timeout(200)
    pytest.fail(f"hls.js never asked for {name}: {requests}")


def test_closing_the_card_stops_its_player(stream_server, page, browser_log: BrowserLog):
    base_url, requests = stream_server
    video = camera_on_a_new_wall(page, base_url, CAMERAS[3])
    expect(video).to_have_attribute("data-player-state", "manifest", timeout=15_000)
    wait_for_request(page, requests, "busy0.ts")
    page.wait_for_timeout(2500)   # the live playlist is reloaded, the segment retried: the player lives
    expect(video).to_have_attribute("data-player-state", "manifest")
    assert page.evaluate("() => gridgovPlayers()") == 1
    assert requests.count("busy.m3u8") >= 2

    # closing the card takes the video out of the page: the sweep stops its player
    page.get_by_role("button", name="关闭视频").click()
    expect(page.locator(".gg-camera-card video")).to_have_count(0, timeout=10_000)
    page.wait_for_function("() => gridgovPlayers() === 0", timeout=15_000)
    asked = len(requests)
    page.wait_for_timeout(5000)   # over two target durations and a retry: a live player would ask again
    assert requests[asked:] == [], "a closed card's player still loads its stream"
    assert browser_log.blocked == []


@pytest.mark.parametrize("camera", [CAMERAS[1], CAMERAS[2]], ids=["hls", "flv"])
def test_unreachable_stream_says_so(stream_server, page, browser_log: BrowserLog, camera):
    base_url, _ = stream_server
    video = camera_on_a_new_wall(page, base_url, camera)
    card = page.locator(".gg-camera-card")
    expect(video).to_have_attribute("data-player-state", "error", timeout=20_000)
    expect(video).to_be_hidden()
    expect(card.get_by_text("视频无法连接")).to_be_visible()
    assert page.evaluate("() => gridgovPlayers()") == 0   # a failed player is torn down at once
    # the only failures: the stream that is not there (which is what the card said)
    assert all("/test-streams/gone" in r for r in browser_log.failed_responses), browser_log.failed_responses
    assert [e for e in browser_log.console_errors if "404" not in e] == []
    assert browser_log.blocked == []
