"""Alembic migrations of the state store (see `aspdigest.store`); run by `aspdigest.store.upgrade`."""
