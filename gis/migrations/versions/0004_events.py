"""Events and their workflow: case files, history, attachments, supervision, cards, numbering.

A branch from 0002 beside the registries (0003); the two heads are merged by a later revision.

Revision ID: 0004
"""

from alembic import context

from gis.migrate import run_sql

revision = "0004"
down_revision = "0002"


def _roles() -> dict[str, str]:
    settings = context.config.attributes["settings"]
    return {"owner_role": settings.owner_role, "app_role": settings.app_role}


def upgrade() -> None:
    run_sql("0004_events.sql", **_roles())


def downgrade() -> None:
    run_sql("0004_events_down.sql", **_roles())
