"""楼盘表: a building's flats as units × floors × rooms, each with its household and status, and the
members of one household (以房找人).

A flat's status is what the grid worker needs at a glance: owner-occupied (自住), rented (出租), vacant
(空置, nobody lives there now), or housing a special population (有特殊人群). The last one only for the
categories the caller may see: ``special_categories`` is the list of categories the user's role grants
(``special:<category>``); a drug user's flat looks like any other flat to someone without
``special:drug_user``, so the 楼盘表 itself does not leak the category.

Every function takes a scoped ``Connection`` (row-level security decides which buildings and people
exist for the caller); names are shown, ID and phone numbers are masked, and reading a household is
written to the access log in the same transaction.

>>> with scoped_connection(settings, user) as conn:               # doctest: +SKIP
...     grid = housing_grid(conn, building_id, special_categories=["drug_user"])
...     grid.flats[0].status
'owner'
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, text

from gis.masking import mask_id_number, mask_phone
from gis.security import audit
from gis.security.roles import SPECIAL_CATEGORIES

STATUS_LABELS = {"owner": "自住", "rented": "出租", "vacant": "空置", "special": "有特殊人群"}
STATUS_COLOURS = {"owner": "#8fc79a", "rented": "#f2c14e", "vacant": "#d9d9d9", "special": "#e0605e"}


@dataclass(frozen=True)
class Flat:
    house_id: int
    unit_no: int
    floor: int
    room_no: str
    status: str
    head_name: str | None
    people: int
    special: tuple[str, ...] = ()  # the categories (that the caller may see) of people living here

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]


@dataclass(frozen=True)
class HousingGrid:
    building_id: int
    name: str
    compound_name: str | None
    floors: int
    units: int
    flats: list[Flat] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Flats by status, every status present (zero where none)."""
        counts = dict.fromkeys(STATUS_LABELS, 0)
        for flat in self.flats:
            counts[flat.status] += 1
        return counts

    def rows(self, unit_no: int) -> list[tuple[int, list[Flat]]]:
        """One unit's flats by floor, top floor first (as the building is drawn on a 楼盘表)."""
        by_floor: dict[int, list[Flat]] = {}
        for flat in self.flats:
            if flat.unit_no == unit_no:
                by_floor.setdefault(flat.floor, []).append(flat)
        return [(floor, sorted(by_floor[floor], key=lambda f: f.room_no))
                for floor in sorted(by_floor, reverse=True)]

    @property
    def unit_numbers(self) -> list[int]:
        return sorted({flat.unit_no for flat in self.flats})


def visible_categories(user: Any) -> list[str]:
    """The special-population categories a user's role lets them see (``special:<category>``)."""
    return [key for key in SPECIAL_CATEGORIES if user.has(f"special:{key}")]


def check_categories(categories: Iterable[str]) -> list[str]:
    """Only known category keys: they are used as table names."""
    unknown = [c for c in categories if c not in SPECIAL_CATEGORIES]
    if unknown:
        raise ValueError(f"未知的特殊人群类别 {unknown}，可选：{'、'.join(SPECIAL_CATEGORIES)}")
    return list(categories)


def special_people_sql(categories: Iterable[str]) -> str:
    """A subquery ``(person_id, category)`` of the live special-population records of ``categories``
    (``SELECT NULL, NULL WHERE false`` when none)."""
    parts = [f"SELECT person_id, '{c}' AS category FROM {c} WHERE deleted_at IS NULL"
             for c in check_categories(categories)]
    return " UNION ALL ".join(parts) or "SELECT NULL::bigint AS person_id, NULL::text AS category WHERE false"


def housing_grid(conn: Connection, building_id: int, *,
                 special_categories: Iterable[str] = ()) -> HousingGrid | None:
    """The 楼盘表 of a building, or ``None`` when there is no such building in the caller's scope."""
    building = conn.execute(text(
        "SELECT b.id, b.name, c.name, b.floors, b.units FROM building b "
        "LEFT JOIN compound c ON c.id = b.compound_id WHERE b.id = :id AND b.deleted_at IS NULL"
    ), {"id": building_id}).first()
    if building is None:
        return None
    rows = conn.execute(text(f"""
        WITH occupants AS (
            SELECT r.house_id, r.person_id, r.is_head, p.name
              FROM house h
              JOIN residence r ON r.house_id = h.id AND r.until IS NULL
              JOIN person p ON p.id = r.person_id AND p.died_on IS NULL AND p.deleted_at IS NULL
             WHERE h.building_id = :id
        ), special AS (
            SELECT o.house_id, array_agg(DISTINCT s.category ORDER BY s.category) AS categories
              FROM occupants o JOIN ({special_people_sql(special_categories)}) s ON s.person_id = o.person_id
             GROUP BY o.house_id
        )
        SELECT h.id, h.unit_no, h.floor, h.room_no, h.is_rented,
               (SELECT o.name FROM occupants o WHERE o.house_id = h.id ORDER BY o.is_head DESC, o.person_id
                 LIMIT 1) AS head_name,
               (SELECT count(*) FROM occupants o WHERE o.house_id = h.id) AS people,
               s.categories
          FROM house h LEFT JOIN special s ON s.house_id = h.id
         WHERE h.building_id = :id AND h.deleted_at IS NULL
         ORDER BY h.unit_no, h.floor, h.room_no
    """), {"id": building_id}).all()
    flats = [
        Flat(house_id=house_id, unit_no=unit_no, floor=floor, room_no=room_no,
             status=flat_status(is_rented, people, categories), head_name=head_name, people=people,
             special=tuple(categories or ()))
        for house_id, unit_no, floor, room_no, is_rented, head_name, people, categories in rows
    ]
    return HousingGrid(building_id=building[0], name=building[1], compound_name=building[2],
                       floors=building[3], units=building[4], flats=flats)


def flat_status(is_rented: bool, people: int, special: Iterable[str] | None) -> str:
    """A flat's status; a visible special population outranks the tenure, nobody home outranks both.

    >>> flat_status(True, 2, None), flat_status(False, 0, None), flat_status(True, 1, ["drug_user"])
    ('rented', 'vacant', 'special')
    """
    if people == 0:
        return "vacant"
    if special:
        return "special"
    return "rented" if is_rented else "owner"


def household_members(conn: Connection, house_id: int, *,
                      special_categories: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The people living in a flat now, head first, with ID and phone masked and the special categories
    (of those the caller may see) of each. The read is written to the access log."""
    rows = conn.execute(text(f"""
        SELECT p.id, p.name, p.sex, p.birth_date, p.id_number, p.phone, p.residency, r.relation, r.is_head,
               r.since, coalesce(rel.name_zh, r.relation) AS relation_label,
               coalesce((SELECT array_agg(s.category ORDER BY s.category)
                                    FROM ({special_people_sql(special_categories)}) s
                                   WHERE s.person_id = p.id), '{{}}') AS special
          FROM residence r JOIN person p ON p.id = r.person_id
          LEFT JOIN code_item rel ON rel.table_key = 'relation' AND rel.code = r.relation
         WHERE r.house_id = :house AND r.until IS NULL AND p.died_on IS NULL AND p.deleted_at IS NULL
         ORDER BY r.is_head DESC, p.birth_date, p.id
    """), {"house": house_id}).mappings().all()
    members = []
    for row in rows:
        member = dict(row)
        member["id_number"] = mask_id_number(member["id_number"])
        member["phone"] = mask_phone(member["phone"])
        member["special"] = list(member["special"])
        members.append(member)
    audit.record(conn, "read_household", target_table="house", target_id=house_id,
                 detail={"members": len(members)})
    return members


def house_location(conn: Connection, house_id: int) -> dict[str, Any] | None:
    """Where a flat is: its building, unit, floor and room, and the building's centre (lon, lat)."""
    row = conn.execute(text(
        "SELECT h.id AS house_id, h.building_id, h.unit_no, h.floor, h.room_no, b.name AS building_name, "
        "ST_X(ST_PointOnSurface(b.footprint)) AS lon, ST_Y(ST_PointOnSurface(b.footprint)) AS lat "
        "FROM house h JOIN building b ON b.id = h.building_id WHERE h.id = :id"
    ), {"id": house_id}).mappings().first()
    return dict(row) if row else None
