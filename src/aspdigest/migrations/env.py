"""Alembic's environment for the state store, run programmatically by `aspdigest.store.upgrade`.

Part of the schedule/outbox stage. `aspdigest.store.upgrade(engine)` builds an Alembic Config in
code (no alembic.ini) and passes an open connection in `config.attributes`; this file
runs the migrations on it. Offline (SQL script) mode is not offered.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from aspdigest.store.schema import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("run migrations through aspdigest.store.open_store(url)")

# Batch mode lets later migrations alter tables on SQLite, which has no ALTER COLUMN.
context.configure(
    connection=connection, target_metadata=metadata, render_as_batch=True, compare_type=True
)
with context.begin_transaction():
    context.run_migrations()
