"""The org_path cascades and the residence → person move as statement-level triggers (transition tables):
one set-based UPDATE per statement instead of a plpgsql call per row, for bulk register loads and grid
re-attribution; single-row writes end the same.

Revision ID: 0013
"""

from gis.migrate import run_sql

revision = "0013"
down_revision = "0012"


def upgrade() -> None:
    run_sql("0013_bulk_triggers.sql")


def downgrade() -> None:
    run_sql("0013_bulk_triggers_down.sql")
