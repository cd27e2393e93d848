"""Registries: the tables of the "9+X" registries (generated from their declarations, frozen here),
assistance visits, and version / soft-delete columns on the foundation's tables.

Revision ID: 0003
"""

from gis.migrate import run_sql

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    run_sql("0003_registries.sql")


def downgrade() -> None:
    run_sql("0003_registries_down.sql")
