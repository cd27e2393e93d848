"""Schema migrations through Alembic, with the SQL of each revision kept in ``gis/sql/``."""

from __future__ import annotations

import csv
from pathlib import Path

from alembic import command, context, op
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from gis.db import owner_engine
from gis.paths import DATA_DIR
from gis.settings import Settings

SQL_DIR = Path(__file__).parent / "sql"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def role_params() -> dict[str, str]:
    """The role names a migration's SQL grants to (``{owner_role}``, ``{app_role}``): from the settings
    the upgrade runs with."""
    settings = context.config.attributes["settings"]
    return {"owner_role": settings.owner_role, "app_role": settings.app_role}


def run_sql(name: str, **params: str) -> None:
    """Run one packaged SQL file inside the migration's transaction (``{name}`` placeholders filled)."""
    sql = (SQL_DIR / name).read_text(encoding="utf-8")
    if params:
        sql = sql.format(**params)
    # Straight to psycopg: with no parameters it leaves plpgsql's own %-formats alone.
    op.get_bind().connection.driver_connection.execute(sql)


def load_code_tables(bind=None) -> int:
    """(Re)load every code table shipped under ``data/codes`` (one CSV a table: code,name_zh,name_en).

    Runs in revision 0001 and again after every upgrade, so a database picks up corrected or new code
    tables without a migration of its own. Returns the number of codes loaded."""
    bind = bind if bind is not None else op.get_bind()
    total = 0
    for path in sorted((DATA_DIR / "codes").glob("*.csv")):
        with path.open(encoding="utf-8") as f:
            rows = [
                {"t": path.stem, "c": r["code"], "zh": r["name_zh"], "en": r.get("name_en"), "s": i}
                for i, r in enumerate(csv.DictReader(f))
            ]
        # Upsert, then drop codes the file no longer has: a rerun with unchanged files changes nothing.
        bind.execute(
            text("INSERT INTO code_item (table_key, code, name_zh, name_en, sort) "
                 "VALUES (:t, :c, :zh, :en, :s) "
                 "ON CONFLICT (table_key, code) DO UPDATE SET name_zh = EXCLUDED.name_zh, "
                 "name_en = EXCLUDED.name_en, sort = EXCLUDED.sort "
                 "WHERE (code_item.name_zh, code_item.name_en, code_item.sort) "
                 "IS DISTINCT FROM (EXCLUDED.name_zh, EXCLUDED.name_en, EXCLUDED.sort)"),
            rows,
        )
        bind.execute(text("DELETE FROM code_item WHERE table_key = :t AND NOT code = ANY(:codes)"),
                     {"t": path.stem, "codes": [r["c"] for r in rows]})
        total += len(rows)
    return total


def _config(settings: Settings, connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    config.attributes["settings"] = settings
    return config


def _current(connection) -> str:
    return ",".join(sorted(MigrationContext.configure(connection).get_current_heads()))


def upgrade(settings: Settings, revision: str = "heads") -> str:
    with owner_engine(settings).begin() as connection:
        before = _current(connection)
        command.upgrade(_config(settings, connection), revision)
        after = _current(connection)
        if after:
            load_code_tables(connection)
    if before == after:
        return f"数据库已是最新版本 {after} (already at {after})"
    return f"已迁移 {before or '空'} → {after} (migrated)"


def downgrade(settings: Settings, revision: str = "base") -> str:
    with owner_engine(settings).begin() as connection:
        command.downgrade(_config(settings, connection), revision)
        after = _current(connection)
    return f"已回退至 {after or 'base'} (downgraded)"


def head_revisions() -> str:
    """The head revision(s) of the scripts, as the database reports them when fully migrated."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ",".join(sorted(ScriptDirectory.from_config(config).get_heads()))
