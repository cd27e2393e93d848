"""Access: row-level security by territory, users and sessions, access log, change history.

Revision ID: 0002
"""

from gis.migrate import role_params, run_sql

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    run_sql("0002_masking.sql")  # first: the change history masks with it
    run_sql("0002_access.sql", **role_params())


def downgrade() -> None:
    run_sql("0002_access_down.sql", **role_params())
