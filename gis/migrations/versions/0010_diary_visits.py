"""The diary as a workflow (state, review, comments, persons and houses visited, photos) and follow-up
visits from the phone (position, photos, client id on 帮扶记录).

A branch from 0008 beside 0009; the lead merges the heads.

Revision ID: 0010
"""

from alembic import context

from gis.migrate import run_sql

revision = "0010"
down_revision = "0008"


def _roles() -> dict[str, str]:
    settings = context.config.attributes["settings"]
    return {"owner_role": settings.owner_role, "app_role": settings.app_role}


def upgrade() -> None:
    run_sql("0010_diary_visits.sql", **_roles())


def downgrade() -> None:
    run_sql("0010_diary_visits_down.sql", **_roles())
