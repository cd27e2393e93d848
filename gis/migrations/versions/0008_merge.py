"""Merge the data-loads (0006) and patrol (0007) branches, which both build on 0005.

Revision ID: 0008
"""

revision = "0008"
down_revision = ("0006", "0007")


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
