"""One runner per state store: the guard that makes a second `aspdigest run` refuse to start.

Part of the schedule/outbox stage, used by `queue/serve.py` and by `aspdigest status` /
`schedule send-now` to learn whether a runner is up. `RunnerLock(store)` takes a lock the
operating system or the database gives back by itself when the holder dies (so a `kill -9`
never leaves a stale lock behind):

- SQLite: an exclusive `flock` on `<database file>.runner.lock`, which also records the
  holder's pid, host and start time for the refusal message;
- PostgreSQL: a session advisory lock on a connection kept open for the runner's life.
  There a second runner is a standby, not a mistake: `wait_turn()` retries every second
  until the lock is free (the active runner stopped, died, or lost its connection, which
  ends its session and so its lock), and the active one calls `alive()` at each poll to
  learn whether it still holds it.

The claims in the store (`UPDATE … WHERE status = 'approved'`, and per recipient `… FOR
UPDATE SKIP LOCKED`) still guarantee one send per delivery and recipient; this guard makes
a runner started by mistake say so (SQLite) or wait its turn (PostgreSQL) instead of racing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa

from aspdigest.errors import UserError
from aspdigest.store import Store


class RunnerBusy(UserError):
    """Another runner holds the store; `holder` says who (pid, host, since) when known."""

    def __init__(self, text: str, holder: dict[str, Any]) -> None:
        super().__init__(text)
        self.holder = holder


def _key(url: str) -> int:
    digest = hashlib.sha256(f"aspdigest-runner\0{url}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class RunnerLock:
    def __init__(self, store: Store, shown: str, what: str = "aspdigest run") -> None:
        self.store = store
        self.shown = shown  # the store as messages name it (never with a password)
        self.what = what  # the command holding it, for the other one's message
        self._file: IO[str] | None = None
        self._conn: sa.engine.Connection | None = None
        self._using = threading.Lock()  # the lock connection is checked from the poll thread
        url = store.engine.url
        self.path: Path | None = None
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            self.path = Path(f"{url.database}.runner.lock")
        self.key = _key(url.render_as_string(hide_password=True))

    def acquire(self) -> None:
        if self.path is not None:
            self._acquire_file(self.path)
        elif self.shared:
            for attempt in range(5):
                if self._try_advisory():
                    return
                if attempt < 4:  # `aspdigest status` may hold it for an instant
                    time.sleep(0.1)
            raise self._busy(self._holder_from_store())

    @property
    def shared(self) -> bool:
        """Whether standbys may wait for this lock (PostgreSQL) rather than refuse."""
        return self.path is None and self.store.engine.dialect.name == "postgresql"

    def _try_advisory(self) -> bool:
        conn = self.store.engine.connect()
        try:
            got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar()
            conn.commit()
        except BaseException:
            conn.close()
            raise
        if got:
            self._conn = conn
            return True
        conn.close()
        return False

    def wait_turn(
        self,
        waiting: Callable[[dict[str, Any]], None],
        stop: Callable[[], bool],
        every: float = 1.0,
    ) -> bool:
        """PostgreSQL standby: try every `every` seconds until this process holds the lock
        (True) or `stop()` turns true (False). `waiting(holder)` is called once, when it
        first has to wait; a store that is away for a while is waited out too."""
        told = False
        while not stop():
            try:
                if self._try_advisory():
                    return True
            except sa.exc.OperationalError:
                pass  # the server restarts or the network is away: keep trying
            if not told:
                told = True
                waiting(self._holder_from_store())
            deadline = time.monotonic() + every
            while time.monotonic() < deadline and not stop():
                time.sleep(0.05)
        return False

    def alive(self) -> bool:
        """Whether this process still holds the lock: False once its PostgreSQL session is
        gone (then another runner may already be active). Always True for the file lock."""
        with self._using:
            if self._conn is None:
                return self._file is not None
            try:
                self._conn.execute(sa.text("SELECT 1")).scalar()
                self._conn.commit()
            except sa.exc.DBAPIError:
                with suppress(Exception):  # a dead connection may fail to close, too
                    self._conn.invalidate()
                    self._conn.close()
                self._conn = None  # nothing left to release: the lock went with the session
                return False
        return True

    def _acquire_file(self, path: Path) -> None:
        import fcntl

        handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the runner's life
        for attempt in range(5):
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                # `aspdigest status` takes the lock for an instant to look: wait that out.
                if attempt < 4:
                    time.sleep(0.1)
                    continue
                handle.seek(0)
                holder = _parse(handle.read())
                handle.close()
                raise self._busy(holder) from None
        handle.seek(0)
        handle.truncate()
        handle.write(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "since": _now(),
                    "what": self.what,
                }
            )
            + "\n"
        )
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            import fcntl

            self._file.seek(0)
            self._file.truncate()
            self._file.flush()
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        if self._conn is not None:
            with self._using:
                try:
                    self._conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                    self._conn.commit()
                except sa.exc.DBAPIError:
                    pass  # the session is gone, and its lock with it
                self._conn.close()
                self._conn = None

    def __enter__(self) -> RunnerLock:
        self.acquire()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()

    def held_elsewhere(self) -> dict[str, Any] | None:
        """Who holds the lock now (pid, host, since), or None when no runner is up."""
        try:
            self.acquire()
        except RunnerBusy as exc:
            return exc.holder
        self.release()
        return None

    def _holder_from_store(self) -> dict[str, Any]:
        runner = self.store.runner()
        if runner is None:
            return {}
        return {
            "pid": runner.pid,
            "host": runner.host,
            "since": runner.started_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }

    def _busy(self, holder: dict[str, Any]) -> RunnerBusy:
        who = ""
        if holder.get("pid"):
            who = (
                f" (pid {holder['pid']} on {holder.get('host', '?')}, since "
                f"{holder.get('since', '?')})"
            )
        what = holder.get("what") or "aspdigest run"
        return RunnerBusy(
            f"{self.shown}: another `{what}` is already serving this "
            f"store{who}; stop it first, or point this one at another store "
            "with ASPDIGEST_STATE_URL",
            holder or {"pid": None},
        )


def _parse(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
