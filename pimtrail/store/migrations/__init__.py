"""Alembic migrations of the history schema (run by `pimtrail.store.engine.open_engine`)."""
