"""Data loads: boundary versions with validity dates, and the history of boundary and register loads.

Revision ID: 0006
"""

from gis.migrate import run_sql

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    run_sql("0006_data_loads.sql")


def downgrade() -> None:
    run_sql("0006_data_loads_down.sql")
