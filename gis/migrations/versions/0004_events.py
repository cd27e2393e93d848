"""Events and their workflow: case files, history, attachments, supervision, cards, numbering.

A branch from 0002 beside the registries (0003); the two heads are merged by a later revision.

Revision ID: 0004
"""

from gis.migrate import role_params, run_sql

revision = "0004"
down_revision = "0002"


def upgrade() -> None:
    run_sql("0004_events.sql", **role_params())


def downgrade() -> None:
    run_sql("0004_events_down.sql", **role_params())
