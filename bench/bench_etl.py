"""The loaders against their anchors, on a scratch database.

    python bench/bench_etl.py boundaries --grids 10000
    python bench/bench_etl.py register --rows 1000000   # the issue's scale; 200000 on a shared 2-core box

``boundaries``: a GBK shapefile (no .cpg, no .prj, CGCS2000 3° Gauss-Krüger CM 120E without the zone
prefix) of ``--grids`` grid squares in 100-grid communities, loaded by

* the loader (encoding detection, CRS inference, repair, code checks, overlaps/gaps/containment in metres,
  new units COPYed straight into territory_unit, existing ones staged, versioned and updated if changed);
* ``ogr2ogr`` (Debian's gdal-bin) into a plain table, reprojected, ``--config PG_USE_COPY YES``;
* ``GeoDataFrame.to_postgis`` after ``read_file`` + ``to_crs``.

The district's tree is ANALYZEd before each round, as autovacuum leaves a live database. Boundary figures
(10,000 grids, rows/s; 2 shared cores of which another engineer's server held one; "×" is how many times
faster than the loader ogr2ogr was):

=============================================================  ================  =========================
run                                                            loader            ogr2ogr
=============================================================  ================  =========================
before, tree not analyzed (3 rounds)                           11,438–13,613     22,195–31,048 (2.1–2.3×)
before, tree analyzed (per-row FK/path lookups by seq scan)    1,500–2,200       18,500–30,300 (8–20×)
after: 0015, COPY straight in, edge-count coverage test        9,100–16,200      15,900–34,500
  (4 runs of 3 rounds: ratio of the medians 1.2×, 1.8×, 1.9×, 2.4×; best rounds 1.6–2.7×)
after, same file again (nothing changed)                       17,600–32,500     (0.6–1.0×)
=============================================================  ================  =========================

Where a new 10,000-grid load's time goes now: the loader's own Python is about ogr2ogr's whole client
(0.27 s CPU each: reading 0.05–0.08 s, encoding 0.01–0.03, CRS + transform + repair 0.04–0.06, code
checks and COPY text 0.05, geometry checks 0.07–0.2 in a thread beside the writes). The difference is the
server: the COPY into territory_unit costs 0.3 s CPU (0.4–0.7 s when the cores are busy) against 0.03 s
for ogr2ogr's plain table -- of it, by dropping each in turn: the org_path GiST 0.06 s, the parent_id
foreign key (checked row by row) 0.06, the boundary GiST, the parent_id btree and the path check trigger
0.03 each, the updated_at btree 0.02, heap + primary key + unique code and path 0.08.

``register``: a GBK CSV person register of ``--rows`` rows (ID numbers with valid check digits, addresses
of houses that exist), loaded by

* the loader (header mapping, validation, duplicate, household-head and address matching, the good rows
  streamed by ``COPY`` into person while the file is read, then residence);
* a raw binary ``COPY`` of the same rows as the loader wrote them, into an empty copy of ``person``, and
  of ``person`` + ``residence`` (what the loader writes);
* ``DataFrame.to_sql`` of the CSV as read by pandas (raw text into a new table without an index), and of
  the loader's person rows into an empty copy of ``person`` (the same table work as the loader's person
  write, without validation, matching or residences).

Prints rows/s and the ratios. The database is ``gridgov_bench_etl`` on the cluster the environment names
(``GRIDGOV_VAR_DIR`` / ``GRIDGOV_PG_PORT``; default the embedded one).

Register figures ("×" is how many times faster than the loader the anchor was; the same VM measures
±20 % between runs even when idle):

===================================  ==========  =============  ==============  ========  ========
run                                  loader      COPY person    COPY person +   to_sql    to_sql
                                                                residence       raw       person
===================================  ==========  =============  ==============  ========  ========
200k, session 3 (staging + INSERT)    7,638 r/s  34,484 (4.5×)  15,996 (2.1×)   (2.1×)    –
1M, session 3                         6,387 r/s  26,382 (4.1×)  15,345 (2.4×)   (3.0×)    –
200k, streamed COPY, idle box        12,884 r/s  43,370 (3.4×)  21,567 (1.7×)   (2.5×)    (1.2×)
1M, streamed COPY, idle box          16,447 r/s  36,333 (2.2×)  26,428 (1.6×)   (2.9×)    (1.2×)
200k, + only the file's columns      18,360 r/s  49,529 (2.7×)  31,050 (1.7×)   (2.1×)    (1.0×)
1M, + only the file's columns        18,134 r/s  38,752 (2.1×)  26,724 (1.5×)   (2.2×)    (0.9×)
===================================  ==========  =============  ==============  ========  ========

Where the time goes now (200k, CPU seconds): the Python process ~6.5 (reading 0.4, column-wise
validation ~3, the chunks' checks ~1, formatting the COPY rows ~1.5), the COPY backend ~7 (person ~4.5 of
it: its GIN trigram on name and GiST on (org_path, updated_at) are most of it, and the COPY anchor pays
them too; residence ~2.5), the lookup backend ~1. Person rows stream while the file is read, so those two
overlap; the residence COPY cannot start before the person COPY ends (one transaction, one connection),
which is why the loader cannot reach half the person-only COPY: the database alone writes both tables.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import pandas as pd
import psycopg
import shapely
from sqlalchemy.types import UserDefinedType

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from etl.boundaries import BoundaryOptions, load_boundaries  # noqa: E402
from etl.registers import RegisterOptions, load_register  # noqa: E402
from gis import cluster, db, migrate  # noqa: E402
from gis.settings import Settings  # noqa: E402
from gis.validation import make_id_number  # noqa: E402

GK = 4549
X0, Y0 = 380_000, 3_540_000  # south-west corner of the bench district in the zone (near 鼓楼区)
CELL = 100                   # grid squares of 100 m


def bench_settings(database: str) -> Settings:
    settings = Settings().model_copy(update={"pg_database": database})
    if settings.embedded:
        cluster.up(settings)
    migrate.upgrade(settings)
    return settings


def connect(settings: Settings) -> psycopg.Connection:
    return psycopg.connect(db.libpq_dsn(db.owner_url(settings)), autocommit=True)


def reset_territory(conn: psycopg.Connection, communities: int) -> None:
    """A district, one street and ``communities`` square communities of 10 × 10 grid cells each."""
    conn.execute("TRUNCATE residence, person_floating, person_foreign, person, house, building, compound, "
                 "event, territory_unit_version, data_load, territory_unit CASCADE")
    per_row = 10
    side = CELL * 10
    width = per_row * side
    rows = -(-communities // per_row)

    def box(x, y, w, h) -> str:
        return (f"ST_Multi(ST_Transform(ST_MakeEnvelope({X0 + x}, {Y0 + y}, {X0 + x + w}, {Y0 + y + h}, "
                f"{GK}), 4490))")

    conn.execute("INSERT INTO territory_unit (level, code, name) VALUES ('province', '32', '江苏省')")
    conn.execute("INSERT INTO territory_unit (level, code, name, parent_id) SELECT 'city', '3201', '南京市"
                 "', id "
                 "FROM territory_unit WHERE code = '32'")
    conn.execute(f"INSERT INTO territory_unit (level, code, name, parent_id, boundary) SELECT 'district', "
                 f"'320106', '鼓楼区', id, {box(0, 0, width, rows * side)} FROM territory_unit WHERE code "
                 "= '3201'")
    conn.execute(f"INSERT INTO territory_unit (level, code, name, parent_id, boundary) SELECT 'street', "
                 f"'320106001', '宁海路街道', id, {box(0, 0, width, rows * side)} FROM territory_unit "
                 "WHERE code = '320106'")
    for n in range(communities):
        cx, cy = (n % per_row) * side, (n // per_row) * side
        conn.execute("INSERT INTO territory_unit (level, code, name, parent_id, boundary) SELECT "
                     "'community', "
                     f"%s, %s, id, {box(cx, cy, side, side)} FROM territory_unit WHERE code = '320106001'",
                     (f"320106001{n + 1:03d}", f"第{n + 1}社区"))
    # As a live database is: analyzed with the tree as it stands (autovacuum would do it within a minute,
    # and a first load of grids into a freshly analyzed tree was the loader's worst case).
    conn.execute("ANALYZE territory_unit")


def grid_shapefile(path: Path, communities: int) -> int:
    names, codes, cells = [], [], []
    side = CELL * 10
    for n in range(communities):
        cx, cy = (n % 10) * side, (n // 10) * side
        for k in range(100):
            x, y = cx + (k % 10) * CELL, cy + (k // 10) * CELL
            names.append(f"第{n + 1}社区第{k + 1}网格")
            codes.append(f"320106001{n + 1:03d}{k + 1:03d}")
            cells.append(shapely.box(X0 + x, Y0 + y, X0 + x + CELL, Y0 + y + CELL))
    frame = gpd.GeoDataFrame({"网格名称": names, "网格编码": codes}, geometry=cells, crs=None)
    frame.to_file(path, driver="ESRI Shapefile", encoding="GBK")
    for suffix in (".cpg", ".prj"):
        path.with_suffix(suffix).unlink(missing_ok=True)
    return len(frame)


def bench_boundaries(settings: Settings, grids: int, rounds: int = 3) -> None:
    """Each contender ``rounds`` times, interleaved (so a busy shared machine slows all alike); the best
    round of each is compared (and the median round), and every round is printed."""
    import statistics

    communities = max(1, grids // 100)
    seconds: dict[str, list[float]] = {}

    def timed(label: str, run) -> None:
        started = time.perf_counter()
        run()
        seconds.setdefault(label, []).append(time.perf_counter() - started)

    def load_new() -> None:
        report = load_boundaries(settings, shp, BoundaryOptions(level="grid"))
        assert report.outcome == "loaded" and report.written["inserted"] == n, (report.outcome, report.errors)

    def ogr() -> None:
        subprocess.run(["ogr2ogr", "-f", "PostgreSQL", f"PG:{dsn}", str(shp), "-nln", "bench_ogr",
                        "-overwrite", "-s_srs", f"EPSG:{GK}", "-t_srs", "EPSG:4490", "-nlt", "MULTIPOLYGON",
                        "-lco", "GEOMETRY_NAME=boundary", "-oo", "ENCODING=GB18030",
                        "--config", "PG_USE_COPY", "YES"], check=True)

    def geopandas() -> None:
        frame = gpd.read_file(shp, encoding="GB18030").set_crs(GK).to_crs(4490)
        frame.to_postgis("bench_gpd", engine, if_exists="replace", index=False)

    from sqlalchemy import create_engine

    engine = create_engine(db.owner_url(settings))
    dsn = db.libpq_dsn(db.owner_url(settings))
    with tempfile.TemporaryDirectory() as tmp, connect(settings) as conn:
        shp = Path(tmp) / "grids.shp"
        n = grid_shapefile(shp, communities)
        print(f"{n:,} grid polygons, {communities} communities, {rounds} rounds")
        for _ in range(rounds):
            reset_territory(conn, communities)
            timed("loader (new grids, checks included)", load_new)
            timed("loader (same file again: nothing changed)",
                  lambda: load_boundaries(settings, shp, BoundaryOptions(level="grid")))
            timed("ogr2ogr (PG_USE_COPY)", ogr)
            timed("geopandas read_file + to_postgis", geopandas)
        conn.execute("DROP TABLE IF EXISTS bench_ogr, bench_gpd")
    engine.dispose()
    for label, runs in seconds.items():
        print(f"{label:<58} rounds: " + ", ".join(f"{n / s:,.0f}" for s in runs) + " rows/s")
    print("\nbest round of each:", end="")
    _print([(label, n / min(runs)) for label, runs in seconds.items()])
    print("\nmedian round of each:", end="")
    _print([(label, n / statistics.median(runs)) for label, runs in seconds.items()])


def register_csv(path: Path, rows: int, houses: list[tuple[str, str, int, str]]) -> None:
    rng = random.Random(7)
    ethnic = ["汉族", "01", "回族"]
    with path.open("w", encoding="gb18030", newline="") as f:
        f.write("序号,姓名,性别,公民身份号码,手机号,民族,居住地址\n")
        for i in range(rows):
            sex = "1" if i % 2 else "2"
            birth = dt.date(1940, 1, 1) + dt.timedelta(days=i % 25_000)
            number = make_id_number("320106", birth, i // 25_000 % 999 + 1, sex)
            compound, building, unit, room = houses[rng.randrange(len(houses))]
            f.write(f"{i + 1},居民{i},{'男' if sex == '1' else '女'},{number},139{i:08d},{ethnic[i % 3]},"
                    f"{compound}{building}幢{unit}单元{room}室\n")


def reset_houses(conn: psycopg.Connection) -> list[tuple[str, str, int, str]]:
    reset_territory(conn, 1)
    conn.execute("INSERT INTO territory_unit (level, code, name, parent_id) SELECT 'grid', "
                 "'320106001001001', "
                 "'第1网格', id FROM territory_unit WHERE code = '320106001001'")
    grid = conn.execute("SELECT id FROM territory_unit WHERE code = '320106001001001'").fetchone()[0]
    houses = []
    for c in range(20):
        compound = conn.execute("INSERT INTO compound (grid_id, name) VALUES (%s, %s) RETURNING id",
                                (grid, f"第{c + 1}小区")).fetchone()[0]
        for b in range(1, 21):
            building = conn.execute(
                "INSERT INTO building (compound_id, grid_id, name, floors, units, footprint) VALUES "
                "(%s, %s, %s, 20, 2, ST_MakeEnvelope(118.77, 32.06, 118.7701, 32.0601, 4490)) RETURNING id",
                (compound, grid, f"{b}幢")).fetchone()[0]
            with conn.cursor().copy("COPY house (building_id, unit_no, floor, room_no) FROM STDIN") as copy:
                for unit in (1, 2):
                    for floor in range(1, 21):
                        for door in (1, 2):
                            room = f"{floor}{door:02d}"
                            copy.write_row((building, unit, floor, f"{unit}-{room}"))
                            houses.append((f"第{c + 1}小区", str(b), unit, room))
    conn.execute("ANALYZE")
    return houses


def bench_register(settings: Settings, rows: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, connect(settings) as conn:
        houses = reset_houses(conn)
        path = Path(tmp) / "register.csv"
        register_csv(path, rows, houses)
        print(f"{rows:,} register rows, {len(houses):,} houses")
        results = []
        started = time.perf_counter()
        report = load_register(settings, "person", path, RegisterOptions(skip_bad=True))
        seconds = time.perf_counter() - started
        assert report.outcome == "loaded", report.errors[:5]
        written = report.written["people"]
        print(f"loader: {written:,} written, {len(report.bad_rows):,} refused (duplicate IDs of the "
              "generator)")
        results.append(("loader (validation + address matching + COPY)", written / seconds))

        data = _binary(conn, "person")
        conn.execute("DROP TABLE IF EXISTS bench_person")
        conn.execute("CREATE TABLE bench_person (LIKE person INCLUDING ALL)")
        started = time.perf_counter()
        with conn.cursor() as cur, cur.copy("COPY bench_person FROM STDIN (FORMAT binary)") as copy:
            for start in range(0, len(data), 1 << 20):
                copy.write(data[start:start + (1 << 20)])
        results.append(("raw binary COPY of the same person rows (with indexes)",
                        written / (time.perf_counter() - started)))
        # The loader writes a residence (person → house) for every person too: the fair anchor copies both.
        residences = _binary(conn, "residence")
        conn.execute("DROP TABLE IF EXISTS bench_residence")
        conn.execute("TRUNCATE bench_person")
        conn.execute("CREATE TABLE bench_residence (LIKE residence INCLUDING ALL)")
        started = time.perf_counter()
        with conn.cursor() as cur:
            for table, blob in (("bench_person", data), ("bench_residence", residences)):
                with cur.copy(f"COPY {table} FROM STDIN (FORMAT binary)") as copy:
                    for start in range(0, len(blob), 1 << 20):
                        copy.write(blob[start:start + (1 << 20)])
        results.append(("raw binary COPY of the person + residence rows",
                        written / (time.perf_counter() - started)))
        conn.execute("DROP TABLE bench_person, bench_residence")

        from sqlalchemy import create_engine

        engine = create_engine(db.owner_url(settings))
        started = time.perf_counter()
        frame = pd.read_csv(path, encoding="gb18030", dtype=str)
        frame.to_sql("bench_register", engine, if_exists="replace", index=False, chunksize=10_000)
        results.append(("pandas read_csv + to_sql (raw text, new table, no index)",
                        len(frame) / (time.perf_counter() - started)))
        # The same job as the loader's person write: the rows as the loader wrote them, appended by to_sql
        # to a copy of person with its indexes (no validation, no address matching, no residences).
        people = pd.read_sql("SELECT name, sex, id_number, birth_date, ethnicity, phone, residency, "
                             "org_path::text AS org_path, district_code FROM person", engine)
        conn.execute("DROP TABLE IF EXISTS bench_person")
        conn.execute("CREATE TABLE bench_person (LIKE person INCLUDING ALL)")
        started = time.perf_counter()
        people.to_sql("bench_person", engine, if_exists="append", index=False, chunksize=10_000,
                      dtype={"org_path": _Ltree()})
        results.append(("to_sql of the loader's person rows into a copy of person",
                        len(people) / (time.perf_counter() - started)))
        engine.dispose()
        conn.execute("DROP TABLE IF EXISTS bench_register, bench_person")
    _print(results)


class _Ltree(UserDefinedType):
    """ltree for to_sql (its default VARCHAR cast has no cast to ltree)."""
    cache_ok = True

    def get_col_spec(self, **kw) -> str:
        return "ltree"


def _binary(conn: psycopg.Connection, table: str) -> bytes:
    out = bytearray()
    with conn.cursor() as cur, cur.copy(f"COPY {table} TO STDOUT (FORMAT binary)") as copy:
        for chunk in copy:
            out += chunk
    return bytes(out)


def _print(results: list[tuple[str, float]]) -> None:
    mine = results[0][1]
    print()
    for label, rate in results:
        print(f"{label:<58} {rate:>12,.0f} rows/s   {rate / mine:6.2f}× the loader")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("boundaries", "register"))
    parser.add_argument("--grids", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database", default="gridgov_bench_etl")
    args = parser.parse_args()
    settings = bench_settings(args.database)
    if args.what == "boundaries":
        bench_boundaries(settings, args.grids)
    else:
        bench_register(settings, args.rows)


if __name__ == "__main__":
    main()
