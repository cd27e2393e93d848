"""Track files are recorded as loads (data_load.kind 'tracks').

A branch from 0008 beside 0009 and 0010; the lead merges the heads.

Revision ID: 0011
"""

from gis.migrate import run_sql

revision = "0011"
down_revision = "0008"


def upgrade() -> None:
    run_sql("0011_track_loads.sql")


def downgrade() -> None:
    run_sql("0011_track_loads_down.sql")
