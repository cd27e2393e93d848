"""Shared fixtures: one embedded PostGIS cluster for the whole run (under ``var/test``, its own port),
a migrated template database, and a fresh database cloned from it for each test module that asks.

Nothing is mocked: every database test talks to this real cluster.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from gis import cluster, db, migrate
from gis.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = "gridgov_template"
_counter = itertools.count()


def settings_for_tests(**overrides) -> Settings:
    # The test cluster's port: another checkout's test run on this machine may set its own.
    port = int(os.environ.get("GRIDGOV_TEST_PG_PORT", "54339"))
    # ... and its own cluster directory (a branch's migrations under development stay out of the shared one).
    var_dir = Path(os.environ.get("GRIDGOV_TEST_VAR", ROOT / "var" / "test"))
    values = dict(database_url=None, var_dir=var_dir, pg_port=port, pg_database=TEMPLATE)
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
def cluster_settings() -> Settings:
    """The test cluster, up, with a migrated template database."""
    settings = settings_for_tests()
    cluster.up(settings)
    migrate.upgrade(settings)
    db.owner_engine(settings).dispose()
    return settings


def superuser_engine(settings: Settings):
    url = db.owner_url(settings).set(username=cluster.superuser(settings), database="postgres")
    return create_engine(url, isolation_level="AUTOCOMMIT")


def create_database(settings: Settings, name: str | None = None) -> Settings:
    """A new database cloned from the migrated template; returns settings pointing at it."""
    name = name or f"gridgov_t{os.getpid()}_{next(_counter)}"
    engine = superuser_engine(settings)
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE {TEMPLATE} OWNER {settings.owner_role}'))
    engine.dispose()
    return settings.model_copy(update={"pg_database": name})


def drop_database(settings: Settings) -> None:
    for make in (db.owner_engine, db.app_engine):
        make(settings).dispose()
    engine = superuser_engine(settings)
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{settings.pg_database}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture(scope="module")
def fresh_db(cluster_settings):
    """Settings for a database of this module's own, migrated to head and empty."""
    settings = create_database(cluster_settings)
    yield settings
    drop_database(settings)
