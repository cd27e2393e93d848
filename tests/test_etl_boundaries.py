"""Boundary loading from files the tests make themselves: GBK shapefiles without .cpg in Gauss-Krüger
zones with and without the zone prefix, overlapping and gapped grids, an invalid polygon, bad codes, and a
grid change that re-attributes a building's people and an event."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Transformer
from sqlalchemy import text

from etl.boundaries import BoundaryOptions, guess_field, load_boundaries
from etl.encoding import GB18030, dbf_text_bytes, guess_bytes
from gis import db
from gis.crs import gauss_kruger_epsg, prefixed_zone_epsg, unprefixed_candidates
from tests.access_helpers import add_district, add_house, add_person, add_unit, wipe

GK = 4549           # CGCS2000 3-degree Gauss-Krüger CM 120E: where 鼓楼区 is surveyed
GK_PREFIXED = 4528  # the same zone (40) with the zone number in the easting
TO_LONLAT = Transformer.from_crs(GK, 4490, always_xy=True)
# Community squares, 2 km a side, side by side in the zone (south-west corners, metres).
CORNERS = {"c1": (380_000, 3_548_000), "c2": (382_000, 3_548_000), "c3": (384_000, 3_548_000),
           "c4": (386_000, 3_548_000)}


def square(x0, y0, w, h):
    return shapely.box(x0, y0, x0 + w, y0 + h)


def lonlat(geom):
    return shapely.transform(geom, lambda xy: np.column_stack(TO_LONLAT.transform(xy[:, 0], xy[:, 1])))


@pytest.fixture(scope="module")
def world(fresh_db):
    wipe(fresh_db)
    with db.owner_engine(fresh_db).begin() as conn:
        district = add_district(conn)
        whole = square(380_000, 3_548_000, 8_000, 2_000)
        conn.execute(text("UPDATE territory_unit SET boundary = ST_Multi(ST_GeomFromText(:wkt, 4490)) "
                          "WHERE id = :id"), {"wkt": lonlat(whole).wkt, "id": district.id})
        street = add_unit(conn, "street", "320106001", "宁海路街道", district)
        units = {}
        for n, key in enumerate(CORNERS, start=1):
            units[key] = add_unit(conn, "community", f"320106001{n:03d}", f"测试社区{n}", street)
            conn.execute(text("UPDATE territory_unit SET boundary = ST_Multi(ST_GeomFromText(:wkt, 4490)) "
                              "WHERE id = :id"),
                         {"wkt": lonlat(square(*CORNERS[key], 2_000, 2_000)).wkt, "id": units[key].id})
    return units


def write_gbk_shapefile(path, frame, zero_ldid=True):
    """A shapefile as old desktop GIS writes it: GBK attributes, no .cpg, no .prj."""
    frame.to_file(path, driver="ESRI Shapefile", encoding="GBK")
    for suffix in (".cpg", ".prj"):
        path.with_suffix(suffix).unlink(missing_ok=True)
    if zero_ldid:
        with open(path.with_suffix(".dbf"), "r+b") as f:
            f.seek(29)
            f.write(b"\x00")


def two_grids(community_code, corner, split=1_000, shift_x=0.0):
    x0, y0 = corner
    return gpd.GeoDataFrame(
        {"网格名称": ["第一网格", "第二网格"], "网格编码": [f"{community_code}001", f"{community_code}002"],
         "备注": ["老城区", "新区"]},
        geometry=[square(x0 + shift_x, y0, split, 2_000),
                  square(x0 + shift_x + split, y0, 2_000 - split, 2_000)],
        crs=None)


def centroid_error_m(settings, code, truth_lonlat) -> float:
    with db.owner_engine(settings).connect() as conn:
        return conn.execute(text(
            "SELECT ST_Distance(ST_Centroid(boundary)::geography, ST_SetSRID(ST_MakePoint(:x, :y), "
            "4490)::geography)"
            " FROM territory_unit WHERE code = "
            ":code"), {"x": truth_lonlat.x, "y": truth_lonlat.y, "code": code}
        ).scalar_one()


def test_zone_arithmetic():
    assert gauss_kruger_epsg(120, 3, prefixed=False) == GK
    assert prefixed_zone_epsg(40_380_000) == GK_PREFIXED
    assert prefixed_zone_epsg(20_500_000) == 4498  # 6° zone 20, CM 117
    assert unprefixed_candidates(118.78)[0] == GK
    assert guess_field(["FID", "所属社区名称", "名称", "编码"], ("名称",)) == "名称"


def test_gbk_shapefile_with_zone_prefix_loads_right(world, fresh_db, tmp_path):
    frame = two_grids("320106001001", CORNERS["c1"])
    truth = [lonlat(g.centroid) for g in frame.geometry]
    frame.geometry = frame.geometry.translate(xoff=40_000_000)
    shp = tmp_path / "网格.shp"
    write_gbk_shapefile(shp, frame)
    assert not shp.with_suffix(".cpg").exists()
    assert guess_bytes(dbf_text_bytes(shp.with_suffix(".dbf"))) == GB18030

    report = load_boundaries(fresh_db, shp, BoundaryOptions(level="grid"))

    assert report.outcome == "loaded", report.errors
    assert report.encoding["used"] == GB18030
    assert report.crs["source"] == f"EPSG:{GK_PREFIXED}" and "带号" in report.crs["why"]
    assert report.fields["name"] == "网格名称" and report.fields["code"] == "网格编码"
    assert report.fields["unused"] == ["备注"]
    assert report.written == {"inserted": 2, "updated": 0, "unchanged": 0, "versions_kept": 0}
    with db.owner_engine(fresh_db).connect() as conn:
        names = conn.execute(text("SELECT code, name, path::text FROM territory_unit WHERE level = 'grid' "
                                  "ORDER BY code")).all()
    assert [(c, n) for c, n, _ in names] == [("320106001001001", "第一网格"), ("320106001001002", "第二网格")]
    assert names[0][2] == "32.3201.320106.320106001.320106001001.320106001001001"
    for (code, _, _), point in zip(names, truth, strict=True):
        assert centroid_error_m(fresh_db, code, point) < 1.0
    assert report.gaps == [] and report.overlaps == [] and report.outside_parent == []


def test_shapefile_without_zone_prefix_takes_the_zone_of_the_district(world, fresh_db, tmp_path):
    frame = two_grids("320106001002", CORNERS["c2"])
    truth = lonlat(frame.geometry.iloc[0].centroid)
    shp = tmp_path / "grids.shp"
    write_gbk_shapefile(shp, frame)

    report = load_boundaries(fresh_db, shp, BoundaryOptions(level="grid", parent_code="320106001002"))

    assert report.outcome == "loaded", report.errors
    # Not the 6° zone CM 117 (EPSG:4509) that would also fit the numbers: that lands 280 km west.
    assert report.crs["source"] == f"EPSG:{GK}" and "500000" in report.crs["why"]
    assert centroid_error_m(fresh_db, "320106001002001", truth) < 1.0


def test_overlaps_and_gaps_are_reported_with_their_areas(world, fresh_db, tmp_path):
    x0, y0 = CORNERS["c3"]
    frame = gpd.GeoDataFrame(
        {"名称": ["甲网格", "乙网格"], "代码": ["320106001003001", "320106001003002"]},
        geometry=[square(x0, y0, 1_020, 2_000), square(x0 + 1_000, y0, 1_000, 1_900)], crs=f"EPSG:{GK}")
    path = tmp_path / "grids.gpkg"
    frame.to_file(path, driver="GPKG")

    report = load_boundaries(fresh_db, path, BoundaryOptions(level="grid"))

    assert report.outcome == "loaded"
    assert "声明" in report.crs["why"]
    assert len(report.overlaps) == 1
    assert report.overlaps[0]["area_m2"] == pytest.approx(20 * 1_900, rel=1e-3)
    assert {report.overlaps[0]["a"], report.overlaps[0]["b"]} == {"320106001003001", "320106001003002"}
    assert len(report.gaps) == 1
    assert report.gaps[0]["parent"] == "320106001003"
    assert report.gaps[0]["area_m2"] == pytest.approx(980 * 100, rel=1e-3)


def test_invalid_polygon_is_repaired_and_listed_and_bad_codes_refuse_the_file(world, fresh_db, tmp_path):
    x0, y0 = CORNERS["c4"]
    bowtie = shapely.Polygon([(x0, y0), (x0 + 1_000, y0 + 2_000), (x0 + 1_000, y0), (x0, y0 + 2_000)])
    good = square(x0 + 1_000, y0, 1_000, 2_000)
    frame = gpd.GeoDataFrame({"name": ["蝴蝶网格", "正常网格"],
                              "code": ["320106001004001", "320106001004002"]},
                             geometry=[lonlat(bowtie), lonlat(good)], crs="EPSG:4490")
    path = tmp_path / "grids.geojson"
    frame.to_file(path, driver="GeoJSON")

    report = load_boundaries(fresh_db, path, BoundaryOptions(level="grid"))

    assert report.outcome == "loaded", report.errors
    assert [r["code"] for r in report.repaired] == ["320106001004001"]
    assert "Self-intersection" in report.repaired[0]["reason"]
    with db.owner_engine(fresh_db).connect() as conn:
        valid = conn.execute(text("SELECT ST_IsValid(boundary), ST_NumGeometries(boundary) FROM "
                                  "territory_unit "
                                  "WHERE code = '320106001004001'")).one()
    assert valid == (True, 2)

    # A duplicate and a malformed code: the whole file is refused, nothing changes.
    bad = gpd.GeoDataFrame({"name": ["甲", "乙", "丙"],
                            "code": ["320106001004003", "320106001004003", "3201X"]},
                           geometry=[lonlat(good)] * 3, crs="EPSG:4490")
    bad_path = tmp_path / "bad.geojson"
    bad.to_file(bad_path, driver="GeoJSON")
    refused = load_boundaries(fresh_db, bad_path, BoundaryOptions(level="grid"))
    assert refused.outcome == "refused"
    kinds = sorted((e["row"], e["kind"]) for e in refused.errors)
    assert kinds == [(2, "duplicate_code"), (3, "malformed_code")]
    with db.owner_engine(fresh_db).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM territory_unit WHERE code = "
                                 "'320106001004003'")).scalar() == 0
        outcome = conn.execute(text("SELECT outcome, rows_bad FROM data_load ORDER BY id DESC LIMIT 1")).one()
    assert outcome == ("refused", 2)


def test_grid_change_reattributes_people_and_events(world, fresh_db, tmp_path):
    """Community 1's grids (loaded above, split at 1000 m) move their border 200 m west: a building
    between the old and the new border, its house, its resident and an event there go to grid 2."""
    engine = db.owner_engine(fresh_db)
    x0, y0 = CORNERS["c1"]
    spot = lonlat(shapely.Point(x0 + 900, y0 + 1_000))
    with engine.begin() as conn:
        g1, g2 = conn.execute(text("SELECT id, path::text FROM territory_unit WHERE code IN "
                                   "('320106001001001', '320106001001002') ORDER BY code")).all()
        building = conn.execute(text(
            "INSERT INTO building (grid_id, name, floors, footprint) VALUES (:g, '边界楼', 6, "
            "ST_Buffer(ST_SetSRID(ST_MakePoint(:x, :y), 4490), 0.0001, 'quad_segs=1')) RETURNING id"),
            {"g": g1.id, "x": spot.x, "y": spot.y}).scalar_one()
        person = add_person(conn, add_house(conn, building))
        event = conn.execute(text(
            "INSERT INTO event (number, title, type, source, status, unit_path, unit_level, step_started_at, "
            "reported_at, grid_id, location, org_path, district_code) VALUES ('320106202611290001', '占道"
            "经营', "
            "'0101', 'grid_worker', 'reported', CAST(:p AS ltree), 'grid', now(), now(), :g, "
            "ST_SetSRID(ST_MakePoint(:x, :y), 4490), CAST(:p AS ltree), '320106') RETURNING id"),
            {"p": g1.path, "g": g1.id, "x": spot.x, "y": spot.y}).scalar_one()
        conn.execute(text("INSERT INTO event_history (event_id, at, action, to_status, step_no, version, "
                          "org_path, "
                          "district_code) SELECT id, now(), 'report', 'reported', 1, 1, org_path, "
                          "district_code "
                          "FROM event WHERE id = :e"), {"e": event})
        # A building well inside grid 1 stays.
        stay = lonlat(shapely.Point(x0 + 300, y0 + 1_000))
        conn.execute(text(
            "INSERT INTO building (grid_id, name, floors, footprint) VALUES (:g, '里面楼', 6, "
            "ST_Buffer(ST_SetSRID(ST_MakePoint(:x, :y), 4490), 0.0001, 'quad_segs=1'))"),
            {"g": g1.id, "x": stay.x, "y": stay.y})

    frame = two_grids("320106001001", CORNERS["c1"], split=800)
    frame.geometry = frame.geometry.translate(xoff=40_000_000)
    shp = tmp_path / "网格2.shp"
    write_gbk_shapefile(shp, frame)

    rehearsal = load_boundaries(fresh_db, shp, BoundaryOptions(level="grid", dry_run=True))
    assert rehearsal.outcome == "dry_run"
    assert rehearsal.moved == {"houses": 1, "people": 1, "buildings": 1, "compounds": 0, "events": 1}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT grid_id FROM building WHERE id = "
                                 ":b"), {"b": building}).scalar() == g1.id

    report = load_boundaries(fresh_db, shp, BoundaryOptions(level="grid"))

    assert report.outcome == "loaded"
    assert report.written == {"inserted": 0, "updated": 2, "unchanged": 0, "versions_kept": 2}
    assert report.moved == {"houses": 1, "people": 1, "buildings": 1, "compounds": 0, "events": 1}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT org_path::text FROM person WHERE id = :p"), {"p": person}).scalar() \
            == g2.path
        assert conn.execute(text("SELECT grid_id, org_path::text, unit_path::text FROM event WHERE id = :e"),
                            {"e": event}).one() == (g2.id, g2.path, g2.path)
        assert conn.execute(text("SELECT DISTINCT org_path::text FROM event_history WHERE event_id = :e"),
                            {"e": event}).scalar() == g2.path
        assert conn.execute(text("SELECT count(*) FROM building WHERE grid_id = "
                                 ":g"), {"g": g1.id}).scalar() == 1
        versions = conn.execute(text(
            "SELECT code, round(ST_Area(boundary::geography)) FROM territory_unit_version "
            "WHERE code LIKE '320106001001%' ORDER BY code")).all()
    assert [code for code, _ in versions] == ["320106001001001", "320106001001002"]
    assert versions[0][1] == pytest.approx(2_000_000, rel=2e-3)  # the old 1000 m x 2000 m grid 1


def _cli_env(monkeypatch, settings):
    monkeypatch.setenv("GRIDGOV_VAR_DIR", str(settings.var_dir))
    monkeypatch.setenv("GRIDGOV_PG_PORT", str(settings.pg_port))
    monkeypatch.setenv("GRIDGOV_PG_DATABASE", settings.pg_database)


def test_cli_zipped_shapefile_dry_run_writes_a_report(world, fresh_db, tmp_path, monkeypatch):
    import json
    import zipfile

    from typer.testing import CliRunner

    from gis.cli import app

    frame = two_grids("320106001002", CORNERS["c2"], split=1_200)
    shp = tmp_path / "网格边界.shp"
    write_gbk_shapefile(shp, frame)
    archive = tmp_path / "grids.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for part in tmp_path.glob("网格边界.*"):
            z.write(part, part.name)
    _cli_env(monkeypatch, fresh_db)
    out = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["etl", "boundaries", str(archive), "--level", "grid", "--dry-run",
                                      "--report", str(out)])
    assert result.exit_code == 0, result.output
    assert "试运行" in result.output
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["outcome"] == "dry_run"
    assert report["written"]["updated"] == 2 and report["preview"][0]["name"] == "第一网格"
    with db.owner_engine(fresh_db).connect() as conn:
        area = conn.execute(text("SELECT ST_Area(boundary::geography) FROM territory_unit "
                                 "WHERE code = '320106001002001'")).scalar()
    assert area == pytest.approx(2_000_000, rel=2e-3)  # unchanged: 1000 m wide, not 1200


def test_cli_gcj02_kml_is_shifted_back(world, fresh_db, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from gis.cli import app
    from gis.crs import from_wgs84_to_gcj02

    x0, y0 = CORNERS["c3"]
    true_cell = lonlat(square(x0 + 100, y0 + 100, 500, 500))
    shifted = shapely.transform(true_cell, lambda xy: np.array([from_wgs84_to_gcj02(*p) for p in xy]))
    frame = gpd.GeoDataFrame({"Name": ["高德网格"], "code": ["320106001003009"]}, geometry=[shifted],
                             crs="EPSG:4326")
    kml = tmp_path / "amap.kml"
    frame.to_file(kml, driver="KML")
    _cli_env(monkeypatch, fresh_db)
    result = CliRunner().invoke(app, ["etl", "boundaries", str(kml), "--level", "grid", "--crs", "gcj02"])
    assert result.exit_code == 0, result.output
    assert centroid_error_m(fresh_db, "320106001003009", true_cell.centroid) < 0.5


def test_checks_take_the_same_answers_on_clean_and_messy_coverages(world, fresh_db, tmp_path):
    """The checks' shortcuts (a clean coverage is unioned at once, and pairs are tested only for the
    polygons GEOS's coverage validator flags) find what the pairwise tests found: in community 1 a clean
    coverage with a gap, in community 3 a clean coverage with a gap and a grid sticking 50 m out into
    community 4, in community 2 a grid inside another and a duplicate. A dry run: nothing is written."""
    (a1, b1), (a2, b2), (a3, b3) = CORNERS["c1"], CORNERS["c2"], CORNERS["c3"]
    rows = [
        ("320106001001001", square(a1, b1, 1_000, 2_000)),
        ("320106001001002", square(a1 + 1_000, b1, 1_000, 1_500)),          # gap 1000 x 500 above it
        ("320106001003001", square(a3, b3, 1_000, 1_000)),
        ("320106001003002", square(a3 + 1_000, b3, 1_000, 1_000)),
        ("320106001003003", square(a3, b3 + 1_000, 1_000, 1_000)),
        # Vertex for vertex on 002's top edge, then 50 m into community 4 (and 100 m short of the top).
        ("320106001003004", shapely.Polygon([(a3 + 1_000, b3 + 1_000), (a3 + 2_000, b3 + 1_000),
                                             (a3 + 2_050, b3 + 1_000), (a3 + 2_050, b3 + 1_900),
                                             (a3 + 1_000, b3 + 1_900)])),
        ("320106001002001", square(a2, b2, 2_000, 2_000)),
        ("320106001002002", square(a2 + 100, b2 + 100, 200, 200)),            # inside 001
        ("320106001002003", square(a2 + 1_000, b2 + 1_000, 300, 300)),        # inside 001 ...
        ("320106001002004", square(a2 + 1_000, b2 + 1_000, 300, 300)),        # ... twice
    ]
    frame = gpd.GeoDataFrame({"名称": [f"网格{i}" for i in range(len(rows))], "代码": [c for c, _ in rows]},
                             geometry=[g for _, g in rows], crs=f"EPSG:{GK}")
    path = tmp_path / "mixed.gpkg"
    frame.to_file(path, driver="GPKG")
    with db.owner_engine(fresh_db).connect() as conn:
        before = conn.execute(text("SELECT count(*), max(updated_at) FROM territory_unit")).one()

    report = load_boundaries(fresh_db, path, BoundaryOptions(level="grid", dry_run=True))

    assert report.outcome == "dry_run", report.errors
    gaps = {g["parent"]: g["area_m2"] for g in report.gaps}
    assert gaps.keys() == {"320106001001", "320106001003"}
    assert gaps["320106001001"] == pytest.approx(1_000 * 500, rel=1e-3)
    assert gaps["320106001003"] == pytest.approx(1_000 * 100, rel=1e-3)
    assert [(o["code"], o["parent"]) for o in report.outside_parent] == [("320106001003004",
                                                                          "320106001003")]
    # 45 m beyond the 5 m tolerance, 900 m long.
    assert report.outside_parent[0]["area_m2"] == pytest.approx(45 * 900, rel=1e-3)
    # (Grids other tests left in community 2 overlap 001 as well: only the file's own pairs are looked at.)
    codes = {c for c, _ in rows}
    overlaps = sorted((o["a"][-3:], o["b"][-3:], o["area_m2"]) for o in report.overlaps
                      if o["a"] in codes and o["b"] in codes)
    assert [(a, b) for a, b, _ in overlaps] == [("001", "002"), ("001", "003"), ("001", "004"),
                                               ("003", "004")]
    assert [area for *_, area in overlaps] == pytest.approx([40_000, 90_000, 90_000, 90_000], rel=1e-3)
    with db.owner_engine(fresh_db).connect() as conn:
        assert conn.execute(text("SELECT count(*), max(updated_at) FROM territory_unit")).one() == before


def test_a_unit_wholly_outside_the_district_refuses_the_file_after_writes_began(world, fresh_db, tmp_path):
    """The geometry checks run beside the writes: a refusal they find rolls back the whole file (the good
    unit with it), and the history records the refusal with nothing written."""
    x0, y0 = CORNERS["c4"]
    frame = gpd.GeoDataFrame(
        {"名称": ["好网格", "远网格"], "代码": ["320106001004008", "320106001004009"]},
        geometry=[square(x0 + 100, y0 + 100, 50, 50), square(x0 + 60_000, y0, 500, 500)],
        crs=f"EPSG:{GK}")
    path = tmp_path / "far.gpkg"
    frame.to_file(path, driver="GPKG")
    engine = db.owner_engine(fresh_db)
    with engine.connect() as conn:
        before = conn.execute(text("SELECT count(*), max(updated_at) FROM territory_unit")).one()

    report = load_boundaries(fresh_db, path, BoundaryOptions(level="grid"))

    assert report.outcome == "refused"
    assert [(e["code"], e["kind"]) for e in report.errors] == [("320106001004009", "outside_district")]
    assert report.written == {} and report.moved == {}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*), max(updated_at) FROM territory_unit")).one() == before
        assert conn.execute(text("SELECT count(*) FROM territory_unit WHERE code IN ('320106001004008', "
                                 "'320106001004009')")).scalar() == 0
        outcome, written = conn.execute(text("SELECT outcome, rows_written FROM data_load WHERE id = :id"),
                                        {"id": report.load_id}).one()
    assert (outcome, written) == ("refused", 0)


# ---------------------------------------------------------------- the load's shortcuts
_MUTATIONS = ("none", "shift", "nudge", "duplicate", "nested", "drop", "t_junction", "hole", "split", "multi",
              "widen")


def _mutated_grid(n, m, kind, k, reverse):
    """An n x m grid of unit squares with one change of ``kind`` to square ``k``; rings reversed where
    ``reverse`` says (shapefiles store shells clockwise, GeoJSON anticlockwise)."""
    polys = [shapely.box(i, j, i + 1, j + 1) for i in range(n) for j in range(m)]
    k %= len(polys)
    x0, y0, x1, y1 = polys[k].bounds
    if kind == "shift":
        polys[k] = shapely.affinity.translate(polys[k], 0.5, 0.3)
    elif kind == "nudge":
        polys[k] = shapely.affinity.translate(polys[k], 1e-9, 0)
    elif kind == "duplicate":
        polys.append(polys[k])
    elif kind == "nested":
        polys.append(shapely.affinity.scale(polys[k], 0.3, 0.3))
    elif kind == "drop" and len(polys) > 1:
        polys.pop(k)
    elif kind == "t_junction":
        polys[k] = shapely.Polygon([(x0, y0), ((x0 + x1) / 2, y0), (x1, y0), (x1, y1), (x0, y1)])
    elif kind == "hole":
        polys[k] = polys[k].difference(shapely.affinity.scale(polys[k], 0.5, 0.5))
        polys.append(shapely.affinity.scale(shapely.box(x0, y0, x1, y1), 0.5, 0.5))
    elif kind == "split":
        polys[k] = shapely.box(x0, y0, (x0 + x1) / 2, y1)
        polys.append(shapely.box((x0 + x1) / 2, y0, x1, y1))
    elif kind == "multi" and len(polys) > 1:
        other = polys.pop((k + 1) % len(polys))
        polys[k % len(polys)] = shapely.MultiPolygon([polys[k % len(polys)], other])
    elif kind == "widen":
        polys[k] = shapely.affinity.scale(polys[k], 1.2, 1.0)
    return np.asarray([shapely.reverse(p) if r else p for p, r in zip(polys, reverse, strict=False)] +
                      polys[len(reverse):], dtype=object)


def test_clean_coverage_shortcut_never_passes_what_geos_flags():
    """The edge count that spares GEOS's coverage validator for clean files says "clean" only when the
    validator would (overlaps, duplicates, nested and mismatched edges all go to the validator), and does
    say it for clean grids whatever their rings' orientation."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from etl.boundaries import clean_coverage

    @settings(max_examples=300, deadline=None)
    @given(st.integers(1, 4), st.integers(1, 4), st.sampled_from(_MUTATIONS), st.integers(0, 20),
           st.lists(st.booleans(), max_size=20))
    def check(n, m, kind, k, reverse):
        polys = _mutated_grid(n, m, kind, k, reverse)
        valid = bool(shapely.coverage_is_valid(polys))
        if clean_coverage(polys):
            assert valid, (kind, [p.wkt for p in polys])
        if kind in ("none", "drop", "hole"):
            assert valid and clean_coverage(polys)
        if kind in ("duplicate", "nested"):
            assert not valid and not clean_coverage(polys)

    check()


def test_a_supplied_path_must_be_the_parents_path_plus_the_code(world, fresh_db):
    """Loads supply each unit's path (the path trigger then skips the row: migration 0015); a statement
    trigger refuses any that is not the parent's path plus the code, and a row without one still gets it
    from the row trigger."""
    from sqlalchemy.exc import IntegrityError

    community = world["c2"]
    insert = text("INSERT INTO territory_unit (level, code, name, parent_id, path, org_path) "
                  "VALUES ('grid', :code, '路径网格', :parent, CAST(:path AS ltree), CAST(:path AS ltree))")
    engine = db.owner_engine(fresh_db)
    with engine.connect() as conn, conn.begin() as tx:
        conn.execute(insert, {"code": "320106001002098", "parent": community.id,
                              "path": f"{community.path}.320106001002098"})
        conn.execute(text("INSERT INTO territory_unit (level, code, name, parent_id) VALUES ('grid', "
                          "'320106001002097', '无路径网格', :parent)"), {"parent": community.id})
        paths = dict(conn.execute(text("SELECT code, path::text FROM territory_unit WHERE code IN "
                                       "('320106001002097', '320106001002098')")).all())
        assert paths == {"320106001002097": f"{community.path}.320106001002097",
                         "320106001002098": f"{community.path}.320106001002098"}
        tx.rollback()
    with engine.connect() as conn, conn.begin():
        with pytest.raises(IntegrityError, match="路径"):
            conn.execute(insert, {"code": "320106001002096", "parent": community.id,
                                  "path": "32.3201.320106.320106001.320106001001.320106001002096"})


def test_names_with_tabs_and_backslashes_survive_the_copy_and_a_reload_writes_nothing(world, fresh_db,
                                                                                        tmp_path):
    """Units go to the database by COPY (new ones in its binary format, changed ones as text): a tab, a
    backslash or a line end in a name comes back as it was. Loading the same file again writes nothing
    (no version, no update); a changed name updates that unit only, keeping its old version."""
    x0, y0 = CORNERS["c4"]
    names = ["甲\t网格", "乙\\网格\n二"]
    frame = gpd.GeoDataFrame({"名称": names, "代码": ["320106001004021", "320106001004022"]},
                             geometry=[square(x0 + 100, y0 + 100, 100, 100),
                                       square(x0 + 200, y0 + 100, 100, 100)], crs=f"EPSG:{GK}")
    path = tmp_path / "names.geojson"
    frame.to_file(path, driver="GeoJSON")

    first = load_boundaries(fresh_db, path, BoundaryOptions(level="grid"))
    again = load_boundaries(fresh_db, path, BoundaryOptions(level="grid"))
    frame.loc[1, "名称"] = "乙网格"
    frame.to_file(path, driver="GeoJSON")
    renamed = load_boundaries(fresh_db, path, BoundaryOptions(level="grid"))

    assert first.outcome == "loaded" and first.written["inserted"] == 2, first.errors
    assert again.written == {"inserted": 0, "updated": 0, "unchanged": 2, "versions_kept": 0}
    assert renamed.written == {"inserted": 0, "updated": 1, "unchanged": 1, "versions_kept": 1}
    with db.owner_engine(fresh_db).connect() as conn:
        stored = conn.execute(text("SELECT code, name, path::text FROM territory_unit WHERE code IN "
                                   "('320106001004021', '320106001004022') ORDER BY code")).all()
        kept = conn.execute(text("SELECT name FROM territory_unit_version WHERE code = "
                                 "'320106001004022'")).scalars().all()
    assert [n for _, n, _ in stored] == ["甲\t网格", "乙网格"]
    assert stored[0][2] == f"{world['c4'].path}.320106001004021"
    assert kept == ["乙\\网格\n二"]


def test_new_units_keys_are_checked_as_one_set_when_the_insert_triggers_are_skipped(world, fresh_db, tmp_path,
                                                                                      monkeypatch):
    """New units are copied with ``session_replication_role = replica`` (``gridgov db up`` grants it),
    which skips the per-row foreign-key trigger and 0015's path check: the loader locks the parents and
    checks the copied rows itself, so a unit naming a parent that is gone, or carrying a path that is not
    its parent's plus its code, still refuses the whole file and leaves nothing behind. Without the grant,
    or with an insert trigger the loader does not stand in for, the triggers run and refuse the same."""
    import psycopg

    import etl.boundaries as boundaries
    from gis import cluster

    x0, y0 = CORNERS["c3"]
    codes = ["320106001003061", "320106001003062"]
    frame = gpd.GeoDataFrame({"名称": ["键网格一", "键网格二"], "代码": codes},
                             geometry=[square(x0 + 1_500, y0 + 1_500, 100, 100),
                                       square(x0 + 1_600, y0 + 1_500, 100, 100)], crs=f"EPSG:{GK}")
    path = tmp_path / "keys.gpkg"
    frame.to_file(path, driver="GPKG")
    engine = db.owner_engine(fresh_db)
    dsn = db.libpq_dsn(db.owner_url(fresh_db))

    def stored() -> int:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM territory_unit WHERE code = ANY(:codes)"),
                                {"codes": codes}).scalar()

    def skipping() -> bool:
        with psycopg.connect(dsn, autocommit=True) as conn:
            return boundaries._ask(conn, "grid", {"320106001003"}, codes)[2]

    real = boundaries._plan_writes

    def with_parents(change):
        def plan(conn, units, parents, *args):
            return real(conn, units, {c: dict(p, **change(p)) for c, p in parents.items()}, *args)
        monkeypatch.setattr(boundaries, "_plan_writes", plan)

    def refusals(expect_path, expect_gone) -> None:
        # The units' paths made from another community's, then their parent a unit that is not there.
        with_parents(lambda p: {"path": p["path"].rsplit(".", 1)[0] + ".320106001001"})
        with pytest.raises(expect_path[0], match=expect_path[1]):
            load_boundaries(fresh_db, path, BoundaryOptions(level="grid"))
        assert stored() == 0
        with_parents(lambda p: {"id": p["id"] + 10**9})
        with pytest.raises(expect_gone[0], match=expect_gone[1]):
            load_boundaries(fresh_db, path, BoundaryOptions(level="grid"))
        assert stored() == 0

    assert skipping()
    refusals((boundaries.BoundaryLoadError, "上级或路径"), (boundaries.BoundaryLoadError, "上级单元被删除"))

    # An insert trigger the loader knows nothing of: the triggers run as usual.
    with engine.begin() as conn:
        conn.execute(text("CREATE TRIGGER zz_extra AFTER INSERT ON territory_unit FOR EACH ROW "
                          "EXECUTE FUNCTION suppress_redundant_updates_trigger()"))
    try:
        assert not skipping()
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP TRIGGER zz_extra ON territory_unit"))

    grant = f"SET ON PARAMETER session_replication_role {{}} {fresh_db.owner_role}"
    cluster._psql_super(fresh_db, "REVOKE " + grant.format("FROM"))
    try:
        assert not skipping()
        refusals((psycopg.errors.CheckViolation, "路径"), (psycopg.errors.ForeignKeyViolation, "parent_id"))
        monkeypatch.setattr(boundaries, "_plan_writes", real)
        report = load_boundaries(fresh_db, path, BoundaryOptions(level="grid"))
    finally:
        cluster._psql_super(fresh_db, "GRANT " + grant.format("TO"))
    assert report.outcome == "loaded" and report.written["inserted"] == 2, report.errors
    assert skipping()
    with engine.connect() as conn:
        paths = conn.execute(text("SELECT path::text FROM territory_unit WHERE code = ANY(:codes) "
                                  "ORDER BY code"), {"codes": codes}).scalars().all()
    assert paths == [f"{world['c3'].path}.{c}" for c in codes]


def test_a_unit_left_without_a_polygon_refuses_the_file_after_the_copy_began(world, fresh_db, tmp_path):
    """New units' geometries are reprojected and repaired while the ones before them are being copied: a
    unit left without a polygon (here an empty one) is found then, the copy is abandoned and rolled back,
    and the refusal lists it with the other unit's checks."""
    x0, y0 = CORNERS["c1"]
    frame = gpd.GeoDataFrame({"名称": ["好网格", "空网格"], "代码": ["320106001001071", "320106001001072"]},
                             geometry=[square(x0 + 100, y0 + 300, 100, 100), shapely.Polygon()],
                             crs=f"EPSG:{GK}")
    path = tmp_path / "sliver.gpkg"
    frame.to_file(path, driver="GPKG")

    report = load_boundaries(fresh_db, path, BoundaryOptions(level="grid"))

    assert report.outcome == "refused" and report.written == {}
    assert [(e["row"], e["code"], e["kind"]) for e in report.errors] == [
        (2, "320106001001072", "empty_geometry")]
    # The geometry checks still ran for the good unit: it overlaps the grids of c1 loaded before, or (run
    # alone) leaves most of the community a gap.
    assert report.repaired == [] and (report.overlaps or report.gaps)
    assert report.outside_parent == [] and report.outside_district == []
    with db.owner_engine(fresh_db).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM territory_unit WHERE code IN ('320106001001071', "
                                 "'320106001001072')")).scalar() == 0
        outcome = conn.execute(text("SELECT outcome, rows_written FROM data_load WHERE id = :id"),
                               {"id": report.load_id}).one()
    assert outcome == ("refused", 0)
