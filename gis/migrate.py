"""Schema migrations through Alembic, with the SQL of each revision kept in ``gis/sql/``."""

from __future__ import annotations

import csv
from pathlib import Path

from alembic import command, op
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from gis.db import owner_engine
from gis.paths import DATA_DIR
from gis.settings import Settings

SQL_DIR = Path(__file__).parent / "sql"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def run_sql(name: str, **params: str) -> None:
    """Run one packaged SQL file inside the migration's transaction (``{name}`` placeholders filled)."""
    sql = (SQL_DIR / name).read_text(encoding="utf-8")
    if params:
        sql = sql.format(**params)
    # Straight to psycopg: with no parameters it leaves plpgsql's own %-formats alone.
    op.get_bind().connection.driver_connection.execute(sql)


def load_code_tables() -> None:
    """(Re)load every code table shipped under ``data/codes`` (one CSV a table: code,name_zh,name_en)."""
    bind = op.get_bind()
    for path in sorted((DATA_DIR / "codes").glob("*.csv")):
        with path.open(encoding="utf-8") as f:
            rows = [
                {"t": path.stem, "c": r["code"], "zh": r["name_zh"], "en": r.get("name_en"), "s": i}
                for i, r in enumerate(csv.DictReader(f))
            ]
        bind.execute(text("DELETE FROM code_item WHERE table_key = :t"), {"t": path.stem})
        bind.execute(
            text("INSERT INTO code_item (table_key, code, name_zh, name_en, sort) VALUES (:t, :c, :zh, :en, :s)"),
            rows,
        )


def _config(settings: Settings, connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    config.attributes["settings"] = settings
    return config


def upgrade(settings: Settings, revision: str = "head") -> str:
    with owner_engine(settings).begin() as connection:
        before = MigrationContext.configure(connection).get_current_revision()
        command.upgrade(_config(settings, connection), revision)
        after = MigrationContext.configure(connection).get_current_revision()
    if before == after:
        return f"数据库已是最新版本 {after} (already at {after})"
    return f"已迁移 {before or '空'} → {after} (migrated)"


def downgrade(settings: Settings, revision: str = "base") -> str:
    with owner_engine(settings).begin() as connection:
        command.downgrade(_config(settings, connection), revision)
        after = MigrationContext.configure(connection).get_current_revision()
    return f"已回退至 {after or 'base'} (downgraded)"


def head_revision() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config).get_current_head()
