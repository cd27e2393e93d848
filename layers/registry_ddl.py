"""The tables of the registries, generated from their declarations -- once, into a migration.

``python -m layers.registry_ddl up > gis/sql/0003_registries.sql`` (and ``down`` for the _down file)
wrote migration 0003. The output is committed and frozen like any migration, and *not* regenerated when
the migration runs: a revision must mean the same schema on every database that reaches it, and a
database already at 0003 would never see a later change of a declaration anyway. So the declaration stays
the one place a registry is described, the SQL is derived from it, and a changed declaration gets a new
migration (generate, keep the difference). ``tests/test_registries.py`` checks that the migrated database
has a column for every stored field of every declaration, so the two cannot drift apart unnoticed.

Every new table gets what the platform needs of a territorial table: ``org_path`` and ``district_code``
(access control, drill-down, the Citus distribution column), ``version`` (optimistic concurrency), who
created, changed and (soft) deleted it and when, and ``SELECT app.protect(...)`` (row-level security by
territory, grants to the app role, change history).
"""

from __future__ import annotations

import sys

from layers.registries import REGISTRIES
from layers.registry import Extension, Field, Registry

COLUMN_TYPES = {
    "text": "text", "longtext": "text", "code": "text", "id_number": "text", "document_number": "text",
    "phone": "text", "int": "integer", "number": "numeric", "date": "date", "datetime": "timestamptz",
    "bool": "boolean", "ref": "bigint", "lon": "double precision", "lat": "double precision",
}
REF_TABLES = {"territory": "territory_unit"}

# Columns every registry row has; added to the foundation's tables the registries write.
BOOKKEEPING = """    version       integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    bigint,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    bigint,
    deleted_at    timestamptz,
    deleted_by    bigint"""
FOUNDATION_TABLES = ("territory_unit", "compound", "building", "house", "person")

HEADER = """-- The registries (台账) of the "9+X" modules: tables generated from layers/registries/*.py by
-- layers/registry_ddl.py (see there why generated once and frozen here). Do not edit by hand: change the
-- declaration, generate, and put the difference in a new migration.

-- ---------------------------------------------------------------- the foundation's tables as registries
-- Optimistic concurrency (version), who changed it, soft delete; the building head (楼栋长) and the grid
-- head's photo (网格服务公示牌).
"""


def ref_table(f: Field) -> str:
    return REF_TABLES.get(f.ref or "", None) or REGISTRIES[f.ref].table_name


def _column(f: Field, *, not_null: bool) -> str:
    sql = f"    {f.stored_column:<13} {COLUMN_TYPES[f.type]}"
    if f.type == "ref":
        sql += f" REFERENCES {ref_table(f)} (id)"
    if f.required and not_null:
        sql += " NOT NULL"
    return sql


def _indexes(table: str, fields: list[Field], registry: Registry | None) -> list[str]:
    out = [f"CREATE INDEX {table}_org_path_gist ON {table} USING gist (org_path);"]
    for f in fields:
        column = f.stored_column
        if f.type == "ref":
            out.append(f"CREATE INDEX {table}_{column} ON {table} ({column});")
        elif registry and f.name in registry.query:
            if f.search_mode == "trgm":
                out.append(f"CREATE INDEX {table}_{column}_trgm ON {table}"
                           f" USING gin ({column} gin_trgm_ops);")
            else:
                out.append(f"CREATE INDEX {table}_{column} ON {table} ({column});")
    if registry and registry.geometry_column:
        out.append(f"CREATE INDEX {table}_{registry.geometry_column}_gist ON {table} "
                   f"USING gist ({registry.geometry_column});")
    if registry and registry.unique:
        columns = ", ".join(registry.unique)
        out.append(f"CREATE UNIQUE INDEX {table}_unique ON {table} ({columns}) WHERE deleted_at IS NULL;")
    return out


def _comments(table: str, zh: str, fields: list[Field]) -> list[str]:
    out = [f"COMMENT ON TABLE {table} IS '{zh}';"]
    out += [f"COMMENT ON COLUMN {table}.{f.stored_column} IS '{f.zh}';" for f in fields]
    return out


def registry_table(registry: Registry) -> str:
    """CREATE TABLE and its indexes, comments and protection, for a registry with a table of its own."""
    table = registry.table_name
    fields = [f for f in registry.stored_fields if f.store == "t"]
    columns = ["    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY"]
    columns += [_column(f, not_null=True) for f in fields]
    if registry.geometry_column:
        columns.append(f"    {registry.geometry_column:<13} geometry({registry.geometry_type}, 4490)")
    columns += ["    org_path      ltree NOT NULL", "    district_code char(6) NOT NULL", BOOKKEEPING]
    lines = [f"-- {registry.zh} ({registry.en}), module {registry.module}",
             f"CREATE TABLE {table} (\n" + ",\n".join(columns) + "\n);"]
    lines += _indexes(table, fields, registry)
    lines += _comments(table, registry.zh, fields)
    lines.append(f"SELECT app.protect('{table}');")
    return "\n".join(lines)


def extension_table(registry: Registry, extension: Extension) -> str:
    """A one-to-one sub-record table (e.g. the lease of a rented house)."""
    fields = [f for f in registry.stored_fields if f.store == extension.alias]
    columns = [f"    {extension.key:<13} bigint PRIMARY KEY"
               f" REFERENCES {registry.table_name} (id) ON DELETE CASCADE"]
    columns += [_column(f, not_null=False) for f in fields]
    columns += ["    org_path      ltree NOT NULL", "    district_code char(6) NOT NULL"]
    table = extension.table
    lines = [f"-- {registry.zh}: the sub-record {table} of {registry.table_name}",
             f"CREATE TABLE {table} (\n" + ",\n".join(columns) + "\n);"]
    lines.append(f"CREATE INDEX {table}_org_path_gist ON {table} USING gist (org_path);")
    lines += _comments(table, registry.zh, fields)
    lines.append(f"SELECT app.protect('{table}');")
    return "\n".join(lines)


VISITS = """-- 帮扶记录: dated assistance / visit records of a special-population (or key-youth) record.
CREATE TABLE assistance_visit (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    registry      text NOT NULL,
    record_id     bigint NOT NULL,
    person_id     bigint NOT NULL REFERENCES person (id),
    visited_on    date NOT NULL,
    visitor       text NOT NULL,
    content       text NOT NULL,
    next_due      date,
    org_path      ltree NOT NULL,
    district_code char(6) NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    bigint,
    CHECK (next_due IS NULL OR next_due >= visited_on)
);
CREATE INDEX assistance_visit_record ON assistance_visit (registry, record_id, visited_on);
CREATE INDEX assistance_visit_person ON assistance_visit (person_id);
CREATE INDEX assistance_visit_org_path_gist ON assistance_visit USING gist (org_path);
COMMENT ON TABLE assistance_visit IS '帮扶记录';
SELECT app.protect('assistance_visit');"""


def _foundation() -> str:
    lines = []
    bookkeeping = [line.strip().rstrip(",") for line in BOOKKEEPING.splitlines()]
    for table in FOUNDATION_TABLES:
        existing = {"created_at", "updated_at"}  # the foundation has these already
        adds = [f"ADD COLUMN {c}" for c in bookkeeping if c.split()[0] not in existing]
        lines.append(f"ALTER TABLE {table}\n    " + ",\n    ".join(adds) + ";")
    lines.append("ALTER TABLE building ADD COLUMN head_name text, ADD COLUMN head_phone text;")
    lines.append("ALTER TABLE territory_unit ADD COLUMN head_photo text;")
    return "\n".join(lines)


def upgrade_sql() -> str:
    parts = [HEADER + _foundation(), VISITS]
    for registry in REGISTRIES.values():
        if registry.new_table:
            parts.append(registry_table(registry))
        for extension in registry.extensions:
            if extension.new_table:
                parts.append(extension_table(registry, extension))
    return "\n\n".join(parts) + "\n"


def downgrade_sql() -> str:
    tables = [r.table_name for r in REGISTRIES.values() if r.new_table]
    tables += [e.table for r in REGISTRIES.values() for e in r.extensions if e.new_table]
    lines = ["-- Undo 0003_registries.sql (generated by layers/registry_ddl.py)."]
    lines += [f"DROP TABLE IF EXISTS {t} CASCADE;" for t in reversed(tables)]
    lines.append("DROP TABLE IF EXISTS assistance_visit CASCADE;")
    columns = ["version", "created_by", "updated_by", "deleted_at", "deleted_by"]
    for table in FOUNDATION_TABLES:
        lines.append(f"ALTER TABLE {table} " + ", ".join(f"DROP COLUMN {c}" for c in columns) + ";")
    lines.append("ALTER TABLE building DROP COLUMN head_name, DROP COLUMN head_phone;")
    lines.append("ALTER TABLE territory_unit DROP COLUMN head_photo;")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover - used once to write the migration
    sys.stdout.write(upgrade_sql() if sys.argv[1:] == ["up"] else downgrade_sql())
