"""Alembic environment: migrations run as the owner role, on the connection handed over by
:func:`gis.migrate.upgrade` (so settings are injected, never read here)."""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
