"""Demo rows for every registry (台账) of the demo district, consistent with what the demo load put there.

``load_demo_registries(settings, seed=...)`` reads the loaded district -- territory, buildings, houses,
people (and the grid workers' tracks, when loaded) -- and writes what a district's governance staff would
have registered about it:

- 综治组织: a governance body (综治机构) for the district, every street and every community, with their
  teams, mass-prevention organisations and members (residents of the community, with their real ID
  numbers), governance centres and video-network centres (points inside their unit), leadership
  responsibilities and major cases; building heads (楼栋长, residents of the building); grid heads come
  with the grids (:mod:`etl.demo_places`), and a grid without one gets a resident of it;
- 出租屋: a lease (tenant = an occupant of the house) on every rented house;
- 特殊人群 and 重点青少年: records linked to residents of the right age and sex, at rates per 1,000 people
  (``data/demo/registries.toml``); some drug users are also released prisoners;
- 两新组织 and 寄递物流: enterprises, social organisations and parcel firms at buildings of their grid, with
  the building's address;
- 社会治安 and 护路护线: key areas (the compounds marked as public-order hotspots), homicide cases, road,
  rail, metro, power and pipeline sections along the district's real lines (clipped to it) and the cases
  on them;
- 校园: schools (outlines on free ground next to housing), the key persons registered near them, campus
  cases; every school has at least one key person living within 200 m, so 周边重点人员 finds someone;
- 网格员轨迹: one fix every five minutes of the tracks ``etl.demo_tracks`` loaded (none if it has not run).

How many rows: proportional to the district (people, grids, streets), so a small test load stays small.
Deterministic for (district, seed): rows are drawn with one numpy generator in id order and get explicit
ids; dates count back from the recipe's reference date. The load runs in one transaction and
replaces its own rows (the tables it fills are emptied first, building heads reset; visits recorded
on a special-population record that is gone are dropped), so it can be rerun. Rows go in with
``COPY``; nothing calls the service per row, but every value is one the registry service accepts
(codes from the code tables, valid ID numbers and phones, locations inside the record's territory) --
``tests/test_demo_registries.py`` re-saves a sample of every registry through the service to keep it so.

Not here: 帮扶记录 (assistance visits), 民情日记, notices and shared files have their own demo loaders;
events and cameras come from :mod:`etl.demo_events` and :mod:`etl.demo_tracks`.

>>> report = load_demo_registries(settings, seed=2026)         # doctest: +SKIP
>>> report.counts["school"], round(report.total_seconds)       # doctest: +SKIP
(16, 15)
"""

from __future__ import annotations

import datetime as dt
import math
import time
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import shapely
from psycopg import sql
from shapely import STRtree
from shapely.geometry import LineString, Point, box
from shapely.affinity import rotate

from etl.demo_recipe import DEMO_DIR, load_recipe
from gis.db import libpq_dsn, owner_url
from gis.settings import Settings
from layers.registries import REGISTRIES
from layers.registry import Registry

DEFAULT_SEED = 2026
SRID = 4490
M_PER_DEG = 111_195.0
SPECIAL = ("released_prisoner", "community_correction", "mental_patient", "drug_user", "aids_risk",
           "cult_member", "key_youth")
# The tables this loader fills, in the order they are written (what a row points at comes first).
OWN_TABLES = ("zz_org", "zz_team", "mass_org", "mass_team_member", "zz_center", "video_center",
              "leadership_responsibility", "major_case", *SPECIAL, "private_enterprise", "social_org",
              "key_area", "homicide_case", "logistics_firm", "road_line_section", "road_line_case", "school",
              "school_key_person", "campus_case", "worker_track", "house_lease")
# Harm level (code table harm_level) of a key person near a school, by their register.
HARM = {"drug_user": "1", "mental_patient": "1", "released_prisoner": "2", "community_correction": "2",
        "cult_member": "2", "aids_risk": "3", "key_youth": "3"}
NEARBY_GUARANTEE_M = 170  # a school's anchor key person lives this close (the search default is 200 m)
CASE_OUTCOMES = ("已依法处置，学校加强了上下学时段护校。", "已移交公安机关处理。", "经调解双方达成谅解。",
                 "已通报教育主管部门，家校共同做好学生心理疏导。")
TRACK_MINUTES = 5  # one fix of every five minutes of a track goes into 网格员轨迹

STEPS = {
    "read": "读取演示区 (read the district)",
    "clear": "清空旧的台账演示数据 (clear)",
    "generate": "生成台账记录 (generate)",
    "write": "写入台账 (COPY)",
    "derive": "周边重点人员、轨迹、楼栋长 (derived rows)",
}
Progress = Callable[[str, int, int], None]


class DemoRegistriesError(RuntimeError):
    """The registries could not be loaded; the message says why and what to do (Chinese)."""


@dataclass
class DemoRegistriesReport:
    seed: int
    counts: dict[str, int] = field(default_factory=dict)     # registry key → live rows after the load
    seconds: dict[str, float] = field(default_factory=dict)  # step → seconds

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())


# ---------------------------------------------------------------- what the demo load put there


@dataclass
class _Unit:
    id: int
    level: str
    path: str
    code: str
    name: str
    district_code: str | None
    geom: Any
    worker_count: int
    head_name: str | None = None

    @cached_property
    def inner(self):
        """The unit shrunk by about a metre: what lies inside it lies inside its boundary for PostGIS too."""
        return self.geom.buffer(-1e-5)

    @property
    def parent_path(self) -> str:
        return self.path.rsplit(".", 1)[0]


class _People:
    """The living residents with a current home, as plain arrays (a pandas lookup per row would cost more
    than everything else) and each one's row as a dict when drawn."""

    COLUMNS = ("p.id", "p.name", "p.sex", "p.birth_date", "p.id_number", "p.phone", "p.ethnicity",
               "p.political", "p.education", "p.org_path::text", "p.district_code::text", "r.house_id",
               "h.building_id", "r.is_head")

    def __init__(self, rows: list[tuple], reference: dt.date):
        self.rows = rows
        self.names = [c.split(".")[1].split("::")[0] for c in self.COLUMNS]
        columns = dict(zip(self.names, zip(*rows, strict=True), strict=True)) if rows else \
            {n: () for n in self.names}
        today = (reference.month, reference.day)
        self.ages = np.array(
            [reference.year - b.year - ((b.month, b.day) > today) for b in columns["birth_date"]], dtype=int)
        self.sex = np.array(columns["sex"], dtype=object)
        self.has_phone = np.array([p is not None for p in columns["phone"]], dtype=bool)
        self.has_id = np.array([n is not None for n in columns["id_number"]], dtype=bool)
        self.is_head = np.array([bool(h) for h in columns["is_head"]], dtype=bool)
        self.political = np.array(columns["political"], dtype=object)
        self.house = np.array(columns["house_id"], dtype=np.int64)
        self.building = np.array(columns["building_id"], dtype=np.int64)
        self.grid = np.array(columns["org_path"], dtype=object)
        self.community = np.array([g.rsplit(".", 1)[0] for g in columns["org_path"]], dtype=object)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = dict(zip(self.names, self.rows[int(index)], strict=True))
        row["age"] = int(self.ages[int(index)])
        return row


def _groups(values: np.ndarray) -> dict[Any, np.ndarray]:
    """The row indices of each distinct value, in row order."""
    if not len(values):
        return {}
    keys, codes = np.unique(values, return_inverse=True) if values.dtype != object else \
        _codes(values.tolist())
    order = np.argsort(codes, kind="stable")
    bounds = np.cumsum(np.bincount(codes, minlength=len(keys)))[:-1]
    return dict(zip(list(keys), np.split(order, bounds), strict=True))


def _codes(values: list) -> tuple[list, np.ndarray]:
    """Distinct values in order of appearance, and each value's position among them."""
    index: dict[Any, int] = {}
    codes = np.array([index.setdefault(v, len(index)) for v in values], dtype=np.int64)
    return list(index), codes


@dataclass
class _World:
    units: list[_Unit]
    buildings: pd.DataFrame   # id, name, address, grid_id, org_path, compound, footprint, x, y
    people: _People           # living residents with a current home
    rented: pd.DataFrame      # rented houses
    hotspots: pd.DataFrame    # compounds marked as public-order hotspots (or the largest, if none are)
    reference: dt.date
    roads: dict[str, list[str]]

    def __post_init__(self) -> None:
        self.by_path = {u.path: u for u in self.units}
        self.by_id = {u.id: u for u in self.units}
        self.district = next(u for u in self.units if u.level == "district")
        self.streets = [u for u in self.units if u.level == "street" and u.geom is not None]
        self.communities = [u for u in self.units if u.level == "community" and u.geom is not None]
        self.grids = [u for u in self.units if u.level == "grid" and u.geom is not None]
        self._grid_tree = STRtree([g.geom for g in self.grids])
        self.footprint_tree = STRtree(list(self.buildings["footprint"]))

    def street_of(self, unit: _Unit) -> _Unit:
        return self.by_path[".".join(unit.path.split(".")[:4])]

    def finest(self, geom) -> _Unit | None:
        """The smallest unit whose boundary (shrunk a metre) holds ``geom``: a grid, its community or
        street, the district."""
        for i in self._grid_tree.query(geom, predicate="intersects"):
            grid = self.grids[int(i)]
            if grid.inner.contains(geom):
                return grid
            for path in (grid.parent_path, grid.parent_path.rsplit(".", 1)[0]):
                if (unit := self.by_path.get(path)) is not None and unit.geom is not None \
                        and unit.inner.contains(geom):
                    return unit
        return self.district if self.district.inner.contains(geom) else None


def _read_world(conn: psycopg.Connection) -> _World:
    units = [
        _Unit(id=r[0], level=r[1], path=r[2], code=r[3], name=r[4], district_code=r[5],
              geom=shapely.from_wkb(r[6]) if r[6] else None, worker_count=r[7] or 0, head_name=r[8])
        for r in conn.execute(
            "SELECT id, level, path::text, code, name, district_code::text, ST_AsBinary(boundary),"
            " worker_count, head_name FROM territory_unit WHERE deleted_at IS NULL ORDER BY path")
    ]
    if not any(u.level == "grid" for u in units) or not any(u.level == "district" for u in units):
        raise DemoRegistriesError("数据库中没有演示区，请先运行 gridgov demo load (no demo district loaded)")
    buildings = pd.DataFrame(conn.execute(
        "SELECT b.id, b.name, b.address, b.grid_id, b.org_path::text, c.name, ST_AsBinary(b.footprint)"
        " FROM building b LEFT JOIN compound c ON c.id = b.compound_id"
        " WHERE b.deleted_at IS NULL AND b.footprint IS NOT NULL ORDER BY b.id").fetchall(),
        columns=["id", "name", "address", "grid_id", "org_path", "compound", "footprint"])
    if buildings.empty:
        raise DemoRegistriesError("演示区还没有楼栋，请先运行 gridgov demo load (no buildings loaded)")
    buildings["footprint"] = shapely.from_wkb(buildings["footprint"].to_numpy())
    inside = shapely.point_on_surface(buildings["footprint"].to_numpy())
    buildings["x"], buildings["y"] = shapely.get_x(inside), shapely.get_y(inside)
    recipe = load_recipe()
    reference = recipe["reference_date"]
    people = _People(conn.execute(
        f"SELECT {', '.join(_People.COLUMNS)}"
        " FROM person p JOIN residence r ON r.person_id = p.id AND r.until IS NULL"
        " JOIN house h ON h.id = r.house_id"
        " WHERE p.died_on IS NULL AND p.deleted_at IS NULL ORDER BY p.id"
    ).fetchall(), reference)
    rented = pd.DataFrame(conn.execute(
        "SELECT h.id, h.org_path::text, h.district_code::text FROM house h"
        " WHERE h.is_rented AND h.deleted_at IS NULL ORDER BY h.id").fetchall(),
        columns=["id", "org_path", "district_code"])
    hotspots = pd.DataFrame(conn.execute(
        "SELECT c.id, c.name, c.address, c.org_path::text, ST_AsBinary(c.boundary) FROM compound c"
        " WHERE c.deleted_at IS NULL AND c.boundary IS NOT NULL"
        " ORDER BY c.security_hotspot DESC NULLS LAST, ST_Area(c.boundary) DESC, c.id").fetchall(),
        columns=["id", "name", "address", "org_path", "boundary"])
    hotspots["boundary"] = shapely.from_wkb(hotspots["boundary"].to_numpy())
    return _World(units=units, buildings=buildings, people=people, rented=rented, hotspots=hotspots,
                  reference=reference, roads=recipe.roads)


# ---------------------------------------------------------------- rows, written with COPY


class _Rows:
    """Rows by table, with the ids they were given (explicit, so records can point at each other)."""

    def __init__(self) -> None:
        self.tables: dict[str, list[dict[str, Any]]] = {}

    def add(self, table: str, **values: Any) -> int:
        rows = self.tables.setdefault(table, [])
        if table != "house_lease":
            values = {"id": len(rows) + 1, **values}
        rows.append(values)
        return values.get("id", len(rows))

    def copy(self, conn: psycopg.Connection) -> None:
        for table in OWN_TABLES:
            rows = self.tables.get(table)
            if not rows:
                continue
            columns = list(rows[0])
            statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)))
            with conn.cursor() as cur, cur.copy(statement) as copy:
                for row in rows:
                    copy.write_row([_copy_value(row[c]) for c in columns])


def _copy_value(value: Any) -> Any:
    if isinstance(value, shapely.Geometry):
        return shapely.to_wkb(shapely.set_srid(value, SRID), hex=True, include_srid=True)
    if isinstance(value, np.generic):
        return value.item()
    return value


# ---------------------------------------------------------------- the generator


def _words() -> dict[str, Any]:
    with (DEMO_DIR / "registries.toml").open("rb") as f:
        return tomllib.load(f)


class _Generator:
    def __init__(self, world: _World, seed: int):
        self.w = world
        self.rng = np.random.default_rng(seed)
        self.words = _words()
        self.rows = _Rows()
        self.org_of: dict[str, int] = {}           # territory path → its 综治机构 id
        self.members: dict[str, set[int]] = {s: set() for s in SPECIAL}  # register → person row indices
        self.schools: list[dict[str, Any]] = []
        people = world.people
        self.ages, self.sex, self.has_phone = people.ages, people.sex, people.has_phone
        # Registers, teams and heads take people with a citizen ID number (not the foreigners).
        self.citizen = people.has_id
        self.is_head, self.political, self.house = people.is_head, people.political, people.house
        self.building_rows = world.buildings.to_dict("records")
        self.by_house = _groups(people.house)
        self.by_building = _groups(people.building)
        self.by_community = _groups(people.community)
        self.by_grid = _groups(people.grid)
        self.buildings_by_grid = world.buildings.groupby("org_path").indices

    # -- small helpers

    def pick(self, values, p=None):
        values = list(values)
        return values[int(self.rng.choice(len(values), p=p))]

    def weighted(self, weights: dict[str, float]) -> str:
        keys = list(weights)
        w = np.array([weights[k] for k in keys], dtype=float)
        return keys[int(self.rng.choice(len(keys), p=w / w.sum()))]

    def date_before(self, days: int, after: int = 0) -> dt.date:
        return self.w.reference - dt.timedelta(days=int(self.rng.integers(after, days)))

    def landline(self) -> str:
        return f"025-{int(self.rng.integers(5200_0000, 8699_9999))}"

    def mobile(self) -> str:
        return f"1{self.pick('3589')}{int(self.rng.integers(0, 10 ** 9)):09d}"

    def person(self, index: int) -> dict[str, Any]:
        return self.w.people[index]

    def resident(self, pool, ages=(25, 70), with_phone: bool = True) -> dict[str, Any]:
        """A random resident among the row indices ``pool`` (of an age, with a phone if asked)."""
        pool = np.asarray(pool if pool is not None else [], dtype=np.int64)
        pool = pool[self.citizen[pool]]
        if not len(pool):
            for _ in range(1000):  # anyone in the district: draw until one fits
                i = int(self.rng.integers(len(self.ages)))
                if ages[0] <= self.ages[i] <= ages[1] and (self.has_phone[i] or not with_phone) \
                        and self.citizen[i]:
                    return self.person(i)
            pool = np.flatnonzero(self.citizen)
        ok = pool[(self.ages[pool] >= ages[0]) & (self.ages[pool] <= ages[1])]
        if with_phone:
            ok = ok[self.has_phone[ok]]
        if not len(ok):
            ok = pool
        return self.person(ok[int(self.rng.integers(len(ok)))])

    def road(self, unit: _Unit) -> str:
        street = self.w.street_of(unit) if unit.level not in ("district",) else self.w.streets[0]
        return self.pick(self.w.roads.get(street.code) or ["中山北路"])

    def address(self, unit: _Unit) -> str:
        return f"南京市鼓楼区{self.road(unit)}{int(self.rng.integers(1, 300))}号"

    def point_in(self, polygon, margin_deg: float = 1e-4) -> Point:
        """A random point well inside ``polygon`` (rejection sampling in its bounds)."""
        inner = polygon.buffer(-margin_deg)
        if inner.is_empty:
            inner = polygon.buffer(-1e-5)
        x0, y0, x1, y1 = inner.bounds
        for _ in range(200):
            p = Point(self.rng.uniform(x0, x1), self.rng.uniform(y0, y1))
            if inner.contains(p):
                return p
        return inner.representative_point()

    def building_point(self, b: dict) -> Point:
        return self.point_in(b["footprint"], 2e-5)

    def random_building(self, unit: _Unit | None = None) -> dict:
        buildings = self.building_rows
        if unit is None:
            return buildings[int(self.rng.integers(len(buildings)))]
        rows = [i for path, idx in self.buildings_by_grid.items() if path == unit.path
                or path.startswith(unit.path + ".") for i in idx]
        if not rows:
            return self.random_building()
        return buildings[int(rows[int(self.rng.integers(len(rows)))])]

    def located(self, geom) -> dict[str, Any]:
        unit = self.w.finest(geom)
        if unit is None:
            raise DemoRegistriesError("演示数据的位置不在演示区内 (a location outside the district)")
        return {"org_path": unit.path, "district_code": unit.district_code}

    def at_unit(self, unit: _Unit) -> dict[str, Any]:
        return {"org_path": unit.path, "district_code": unit.district_code}

    # -- the registries

    def generate(self) -> None:
        self.grid_heads()
        self.building_heads()
        self.organisation()
        self.leases()
        self.schools_places()
        self.special_populations()
        self.enterprises()
        self.public_security()
        self.road_lines()
        self.campus_cases()

    def organisation(self) -> None:
        w, words = self.w, self.words["org"]
        district = w.district
        self.org_of[district.path] = self.rows.add(
            "zz_org", name="鼓楼区社会治安综合治理委员会办公室", level="3", parent_id=None,
            area_id=district.id, **self.at_unit(district))
        for street in w.streets:
            self.org_of[street.path] = self.rows.add(
                "zz_org", name=f"{street.name}综治办", level="4", parent_id=self.org_of[district.path],
                area_id=street.id, **self.at_unit(street))
        for community in w.communities:
            self.org_of[community.path] = self.rows.add(
                "zz_org", name=f"{community.name}综治工作站", level="5",
                parent_id=self.org_of[community.parent_path], area_id=community.id, **self.at_unit(community))

        teams = [(district, "鼓楼区综治专职队伍", "1"), (district, "鼓楼区“平安鼓楼”专项整治工作队", "9")]
        for street in w.streets:
            teams += [(street, f"{street.name}专职综治队伍", "1"), (street, f"{street.name}治安巡防队", "2")]
        for community in w.communities:
            teams += [(community, f"{community.name}人民调解委员会", "3"),
                      (community, f"{community.name}网格员队伍", "4"),
                      (community, f"{community.name}平安志愿者服务队", "5")]
        for unit, name, kind in teams:
            grids = [g for g in w.grids if g.path.startswith(unit.path + ".")]
            members = sum(g.worker_count for g in grids) if kind == "4" else int(self.rng.integers(5, 40))
            established = self.date_before(3650, 365)
            dissolved = kind == "9"
            leader = self.resident(self.by_community.get(unit.path))
            self.rows.add("zz_team", name=name, org_id=self.org_of[unit.path], team_type=kind,
                          leader=leader["name"], member_count=max(members, 1),
                          status="2" if dissolved else "1",
                          established_on=established,
                          dissolved_on=established + dt.timedelta(days=365) if dissolved else None,
                          **self.at_unit(unit))

        mass_orgs = [(district, "鼓楼区平安志愿者总队", "3")]
        mass_orgs += [(s, f"{s.name}群防群治大队", "4") for s in w.streets]
        for community in w.communities:
            mass_orgs += [(community, f"{community.name}治安巡逻队", "5"),
                          (community, f"{community.name}治保会", "5")]
        for unit, name, level in mass_orgs:
            pool = self.pool_of(unit)
            leader = self.resident(pool, (35, 65))
            mass_id = self.rows.add("mass_org", name=name, org_id=self.org_of[unit.path], level=level,
                                    leader=leader["name"], phone=leader["phone"], **self.at_unit(unit))
            self.mass_members(mass_id, unit, pool, leader)

        for unit in [district, *w.streets]:
            prefix = "鼓楼区" if unit is district else unit.name
            duties = [(f"{prefix}党{'委' if unit is district else '工委'}", "书记"),
                      (f"{prefix}{'人民政府' if unit is district else '办事处'}",
                       "区长" if unit is district else "主任"),
                      (f"{prefix}{'委政法委' if unit is district else '综治办'}", "主任")]
            if unit is district:
                duties.append(("公安鼓楼分局", "局长"))
            for unit_name, post in duties:
                person = self.resident(self.pool_of(unit), (40, 60))
                self.rows.add(
                    "leadership_responsibility", unit=unit_name, person=f"{person['name']}（{post}）",
                    org_id=self.org_of[unit.path], content=self.pick(words["responsibility_content"]),
                    inspection=self.pick(words["inspection"]), commendation=self.pick(words["commendation"]),
                    supervision=self.pick(words["supervision"]),
                    accountability=self.pick(words["accountability"]),
                    **self.at_unit(unit))

        for unit in [district, *w.streets, *w.communities]:
            level = {"district": "3", "street": "4", "community": "5"}[unit.level]
            head = self.resident(self.pool_of(unit), (35, 58))
            where = self.place_in(unit)
            members = self.rng.choice(words["centre_members"], size=int(self.rng.integers(5, 10)),
                                      replace=False)
            self.rows.add(
                "zz_center", name=f"{self.short(unit)}综治中心", phone=self.landline(), level=level,
                head_name=head["name"], head_phone=head["phone"], member_units="、".join(members),
                location=unit.name, address=self.address(unit), lon=where.x, lat=where.y, geom=where,
                **self.at_unit(unit))
            if unit.level != "community":
                def size(district_range: tuple, street_range: tuple, big: bool = unit is district) -> int:
                    return int(self.rng.integers(*(district_range if big else street_range)))

                self.rows.add(
                    "video_center", name=f"{self.short(unit)}综治视联网信息中心", phone=self.landline(),
                    level=level, head_name=self.resident(self.pool_of(unit), (30, 55))["name"],
                    staff_count=size((8, 30), (2, 8)), office_area=float(size((200, 600), (40, 150))),
                    annual_budget=float(size((80, 300), (8, 40))), camera_count=size((800, 3000), (60, 400)),
                    staffed_24h=unit is district or bool(self.rng.random() < 0.6), location=unit.name,
                    address=self.address(unit), geom=self.place_in(unit),
                    **self.at_unit(unit))

        cases = words["major_cases"]
        for _ in range(max(3, round(len(w.people) / 10_000))):
            case_type = self.weighted({"1": 30, "2": 15, "3": 20, "4": 15, "5": 5, "6": 5, "9": 10})
            b = self.random_building()
            where = self.building_point(b)
            grid = w.by_path[b["org_path"]]
            occurred = dt.datetime.combine(self.date_before(1095), dt.time(int(self.rng.integers(0, 24)),
                                                                            int(self.rng.integers(0, 60))))
            self.rows.add(
                "major_case", org_id=self.org_of[w.street_of(grid).path],
                name=f"{b['compound'] or grid.name}{self.pick(cases[case_type])}",
                grade=self.weighted({"2": 10, "3": 40, "4": 50}), case_type=case_type,
                occurred_at=occurred.replace(tzinfo=dt.timezone(dt.timedelta(hours=8))),
                place=b["address"], geom=where, **self.located(where))

    def grid_heads(self) -> None:
        """网格长 of the grids that have none (the demo load names one for every grid it makes): a resident
        of the grid. A grid head already there is kept."""
        self.heads_of_grids = []
        for grid in self.w.grids:
            if grid.head_name:
                continue
            head = self.resident(self.by_grid.get(grid.path), (28, 55))
            self.heads_of_grids.append((grid.id, head["name"], head["sex"], head["ethnicity"],
                                        head["political"], head["birth_date"], head["education"],
                                        head["phone"]))

    def short(self, unit: _Unit) -> str:
        return "鼓楼区" if unit.level == "district" else unit.name

    def place_in(self, unit: _Unit) -> Point:
        """A point inside one of the unit's grids (an office sits among the houses), or the unit itself."""
        grids = self.grids_in(unit)
        return self.point_in(self.pick(grids).geom if grids else unit.geom, 3e-4)

    def grids_in(self, unit: _Unit) -> list[_Unit]:
        return [g for g in self.w.grids if g.path == unit.path or g.path.startswith(unit.path + ".")]

    def pool_of(self, unit: _Unit) -> np.ndarray | None:
        if unit.level == "community":
            return self.by_community.get(unit.path)
        if unit.level == "grid":
            return self.by_grid.get(unit.path)
        return None

    def mass_members(self, mass_id: int, unit: _Unit, pool, leader: dict) -> None:
        pool = np.asarray(pool if pool is not None else np.arange(len(self.ages)))
        ages = self.ages[pool]
        pool = pool[(ages >= 22) & (ages <= 70) & self.citizen[pool]]
        size = min(len(pool), 6 + int(self.rng.integers(0, 10)))
        chosen = [self.person(i) for i in self.rng.choice(pool, size=size, replace=False)] if size else []
        specialties = self.words["org"]["team_specialties"]
        for k, member in enumerate([leader, *[m for m in chosen if m["id"] != leader["id"]]]):
            self.rows.add(
                "mass_team_member", mass_org_id=mass_id, name=member["name"], sex=member["sex"],
                ethnicity=member["ethnicity"], political=member["political"], document_type="111",
                document_number=member["id_number"], birth_date=member["birth_date"],
                post="队长" if k == 0 else "副队长" if k == 1 else "队员", specialty=self.pick(specialties),
                education=member["education"], mobile=member["phone"],
                phone=self.landline() if self.rng.random() < 0.2 else None, **self.at_unit(unit))

    def building_heads(self) -> None:
        """楼栋长: a resident of the building (a household head or party member more likely), with a phone."""
        heads = []
        for building_id, idx in self.by_building.items():
            if self.rng.random() > 0.88:
                continue
            candidates = idx[(self.ages[idx] >= 35) & (self.ages[idx] <= 72)
                             & self.has_phone[idx] & self.citizen[idx]]
            if not len(candidates):
                continue
            weight = 1 + 3 * self.is_head[candidates] \
                + 3 * np.isin(self.political[candidates], ["01", "02"])
            chosen = self.person(candidates[int(self.rng.choice(len(candidates), p=weight / weight.sum()))])
            heads.append((int(building_id), chosen["name"], chosen["phone"]))
        self.heads = heads

    def leases(self) -> None:
        for house in self.w.rented.itertuples():
            occupants = self.by_house.get(house.id)
            if occupants is not None and len(occupants):
                heads = [i for i in occupants if self.is_head[i]]
                tenant = self.person(heads[0] if heads else occupants[0])
            else:
                tenant = self.resident(None)
            start = self.date_before(900)
            self.rows.add("house_lease", house_id=house.id, tenant=tenant["name"],
                          tenant_phone=tenant["phone"], lease_start=start,
                          lease_end=start + dt.timedelta(days=365 * int(self.rng.integers(1, 4)) - 1),
                          org_path=house.org_path, district_code=house.district_code)

    # -- schools first: the key persons must include someone living near each

    def schools_places(self) -> None:
        w, words = self.w, self.words["campus"]
        n = max(3, round(len(w.people) * words["schools_per_10000"] / 10_000))
        kinds = [k for k, _ in words["kinds"]]
        shares = np.array([s for _, s in words["kinds"]], dtype=float)
        by_street: dict[str, list[int]] = {}
        for i, path in enumerate(w.buildings["org_path"]):
            by_street.setdefault(".".join(path.split(".")[:4]), []).append(i)
        order = {s: list(self.rng.permutation(v)) for s, v in by_street.items()}
        streets = [s.path for s in w.streets if s.path in order]
        taken, names = [], set()
        attempts = 0
        while len(self.schools) < n and attempts < 40 * n:
            street = streets[attempts % len(streets)]
            attempts += 1
            if not order[street]:
                continue
            anchor = self.building_rows[int(order[street].pop())]
            outline = self.school_outline(anchor, taken)
            if outline is None:
                continue
            unit = w.finest(outline)
            if unit is None:
                continue
            name = self.pick(kinds, shares / shares.sum()).format(road=self.road(unit))
            if name in names:
                continue
            names.add(name)
            taken.append(outline)
            head, liaison = self.resident(None, (40, 58)), self.resident(self.pool_of(unit), (40, 58))
            school_id = self.rows.add(
                "school", name=name, address=f"{anchor['address'].split('号')[0]}号",
                head=head["name"], phone=self.landline(), guard_count=int(self.rng.integers(2, 12)),
                cameras=int(self.rng.integers(10, 80)), liaison=liaison["name"],
                liaison_phone=liaison["phone"],
                geom=outline, org_path=unit.path, district_code=unit.district_code)
            self.schools.append({"id": school_id, "name": name, "geom": outline, "unit": unit,
                                 "anchor": int(anchor["id"])})

    def school_outline(self, anchor: dict, taken: list):
        """A campus of about 130 × 100 m on free ground 90–140 m from the anchor building."""
        x, y = anchor["x"], anchor["y"]
        dlon = 1 / (M_PER_DEG * math.cos(math.radians(y)))
        dlat = 1 / M_PER_DEG
        for _ in range(12):
            angle = self.rng.uniform(0, 2 * math.pi)
            distance = self.rng.uniform(90, 140)
            cx, cy = x + distance * math.cos(angle) * dlon, y + distance * math.sin(angle) * dlat
            half_w, half_h = self.rng.uniform(55, 75), self.rng.uniform(40, 55)
            campus = box(cx - half_w * dlon, cy - half_h * dlat, cx + half_w * dlon, cy + half_h * dlat)
            outline = rotate(campus, float(self.rng.uniform(-20, 20)), origin="centroid")
            clearance = outline.buffer(8 * dlat)
            if len(self.w.footprint_tree.query(clearance, predicate="intersects")):
                continue
            if any(clearance.intersects(t) for t in taken):
                continue
            if self.w.finest(outline) is None or self.w.finest(outline).level == "district":
                continue
            return shapely.set_precision(outline, 1e-9)
        return None

    # -- special populations

    def special_populations(self) -> None:
        w, spec, fields = self.w, self.words["special"], self.words["special_fields"]
        people = w.people
        ages, males = self.ages, (self.sex == "1")
        taken: set[int] = set()

        def draw(key: str, n: int, among: set[int] | None = None) -> list[int]:
            """``n`` people of the register's ages, men and women in its proportion; from ``among`` when
            given (a second register for the same people), else from those on no register yet."""
            low, high = spec[key]["ages"]
            ok = (ages >= low) & (ages <= high) & self.citizen
            if among is None:
                ok[list(taken)] = False
            else:
                ok &= np.isin(np.arange(len(ok)), sorted(among))
            candidates = np.flatnonzero(ok)
            if not len(candidates) or n <= 0:
                return []
            weight = np.where(males[candidates], spec[key]["male"], 1 - spec[key]["male"])
            chosen = self.rng.choice(candidates, size=min(n, len(candidates)), replace=False,
                                     p=weight / weight.sum())
            return sorted(int(i) for i in chosen)

        size = {k: max(1, round(spec[k]["per_mille"] * len(people) / 1000)) for k in SPECIAL}
        for key in ("released_prisoner", "community_correction", "mental_patient"):
            self.members[key].update(draw(key, size[key]))
            taken |= self.members[key]
        also = draw("drug_user", round(size["drug_user"] * spec["drug_user_also_released"]),
                    among=self.members["released_prisoner"])
        self.members["drug_user"].update(also)
        self.members["drug_user"].update(draw("drug_user", size["drug_user"] - len(also)))
        taken |= self.members["drug_user"]
        for key in ("aids_risk", "cult_member", "key_youth"):
            self.members[key].update(draw(key, size[key]))
            taken |= self.members[key]
        self.key_person_near_every_school(ages)

        for key in SPECIAL:
            for i in sorted(self.members[key]):
                p = self.person(i)
                values: dict[str, Any] = {"person_id": p["id"], "org_path": p["org_path"],
                                          "district_code": p["district_code"]}
                if key == "released_prisoner":
                    years, months = int(self.rng.integers(0, 8)), int(self.rng.integers(0, 12))
                    values |= {"crime": self.pick(fields["crimes"]),
                               "sentence": f"有期徒刑{years}年{months}个月" if years
                               else f"有期徒刑{max(months, 6)}个月",
                               "released_on": self.date_before(5 * 365)}
                elif key == "community_correction":
                    start = self.date_before(3 * 365)
                    values |= {"correction_type": self.weighted(fields["correction"]), "start_on": start,
                               "end_on": start + dt.timedelta(days=int(self.rng.integers(180, 1460)))}
                elif key in ("mental_patient", "aids_risk"):
                    guardian = self.guardian(i)
                    values |= {"guardian": guardian["name"], "guardian_phone": guardian["phone"],
                               "dangerous": bool(self.rng.random() < (0.25 if key == "mental_patient"
                                                                      else 0.05)),
                               "treated": bool(self.rng.random() < 0.85)}
                elif key == "drug_user":
                    values |= {"cause": self.pick(fields["drug_causes"]),
                               "drug_source": self.pick(fields["drug_sources"]),
                               "rehab_status": self.weighted(fields["rehab"]),
                               "methadone": bool(self.rng.random() < 0.15)}
                elif key == "key_youth":
                    if p["age"] >= 18:
                        excluded = ("3", "4", "5")  # minors' categories (流浪乞讨, 服刑人员子女, 留守)
                    elif p["age"] < 16:
                        excluded = ("1",)  # a child is not yet 闲散 (out of school and out of work)
                    else:
                        excluded = ()
                    youth = {k: v for k, v in fields["youth"].items() if k not in excluded}
                    guardian = self.guardian(i)
                    values |= {"category": self.weighted(youth), "guardian": guardian["name"],
                               "guardian_phone": guardian["phone"]}
                self.rows.add(key, **values)

    def guardian(self, index: int) -> dict[str, Any]:
        """Another adult of the household (the eldest first), or a relative living elsewhere in the
        district."""
        house = self.house[index]
        others = [i for i in self.by_house.get(house, []) if i != index and self.ages[i] >= 22]
        if others:
            return self.person(max(others, key=lambda i: self.ages[i]))
        return self.resident(None, (30, 70))

    def key_person_near_every_school(self, ages: np.ndarray) -> None:
        """Make sure someone on a register lives near every school: a resident of its anchor building."""
        registered = set().union(*self.members.values())
        for school in self.schools:
            near = self.buildings_near(school["geom"], NEARBY_GUARANTEE_M)
            if any(i in registered for b in near for i in self.by_building.get(b, [])):
                continue
            residents = [i for i in self.by_building.get(school["anchor"], [])
                         if 8 <= ages[i] <= 75 and self.citizen[i]]
            if not residents:
                continue
            i = int(residents[int(self.rng.integers(len(residents)))])
            key = "key_youth" if ages[i] <= 25 else "released_prisoner" if self.sex[i] == "1" \
                else "mental_patient"
            self.members[key].add(i)
            registered.add(i)

    def buildings_near(self, geom, metres: float) -> list[int]:
        """Buildings whose point (the one 周边重点人员 measures to) is within ``metres`` of ``geom``: in local
        metres (equirectangular), within a metre of the ellipsoid at this distance."""
        scale = np.array([M_PER_DEG * math.cos(math.radians(geom.centroid.y)), M_PER_DEG])
        b = self.w.buildings
        points = shapely.points(b["x"].to_numpy() * scale[0], b["y"].to_numpy() * scale[1])
        close = shapely.dwithin(shapely.transform(geom, lambda c: c * scale), points, metres)
        return [int(i) for i in b["id"].to_numpy()[close]]

    # -- enterprises, social organisations, parcel firms

    def enterprises(self) -> None:
        w, words = self.w, self.words["new_orgs"]
        n = max(5, round(len(w.people) * words["enterprises_per_1000"] / 1000))
        for _ in range(n):
            b = self.random_building()
            category = self.weighted({"1": 45, "2": 40, "3": 5, "4": 3, "5": 4, "9": 3})
            owner = self.resident(self.by_grid.get(b["org_path"]), (25, 65))
            if category == "2":
                name = f"鼓楼区{owner['name'][0]}记{self.pick(words['shops'])}"
                address = f"{b['address']}底商{int(self.rng.integers(1, 12))}号"
            else:
                name = f"南京{self.pick(words['company_words'])}{self.pick(words['company_trades'])}有限公司"
                address = f"{b['address']}{int(self.rng.integers(1, 12))}0{int(self.rng.integers(1, 8))}室"
            where = self.building_point(b)
            self.rows.add(
                "private_enterprise", name=name, category=category, address=address, building_id=int(b["id"]),
                legal_person=owner["name"],
                security_head=self.resident(self.by_grid.get(b["org_path"]))["name"],
                hazard_type=self.weighted({"0": 70, "1": 12, "2": 2, "3": 6, "4": 6, "9": 4}), geom=where,
                **self.located(where))

        for community in w.communities:
            street = w.street_of(community)
            patterns = [p for p in words["social_orgs"] if "{community}" in p[0]]
            chosen = self.rng.choice(len(patterns), size=min(len(patterns), int(self.rng.integers(2, 4))),
                                     replace=False)
            specs = [patterns[int(k)] for k in sorted(chosen)]
            if community is next(c for c in w.communities if w.street_of(c) is street):
                of_street = [p for p in words["social_orgs"] if "{street}" in p[0]]
                specs += of_street[: int(self.rng.integers(1, 4))]
            for pattern, category, supervisor in specs:
                b = self.random_building(community)
                where = self.building_point(b)
                self.rows.add(
                    "social_org",
                    org_id=self.org_of[community.path if "{community}" in pattern else street.path],
                    name=pattern.format(community=community.name.removesuffix("社区"), street=street.name),
                    registration_no=_credit_code(category, self.rng), category=category, address=b["address"],
                    # a community's associations answer to the street office
                    supervisor=f"{street.name}办事处" if "{community}" in pattern and category == "1"
                    else supervisor,
                    legal_rep=self.resident(self.by_community.get(community.path), (35, 70))["name"],
                    founded_on=self.date_before(15 * 365, 200), geom=where, **self.located(where))

        firms = words["logistics"]
        for _ in range(max(3, round(len(w.people) * words["logistics_per_1000"] / 1000))):
            brand, kind = firms[int(self.rng.integers(len(firms)))]
            b = self.random_building()
            grid = w.by_path[b["org_path"]]
            place = f"{b['compound'] or grid.name}" if kind == "4" else self.road(grid)
            name = f"{brand}（{place}店）" if kind == "4" else f"{brand}南京{place}营业部"
            where = self.building_point(b)
            station = kind == "4"  # a parcel station: a mobile, one to three people
            self.rows.add("logistics_firm", name=name, phone=self.mobile() if station else self.landline(),
                          place=b["address"], firm_type=kind,
                          staff_count=int(self.rng.integers(*((1, 4) if station else (6, 40)))),
                          geom=where, **self.located(where))

    # -- public security

    def public_security(self) -> None:
        w, words = self.w, self.words["public_security"]
        n = max(2, round(len(w.grids) / 15))
        for area in w.hotspots.head(n).itertuples():
            outline = shapely.set_precision(area.boundary.buffer(-3e-5, join_style="mitre"), 1e-9)
            if outline.is_empty:
                continue
            unit = w.finest(outline)
            if unit is None:
                continue
            street = w.street_of(unit)
            head = self.resident(None, (40, 58))
            self.rows.add(
                "key_area", name=f"{area.name}及周边",
                lead_unit=f"南京市公安局鼓楼分局{street.name.removesuffix('街道')}派出所",
                lead_head=head["name"], lead_phone=head["phone"], solved_cases=int(self.rng.integers(0, 25)),
                deadline=w.reference + dt.timedelta(days=int(self.rng.integers(60, 365))),
                extent=f"{area.name}小区及周边道路（{area.address}一带）",
                partners=words["key_area_partners"].format(street=street.name),
                progress=self.pick(words["key_area_progress"]), geom=shapely.MultiPolygon([outline])
                if outline.geom_type == "Polygon" else outline, **self.at_unit(unit))

        for k in range(max(2, round(len(w.people) / 20_000))):
            b = self.random_building()
            started = self.date_before(5 * 365, 30)
            where = self.building_point(b)
            grid = w.by_path[b["org_path"]]
            solved = self.rng.random() < 0.9
            closed = started + dt.timedelta(days=int(self.rng.integers(2, 90))) if solved else None
            self.rows.add(
                "homicide_case", name=f"{b['compound'] or grid.name}“{started.month}·{started.day}”"
                                      f"{self.pick(words['homicides'])}",
                case_no=f"A320106510000{started:%Y%m}{k + 1:04d}", started_on=started, closed_on=closed,
                geom=where, **self.located(where))

    def road_lines(self) -> None:
        w, words = self.w, self.words["public_security"]
        inside = w.district.geom.buffer(-1e-4)
        serial = 0
        for section in words["sections"]:
            line = shapely.set_precision(LineString(section["points"]).intersection(inside), 1e-9)
            parts = [g for g in getattr(line, "geoms", [line])
                     if g.geom_type == "LineString" and g.length > 0]
            if not parts:
                continue
            geom = shapely.MultiLineString(parts)
            unit = w.finest(geom) or w.district
            kind = section["kind"]
            self.rows.add(
                "road_line_section", name=section["name"], owner_address=words["owner_addresses"][kind],
                owner_head=self.resident(None, (40, 58))["name"], authority=words["authorities"][kind],
                security_head=self.resident(None, (35, 55))["name"],
                risk_level=self.weighted({"1": 5, "2": 20, "3": 50, "4": 25}), risk=self.pick(words["risks"]),
                geom=geom, **self.at_unit(unit))
            section_id = len(self.rows.tables["road_line_section"])
            for _ in range(int(self.rng.integers(1, 4))):
                part = parts[int(self.rng.integers(len(parts)))]
                where = part.interpolate(float(self.rng.uniform(0.05, 0.95)), normalized=True)
                occurred = self.date_before(3 * 365)
                serial += 1
                self.rows.add(
                    "road_line_case", case_no=f"HLHX{occurred:%Y}{serial:04d}",
                    name=f"{section['name'].split('（')[0]}{self.pick(words['line_cases'][kind])}",
                    nature=self.weighted({"1": 35, "2": 30, "3": 25, "9": 10}), occurred_on=occurred,
                    section_id=section_id, geom=where, **self.located(where))

    def campus_cases(self) -> None:
        cases = self.words["campus"]["cases"]
        serial = 0
        for school in self.schools:
            for _ in range(int(self.rng.poisson(1.3))):
                name, nature = cases[int(self.rng.integers(len(cases)))]
                occurred = self.date_before(3 * 365)
                where = self.point_in(school["geom"], 5e-5)
                suspects = [i for i in self.by_building.get(school["anchor"], [])
                            if 16 <= self.ages[i] <= 50 and self.citizen[i]]
                offenders = int(self.rng.integers(1, 4)) if nature in ("1", "2") else 0
                arrested = int(self.rng.integers(0, offenders + 1))
                suspect = self.person(suspects[int(self.rng.integers(len(suspects)))]) \
                    if suspects and offenders and arrested else None
                serial += 1
                self.rows.add(
                    "campus_case", case_no=f"XA{occurred:%Y}{serial:04d}", name=f"{school['name']}{name}",
                    school_id=school["id"], occurred_on=occurred, nature=nature,
                    details=f"{occurred.year}年{occurred.month}月{occurred.day}日，{school['name']}{name}。"
                            f"{self.pick(CASE_OUTCOMES)}",
                    suspect_document_type="111" if suspect else None,
                    suspect_document_number=suspect["id_number"] if suspect else None,
                    suspect_name=suspect["name"] if suspect else None, offenders=offenders, arrested=arrested,
                    at_large=offenders - arrested, geom=where, org_path=school["unit"].path,
                    district_code=school["unit"].district_code)


_CREDIT_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def _credit_code(category: str, rng: np.random.Generator) -> str:
    """A 统一社会信用代码 (GB 32100-2015) of a social organisation registered in 鼓楼区, with its check digit:
    5 (民政), the kind (1 社会团体, 2 民办非企业单位, 3 基金会), 320106, a nine-character body."""
    body = "5" + category + "320106" + "MJ" + "".join(
        _CREDIT_CHARS[int(i)] for i in rng.integers(0, 31, size=7))
    total = sum(_CREDIT_CHARS.index(c) * w for c, w in zip(body, _CREDIT_WEIGHTS, strict=True))
    return body + _CREDIT_CHARS[(31 - total % 31) % 31]


# ---------------------------------------------------------------- the load


@contextmanager
def _timed(report: DemoRegistriesReport, progress: Progress, step: str) -> Iterator[None]:
    progress(step, 0, 1)
    started = time.perf_counter()
    yield
    report.seconds[step] = time.perf_counter() - started
    progress(step, 1, 1)


def _no_progress(step: str, done: int, total: int) -> None:
    pass


def load_demo_registries(settings: Settings, *, seed: int = DEFAULT_SEED,
                         progress: Progress | None = None) -> DemoRegistriesReport:
    """Fill every registry of the loaded demo district for ``seed``, replacing this loader's earlier rows."""
    progress = progress or _no_progress
    report = DemoRegistriesReport(seed=seed)
    try:
        conn = psycopg.connect(libpq_dsn(owner_url(settings)))
    except psycopg.OperationalError as error:
        raise DemoRegistriesError(
            f"无法连接数据库，请先运行 gridgov db up (cannot connect): {error}") from error
    with conn:
        with _timed(report, progress, "read"):
            world = _read_world(conn)
        with _timed(report, progress, "clear"):
            _clear(conn)
        with _timed(report, progress, "generate"):
            generator = _Generator(world, seed)
            generator.generate()
        with _timed(report, progress, "write"):
            generator.rows.copy(conn)
            _restart_identities(conn)
        with _timed(report, progress, "derive"):
            _building_heads(conn, generator.heads)
            _grid_heads(conn, generator.heads_of_grids)
            _registered_key_persons(conn)
            _track_sample(conn)
            _networked_cameras(conn)
            _forget_stale_visits(conn)
            conn.execute(sql.SQL("ANALYZE {}").format(sql.SQL(", ").join(map(sql.Identifier, OWN_TABLES))))
        report.counts = {key: _count(conn, r) for key, r in REGISTRIES.items() if r.crud}
    return report


def _clear(conn: psycopg.Connection) -> None:
    """Empty the tables this loader fills (children first; DELETE, not TRUNCATE: on tables this small it
    is the quicker, and new ids are set explicitly anyway) and take the building heads off."""
    for table in reversed(OWN_TABLES):
        conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table)))
    conn.execute("UPDATE building SET head_name = NULL, head_phone = NULL WHERE head_name IS NOT NULL"
                 " OR head_phone IS NOT NULL")


def _restart_identities(conn: psycopg.Connection) -> None:
    """Ids were written explicitly; the identity sequences continue after them (and those of the tables
    filled afterwards by SQL, empty now, start again from 1: a reload gives the same ids)."""
    for table in OWN_TABLES:
        if table == "house_lease":
            continue
        conn.execute(sql.SQL(
            "SELECT setval(pg_get_serial_sequence({t}, 'id'), coalesce(max(id), 1), max(id) IS NOT NULL)"
            " FROM {table}").format(t=sql.Literal(table), table=sql.Identifier(table)))


def _building_heads(conn: psycopg.Connection, heads: list[tuple[int, str, str]]) -> None:
    conn.execute("CREATE TEMP TABLE demo_building_head (id bigint, name text, phone text) ON COMMIT DROP")
    with conn.cursor() as cur, cur.copy("COPY demo_building_head (id, name, phone) FROM STDIN") as copy:
        for row in heads:
            copy.write_row(row)
    conn.execute("UPDATE building b SET head_name = h.name, head_phone = h.phone FROM demo_building_head h"
                 " WHERE b.id = h.id")


def _grid_heads(conn: psycopg.Connection, heads: list[tuple]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "UPDATE territory_unit SET head_name = %s, head_sex = %s, head_ethnicity = %s,"
            " head_political = %s, head_birth_date = %s, head_education = %s, head_mobile = %s,"
            " worker_count = coalesce(worker_count, 1) WHERE id = %s AND head_name IS NULL",
            [(*head[1:], head[0]) for head in heads])


def _registered_key_persons(conn: psycopg.Connection) -> None:
    """周边重点人员 registered by hand: up to three of the key persons the database finds near each school
    (what the school's staff would have put on their list), with a harm level by register."""
    union = " UNION ALL ".join(f"SELECT person_id, '{HARM[k]}' AS harm FROM {k}" for k in SPECIAL)
    conn.execute(f"""
        INSERT INTO school_key_person (person_id, school_id, harm_level, org_path, district_code)
        SELECT person_id, school_id, harm, org_path, district_code FROM (
            SELECT p.id AS person_id, s.id AS school_id, min(k.harm) AS harm, p.org_path, p.district_code,
                   row_number() OVER (PARTITION BY s.id ORDER BY min(ST_Distance(s.geom::geography,
                        ST_PointOnSurface(b.footprint)::geography)), p.id) AS rank
              FROM school s
              JOIN building b ON ST_DWithin(s.geom::geography, ST_PointOnSurface(b.footprint)::geography, %s)
              JOIN house h ON h.building_id = b.id
              JOIN residence r ON r.house_id = h.id AND r.until IS NULL
              JOIN ({union}) k ON k.person_id = r.person_id
              JOIN person p ON p.id = k.person_id AND p.died_on IS NULL
             GROUP BY p.id, s.id) near
         WHERE rank <= 3 ORDER BY school_id, person_id""", (float(NEARBY_GUARANTEE_M),))


def _track_sample(conn: psycopg.Connection) -> None:
    """网格员轨迹: a fix every five minutes of the latest day's tracks, where it lies inside the
    worker's grid."""
    every = f"date_bin(interval '{TRACK_MINUTES} minutes', fixed_at, '2000-01-01')"
    conn.execute(f"""
        INSERT INTO worker_track (worker, located_at, lon, lat, speed, accuracy, geom, org_path,
                                  district_code)
        SELECT u.name, p.fixed_at, p.lon, p.lat, p.speed, p.accuracy, p.geom, p.org_path, p.district_code
          FROM (SELECT DISTINCT ON (user_id, {every}) *, ST_SetSRID(ST_MakePoint(lon, lat), 4490) AS geom
                  FROM worker_position
                 WHERE fixed_at >= (SELECT date_trunc('day', max(fixed_at)) FROM worker_position)
                 ORDER BY user_id, {every}, fixed_at) p
          JOIN users u ON u.id = p.user_id
          JOIN territory_unit g ON g.path = p.org_path
         WHERE ST_Covers(g.boundary, p.geom)
         ORDER BY p.user_id, p.fixed_at""")


def _networked_cameras(conn: psycopg.Connection) -> None:
    """A video-network centre counts the cameras of its unit, when the demo cameras are loaded."""
    conn.execute("""
        UPDATE video_center v SET camera_count = c.n
          FROM (SELECT v2.id, count(*) AS n FROM video_center v2 JOIN camera k ON k.org_path <@ v2.org_path
                 WHERE k.deleted_at IS NULL GROUP BY v2.id) c
         WHERE c.id = v.id""")


def _forget_stale_visits(conn: psycopg.Connection) -> None:
    """Visits recorded on special-population records that the reload replaced by someone else's."""
    for key in SPECIAL:
        conn.execute(sql.SQL(
            "DELETE FROM assistance_visit v WHERE v.registry = {key} AND NOT EXISTS"
            " (SELECT 1 FROM {table} t WHERE t.id = v.record_id AND t.person_id = v.person_id)").format(
            key=sql.Literal(key), table=sql.Identifier(key)))


def _count(conn: psycopg.Connection, registry: Registry) -> int:
    """Live rows of a registry, as its list counts them (its view's filter and sub-records included)."""
    extensions = "".join(f" LEFT JOIN {e.table} {e.alias} ON {e.on}" for e in registry.extensions)
    where = "t.deleted_at IS NULL" + (f" AND ({registry.where})" if registry.where else "")
    return conn.execute(f"SELECT count(*) FROM {registry.table_name} t{extensions} {registry.joins}"
                        f" WHERE {where}").fetchone()[0]
