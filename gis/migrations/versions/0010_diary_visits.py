"""The diary as a workflow (state, review, comments, persons and houses visited, photos) and follow-up
visits from the phone (position, photos, client id on 帮扶记录).

A branch from 0008 beside 0009; the lead merges the heads.

Revision ID: 0010
"""

from gis.migrate import role_params, run_sql

revision = "0010"
down_revision = "0008"


def upgrade() -> None:
    run_sql("0010_diary_visits.sql", **role_params())


def downgrade() -> None:
    run_sql("0010_diary_visits_down.sql", **role_params())
