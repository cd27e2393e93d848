"""Grid workers' positions: every GPS fix, partitioned by day, and the latest fix of each worker.

A branch from 0005 beside 0006; the lead merges the heads.

Revision ID: 0007
"""

from alembic import context

from gis.migrate import run_sql

revision = "0007"
down_revision = "0005"


def _roles() -> dict[str, str]:
    settings = context.config.attributes["settings"]
    return {"owner_role": settings.owner_role, "app_role": settings.app_role}


def upgrade() -> None:
    run_sql("0007_patrol.sql", **_roles())


def downgrade() -> None:
    run_sql("0007_patrol_down.sql", **_roles())
