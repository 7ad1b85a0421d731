"""What every part of the state store shares: the connection, the clock, the migrations.

Bottom of the store package (`aspdigest.store`): `StoreBase` holds the SQLAlchemy engine and
the clock and opens one short transaction per call (`_tx`); the query mixins beside it
(deliveries, recipients, audience, ledger, heartbeat) build on it. `resolve_url` turns a
settings URL into a usable one, `upgrade(engine)` brings the schema to the newest Alembic
migration in `aspdigest/migrations/`, and `normalise_address` is the one spelling of an
email address the store keeps.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url

from aspdigest.errors import UserError

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
_MIGRATING = threading.Lock()
Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def normalise_address(address: str) -> str:
    # Compared case-insensitively everywhere: a person who unsubscribed as Ana@Example.org
    # must not get mail as ana@example.org.
    return address.strip().lower()


def resolve_url(url: str, root: Path | None = None) -> str:
    """A usable SQLAlchemy URL: relative SQLite paths are taken from the project root, and a
    bare postgresql:// means the psycopg 3 driver aspdigest ships with."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError:
        raise UserError(f"state.url: not a database URL: {redact(url)}") from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database or "")
        if not path.is_absolute():
            path = (root or Path.cwd()) / path
        path.parent.mkdir(parents=True, exist_ok=True)
        parsed = parsed.set(database=str(path))
    return parsed.render_as_string(hide_password=False)


def redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(unparseable URL)"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the scheduler read while a send writes; busy_timeout waits for a lock
    # instead of failing; synchronous=NORMAL is durable under WAL except on power loss.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def upgrade(engine: Engine) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # Alembic keeps its context in module globals: two threads migrating at once (a review
    # server approving while another request plans) would trip over each other.
    with _MIGRATING, engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class StoreBase:
    """The engine and the clock. Every method of the store runs in its own short transaction."""

    def __init__(self, engine: Engine, clock: Clock = utcnow) -> None:
        self.engine = engine
        self.clock = clock

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self.engine.begin() as connection:
            yield connection

    # -- the one way a delivery's status changes (used by deliveries and recipients) ---------

    def _move_in(
        self,
        c: Connection,
        delivery_id: int,
        to: str,
        *,
        actor: str,
        note: str | None = None,
        expect: str | Iterable[str] | None = None,
        **values: Any,
    ) -> bool:
        """`Store.move` inside the caller's transaction `c`: the status change, checked against
        `lifecycle.TRANSITIONS`, and its log row, or nothing (False when the row was not in an
        `expect`ed status, IllegalTransition when the table forbids the move)."""
        from aspdigest.store.lifecycle import check
        from aspdigest.store.schema import deliveries

        wanted = None if expect is None else [expect] if isinstance(expect, str) else list(expect)
        target = check(wanted or (), to)
        current = c.execute(
            sa.select(deliveries.c.status).where(deliveries.c.id == delivery_id)
        ).scalar()
        if current is None or (wanted is not None and current not in wanted):
            return False
        check((current,), target)
        moved = c.execute(
            deliveries.update()
            .where((deliveries.c.id == delivery_id) & (deliveries.c.status == current))
            .values(status=target.value, updated_at=self.clock(), **values)
        ).rowcount
        if moved != 1:
            return False
        self._log(c, delivery_id, target, current, actor, note)
        return True

    def _log(
        self,
        c: Connection,
        delivery_id: int,
        status: str,
        previous: str | None,
        actor: str,
        note: str | None = None,
    ) -> None:
        from aspdigest.store.schema import delivery_log

        c.execute(
            delivery_log.insert().values(
                delivery_id=delivery_id,
                at=self.clock(),
                status=str(status),
                previous=previous,
                actor=actor,
                note=note,
            )
        )
