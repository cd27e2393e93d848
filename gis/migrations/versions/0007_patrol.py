"""Grid workers' positions: every GPS fix, partitioned by day, and the latest fix of each worker.

A branch from 0005 beside 0006; the lead merges the heads.

Revision ID: 0007
"""

from gis.migrate import role_params, run_sql

revision = "0007"
down_revision = "0005"


def upgrade() -> None:
    run_sql("0007_patrol.sql", **role_params())


def downgrade() -> None:
    run_sql("0007_patrol_down.sql", **role_params())
