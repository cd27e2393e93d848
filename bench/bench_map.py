"""How fast the map answers, against the bare SQL of the same question, in one run on one database.

    python bench/bench_map.py --scale 2000000

Loads the demo district at ``--scale`` people into a scratch database (``gridgov_bench_map`` on the
embedded cluster, started if needed; an existing load of that scale is reused) and measures, as a
district commander (row-level security, masking and the access log all in play), the server time of

* **click → household list**: a click on a flat of a building (``household_members``: the members,
  masked, and the access-log row) — and the building's 楼盘表 (``building_at`` + ``housing_grid``);
* **drawn 1 km² polygon**: ``area_query`` of people, households and buildings in a 1 km × 1 km square;
* **people layer after a pan**: ``viewport_points`` of people in a 3 km viewport plus the datashader
  aggregation the raster is drawn from;

each as median and p95 over ``--repeat`` random targets, beside the bare SQL of the same question run
as the owner (no row-level security, no masking, no log) on the same targets, and the ratio.
Target: p95 under 100 ms for click → household list.

To keep it off the shared embedded cluster, point it at a cluster of your own (started if needed)::

    GRIDGOV_VAR_DIR=var/bench-$USER GRIDGOV_PG_PORT=54371 python bench/bench_map.py --scale 200000

Measured that way (2026-11-29, 2 shared cores, 40 targets; the demo loads 2,000,000 people in 220 s):
2,000,000 people — click → household list 15.9 / 31.1 ms (median / p95; bare SQL 1.1 / 9.2), click →
楼盘表 26.4 / 71.4 ms (bare 6.4 / 63.7), 1 km² polygon 481 / 990 ms (bare 89 / 190), people layer after a
3 km pan 1.28 / 2.20 s (bare 0.91 / 1.53). 200,000 people — 5.9 / 23.1, 6.3 / 15.9, 51 / 129 and
83 / 170 ms. Row-level security no longer shapes the polygon's plan: with the box operators declared
leakproof (``gis.cluster.LEAKPROOF_BOX_OPERATORS``) the building scan is a BitmapAnd of the footprint and
org_path indexes (8 ms for a 1 km² square at 2,000,000, against 29 ms reading all 13,473 buildings in
scope before), and the statement then runs as fast as the owner's (~290 ms for 41,676 residents). What
is left is the people join itself (a nested loop of ~42,000 person lookups), which the bare SQL skips: it
counts residences without reading a person or returning a row.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import datashader as ds
import geopandas as gpd
from shapely.geometry import box
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from etl.demo import load_demo  # noqa: E402
from gis import cluster, db, migrate  # noqa: E402
from gis.security import users  # noqa: E402
from gis.security.scope import scoped_connection  # noqa: E402
from gis.security.sessions import login, resolve  # noqa: E402
from gis.settings import Settings  # noqa: E402
from layers import housing_grid, spatial  # noqa: E402

BENCH_USER = ("bench_commander", "Gridgov#2024bench")
KM_LAT = 1 / 111.2  # degrees of latitude in a kilometre


def bench_settings(database: str, scale: int, seed: int) -> Settings:
    settings = Settings().model_copy(update={"pg_database": database})
    if settings.embedded:
        cluster.up(settings)
    migrate.upgrade(settings)
    with db.owner_engine(settings).connect() as conn:
        people = conn.execute(text("SELECT count(*) FROM person")).scalar()
    if people < scale * 0.9:
        print(f"loading the demo district at scale {scale:,} into {database} …", flush=True)
        started = time.perf_counter()
        load_demo(settings, scale=scale, seed=seed)
        print(f"  loaded in {time.perf_counter() - started:.0f} s", flush=True)
    with db.owner_engine(settings).begin() as conn:
        district = conn.execute(text("SELECT path::text FROM territory_unit WHERE level = 'district' "
                                     "ORDER BY code LIMIT 1")).scalar_one()
        users.upsert_user(conn, *BENCH_USER, "district_commander", district, "基准测试指挥长")
    return settings


def timed(fn, targets) -> list[float]:
    out = []
    for target in targets:
        started = time.perf_counter()
        fn(target)
        out.append((time.perf_counter() - started) * 1000)
    return out


def summary(name: str, server: list[float], bare: list[float]) -> str:
    def p95(values: list[float]) -> float:
        return sorted(values)[max(0, int(round(0.95 * len(values))) - 1)]

    sm, sp, bm, bp = statistics.median(server), p95(server), statistics.median(bare), p95(bare)
    return (f"{name:<34} server median {sm:7.1f} ms  p95 {sp:7.1f} ms | bare SQL median {bm:6.1f} ms  "
            f"p95 {bp:6.1f} ms | ratio {sm / bm if bm else float('nan'):5.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=2_000_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--database", default="gridgov_bench_map")
    parser.add_argument("--repeat", type=int, default=40)
    args = parser.parse_args()

    settings = bench_settings(args.database, args.scale, args.seed)
    token, _ = login(settings, *BENCH_USER, client_addr="bench")
    user = resolve(settings, token)
    categories = housing_grid.visible_categories(user)
    rng = random.Random(args.seed)
    owner = db.owner_engine(settings)

    with owner.connect() as conn:
        people = conn.execute(text("SELECT count(*) FROM person")).scalar()
        houses = [row[0] for row in conn.execute(text(
            "SELECT house_id FROM residence WHERE until IS NULL ORDER BY random() LIMIT :n"),
            {"n": args.repeat})]
        clicks = conn.execute(text(
            "SELECT b.id, ST_X(ST_PointOnSurface(b.footprint)), ST_Y(ST_PointOnSurface(b.footprint)) "
            "FROM building b ORDER BY random() LIMIT :n"), {"n": args.repeat}).all()
        x0, y0, x1, y1 = conn.execute(text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
            "(SELECT ST_Extent(boundary) AS e FROM territory_unit WHERE level = 'district') q")).one()
    print(f"{args.database}: {people:,} people; {args.repeat} targets each\n")

    def square(km: float):
        lon = rng.uniform(x0, x1 - km * KM_LAT * 1.18)
        lat = rng.uniform(y0, y1 - km * KM_LAT)
        return box(lon, lat, lon + km * KM_LAT * 1.18, lat + km * KM_LAT)  # ≈ km × km at 32°N

    areas = [square(1.0) for _ in range(args.repeat)]
    views = [tuple(gpd.GeoSeries([square(3.0)], crs=4490).to_crs(3857).total_bounds)
             for _ in range(args.repeat)]

    # ---- click → household list
    def household(house_id):
        with scoped_connection(settings, user) as conn:
            housing_grid.household_members(conn, house_id, special_categories=categories)

    def household_bare(house_id):
        with owner.connect() as conn:
            conn.execute(text("SELECT p.id, p.name, p.id_number, p.phone, r.relation FROM residence r "
                              "JOIN person p ON p.id = r.person_id "
                              "WHERE r.house_id = :h AND r.until IS NULL"),
                         {"h": house_id}).all()

    def building(click):
        _, lon, lat = click
        with scoped_connection(settings, user) as conn:
            hit = spatial.building_at(conn, lon, lat)
            housing_grid.housing_grid(conn, hit["id"], special_categories=categories)

    def building_bare(click):
        building_id, _, _ = click
        with owner.connect() as conn:
            conn.execute(text("SELECT h.id, h.unit_no, h.floor, h.room_no, count(r.id) FROM house h "
                              "LEFT JOIN residence r ON r.house_id = h.id AND r.until IS NULL "
                              "WHERE h.building_id = :b GROUP BY h.id"), {"b": building_id}).all()

    # ---- a drawn 1 km² polygon
    def area(polygon):
        with scoped_connection(settings, user) as conn:
            spatial.area_query(conn, polygon, ["person", "household", "building"], limit=100)

    def area_bare(polygon):
        with owner.connect() as conn:
            conn.execute(text(
                "SELECT count(*), count(DISTINCT h.id), count(DISTINCT b.id) FROM building b "
                "JOIN house h ON h.building_id = b.id "
                "JOIN residence r ON r.house_id = h.id AND r.until IS NULL "
                "WHERE b.footprint && ST_GeomFromText(:w, 4490) "
                "AND ST_Intersects(ST_PointOnSurface(b.footprint), ST_GeomFromText(:w, 4490))"),
                {"w": polygon.wkt}).one()

    # ---- the people layer after a pan
    def pan(view):
        with scoped_connection(settings, user) as conn:
            frame = spatial.viewport_points(conn, "person", view)
        canvas = ds.Canvas(plot_width=800, plot_height=600, x_range=(view[0], view[2]),
                           y_range=(view[1], view[3]))
        canvas.points(frame, "x", "y", agg=ds.sum("n"))

    def pan_bare(view):
        with owner.connect() as conn:
            conn.execute(text(
                "SELECT ST_X(ST_Centroid(b.footprint)), ST_Y(ST_Centroid(b.footprint)), count(r.id) "
                "FROM building b JOIN house h ON h.building_id = b.id JOIN residence r ON r.house_id = h.id "
                "AND r.until IS NULL WHERE b.footprint && ST_Transform(ST_MakeEnvelope(:x0, :y0, :x1, :y1, "
                "3857), 4490) GROUP BY b.id"), dict(zip(("x0", "y0", "x1", "y1"), view, strict=True))).all()

    for fn, targets in ((household, houses), (area, areas[:2]), (pan, views[:2])):
        timed(fn, targets[:2])  # warm caches and numba once
    rows = [
        summary("click flat → household list", timed(household, houses), timed(household_bare, houses)),
        summary("click building → 楼盘表", timed(building, clicks), timed(building_bare, clicks)),
        summary("drawn 1 km² polygon query", timed(area, areas), timed(area_bare, areas)),
        summary("people layer after a pan (3 km)", timed(pan, views), timed(pan_bare, views)),
    ]
    print("\n".join(rows))


if __name__ == "__main__":
    main()
