"""The map layers, declared once: what each is called, where its rows and geometry come from, and which of
its columns hold personal numbers. The notebook API, the feature API and the map read layers from here.

A record with no geometry of its own is drawn through the one it hangs on: a house at its building's
footprint, a person at the building of the house they live in now.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


class Temporal(NamedTuple):
    """A layer's time: what a GIS client filters by (OGC API ``datetime``) and reads as a property -- the
    last change of the layer's records, a NOT NULL column (tests/test_ogc.py checks)."""

    # Where its extent (first and last) is read: the one table it is a column of, with its alias, and which
    # of that table's rows are the layer's -- the layer's rows without the joins that only hang a geometry
    # or names on them. Through those joins the planner cannot walk the (org_path, updated_at) index
    # (migration 0014; territory_unit has none since 0016, its few thousand rows are read) and reads every
    # row in scope instead (see gis.api.ogc.time_span_sql).
    table: str
    where: str = "true"
    name: str = "updated_at"   # the column, and the property it is read as

    @property
    def expr(self) -> str:
        """The column over the layer's ``source`` (which uses the same alias)."""
        return f"{self.table.split()[1]}.{self.name}"


@dataclass(frozen=True)
class Layer:
    key: str
    zh: str
    source: str            # FROM clause (aliases used by the expressions below)
    columns: str           # SELECT list without the geometry
    geometry: str          # the geometry expression drawn
    indexed_geometry: str  # a GiST-indexed geometry that contains `geometry`: spatial filters use it
    org_path: str          # the territory path expression: path filters use it (and RLS applies to it)
    where: str = "true"
    pii: tuple[str, ...] = field(default=())  # columns masked unless revealed ("id_number", "phone")
    # The registries' records are dated by their last change -- what "what changed since" asks for; None
    # for a layer without a time (its features then match any datetime, as OGC API Features says).
    temporal: Temporal | None = None

    @property
    def id_column(self) -> str:
        """The expression of the feature id: the first of ``columns`` (pages are walked by it)."""
        return self.columns.split(",", 1)[0].strip()


def _territory(level: str, zh: str) -> Layer:
    return Layer(
        key=level, zh=zh, source="territory_unit t",
        columns="t.id, t.code, t.name, t.level, t.path::text AS path, t.district_code",
        geometry="t.boundary", indexed_geometry="t.boundary", org_path="t.org_path",
        where=f"t.level = '{level}'",
        temporal=Temporal("territory_unit t", f"t.level = '{level}'"),
    )


LAYERS: dict[str, Layer] = {
    layer.key: layer
    for layer in [
        _territory("district", "区县"),
        _territory("street", "街道"),
        _territory("community", "社区"),
        Layer(
            key="grid", zh="网格", source="territory_unit t JOIN grid_figures f ON f.grid_id = t.id",
            columns="t.id, t.code, t.name, t.path::text AS path, t.head_name, t.head_mobile AS phone, "
                    "t.worker_count, f.household_count, f.person_count, f.area_m2",
            geometry="t.boundary", indexed_geometry="t.boundary", org_path="t.org_path",
            pii=("phone",),
            # grid_figures holds the grids only (level 'grid'): the same rows.
            temporal=Temporal("territory_unit t", "t.level = 'grid'"),
        ),
        Layer(
            key="compound", zh="小区", source="compound c",
            columns="c.id, c.name, c.address, c.property_company, c.enclosure, c.org_path::text AS org_path",
            geometry="c.boundary", indexed_geometry="c.boundary", org_path="c.org_path",
            temporal=Temporal("compound c"),
        ),
        Layer(
            key="building", zh="楼栋",
            source="building b LEFT JOIN compound c ON c.id = b.compound_id",
            columns="b.id, b.name, c.name AS compound_name, b.floors, b.units, b.org_path::text AS org_path",
            geometry="b.footprint", indexed_geometry="b.footprint", org_path="b.org_path",
            temporal=Temporal("building b"),
        ),
        Layer(
            key="house", zh="房屋",
            source="house h JOIN building b ON b.id = h.building_id",
            columns="h.id, h.building_id, b.name AS building_name, h.unit_no, h.floor, h.room_no, h.nature, "
                    "h.owner_name, h.is_rented, h.org_path::text AS org_path",
            geometry="ST_PointOnSurface(b.footprint)", indexed_geometry="b.footprint", org_path="h.org_path",
            # Every house has its building, on the same org_path (the cascade of 0001/0013): the same rows.
            temporal=Temporal("house h"),
        ),
        Layer(
            key="person", zh="人口",
            source="person p JOIN residence r ON r.person_id = p.id AND r.until IS NULL "
                   "JOIN house h ON h.id = r.house_id JOIN building b ON b.id = h.building_id",
            columns="p.id, p.name, p.sex, p.id_number, p.birth_date, p.phone, p.residency, p.died_on, "
                    "r.relation, r.is_head, h.id AS house_id, h.room_no, b.name AS building_name, "
                    "p.org_path::text AS org_path",
            geometry="ST_PointOnSurface(b.footprint)", indexed_geometry="b.footprint", org_path="p.org_path",
            pii=("id_number", "phone"),
            # A person is drawn while they have a current home (its house and building on their org_path).
            # OFFSET 0 keeps the EXISTS a test of each row the walk meets: as a semi-join the planner
            # takes it to keep a hundredth of the people in scope, and below a few hundred thousand
            # people reads the whole scope instead of walking.
            temporal=Temporal("person p", "EXISTS (SELECT 1 FROM residence r "
                              "WHERE r.person_id = p.id AND r.until IS NULL OFFSET 0)"),
        ),
    ]
}
