"""Merge the registries (0003) and events (0004) branches, which both build on access control (0002).

Revision ID: 0005
"""

revision = "0005"
down_revision = ("0003", "0004")


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
