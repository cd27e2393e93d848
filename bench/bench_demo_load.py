"""How fast the demo loader writes people, against two anchors, in one run on one database.

    python bench/bench_demo_load.py --scale 1000000

Loads the demo district into a scratch database (``gridgov_bench`` on the embedded cluster, started if
needed) and measures people rows a second of

* the loader: its "houses and people" step, which generates every house, person, residence and
  floating/foreign row in numpy and COPYs them (people/s = people ÷ that step's seconds), and the whole
  load (territory, places, index rebuild and ANALYZE included);
* (a) a raw binary ``COPY`` of the very same person rows (read back with ``COPY … TO STDOUT (FORMAT
  binary)``) into an empty copy of the table — without indexes, and again with the person table's
  indexes, which is what the loader's index rebuild stands for;
* (b) ``geopandas.GeoDataFrame.to_postgis`` of the same rows with a point geometry (the centroid of
  each person's building), which is what a GIS script would write.

and prints rows/s and the ratios (anchor ÷ loader: how many times faster the anchor is).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import geopandas as gpd
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from etl.demo import load_demo  # noqa: E402
from gis import cluster, db, migrate  # noqa: E402
from gis.settings import Settings  # noqa: E402


def bench_settings(database: str) -> Settings:
    settings = Settings().model_copy(update={"pg_database": database})
    if settings.embedded:
        cluster.up(settings)  # starts the cluster if needed and creates the database when missing
    migrate.upgrade(settings)
    return settings


def raw_copy(conn: psycopg.Connection, data: bytes, with_indexes: bool) -> float:
    """Seconds to COPY the binary person rows into a fresh, empty copy of the person table."""
    like = "INCLUDING ALL" if with_indexes else "INCLUDING DEFAULTS INCLUDING IDENTITY"
    conn.execute("DROP TABLE IF EXISTS bench_person")
    conn.execute(f"CREATE TABLE bench_person (LIKE person {like})")
    conn.commit()
    started = time.perf_counter()
    with conn.cursor() as cur, cur.copy("COPY bench_person FROM STDIN (FORMAT binary)") as copy:
        for start in range(0, len(data), 1 << 20):
            copy.write(data[start:start + (1 << 20)])
    conn.commit()
    seconds = time.perf_counter() - started
    conn.execute("DROP TABLE bench_person")
    conn.commit()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--database", default="gridgov_bench")
    parser.add_argument("--skip-geopandas", action="store_true", help="leave out to_postgis (slow)")
    args = parser.parse_args()

    settings = bench_settings(args.database)
    print(f"database {args.database}, scale {args.scale:,}, seed {args.seed}")

    report = load_demo(settings, scale=args.scale, seed=args.seed)
    people = report.counts["person"]
    loader_rate = report.people_per_second
    print("\nloader steps (s): " + ", ".join(f"{k} {v:.1f}" for k, v in report.seconds.items()))
    print(f"loader, houses+people step : {people:>10,} people in {report.seconds['people']:7.1f} s "
          f"= {loader_rate:>9,.0f} people/s")
    print(f"loader, whole load         : {people:>10,} people in {report.total_seconds:7.1f} s "
          f"= {people / report.total_seconds:>9,.0f} people/s")

    dsn = db.libpq_dsn(db.owner_url(settings))
    with psycopg.connect(dsn) as conn:
        read = "COPY (SELECT * FROM person ORDER BY id) TO STDOUT (FORMAT binary)"
        with conn.cursor() as cur, cur.copy(read) as out:
            data = b"".join(bytes(block) for block in out)
        conn.commit()
        plain = raw_copy(conn, data, with_indexes=False)
        indexed = raw_copy(conn, data, with_indexes=True)

    results = [("(a) raw binary COPY, no indexes", people / plain),
               ("(a) raw binary COPY, person's indexes", people / indexed)]

    if not args.skip_geopandas:
        engine = db.owner_engine(settings)
        frame = gpd.read_postgis(
            "SELECT p.*, ST_Centroid(b.footprint) AS geom FROM person p"
            " JOIN residence r ON r.person_id = p.id JOIN house h ON h.id = r.house_id"
            " JOIN building b ON b.id = h.building_id ORDER BY p.id", engine, geom_col="geom")
        frame["org_path"] = frame["org_path"].astype(str)
        started = time.perf_counter()
        frame.to_postgis("bench_person_gpd", engine, if_exists="replace", index=False)
        seconds = time.perf_counter() - started
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE bench_person_gpd")
        results.append(("(b) geopandas to_postgis", len(frame) / seconds))

    print()
    print(f"{'':40s} {'rows/s':>10s} {'÷ loader':>9s}")
    print(f"{'loader (houses+people step)':40s} {loader_rate:>10,.0f} {1:>9.2f}")
    for label, rate in results:
        print(f"{label:40s} {rate:>10,.0f} {rate / loader_rate:>9.2f}")


if __name__ == "__main__":
    main()
