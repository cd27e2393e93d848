"""Notices with read receipts and attachments, and shared files in folders (通知公告, 内部硬盘共享).

Extends the registry tables ``notice`` and ``shared_file`` (0003). A branch from 0008 beside 0010; the
lead merges the heads.

Revision ID: 0009
"""

from gis.migrate import role_params, run_sql

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    run_sql("0009_notices.sql", **role_params())


def downgrade() -> None:
    run_sql("0009_notices_down.sql", **role_params())
