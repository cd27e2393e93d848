"""Vector tiles: our OGC tile route against tipg and against the bare ``ST_AsMVT`` SQL.

    GRIDGOV_VAR_DIR=var/test GRIDGOV_PG_PORT=54339 GRIDGOV_PG_DATABASE=<a database with a demo loaded> \\
        python bench/bench_tiles.py --per-zoom 30 [--tipg /tmp/tipg-venv/bin/python]

Tiles z12–z16 centred on random demo buildings (so none is empty). For each layer (building, person):

* ours: ``GET /api/v1/ogc/collections/{layer}/tiles/{z}/{x}/{y}.mvt`` through real HTTP on uvicorn, as the
  demo district commander (login, scope and masking included);
* tipg (``--tipg``: the python of a venv with tipg and uvicorn installed; never a project dependency)
  serving the same database as the owner role: the ``building`` table, and the people as a view of the
  layer's join (``bench_person_tile``, created in the bench database) — tipg serves tables and views, not
  joins;
* the bare SQL: the route's own ``ST_AsMVT`` statement (:func:`gis.api.ogc.tile_sql`) on a direct owner
  connection: no HTTP, no login, no row-level security.

Prints median and p95 latency (ms), tiles/s (sequential) and the ratios to ours.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gis import db  # noqa: E402
from gis.api.ogc import tile_bounds, tile_sql  # noqa: E402
from gis.settings import Settings  # noqa: E402
from layers.catalogue import LAYERS  # noqa: E402

PEOPLE_VIEW = (
    "CREATE OR REPLACE VIEW bench_person_tile AS SELECT p.id, p.name, p.sex, p.birth_date, p.residency, "
    "p.died_on, r.relation, r.is_head, h.id AS house_id, h.room_no, b.name AS building_name, "
    "p.org_path::text AS org_path, ST_PointOnSurface(b.footprint)::geometry(Point, 4490) AS geom "
    "FROM person p JOIN residence r ON r.person_id = p.id AND r.until IS NULL "
    "JOIN house h ON h.id = r.house_id JOIN building b ON b.id = h.building_id")
# tipg wants a host in its DATABASE_URL; the embedded cluster is reached by its Unix socket (the owner
# has no password over TCP), so the pool is given the socket directory as its host.
TIPG_LAUNCHER = """
import functools, os, sys
import asyncpg
import uvicorn
if os.environ.get("BENCH_PG_SOCKET"):
    asyncpg.create_pool = functools.partial(asyncpg.create_pool, host=os.environ["BENCH_PG_SOCKET"],
                                            port=int(os.environ["BENCH_PG_PORT"]))
from tipg.main import app
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""
OURS_LAUNCHER = """
import sys
import uvicorn
from gis.app import create_app
from gis.settings import Settings
uvicorn.run(create_app(Settings()), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""
COMMANDER = ("demo_commander", "Gg!DistrictCommander#2026")   # etl/demo.py demo_accounts, first account


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def pick_tiles(conn: psycopg.Connection, per_zoom: int) -> list[tuple[int, int, int]]:
    points = conn.execute("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(footprint) p FROM building "
                          "WHERE deleted_at IS NULL ORDER BY random() LIMIT 2000) s").fetchall()
    rng = random.Random(7)
    tiles = []
    for z in range(12, 17):
        chosen = {tile_of(*rng.choice(points), z) for _ in range(per_zoom * 3)}
        tiles += [(z, x, y) for x, y in sorted(chosen)[:per_zoom]]
    return tiles


def timed(fetch, tiles) -> tuple[list[float], int]:
    fetch(*tiles[0])  # warm the connection / plan cache
    times, size = [], 0
    for z, x, y in tiles:
        started = time.perf_counter()
        size += fetch(z, x, y)
        times.append(time.perf_counter() - started)
    return times, size


def wait_for(url: str, ok=(200,), seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(url, timeout=5).status_code in ok:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not come up")
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-zoom", type=int, default=30)
    parser.add_argument("--tipg", help="python of a venv with tipg and uvicorn installed")
    parser.add_argument("--port", type=int, default=18731)
    args = parser.parse_args()
    settings = Settings()
    dsn = db.libpq_dsn(db.owner_url(settings))
    with psycopg.connect(dsn, autocommit=True) as conn:
        tiles = pick_tiles(conn, args.per_zoom)
    results: dict[str, list[tuple[str, list[float], int]]] = {}

    # Our app in a process of its own, as tipg is: a server thread would share the bench client's GIL.
    ours_server = subprocess.Popen([sys.executable, "-c", OURS_LAUNCHER, str(args.port)],
                                   cwd=Path(__file__).resolve().parents[1])
    tipg = None
    try:
        wait_for(f"http://127.0.0.1:{args.port}/api/v1/ogc/conformance", ok=(200, 401))
        base = f"http://127.0.0.1:{args.port}"
        with httpx.Client(base_url=base, timeout=60) as client:
            token = client.post("/api/v1/auth/login", json=dict(zip(("username", "password"), COMMANDER,
                                                                    strict=True))).json()["token"]
            headers = {"Authorization": f"Bearer {token}"}
            for key in ("building", "person"):
                def ours(z, x, y, key=key):
                    r = client.get(f"/api/v1/ogc/collections/{key}/tiles/{z}/{x}/{y}.mvt", headers=headers)
                    r.raise_for_status()
                    return len(r.content)
                results.setdefault(key, []).append(("ours (HTTP, scoped, masked)", *timed(ours, tiles)))

        with db.owner_engine(settings).connect() as conn:
            for key in ("building", "person"):
                sql = text(tile_sql(LAYERS[key]))

                def bare(z, x, y, sql=sql, key=key):
                    x0, y0, x1, y1 = tile_bounds(z, x, y)
                    data = conn.execute(sql, {"x0": x0, "y0": y0, "x1": x1, "y1": y1,
                                              "name": key}).scalar_one()
                    return len(data or b"")
                results[key].append(("bare ST_AsMVT SQL (owner, no HTTP)", *timed(bare, tiles)))

        if args.tipg:
            url = db.owner_url(settings)
            with psycopg.connect(dsn, autocommit=True) as conn:
                # tipg serves tables and views, not our catalogue's joins: the people layer as a view of the
                # same join (its point has no index of its own, as in any view tipg would be given).
                conn.execute(PEOPLE_VIEW)
            socket_dir = url.query.get("host")
            env = dict(os.environ, DATABASE_URL=f"postgresql://{url.username}@localhost:{settings.pg_port}"
                                                f"/{url.database}",
                       TIPG_DB_SCHEMAS='["public"]',
                       TIPG_DB_TABLES='["public.building", "public.bench_person_tile"]',
                       BENCH_PG_SOCKET=socket_dir or "", BENCH_PG_PORT=str(settings.pg_port))
            tipg = subprocess.Popen([args.tipg, "-c", TIPG_LAUNCHER, str(args.port + 1)], env=env)
            wait_for(f"http://127.0.0.1:{args.port + 1}/collections")
            with httpx.Client(base_url=f"http://127.0.0.1:{args.port + 1}", timeout=60) as client:
                for key, table in (("building", "public.building"), ("person", "public.bench_person_tile")):
                    def tipg_tile(z, x, y, table=table):
                        r = client.get(f"/collections/{table}/tiles/WebMercatorQuad/{z}/{x}/{y}")
                        r.raise_for_status()
                        return len(r.content)
                    results[key].append((f"tipg (HTTP, {table})", *timed(tipg_tile, tiles)))
    finally:
        ours_server.terminate()
        ours_server.wait(timeout=10)
        if tipg is not None:
            tipg.terminate()
            tipg.wait(timeout=10)

    print(f"{len(tiles)} tiles, z12–z16 ({args.per_zoom} a zoom), sequential")
    for key, rows in results.items():
        print(f"\n{key}")
        ours_median = statistics.median(rows[0][1])
        for label, times, size in rows:
            times_ms = sorted(t * 1000 for t in times)
            median = statistics.median(times_ms)
            p95 = times_ms[max(0, math.ceil(0.95 * len(times_ms)) - 1)]
            rate = len(times) / sum(times)
            ratio = median / 1000 / ours_median
            print(f"  {label:<38} median {median:7.1f} ms  p95 {p95:7.1f} ms  {rate:7.1f} tiles/s  "
                  f"{size / len(times) / 1024:6.1f} KiB/tile  median {ratio:5.2f}× ours")


if __name__ == "__main__":
    main()
