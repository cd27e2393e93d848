"""Boundary loads: the territory_unit path trigger fires on INSERT only for rows without a path (a bulk
load supplies them, and a statement-level trigger checks them all in one join); territory_unit_level
leaves the grids out.

Revision ID: 0015
"""

from gis.migrate import run_sql

revision = "0015"
down_revision = "0014"


def upgrade() -> None:
    run_sql("0015_boundary_load.sql")


def downgrade() -> None:
    run_sql("0015_boundary_load_down.sql")
