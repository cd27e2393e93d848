"""The loaders against their anchors, on a scratch database.

    python bench/bench_etl.py boundaries --grids 10000
    python bench/bench_etl.py register --rows 1000000   # the issue's scale; 200000 on a shared 2-core box

``boundaries``: a GBK shapefile (no .cpg, no .prj, CGCS2000 3° Gauss-Krüger CM 120E without the zone
prefix) of ``--grids`` grid squares in 100-grid communities, loaded by

* the loader (encoding detection, CRS inference, repair, code checks, overlaps/gaps/containment in metres,
  new units COPYed straight into territory_unit in the binary format with their keys checked as one set,
  existing ones staged, versioned and updated if changed);
* ``ogr2ogr`` (Debian's gdal-bin) into a plain table, reprojected, ``--config PG_USE_COPY YES``;
* ``GeoDataFrame.to_postgis`` after ``read_file`` + ``to_crs``.

The district's tree is ANALYZEd before each round, as autovacuum leaves a live database. Seven rounds, each
contender once a round, the order turned round every other round; the ratio is taken round by round (the
loader's time over ogr2ogr's in the same round) and its median printed with its range. Boundary figures
(10,000 grids, rows/s; 2 shared cores of which another engineer's work held about one; "×" is how many
times faster than the loader ogr2ogr was):

=============================================================  ================  =============================
run                                                            loader            ogr2ogr
=============================================================  ================  =============================
before, tree not analyzed (3 rounds)                           11,438–13,613     22,195–31,048 (2.1–2.3×)
before, tree analyzed (per-row FK/path lookups by seq scan)    1,500–2,200       18,500–30,300 (8–20×)
0015, COPY straight in, edge-count coverage test               9,100–16,200      15,900–34,500
  (4 runs of 3 rounds: ratio of the medians 1.2×, 1.8×, 1.9×, 2.4×; best rounds 1.6–2.7×)
the same 0015 code, 2 runs of 7 rounds                         10,167–18,254     22,177–32,434
  (median of the per-round ratios 2.26×, 2.18×; rounds 1.51–2.94×)
now: binary COPY made while it is copied, keys checked as one  12,214–21,429     17,884–37,866
set, reprojection/repair during the COPY (5 runs of 7 rounds,
interleaved with the two above: medians 1.58×, 1.66×, 1.48×,
1.62×, 1.60×; rounds 1.07–2.37×)
now, same file again (nothing changed)                         18,358–37,245
+ 0016: territory_unit back on a GiST of org_path alone        16,011–17,425     23,746–26,377
  (3 runs of 7 rounds: medians 1.38×, 1.65×, 1.42×; rounds 1.12–2.19×;
  interleaved A/B with the 0014 index put back: 1.46× vs 1.65×, 1.41× vs 1.77×)
=============================================================  ================  =============================

Where a new 10,000-grid load's time goes now (wall, a quiet round of about 0.5 s): reading the file 0.07–0.1 s
(encoding detection 0.013 of it; the connection opens beside it), the CRS, the code checks and what the
database is asked (siblings, existing codes: in a thread beside them) 0.03–0.05, then the COPY, 0.3–0.45 s,
while the client reprojects and repairs the new units a chunk of 1,000 at a time and sends them (a thread of
psycopg's sends, so the geometry checks, 0.07–0.13 s of GEOS, start as soon as the last chunk is made), then
the set check of the keys, re-attribution and commit, 0.03–0.05. ogr2ogr's whole run is 0.26–0.56 s (about 0.4
in the median round), 0.1–0.19 s of it the server's. The COPY is the difference: by dropping each in a
rolled-back COPY of the same rows, the GiST on (org_path, updated_at) of 0014 cost 0.13 s of the server's 0.3
(the plain org_path GiST 0.09, which 0016 puts back: see its SQL for what reads gain and lose), the boundary
GiST 0.07, the parent_id btree 0.02, heap, parsing
and the unique btrees 0.08, the transition table 0015's path check keeps (even when the check is skipped)
about 0.02. What this session changed, each measured on its own: the per-row parent_id check and 0015's
statement check skipped (``session_replication_role = replica`` with the parents locked and the rows checked
as one set afterwards) 0.05–0.08 s of server CPU; COPY's binary format instead of text 0.015–0.05 (no hex or
ltree text to parse); the COPY rows made while the server copies, and the reprojection and repair with them,
0.04–0.06 s of wall; the database questions in a thread 0.01–0.02; re-attribution asking nothing more when
nothing moves 0.01. Tried and dropped: inserting in reverse or random order (no difference in the GiSTs'
cost), the path check with ltree operators instead of text (no faster), reading through Arrow (0.02 s faster,
but needs pyarrow, not a dependency).

``register``: a GBK CSV person register of ``--rows`` rows (ID numbers with valid check digits, addresses
of houses that exist), loaded by

* the loader (header mapping, validation, duplicate, household-head and address matching, each chunk's
  people and residences written by ``COPY`` while the next chunk is read);
* a raw binary ``COPY`` of the same rows as the loader wrote them, into an empty copy of ``person``, and
  of ``person`` + ``residence`` (what the loader writes: a register row is a person and a residence);
* ``DataFrame.to_sql`` of the CSV as read by pandas (raw text into a new table without an index), of the
  loader's person rows into an empty copy of ``person``, and of those plus the residences into copies of
  both (the same tables' work as the loader's, without validation or matching).

Prints rows/s and the ratios. The database is ``gridgov_bench_etl`` on the cluster the environment names
(``GRIDGOV_VAR_DIR`` / ``GRIDGOV_PG_PORT``; default the embedded one).

Register figures ("×" is how many times faster than the loader the anchor was; the same VM measures
±20 % between runs even when idle):

===================================  ==========  =============  ==============  ========  ========  ==========
run                                  loader      COPY person    COPY person +   to_sql    to_sql    to_sql
                                                                residence       raw       person    person +
                                                                                                    residence
===================================  ==========  =============  ==============  ========  ========  ==========
200k, session 3 (staging + INSERT)    7,638 r/s  34,484 (4.5×)  15,996 (2.1×)   (2.1×)    –
1M, session 3                         6,387 r/s  26,382 (4.1×)  15,345 (2.4×)   (3.0×)    –
200k, streamed COPY, idle box        12,884 r/s  43,370 (3.4×)  21,567 (1.7×)   (2.5×)    (1.2×)
1M, streamed COPY, idle box          16,447 r/s  36,333 (2.2×)  26,428 (1.6×)   (2.9×)    (1.2×)
200k, + only the file's columns      18,360 r/s  49,529 (2.7×)  31,050 (1.7×)   (2.1×)    (1.0×)
1M, + only the file's columns        18,134 r/s  38,752 (2.1×)  26,724 (1.5×)   (2.2×)    (0.9×)    –
session 5 (a slower day on the VM:
the 200k loader 13.4–14.7k r/s for
the code above, A/B interleaved):
200k, chunks written by a thread     15,857 r/s  39,634 (2.5×)  22,954 (1.4×)   (2.2×)    (1.1×)    0.57×
1M, chunks written by a thread       15,304 r/s  38,136 (2.5×)  20,636 (1.3×)   (2.4×)    (1.1×)    0.57×
===================================  ==========  =============  ==============  ========  ========  ==========

Where the time goes now (200k, CPU seconds): the Python process ~9 (reading ~1.3, column-wise validation ~4,
the chunks' checks ~0.8, formatting the COPY text ~0.7), the writing backend 8–9 (person ~4.5: its GIN
trigram on name and GiST on (org_path, updated_at) are most of it; residence ~4: six indexes, its GiST on
org_path a third), the lookup backend ~1.2. The raw COPY anchors pay the same server work: 8.0–9.3 s for the
person + residence rows however they are chunked, locked or copied (into the tables or into copies without
triggers), against ~4.5 s for the person rows alone: a loader that cost the server nothing more than the raw
COPY, and whose Python hid entirely behind it, would be at 1.8–2.1× of the person-only COPY; this one, with
~9 s of Python on the other core, is at 2.5×, and at 1.3–1.5× of the like-for-like anchor. Nor can any
loader be several times faster than ``to_sql`` here: psycopg 3 sends pandas' ``executemany`` pipelined, so
``to_sql`` of the same rows into the same tables runs at 0.42× of the raw ``COPY`` (8,763 against 20,636
rows/s at 1M) -- a loader as fast as raw ``COPY`` would be 2.4× ``to_sql``; this one is 1.75×. The writer
thread's gain is not in the figures above (A/B at 200k and 1M: the same rows/s within the VM's noise --
Python, not the server, sets the pace on two cores); it bounds the load's memory to two chunks (1M rows: 427
MB peak instead of 577 MB).
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


def bench_boundaries(settings: Settings, grids: int, rounds: int = 7) -> None:
    """Each contender ``rounds`` times, interleaved (so a busy shared machine slows all alike), the order
    turned round every other round (the anchors first, then the loader); every round is printed, and
    the median of the per-round ratios to the loader with their range, so one noisy round decides
    nothing."""
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

    def loader_runs() -> None:
        reset_territory(conn, communities)
        timed("loader (new grids, checks included)", load_new)
        timed("loader (same file again: nothing changed)",
              lambda: load_boundaries(settings, shp, BoundaryOptions(level="grid")))

    def anchor_runs() -> None:
        timed("ogr2ogr (PG_USE_COPY)", ogr)
        timed("geopandas read_file + to_postgis", geopandas)

    from sqlalchemy import create_engine

    engine = create_engine(db.owner_url(settings))
    dsn = db.libpq_dsn(db.owner_url(settings))
    with tempfile.TemporaryDirectory() as tmp, connect(settings) as conn:
        shp = Path(tmp) / "grids.shp"
        n = grid_shapefile(shp, communities)
        print(f"{n:,} grid polygons, {communities} communities, {rounds} rounds")
        for k in range(rounds):
            for part in ((loader_runs, anchor_runs) if k % 2 == 0 else (anchor_runs, loader_runs)):
                part()
        conn.execute("DROP TABLE IF EXISTS bench_ogr, bench_gpd")
    engine.dispose()
    for label, runs in seconds.items():
        print(f"{label:<58} rounds: " + ", ".join(f"{n / s:,.0f}" for s in runs) + " rows/s")
    print("\nbest round of each:", end="")
    _print([(label, n / min(runs)) for label, runs in seconds.items()])
    print("\nmedian round of each:", end="")
    _print([(label, n / statistics.median(runs)) for label, runs in seconds.items()])
    # Round by round: how many times faster than the new-grid load each was, in the same round.
    mine = seconds["loader (new grids, checks included)"]
    print("\nper-round ratio to the loader's new-grid load (median, range):")
    for label, runs in list(seconds.items())[1:]:
        ratios = [m / s for m, s in zip(mine, runs, strict=True)]
        print(f"{label:<58} {statistics.median(ratios):6.2f}×   ({min(ratios):.2f}–{max(ratios):.2f}×)")


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
        # The same job as the loader's writes: the rows as the loader wrote them, appended by to_sql to
        # copies of person and residence with their indexes (no validation, no address matching).
        people, person_seconds = _to_sql_copy(conn, engine, "person", "name, sex, id_number, birth_date, "
                                              "ethnicity, phone, residency, org_path::text AS org_path, "
                                              "district_code")
        results.append(("to_sql of the loader's person rows into a copy of person", people / person_seconds))
        _, residence_seconds = _to_sql_copy(conn, engine, "residence", "person_id, house_id, relation, "
                                            "is_head, org_path::text AS org_path, district_code")
        results.append(("to_sql of the person + residence rows into copies of both",
                        people / (person_seconds + residence_seconds)))
        engine.dispose()
        conn.execute("DROP TABLE IF EXISTS bench_register, bench_person, bench_residence")
    _print(results)


def _to_sql_copy(conn: psycopg.Connection, engine, table: str, columns: str) -> tuple[int, float]:
    """``(rows, seconds)`` of ``DataFrame.to_sql`` of ``table``'s rows (``columns``) into an empty copy of it
    (``bench_<table>``, indexes included)."""
    frame = pd.read_sql(f"SELECT {columns} FROM {table}", engine)
    conn.execute(f"DROP TABLE IF EXISTS bench_{table}")
    conn.execute(f"CREATE TABLE bench_{table} (LIKE {table} INCLUDING ALL)")
    started = time.perf_counter()
    frame.to_sql(f"bench_{table}", engine, if_exists="append", index=False, chunksize=10_000,
                 dtype={"org_path": _Ltree()})
    return len(frame), time.perf_counter() - started


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
