"""The access scope of a transaction: whose rows it may see.

Row-level security in the database compares each row's ``org_path`` with ``app.current_scope()``, which
reads the setting ``app.scope``. We set it, with the user id and client address, at the start of every
transaction through ``set_config(name, value, true)`` -- *local* to that transaction, so a pooled
connection handed to the next request carries nothing over -- with bound parameters, never by formatting
a string. Outside such a transaction the scope is unset, and every query on a protected table raises.

    >>> with scoped_connection(settings, user) as conn:
    ...     conn.execute(text("SELECT count(*) FROM person")).scalar()   # the user's people only

    >>> with scoped_session(settings, user) as session:
    ...     session.scalars(select(Person)).all()
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from sqlalchemy import Connection, event, text
from sqlalchemy.orm import Session

from gis.db import app_engine
from gis.settings import Settings

_SET_SCOPE = text(
    "SELECT set_config('app.scope', :scope, true), set_config('app.user_id', :user_id, true),"
    " set_config('app.client_addr', :client_addr, true)"
)


class ScopedUser(Protocol):
    id: int
    scope_path: str


def _parameters(user: ScopedUser, client_addr: str | None) -> dict[str, str]:
    scope = str(user.scope_path or "").strip()
    if not scope:
        # An empty scope would be refused by the database anyway; say so here, where the bug is.
        raise ValueError("用户没有访问范围 (user has no scope)")
    # No id: a system actor (a load from the command line); the change history records no user.
    user_id = "" if user.id is None else str(user.id)
    return {"scope": scope, "user_id": user_id, "client_addr": client_addr or ""}


def bind_scope(connection: Connection, user: ScopedUser, client_addr: str | None = None) -> None:
    """Set the scope for the transaction ``connection`` is in (it must be in one)."""
    connection.execute(_SET_SCOPE, _parameters(user, client_addr))


@contextmanager
def scoped_connection(
    settings: Settings, user: ScopedUser, client_addr: str | None = None
) -> Iterator[Connection]:
    """A connection as the app role, in a transaction scoped to ``user``; commits on success."""
    with app_engine(settings).begin() as connection:
        bind_scope(connection, user, client_addr)
        yield connection


def scoped_session(settings: Settings, user: ScopedUser, client_addr: str | None = None) -> Session:
    """An ORM session as the app role whose every transaction is scoped to ``user``.

    The scope is set in ``after_begin``, i.e. again for each transaction the session starts (after a
    commit, the next query begins a new transaction and is scoped again).
    """
    parameters = _parameters(user, client_addr)
    session = Session(bind=app_engine(settings))

    @event.listens_for(session, "after_begin")
    def _scope_transaction(session, transaction, connection) -> None:
        connection.execute(_SET_SCOPE, parameters)

    return session
