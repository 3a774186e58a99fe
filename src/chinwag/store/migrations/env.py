"""Alembic environment: always run with a connection handed over by Database.migrate."""

from __future__ import annotations

from alembic import context

from chinwag.store.sql.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through chinwag (Database.migrate), not the alembic CLI")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
