"""Alembic migrations of the state store (see `aspdigest.outbox`); run by `outbox.upgrade`."""
