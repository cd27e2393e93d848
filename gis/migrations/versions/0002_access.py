"""Access: row-level security by territory, users and sessions, access log, change history.

Revision ID: 0002
"""

from alembic import context

from gis.migrate import run_sql

revision = "0002"
down_revision = "0001"


def _roles() -> dict[str, str]:
    settings = context.config.attributes["settings"]
    return {"owner_role": settings.owner_role, "app_role": settings.app_role}


def upgrade() -> None:
    run_sql("0002_masking.sql")  # first: the change history masks with it
    run_sql("0002_access.sql", **_roles())


def downgrade() -> None:
    run_sql("0002_access_down.sql", **_roles())
