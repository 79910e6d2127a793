"""Alembic environment: pimtrail always passes an open connection (see store/engine.py)."""

from alembic import context

from pimtrail.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # ALTER TABLE on SQLite needs batch mode
)
with context.begin_transaction():
    context.run_migrations()
