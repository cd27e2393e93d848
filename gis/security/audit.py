"""The access log (访问日志): who read, revealed or exported what, who logged in, from where, and how it went.

Rows are written with :func:`record` inside the transaction that does the thing, so a reveal and its log
row commit or roll back together. Refusals and failures (a denied reveal, a wrong password) are written
with :func:`record_apart` in a transaction of their own, because the caller's transaction is about to
roll back and the attempt must stay on record.

The database fills in the id, the time, and -- from the transaction's scope settings -- the user and the
client address, and chains each row to the one before by SHA-256 (see ``gis/sql/0002_access.sql``).
:func:`verify` walks the chain.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, text

GENESIS = "0" * 64

_INSERT = text(
    "INSERT INTO access_log (user_id, username, action, target_table, target_id, reason, outcome,"
    " client_addr, detail) VALUES (:user_id, :username, :action, :target_table, :target_id, :reason,"
    " :outcome, :client_addr, CAST(:detail AS jsonb))"
)


def record(
    conn: Connection,
    action: str,
    *,
    target_table: str | None = None,
    target_id: Any = None,
    reason: str | None = None,
    outcome: str = "ok",
    detail: dict | None = None,
    user_id: int | None = None,
    username: str | None = None,
    client_addr: str | None = None,
) -> None:
    """Append one row to the access log in ``conn``'s transaction.

    ``user_id`` and ``client_addr`` default to the transaction's scope settings; pass them when there is
    no scope (a login). Never put a full ID or phone number in ``detail``: mask it first.
    """
    conn.execute(_INSERT, {
        "user_id": user_id, "username": username, "action": action, "target_table": target_table,
        "target_id": None if target_id is None else str(target_id), "reason": reason, "outcome": outcome,
        "client_addr": client_addr,
        "detail": None if detail is None else json.dumps(detail, ensure_ascii=False, default=str),
    })


def record_apart(engine: Engine, action: str, **fields: Any) -> None:
    """Append one row in a transaction of its own (for refusals that must outlive a rollback)."""
    with engine.begin() as conn:
        record(conn, action, **fields)


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    rows: int
    head_hash: str
    first_bad_id: int | None = None
    problem: str | None = None

    def __str__(self) -> str:
        if self.ok:
            return (f"访问日志完整：{self.rows} 行，链尾哈希 {self.head_hash} "
                    f"(access log intact: {self.rows} rows)")
        return f"访问日志已被篡改：第 {self.first_bad_id} 行 {self.problem} (access log tampered)"


def _rows(conn: Connection) -> Iterator:
    # The digest is recomputed by the same SQL function the trigger used, from the row as stored now.
    return conn.execution_options(stream_results=True, yield_per=5000).execute(text(
        "SELECT l.id, l.prev_hash, l.hash, app.access_log_digest(l.prev_hash, l) AS recomputed"
        " FROM access_log l ORDER BY l.id"
    ))


def verify(conn: Connection) -> ChainReport:
    """Recompute the chain; report the first row that was edited, removed or inserted out of turn."""
    previous_id, previous_hash, count = 0, GENESIS, 0

    def broken(row_id: int, problem: str) -> ChainReport:
        return ChainReport(False, count, previous_hash, row_id, problem)

    for row in _rows(conn):
        if row.id != previous_id + 1:
            return broken(previous_id + 1, f"缺失（下一行为 {row.id}）(row missing)")
        if row.prev_hash != previous_hash:
            return broken(row.id, "与上一行的链接不符 (link to the previous row broken)")
        if row.recomputed != row.hash:
            return broken(row.id, "内容与哈希不符，已被修改 (content does not match its hash)")
        previous_id, previous_hash, count = row.id, row.hash, count + 1
    head = conn.execute(text("SELECT seq, hash FROM app.access_log_head")).one()
    if (head.seq, head.hash) != (previous_id, previous_hash):
        return broken(previous_id + 1, f"链尾缺失（应有 {head.seq} 行）(rows cut off the end)")
    return ChainReport(True, count, previous_hash)
