"""The territory tree (行政区划 + 网格): units as GeoDataFrames, the district they belong to, and totals.

Every function takes an open SQLAlchemy ``Connection`` and never opens one itself: the caller decides
which role and which access scope the reads run under (today the owner; later a per-request session
whose row-level security scope is the logged-in user's).

Paths are ``ltree`` paths of territory codes, e.g. ``32.3201.320106.320106002`` — a unit's ``path``
and the ``org_path`` of everything inside it. ``within_path`` selects a unit and all its descendants.

>>> with owner_engine(settings).connect() as conn:  # doctest: +SKIP
...     grids = territory_units(conn, level="grid", within_path="32.3201.320106")
...     grids.crs.to_epsg()
4490
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import geopandas as gpd
from sqlalchemy import Connection, text

STORAGE_CRS = "EPSG:4490"

LEVELS = ("province", "city", "district", "street", "community", "grid")
LEVEL_LABELS = {
    "province": "省", "city": "市", "district": "区(县)", "street": "街道(乡镇)",
    "community": "社区(村)", "grid": "网格",
}

# An ltree path of codes; the only shape a scope or a drill-down target can take.
_PATH = re.compile(r"^[0-9]{2,15}(\.[0-9]{2,15})*$")


class TerritoryError(ValueError):
    """A request the territory services cannot answer; the message is for the user (Chinese)."""


def check_level(level: str) -> str:
    if level not in LEVELS:
        raise TerritoryError(f"未知的区划层级 {level!r}，可选：{'、'.join(LEVELS)} (unknown level)")
    return level


def check_path(path: str) -> str:
    if not _PATH.match(path):
        raise TerritoryError(f"区划路径 {path!r} 格式不对，应为以点分隔的区划代码，如 320106.320106002")
    return path


def territory_units(
    conn: Connection, level: str | None = None, within_path: str | None = None
) -> gpd.GeoDataFrame:
    """Units, optionally of one ``level`` and within the unit at ``within_path`` (itself included).

    Columns: ``id, level, level_label, code, name, parent_id, path, geometry`` (EPSG:4490; ``None``
    where a unit has no boundary yet), ordered by path so parents come before their children.
    """
    clauses, params = [], {}
    if level is not None:
        clauses.append("level = :level")
        params["level"] = check_level(level)
    if within_path is not None:
        clauses.append("path <@ CAST(:within AS ltree)")
        params["within"] = check_path(within_path)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    sql = text(
        "SELECT id, level, code, name, parent_id, path::text AS path, boundary AS geometry "
        f"FROM territory_unit {where} ORDER BY path"
    )
    units = gpd.read_postgis(sql, conn, geom_col="geometry", params=params, crs=STORAGE_CRS)
    units.insert(2, "level_label", units["level"].map(LEVEL_LABELS))
    return units


@dataclass(frozen=True)
class UnitSummary:
    id: int
    level: str
    code: str
    name: str
    path: str


def unit_at_path(conn: Connection, path: str) -> UnitSummary | None:
    row = conn.execute(
        text("SELECT id, level, code, name, path::text FROM territory_unit WHERE path = CAST(:p AS ltree)"),
        {"p": check_path(path)},
    ).first()
    return UnitSummary(*row) if row else None


def first_district(conn: Connection) -> UnitSummary | None:
    """The district with the lowest code: the one a single-district deployment is about."""
    row = conn.execute(
        text("SELECT id, level, code, name, path::text FROM territory_unit "
             "WHERE level = 'district' ORDER BY code LIMIT 1")
    ).first()
    return UnitSummary(*row) if row else None


# What the side panel and the summary route count, in display order: key → (label, SQL).
_TOTALS = {
    "streets": ("街道", "SELECT count(*) FROM territory_unit WHERE level = 'street' AND path <@ :p"),
    "communities": ("社区", "SELECT count(*) FROM territory_unit WHERE level = 'community' AND path <@ :p"),
    "grids": ("网格", "SELECT count(*) FROM territory_unit WHERE level = 'grid' AND path <@ :p"),
    "buildings": ("楼栋", "SELECT count(*) FROM building WHERE org_path <@ :p"),
    "houses": ("房屋", "SELECT count(*) FROM house WHERE org_path <@ :p"),
    # 实有人口: people living here now (the deceased stay in the register with died_on set).
    "people": ("实有人口", "SELECT count(*) FROM person WHERE org_path <@ :p AND died_on IS NULL"),
}
TOTAL_LABELS = {key: label for key, (label, _) in _TOTALS.items()}


def territory_totals(conn: Connection, within_path: str) -> dict[str, int]:
    """Counts of streets, communities, grids, buildings, houses and people within a unit."""
    union = " UNION ALL ".join(
        f"SELECT '{key}' AS key, ({sql.replace(':p', 'CAST(:p AS ltree)')}) AS n"
        for key, (_, sql) in _TOTALS.items()
    )
    rows = conn.execute(text(union), {"p": check_path(within_path)}).all()
    return {key: int(n) for key, n in rows}
