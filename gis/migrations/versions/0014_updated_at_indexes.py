"""An index on ``(org_path, updated_at)`` for each table a map layer is dated by (layers.catalogue
``Temporal.table``): the OGC collections' temporal extent (each layer's first and last change in the user's
scope) is a nearest-neighbour walk of it that stops at the scope's first row, instead of reading every row
in scope on each request.

Revision ID: 0014
"""

from gis.migrate import run_sql

revision = "0014"
down_revision = "0013"


def upgrade() -> None:
    run_sql("0014_updated_at_indexes.sql")


def downgrade() -> None:
    run_sql("0014_updated_at_indexes_down.sql")
