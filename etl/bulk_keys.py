"""Foreign keys of a bulk ``COPY`` checked as one set instead of row by row.

Each row a ``COPY`` writes fires the table's insert triggers once: for a foreign key, two index probes and
a row lock (40 % of the database's time for 200,000 residences, a seventh for 10,000 grids). A loader that
checks the keys itself -- the rows they name locked as each row's check would lock them, and counted -- may
copy with ``session_replication_role = replica``, which skips the triggers, where the role may (``gridgov
db up`` grants it; PostgreSQL 15+) and where every insert trigger of the table is one it stands in for.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

# The change log leaves out the owner's writes (its WHEN clause names the owner), so skipping it changes
# nothing; a foreign key's check is what the caller stands in for; anything else must be named by it.
_STOOD_IN_FOR = """
SELECT has_parameter_privilege('session_replication_role', 'SET') AND NOT EXISTS (
    SELECT 1 FROM pg_trigger t
     WHERE t.tgrelid = %(table)s::regclass AND t.tgtype & 4 <> 0 AND t.tgenabled <> 'D'
       AND NOT (t.tgenabled = 'O' AND (
                t.tgname = ANY(%(triggers)s)
                OR t.tgname = 'change_log' AND pg_get_triggerdef(t.oid)
                   LIKE '%%WHEN ((CURRENT_USER <> ' || quote_literal(current_user) || '::name))%%'
                OR t.tgisinternal AND t.tgconstraint IN (
                   SELECT oid FROM pg_constraint WHERE conrelid = %(table)s::regclass AND contype = 'f'))))
"""


def triggers_stood_in_for(conn: psycopg.Connection, table: str, triggers: Iterable[str] = ()) -> bool:
    """Whether a ``COPY`` into ``table`` may skip its insert triggers: the role may set
    ``session_replication_role``, and each enabled insert trigger of ``table`` checks one of its foreign
    keys (the caller checks them all, see :func:`lock_all`), is the change log, or is named in
    ``triggers`` (what the caller does in their stead)."""
    if conn.info.server_version < 150000:
        return False
    return bool(conn.execute(_STOOD_IN_FOR, {"table": table, "triggers": list(triggers)}).fetchone()[0])


def lock_all(conn: psycopg.Connection, table: str, ids: list[int]) -> bool:
    """Lock the rows ``ids`` of ``table`` against deletion until the transaction ends (``FOR KEY SHARE``,
    what a foreign key's check takes); whether every one of them is there."""
    locked = conn.execute(sql.SQL(
        "WITH l AS (SELECT id FROM {} WHERE id = ANY(%s) AND deleted_at IS NULL FOR KEY SHARE) "
        "SELECT count(*) FROM l").format(sql.Identifier(table)), (ids,)).fetchone()[0]
    return locked == len(ids)


@contextmanager
def triggers_skipped(conn: psycopg.Connection, skip: bool) -> Iterator[None]:
    """Within the transaction, write with the insert triggers skipped when ``skip`` (an error rolls the
    setting back with the transaction)."""
    if skip:
        conn.execute("SET LOCAL session_replication_role = replica")
    yield
    if skip:
        conn.execute("SET LOCAL session_replication_role = origin")
