"""Connections: URLs for each role, SQLAlchemy engines and the scoped session.

Two roles matter: the *owner* runs migrations and bulk loads; the *app* role is what the server and the
notebook API connect as, and row-level security applies to it. The access scope of a request is set per
transaction (see :mod:`gis.security.scope`), never on the connection.
"""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import URL, Engine, create_engine, make_url

from gis.settings import Settings


def owner_url(settings: Settings) -> URL:
    if settings.database_url:
        url = make_url(settings.database_url)
        return url.set(drivername="postgresql+psycopg")
    return URL.create(
        "postgresql+psycopg", username=settings.owner_role, database=settings.pg_database,
        query={"host": str(settings.pg_socket_dir), "port": str(settings.pg_port)},
    )


def app_url(settings: Settings) -> URL:
    return owner_url(settings).set(username=settings.app_role, password=settings.app_password)


def backup_url(settings: Settings) -> URL:
    if settings.database_url:
        return owner_url(settings)
    return owner_url(settings).set(username=settings.backup_role)


def libpq_dsn(url: URL) -> str:
    """A URL for libpq tools (psql, pg_dump) and plain psycopg."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@lru_cache(maxsize=8)
def _engine(url: str, pool_size: int) -> Engine:
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def owner_engine(settings: Settings) -> Engine:
    return _engine(owner_url(settings).render_as_string(hide_password=False), 2)


def app_engine(settings: Settings) -> Engine:
    return _engine(app_url(settings).render_as_string(hide_password=False), 10)
