"""Places, households and users for the map tests, on top of the tiny territory of :mod:`tests.ui.support`.

In grid 2 (仙霞路社区第二网格), beside the territory's loose building 1幢::

    compound 仙霞小区  (118.745–118.752 E, 32.080–32.085 N)
      2幢  2 units × 3 floors × 2 rooms   1-101 owner-occupied (赵大 head, 赵二), 1-102 rented (钱三),
                                          1-201 a drug user (孙四), 2-301 a released prisoner (周五),
                                          the other eight flats vacant
      3幢  1 unit × 2 floors × 1 room     1-101 吴六, 吴七
    an event inside the compound

Users: the district commander of :data:`tests.ui.support.VIEWER` (sees every special category), a grid
worker of grid 2 (no ``special:drug_user``) and an analyst (no special categories at all).
"""

from __future__ import annotations

from sqlalchemy import text

from gis import db
from gis.security import users
from gis.settings import Settings

GRID2 = "320106.320106001.320106001003.320106001003002"
COMPOUND = "仙霞小区"
GRID_WORKER = ("wangge_test", "Gridgov#2024gw", "网格员小王")
ANALYST = ("fenxi_test", "Gridgov#2024an", "分析员小张")
# (name, id number, phone, building, room, relation, head, special category)
RESIDENTS = [
    ("赵大", "320106198001010013", "13812340001", "2幢", "1-101", "02", True, None),
    ("赵二", "320106198203040021", "13812340002", "2幢", "1-101", "10", False, None),
    ("钱三", "320106199005060035", "13812340003", "2幢", "1-102", "02", True, None),
    ("孙四", "320106198507080047", "13812340004", "2幢", "1-201", "02", True, "drug_user"),
    ("周五", "320106197009100059", "13812340005", "2幢", "2-301", "02", True, "released_prisoner"),
    ("吴六", "320106196011120061", "13812340006", "3幢", "1-101", "02", True, None),
    ("吴七", "320106196212130074", "13812340007", "3幢", "1-101", "10", False, None),
]
FOOTPRINTS = {"2幢": (118.746, 32.081, 118.7468, 32.0815), "3幢": (118.748, 32.082, 118.7488, 32.0825)}
EVENT_AT = (118.7475, 32.0835)


def insert_places(settings: Settings) -> None:
    """The compound, its two buildings, their flats, the residents, two special-population records,
    an event and the two extra users; written as the owner (as a loader would)."""
    with db.owner_engine(settings).begin() as conn:
        grid_id = conn.execute(text("SELECT id FROM territory_unit WHERE path = CAST(:p AS ltree)"),
                               {"p": GRID2}).scalar_one()
        compound_id = conn.execute(text(
            "INSERT INTO compound (grid_id, name, boundary) VALUES "
            "(:g, :n, ST_MakeEnvelope(118.745, 32.08, 118.752, 32.085, 4490)) RETURNING id"),
            {"g": grid_id, "n": COMPOUND}).scalar_one()
        layout = {"2幢": (2, 3, 2), "3幢": (1, 2, 1)}  # units, floors, rooms per floor
        houses: dict[tuple[str, str], int] = {}
        for name, (units, floors, rooms) in layout.items():
            x0, y0, x1, y1 = FOOTPRINTS[name]
            building_id = conn.execute(text(
                "INSERT INTO building (compound_id, grid_id, name, floors, units, footprint) VALUES "
                "(:c, :g, :n, :f, :u, ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4490)) RETURNING id"),
                dict(c=compound_id, g=grid_id, n=name, f=floors, u=units, x0=x0, y0=y0, x1=x1, y1=y1),
            ).scalar_one()
            for unit in range(1, units + 1):
                for floor in range(1, floors + 1):
                    for room in range(1, rooms + 1):
                        room_no = f"{unit}-{floor}{room:02d}"
                        houses[(name, room_no)] = conn.execute(text(
                            "INSERT INTO house (building_id, unit_no, floor, room_no, is_rented) "
                            "VALUES (:b, :u, :f, :r, :rented) RETURNING id"),
                            dict(b=building_id, u=unit, f=floor, r=room_no, rented=room_no == "1-102"),
                        ).scalar_one()
        for name, id_number, phone, building, room, relation, head, special in RESIDENTS:
            person_id = conn.execute(text(
                "INSERT INTO person (name, sex, birth_date, id_number, phone, org_path, district_code) "
                "VALUES (:n, '1', '1980-01-01', :i, :p, CAST(:o AS ltree), '320106') RETURNING id"),
                dict(n=name, i=id_number, p=phone, o=GRID2)).scalar_one()
            conn.execute(text(
                "INSERT INTO residence (person_id, house_id, relation, is_head) VALUES (:p, :h, :r, :head)"),
                dict(p=person_id, h=houses[(building, room)], r=relation, head=head))
            if special:
                conn.execute(text(
                    f"INSERT INTO {special} (person_id, org_path, district_code) "
                    "VALUES (:p, CAST(:o AS ltree), '320106')"), dict(p=person_id, o=GRID2))
        conn.execute(text(
            "INSERT INTO event (number, title, type, source, location, grid_id, status, unit_path,"
            " unit_level, step_started_at, reported_at, org_path, district_code)"
            " VALUES ('320106202601010001', '占道经营',"
            " '0101', '01', ST_SetSRID(ST_MakePoint(:x, :y), 4490), :g, 'reported', CAST(:o AS ltree),"
            " 'grid', now(), now(), CAST(:o AS ltree), '320106')"),
            dict(x=EVENT_AT[0], y=EVENT_AT[1], g=grid_id, o=GRID2))
        users.upsert_user(conn, GRID_WORKER[0], GRID_WORKER[1], "grid_worker", GRID2, GRID_WORKER[2])
        users.upsert_user(conn, ANALYST[0], ANALYST[1], "analyst", "320106", ANALYST[2])
