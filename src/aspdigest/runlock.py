"""One runner per state store: the guard that makes a second `aspdigest run` refuse to start.

Part of the schedule/outbox stage, used by `runner.py` and by `aspdigest status` /
`schedule send-now` to learn whether a runner is up. `RunnerLock(store)` takes a lock the
operating system or the database gives back by itself when the holder dies (so a `kill -9`
never leaves a stale lock behind):

- SQLite: an exclusive `flock` on `<database file>.runner.lock`, which also records the
  holder's pid, host and start time for the refusal message;
- PostgreSQL: a session advisory lock on a connection kept open for the runner's life.

The claim in the store (`UPDATE … WHERE status = 'approved'`) still guarantees one send per
delivery; this guard makes a runner started by mistake say so instead of racing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import socket
import time
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa

from aspdigest.errors import UserError
from aspdigest.outbox import Store


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
        url = store.engine.url
        self.path: Path | None = None
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            self.path = Path(f"{url.database}.runner.lock")
        self.key = _key(url.render_as_string(hide_password=True))

    def acquire(self) -> None:
        if self.path is not None:
            self._acquire_file(self.path)
        elif self.store.engine.dialect.name == "postgresql":
            conn = self.store.engine.connect()
            for attempt in range(5):
                got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"),
                                   {"k": self.key}).scalar()
                conn.commit()
                if got:
                    self._conn = conn
                    return
                if attempt < 4:  # `aspdigest status` may hold it for an instant
                    time.sleep(0.1)
            conn.close()
            raise self._busy(self._holder_from_store())

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
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "since": _now(), "what": self.what}) + "\n")
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
            self._conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            self._conn.commit()
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
        return {"pid": runner.pid, "host": runner.host,
                "since": runner.started_at.strftime("%Y-%m-%dT%H:%M:%SZ")}

    def _busy(self, holder: dict[str, Any]) -> RunnerBusy:
        who = ""
        if holder.get("pid"):
            who = f" (pid {holder['pid']} on {holder.get('host', '?')}, since " \
                  f"{holder.get('since', '?')})"
        what = holder.get("what") or "aspdigest run"
        return RunnerBusy(f"{self.shown}: another `{what}` is already serving this "
                          f"store{who}; stop it first, or point this one at another store "
                          "with ASPDIGEST_STATE_URL", holder or {"pid": None})


def _parse(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
