"""Foundation: code tables, territory tree, compounds, buildings, houses, persons, residence.

Revision ID: 0001
"""

from gis.migrate import load_code_tables, run_sql

revision = "0001"
down_revision = None


def upgrade() -> None:
    run_sql("0001_foundation.sql")
    load_code_tables()


def downgrade() -> None:
    run_sql("0001_foundation_down.sql")
