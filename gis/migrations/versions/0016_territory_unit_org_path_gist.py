"""territory_unit back on a GiST of org_path alone: the (org_path, updated_at) one of 0014 was slower for
every scope but a whole district's, and the costliest index of a boundary load.

Revision ID: 0016
"""

from gis.migrate import run_sql

revision = "0016"
down_revision = "0015"


def upgrade() -> None:
    run_sql("0016_territory_unit_org_path_gist.sql")


def downgrade() -> None:
    run_sql("0016_territory_unit_org_path_gist_down.sql")
