"""Merge the notices (0009), diary and visits (0010) and track-loads (0011) branches, which all build on 0008.

Revision ID: 0012
"""

revision = "0012"
down_revision = ("0009", "0010", "0011")


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
