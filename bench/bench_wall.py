"""The command wall against its anchors, in one run on one scratch database.

    python bench/bench_wall.py --events 1000000 --fixes 20000

* Heat map: binning and shading 1,000,000 event points (server time, datashader) against a bare
  ``numpy.histogram2d`` of the same points on the same grid — ratio = ours ÷ numpy.
* Position ingest: fixes/s posted through ``POST /api/v1/positions`` (batches of 500, crs conversion,
  day partitions, latest fix) against a raw binary ``COPY`` of the same rows into the same table.
* Wall refresh: the cost of one feed refresh with 1 and with 10 subscribed screens (the database reads
  once either way; only the hand-off grows).

Uses a scratch database ``gridgov_bench_wall`` on the embedded cluster (started if needed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import numpy as np
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dashboards.wall import FeedReader, WallFeed  # noqa: E402
from gis import cluster, db, migrate  # noqa: E402
from gis.security import users  # noqa: E402
from gis.settings import Settings  # noqa: E402
from layers import heatmap  # noqa: E402

PASSWORD = "Gridgov#2024bench"
BOUNDS = (13_218_000.0, 3_770_000.0, 13_230_000.0, 3_782_000.0)   # ~12 km around 鼓楼区, EPSG:3857


def bench_settings(database: str) -> Settings:
    settings = Settings().model_copy(update={"pg_database": database})
    if settings.embedded:
        cluster.up(settings)
    migrate.upgrade(settings)
    return settings


def best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def heat(n: int) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal((BOUNDS[0] + BOUNDS[2]) / 2, 2500, n)
    y = rng.normal((BOUNDS[1] + BOUNDS[3]) / 2, 2500, n)
    width, height = heatmap.canvas_shape(BOUNDS, 800)
    heatmap.shade(heatmap.density(x, y, BOUNDS, width, height))     # warm numba
    ours = best(lambda: heatmap.shade(heatmap.density(x, y, BOUNDS, width, height)))
    bare = best(lambda: np.histogram2d(y, x, bins=(height, width),
                                       range=((BOUNDS[1], BOUNDS[3]), (BOUNDS[0], BOUNDS[2]))))
    print(f"heat map, {n:,} points, {width}×{height}: datashader+shade {ours * 1000:.1f} ms, "
          f"numpy.histogram2d {bare * 1000:.1f} ms, ratio {ours / bare:.2f}")


def ingest(settings: Settings, fixes: int) -> None:
    from fastapi.testclient import TestClient

    from gis.app import create_app

    with db.owner_engine(settings).begin() as conn:
        conn.execute(text("TRUNCATE worker_position, worker_latest"))
        grid = conn.execute(text(
            "SELECT path::text FROM territory_unit WHERE level = 'grid' ORDER BY path LIMIT 1")).scalar()
        if grid is None:
            conn.execute(text(
                "INSERT INTO territory_unit (level, code, name, boundary) VALUES ('district', '320106',"
                " '鼓楼区', ST_Multi(ST_MakeEnvelope(118.74, 32.05, 118.80, 32.10, 4490)))"))
            grid = "320106"
        users.upsert_user(conn, "bench_worker", PASSWORD, "grid_worker", grid, "压测网格员")
    client = TestClient(create_app(settings))
    token = client.post("/api/v1/auth/login", json={"username": "bench_worker", "password": PASSWORD}).json()
    headers = {"Authorization": f"Bearer {token['token']}"}
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=6)
    batches = [[{"time": (start + dt.timedelta(seconds=i)).isoformat(), "lon": 118.76 + (i % 500) * 1e-5,
                 "lat": 32.07, "accuracy": 8} for i in range(b, min(b + 500, fixes))]
               for b in range(0, fixes, 500)]
    t0 = time.perf_counter()
    for batch in batches:
        assert client.post("/api/v1/positions", json={"crs": "gcj02", "fixes": batch},
                           headers=headers).status_code == 201
    api = fixes / (time.perf_counter() - t0)
    with db.owner_engine(settings).begin() as conn:
        raw = conn.connection.driver_connection
        # The same rows half a second later (the key is worker and time), into the same partitions.
        rows = raw.execute("SELECT user_id, fixed_at + interval '500 milliseconds', lon, lat, accuracy,"
                           " speed, source_crs, grid_id, org_path, district_code"
                           " FROM worker_position").fetchall()
        t0 = time.perf_counter()
        with raw.cursor().copy("COPY worker_position (user_id, fixed_at, lon, lat, accuracy, speed,"
                               " source_crs, grid_id, org_path, district_code) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        copied = len(rows) / (time.perf_counter() - t0)
        conn.rollback()
    print(f"position ingest, {fixes:,} fixes: API {api:,.0f} fixes/s, raw COPY {copied:,.0f} rows/s, "
          f"ratio {copied / api:.1f}")


def refresh(settings: Settings) -> None:
    with db.owner_engine(settings).connect() as conn:
        uid = conn.execute(text("SELECT id FROM users WHERE username = 'bench_worker'")).scalar()
        scope = conn.execute(text(
            "SELECT path::text FROM territory_unit ORDER BY nlevel(path) LIMIT 1")).scalar()
    for screens in (1, 10):
        feed = WallFeed(settings, FeedReader(uid, scope))
        # A screen's hand-off is one call that queues the snapshot for its document: a list append here.
        handed: list = []
        feed._subscribers = {i: handed.append for i in range(screens)}
        feed.refresh()
        cost = best(feed.refresh, repeat=5)
        print(f"wall refresh, {screens:2d} screen(s): {cost * 1000:.1f} ms per refresh (one read)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--fixes", type=int, default=20_000)
    args = parser.parse_args()
    heat(args.events)
    settings = bench_settings("gridgov_bench_wall")
    ingest(settings, args.fixes)
    refresh(settings)


if __name__ == "__main__":
    main()
