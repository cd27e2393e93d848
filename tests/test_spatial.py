"""The map's spatial services on a real PostGIS: drill-down figures, the 楼盘表 and household members,
drawn-area counts against direct SQL, click lookups, viewport layers, the API and the notebook, and the
Gaode basemap's GCJ-02 shift."""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import pytest
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import box, mapping
from sqlalchemy import text

from gis import db
from gis.app import create_app
from gis.notebook import connect
from gis.security.scope import scoped_connection
from gis.security.sessions import login, resolve
from layers import housing_grid, spatial
from layers.events.position import from_wgs84_to_gcj02
from tests.ui.explorer_data import (
    ANALYST,
    COMPOUND,
    EVENT_AT,
    FOOTPRINTS,
    GRID2,
    GRID_WORKER,
    RESIDENTS,
    insert_places,
)
from tests.ui.support import VIEWER, insert_territory


@pytest.fixture(scope="module")
def world(fresh_db):
    insert_territory(fresh_db)
    insert_places(fresh_db)
    users = {}
    for username, password, _ in (VIEWER, GRID_WORKER, ANALYST):
        token, _ = login(fresh_db, username, password, client_addr="test")
        users[username] = resolve(fresh_db, token)
    return fresh_db, users


def owner_scalar(settings, sql: str, **params):
    with db.owner_engine(settings).connect() as conn:
        return conn.execute(text(sql), params).scalar()


def building_id(settings, name: str) -> int:
    return owner_scalar(settings, "SELECT id FROM building WHERE name = :n", n=name)


def house_id(settings, building: str, room: str) -> int:
    return owner_scalar(settings, "SELECT h.id FROM house h JOIN building b ON b.id = h.building_id "
                                  "WHERE b.name = :b AND h.room_no = :r", b=building, r=room)


# ---------------------------------------------------------------- drill-down

def test_drill_down_from_district_to_building_counts_like_sql(world):
    settings, users = world
    commander = users[VIEWER[0]]
    with scoped_connection(settings, commander) as conn:
        streets = spatial.drill_children(conn, spatial.Node("district", "320106", "鼓楼区"), "people")
        assert list(streets.name) == ["宁海路街道", "华侨路街道"]
        direct = owner_scalar(settings, "SELECT count(*) FROM person WHERE died_on IS NULL "
                                        "AND org_path <@ '320106.320106001'")
        assert dict(zip(streets.name, streets.value, strict=True)) == {"宁海路街道": direct, "华侨路街道": 0}

        grid = spatial.Node("grid", GRID2, "仙霞路社区第二网格")
        places = spatial.drill_children(conn, grid, "people")
        values = {(level, name): value for level, name, value in places[["level", "name", "value"]].values}
        assert values == {("compound", COMPOUND): len(RESIDENTS), ("building", "1幢"): 0}

        compound_key = places[places.level == "compound"].key.iloc[0]
        compound = spatial.Node("compound", compound_key, COMPOUND)
        buildings = spatial.drill_children(conn, compound, "households")
        assert dict(zip(buildings.name, buildings.value, strict=True)) == {"2幢": 4, "3幢": 1}
        events = spatial.drill_children(conn, grid, "events")
        assert dict(zip(events.name, events.value, strict=True)) == {COMPOUND: 1, "1幢": 0}

        crumbs = spatial.breadcrumbs(conn, spatial.Node("building", str(building_id(settings, "2幢")), "2幢"),
                                     commander.scope)
        assert [c.name for c in crumbs] == ["鼓楼区", "宁海路街道", "仙霞路社区居委会", "仙霞路社区第二网格",
                                            COMPOUND, "2幢"]


def test_special_figure_only_counts_permitted_categories(world):
    settings, users = world
    grid = spatial.Node("grid", GRID2, "")
    for username, expected in ((VIEWER[0], 2), (GRID_WORKER[0], 1), (ANALYST[0], 0)):
        user = users[username]
        with scoped_connection(settings, user) as conn:
            places = spatial.drill_children(conn, grid, "special",
                                            special_categories=housing_grid.visible_categories(user))
        assert int(places.value.sum()) == expected, username


# ---------------------------------------------------------------- 以房找人

def test_housing_grid_statuses_follow_permissions(world):
    settings, users = world
    b2 = building_id(settings, "2幢")
    with scoped_connection(settings, users[VIEWER[0]]) as conn:
        grid = housing_grid.housing_grid(conn, b2, special_categories=housing_grid.visible_categories(
            users[VIEWER[0]]))
    status = {(f.room_no): f.status for f in grid.flats}
    assert (grid.units, grid.floors, len(grid.flats)) == (2, 3, 12)
    assert status["1-101"] == "owner" and status["1-102"] == "rented" and status["1-202"] == "vacant"
    assert status["1-201"] == "special" and status["2-301"] == "special"
    assert grid.counts() == {"owner": 1, "rented": 1, "vacant": 8, "special": 2}
    assert [floor for floor, _ in grid.rows(1)] == [3, 2, 1]

    worker = users[GRID_WORKER[0]]  # no special:drug_user: the drug user's flat looks owner-occupied
    with scoped_connection(settings, worker) as conn:
        grid = housing_grid.housing_grid(conn, b2, special_categories=housing_grid.visible_categories(worker))
    status = {f.room_no: f for f in grid.flats}
    assert status["1-201"].status == "owner" and status["1-201"].special == ()
    assert status["2-301"].special == ("released_prisoner",)


def test_household_members_are_the_databases_masked_and_logged(world):
    settings, users = world
    house = house_id(settings, "2幢", "1-101")
    with scoped_connection(settings, users[VIEWER[0]]) as conn:
        members = housing_grid.household_members(conn, house)
    with db.owner_engine(settings).connect() as conn:
        expected = conn.execute(text(
            "SELECT p.name, p.id_number, p.phone FROM residence r JOIN person p ON p.id = r.person_id "
            "WHERE r.house_id = :h AND r.until IS NULL ORDER BY r.is_head DESC, p.id"), {"h": house}).all()
        logged = conn.execute(text("SELECT action, target_id FROM access_log ORDER BY id DESC LIMIT 1")).one()
    assert [m["name"] for m in members] == [name for name, _, _ in expected] == ["赵大", "赵二"]
    assert members[0]["relation_label"] == "户主" and members[0]["is_head"]
    for member, (_, id_number, phone) in zip(members, expected, strict=True):
        assert member["id_number"] == id_number[:6] + "********" + id_number[-4:]
        assert member["phone"] == phone[:3] + "****" + phone[-4:]
    assert tuple(logged) == ("read_household", str(house))


def test_a_building_outside_the_scope_does_not_exist(world):
    settings, users = world
    analyst_scope_worker = users[GRID_WORKER[0]]
    other = owner_scalar(settings, "SELECT id FROM territory_unit WHERE code = '320106002002001'")
    with db.owner_engine(settings).begin() as conn:
        outside = conn.execute(text(
            "INSERT INTO building (grid_id, name, floors, footprint) VALUES (:g, '外楼', 3, "
            "ST_MakeEnvelope(118.757, 32.08, 118.7575, 32.0805, 4490)) RETURNING id"), {"g": other}).scalar()
    with scoped_connection(settings, analyst_scope_worker) as conn:
        assert housing_grid.housing_grid(conn, outside) is None
        assert spatial.building_at(conn, 118.7572, 32.0802) is None


# ---------------------------------------------------------------- drawn areas

def test_drawn_polygon_counts_equal_direct_sql(world):
    settings, users = world
    area = box(118.7455, 32.0805, 118.7485, 32.0822)  # holds 2幢 whole and 3幢's lower part
    with scoped_connection(settings, users[VIEWER[0]]) as conn:
        result = spatial.area_query(conn, area, ["person", "household", "house", "building", "event",
                                                 "special"], special_categories=["drug_user"])
    direct = {
        "person": "SELECT count(*) FROM building b JOIN house h ON h.building_id = b.id JOIN residence r "
                  "ON r.house_id = h.id AND r.until IS NULL JOIN person p ON p.id = r.person_id "
                  "AND p.died_on IS NULL "
                  "WHERE ST_Within(ST_PointOnSurface(b.footprint), ST_GeomFromText(:w, 4490))",
        "house": "SELECT count(*) FROM building b JOIN house h ON h.building_id = b.id "
                 "WHERE ST_Within(ST_PointOnSurface(b.footprint), ST_GeomFromText(:w, 4490))",
        "building": "SELECT count(*) FROM building b "
                    "WHERE ST_Within(ST_PointOnSurface(b.footprint), ST_GeomFromText(:w, 4490))",
        "event": "SELECT count(*) FROM event WHERE ST_Within(location, ST_GeomFromText(:w, 4490))",
    }
    for layer, sql in direct.items():
        assert result.counts[layer] == owner_scalar(settings, sql, w=area.wkt), layer
    assert result.counts == {"person": 5, "household": 4, "house": 12, "building": 1, "event": 0,
                             "special": 1}
    assert result.breakdown["special"] == {"吸毒人员": 1}
    assert all("****" in row["phone"] for row in result.rows["person"])
    assert abs(result.area_m2 - owner_scalar(settings, "SELECT ST_Area(ST_GeomFromText(:w, 4490)::geography)",
                                             w=area.wkt)) < 1


def test_circle_and_buffered_feature(world):
    settings, users = world
    direct = ("SELECT count(*) FROM building WHERE ST_DWithin(ST_PointOnSurface(footprint)::geography, "
              "ST_SetSRID(ST_MakePoint(:x, :y), 4490)::geography, :r)")
    for radius, buildings in ((200, 1), (300, 2)):  # 3幢's centre is ≈ 165 m away, 2幢's ≈ 270 m
        centre, buffer_m = spatial.circle(*EVENT_AT, radius)
        with scoped_connection(settings, users[VIEWER[0]]) as conn:
            near = spatial.area_query(conn, centre, ["building", "event"], buffer_m=buffer_m)
        assert near.counts == {"building": buildings, "event": 1}
        assert owner_scalar(settings, direct, x=EVENT_AT[0], y=EVENT_AT[1], r=radius) == buildings
    with scoped_connection(settings, users[VIEWER[0]]) as conn:
        school = spatial.feature_geometry(conn, "building", building_id(settings, "3幢"))
        around = spatial.area_query(conn, school, ["building"], buffer_m=1)
    assert around.counts == {"building": 1}


def test_bad_areas_are_refused_in_chinese(world):
    with pytest.raises(spatial.SpatialError, match="缓冲"):
        spatial.area_from_geojson({"type": "Point", "coordinates": [118.75, 32.08]})
    with pytest.raises(spatial.SpatialError, match="中国境内"):
        spatial.area_from_geojson(mapping(box(32.07, 118.74, 32.08, 118.75)))
    with pytest.raises(spatial.SpatialError, match="GeoJSON"):
        spatial.area_from_geojson({"type": "Polygon", "coordinates": "nonsense"})


# ---------------------------------------------------------------- clicks and viewports

def test_click_on_a_raster_finds_the_building(world):
    settings, users = world
    x0, y0, x1, y1 = spatial_box = (118.746, 32.081, 118.7468, 32.0815)
    with scoped_connection(settings, users[VIEWER[0]]) as conn:
        inside = spatial.building_at(conn, (x0 + x1) / 2, (y0 + y1) / 2)
        near = spatial.building_at(conn, x1 + 0.0001, y1, tolerance_m=20)  # ≈ 9 m east
        nothing = spatial.building_at(conn, x1 + 0.001, y1, tolerance_m=20)
    assert inside["name"] == near["name"] == "2幢" and nothing is None
    assert spatial_box


def test_viewport_points_weigh_people_per_building(world):
    settings, users = world
    with scoped_connection(settings, users[VIEWER[0]]) as conn:
        people = spatial.viewport_points(conn, "person")
        houses = spatial.viewport_points(conn, "house")
        events = spatial.viewport_points(conn, "event")
        west = gpd.GeoSeries([box(118.7455, 32.08, 118.747, 32.0818)], crs=4490).to_crs(3857).total_bounds
        clipped = spatial.viewport_points(conn, "person", tuple(west))
        vectors = spatial.buildings_in_view(conn, tuple(west))
    assert people.n.sum() == len(RESIDENTS) and len(people) == 2
    assert houses.n.sum() == 2 + 12 + 2 and len(events) == 1
    assert clipped.n.sum() == 5 and list(vectors.name) == ["2幢"] and vectors.people.iloc[0] == 5


# ---------------------------------------------------------------- API and notebook

def test_api_query_drill_housing_and_members(world):
    settings, _ = world
    with TestClient(create_app(settings)) as client:
        token = client.post("/api/v1/auth/login", json={"username": VIEWER[0], "password": VIEWER[1]}).json()
        headers = {"Authorization": f"Bearer {token['token']}"}
        area = mapping(box(118.7455, 32.0805, 118.7485, 32.0822))
        answer = client.post("/api/v1/spatial/query", headers=headers,
                             json={"geometry": area, "layers": ["person", "building"]})
        assert answer.status_code == 200, answer.text
        assert answer.json()["counts"] == {"person": 5, "building": 1}
        assert answer.headers["cache-control"] == "no-store"
        point = {"type": "Point", "coordinates": [1, 2]}
        bad = client.post("/api/v1/spatial/query", headers=headers, json={"geometry": point, "buffer_m": 10})
        assert bad.status_code == 400 and "中国境内" in bad.json()["detail"]

        drill = client.get("/api/v1/spatial/drill", headers=headers,
                           params={"level": "grid", "key": GRID2, "figure": "people"}).json()
        assert [c["name"] for c in drill["breadcrumbs"]][-1] == "仙霞路社区第二网格"
        assert drill["total"] == len(RESIDENTS)
        assert {f["properties"]["name"] for f in drill["children"]["features"]} == {COMPOUND, "1幢"}

        housing = client.get(f"/api/v1/spatial/buildings/{building_id(settings, '2幢')}/housing",
                             headers=headers).json()
        assert housing["counts"] == {"owner": 1, "rented": 1, "vacant": 8, "special": 2}
        members = client.get(f"/api/v1/spatial/houses/{house_id(settings, '2幢', '1-101')}/members",
                             headers=headers)
        assert [m["name"] for m in members.json()] == ["赵大", "赵二"]
        assert "320106198001010013" not in members.text and "13812340001" not in members.text
        hit = client.get("/api/v1/spatial/building-at", headers=headers,
                         params={"lon": 118.7464, "lat": 32.0812}).json()
        assert hit["name"] == "2幢"
        exported = client.post("/api/v1/spatial/export.csv", headers=headers, params={"layer": "person"},
                               json={"geometry": area})
        assert exported.status_code == 200 and exported.content.startswith(b"\xef\xbb\xbf")
        assert len(exported.content.decode("utf-8-sig").strip().splitlines()) == 1 + 5
        assert "320106198001010013" not in exported.text
        refused = client.post("/api/v1/spatial/export.pdf", headers=headers, json={"geometry": area})
        assert 400 <= refused.status_code < 500
        client.cookies.clear()  # the login set the session cookie too
        assert client.get("/api/v1/spatial/drill").status_code == 401


def test_notebook_area_query(world):
    settings, _ = world
    client = connect(username=ANALYST[0], password=ANALYST[1], settings=settings)
    result = client.area_query(box(118.7455, 32.0805, 118.7485, 32.0822), layers=["person", "special"])
    assert result.counts == {"person": 5, "special": 0}  # an analyst sees no special population


# ---------------------------------------------------------------- basemaps

def test_gaode_basemap_shifts_overlays_into_gcj02(world):
    from dashboards.map import TerritoryMap

    settings, users = world
    gaode = spatial.basemap_for(settings.model_copy(update={"basemap": "gaode"}))
    assert gaode.frame == "gcj02" and "autonavi" in gaode.url
    assert spatial.basemap_for(settings).url is None  # offline by default
    tianditu = spatial.basemap_for(settings.model_copy(update={"basemap": "tianditu"}))
    assert tianditu.url is None and tianditu.notice == "未配置天地图密钥，已使用离线底图"
    keyed = spatial.basemap_for(settings.model_copy(update={"basemap": "tianditu", "tianditu_key": "k1"}))
    assert keyed.url.endswith("tk=k1") and keyed.notice is None
    with scoped_connection(settings, users[VIEWER[0]]) as conn:
        from layers import territory

        units = territory.territory_units(conn, within_path="320106")
    plain, shifted = TerritoryMap(units), TerritoryMap(units, basemap=gaode)
    corner = (118.74, 32.07)  # the district's south-west corner
    expected = gpd.GeoSeries([shapely.Point(from_wgs84_to_gcj02(*corner))], crs=4490).to_crs(3857).iloc[0]
    unshifted = gpd.GeoSeries([shapely.Point(corner)], crs=4490).to_crs(3857).iloc[0]
    district = shifted.drawn_units[shifted.drawn_units.level == "district"].geometry.iloc[0]
    assert min(shapely.Point(c).distance(expected) for c in district.geoms[0].exterior.coords) < 0.01
    offset = expected.distance(unshifted)
    assert 300 < offset < 800  # GCJ-02 moves Nanjing by a few hundred metres
    plain_district = plain.drawn_units[plain.drawn_units.level == "district"].geometry.iloc[0]
    assert min(shapely.Point(c).distance(unshifted) for c in plain_district.geoms[0].exterior.coords) < 0.01
    # a click on the shifted map is read back in CGCS2000
    lon, lat = shifted.to_lonlat(expected.x, expected.y)
    assert abs(lon - corner[0]) < 1e-6 and abs(lat - corner[1]) < 1e-6


# ---------------------------------------------------------------- workbench: time window and export

def test_the_event_time_window_counts_like_sql(world):
    """Three events in grid 3 reported a month apart: the window [since, until] (whole days, until
    inclusive) counts what SQL counts, and no window counts them all."""
    settings, users = world
    grid3 = "320106.320106002.320106002002.320106002002001"
    with db.owner_engine(settings).begin() as conn:
        for day in ("2025-01-10", "2025-02-10", "2025-03-10"):
            conn.execute(text(
                "INSERT INTO event (number, title, type, source, location, grid_id, status, unit_path,"
                " unit_level, step_started_at, reported_at, org_path, district_code)"
                " SELECT '3201062025' || to_char(CAST(:d AS date), 'MMDD') || '0001', '乱堆物料',"
                " '0101', '01',"
                " ST_SetSRID(ST_MakePoint(118.757, 32.085), 4490), id, 'reported', path, 'grid',"
                " CAST(:d AS timestamptz), CAST(:d AS timestamptz) + interval '9 hours', path, '320106'"
                " FROM territory_unit WHERE path = CAST(:p AS ltree)"), {"d": day, "p": grid3})
    area = box(118.756, 32.084, 118.758, 32.086)
    windows = [(None, None), (dt.date(2025, 2, 1), None), (None, dt.date(2025, 2, 10)),
               (dt.date(2025, 2, 10), dt.date(2025, 2, 10)), (dt.date(2025, 3, 11), None)]
    for since, until in windows:
        with scoped_connection(settings, users[VIEWER[0]]) as conn:
            counted = spatial.area_query(conn, area, ["event"], since=since, until=until).counts["event"]
        expected = owner_scalar(
            settings, "SELECT count(*) FROM event WHERE ST_Within(location, ST_GeomFromText(:w, 4490)) "
            "AND (CAST(:s AS date) IS NULL OR reported_at::date >= :s) "
            "AND (CAST(:u AS date) IS NULL OR reported_at::date <= :u)", w=area.wkt, s=since, u=until)
        assert counted == expected, (since, until)
    with scoped_connection(settings, users[VIEWER[0]]) as conn:
        assert spatial.area_query(conn, area, ["event"], since=dt.date(2025, 2, 1),
                                  until=dt.date(2025, 2, 28)).counts["event"] == 1


def test_area_export_reads_back_as_the_table_masked_and_logged(world):
    import csv
    import io
    import json

    from openpyxl import load_workbook

    settings, users = world
    area = box(118.7455, 32.0805, 118.7485, 32.0822)
    with scoped_connection(settings, users[VIEWER[0]]) as conn:
        table = spatial.area_query(conn, area, ["person"], limit=spatial.MAX_ROWS).rows["person"]
        exports = {fmt: spatial.export_area(conn, area, "person", fmt) for fmt in ("csv", "xlsx", "geojson")}
    assert len(table) == 5
    header = [spatial.EXPORT_LABELS.get(k, k) for k in table[0]]
    expected = [[("" if v is None else str(v)) for v in row.values()] for row in table]

    raw = exports["csv"].content
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel opens the Chinese right
    lines = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert lines[0] == header and lines[1:] == expected
    sheet = load_workbook(io.BytesIO(exports["xlsx"].content)).active
    cells = [[("" if c is None else str(c)) for c in row] for row in sheet.iter_rows(values_only=True)]
    assert cells[0] == header
    assert [[c.split(" ")[0] if i == header.index("出生日期") else c for i, c in enumerate(r)]
            for r in cells[1:]] == expected
    document = json.loads(exports["geojson"].content)
    assert [f["properties"] for f in document["features"]] == json.loads(json.dumps(table, default=str))
    assert document["count"] == 5

    content = b"".join(e.content for e in exports.values()).decode("utf-8", "replace")
    for _, id_number, phone, *_ in RESIDENTS:
        assert id_number not in content and phone not in content  # masked, like the table
    with db.owner_engine(settings).connect() as conn:
        logged = conn.execute(text(
            "SELECT detail->>'format', (detail->>'rows')::int FROM access_log WHERE action = 'export' "
            "AND target_table = 'spatial_query' ORDER BY id")).all()
    assert [tuple(r) for r in logged[-3:]] == [("csv", 5), ("xlsx", 5), ("geojson", 5)]
    with scoped_connection(settings, users[VIEWER[0]]) as conn, pytest.raises(spatial.SpatialError):
        spatial.export_area(conn, area, "person", "pdf")


# ---------------------------------------------------------------- special populations on the map

def test_special_population_clusters_per_grid_and_points_per_person(world):
    settings, users = world
    district = tuple(gpd.GeoSeries([box(118.74, 32.07, 118.76, 32.09)], crs=4490).to_crs(3857).total_bounds)
    with scoped_connection(settings, users[VIEWER[0]]) as conn:
        clusters = spatial.special_clusters(conn, "drug_user", district)
        points = spatial.special_people_points(conn, "drug_user", district)
    expected = owner_scalar(settings,
                            "SELECT count(DISTINCT person_id) FROM drug_user WHERE deleted_at IS NULL")
    assert list(clusters.name) == ["仙霞路社区第二网格"] and clusters.n.sum() == expected == 1
    assert len(points) == expected and list(points.name) == ["2幢"]
    # the point is at 2幢 (a few metres from its centre), not at the flat
    x, y = gpd.GeoSeries(gpd.points_from_xy(points.x, points.y), crs=3857).to_crs(4490).iloc[0].coords[0]
    bx0, by0, bx1, by1 = FOOTPRINTS["2幢"]
    assert abs(x - (bx0 + bx1) / 2) < 1e-4 and abs(y - (by0 + by1) / 2) < 1e-4
    with pytest.raises(ValueError):
        spatial.special_clusters(None, "not_a_category; DROP TABLE person")


def test_the_explorer_clusters_when_zoomed_out_and_gates_by_permission(world):
    import holoviews as hv

    from dashboards.explorer import Explorer
    from layers import territory

    hv.extension("bokeh", logo=False)
    settings, users = world

    def explorer_for(username: str) -> Explorer:
        user = users[username]
        with scoped_connection(settings, user) as conn:
            top = territory.unit_at_path(conn, user.scope)
            units = territory.territory_units(conn, within_path=user.scope)
        return Explorer(user, lambda: scoped_connection(settings, user),
                        spatial.Node(top.level, top.path, top.name), units, spatial.Basemap())

    commander = explorer_for(VIEWER[0])
    wide = commander.viewport(None)  # the territory's extent, before the browser reports a view
    wide = (wide[0] - 2000, wide[1] - 2000, wide[2] + 2000, wide[3] + 2000)
    frame, clustered = commander._special_frame(wide, "drug_user")
    assert clustered and list(frame.n) == [1.0] and list(frame.name) == ["仙霞路社区第二网格"]
    bx0, by0, bx1, _ = FOOTPRINTS["2幢"]
    cx, cy = gpd.GeoSeries([shapely.Point((bx0 + bx1) / 2, by0)], crs=4490).to_crs(3857).iloc[0].coords[0]
    near = (cx - 300, cy - 300, cx + 300, cy + 300)
    frame, clustered = commander._special_frame(near, "drug_user")
    assert not clustered and list(frame.name) == ["2幢"]
    labels = commander._special_counts(wide, "drug_user")
    assert list(labels.data["text"]) == ["1"]
    assert len(commander._special_counts(near, "drug_user").data) == 0  # individual points: no counts

    worker = explorer_for(GRID_WORKER[0])  # no special:drug_user
    for view in (wide, near):
        frame, _ = worker._special_frame(view, "drug_user")
        assert frame.empty
    frame, _ = worker._special_frame(wide, "released_prisoner")
    assert frame.n.sum() == 1


def test_the_workbench_passes_its_time_window_to_the_query(world):
    import holoviews as hv

    from dashboards.explorer import Explorer
    from layers import territory

    hv.extension("bokeh", logo=False)
    settings, users = world
    user = users[VIEWER[0]]
    with scoped_connection(settings, user) as conn:
        top = territory.unit_at_path(conn, user.scope)
        units = territory.territory_units(conn, within_path=user.scope)
    explorer = Explorer(user, lambda: scoped_connection(settings, user),
                        spatial.Node(top.level, top.path, top.name), units, spatial.Basemap())
    explorer._circle_centre, explorer.radius.value = EVENT_AT, 300
    explorer.area_layers.value = ["event"]
    reported = owner_scalar(settings, "SELECT reported_at::date FROM event WHERE title = '占道经营'")
    counts = {}
    for since, until in [(None, None), (reported, reported), (reported + dt.timedelta(days=1), None),
                         (None, reported - dt.timedelta(days=1))]:
        explorer.since.value, explorer.until.value = since, until
        explorer._query_area()
        counts[(since, until)] = explorer.area_counts.object
    assert [("| 事件 | 1 |" in shown) for shown in counts.values()] == [True, True, False, False]
    assert all("| 事件 | 0 |" in shown for shown in list(counts.values())[2:])
    explorer.since.value, explorer.until.value = reported, reported - dt.timedelta(days=1)
    explorer._query_area()
    assert "起始日期晚于截止日期" in explorer.area_counts.object
