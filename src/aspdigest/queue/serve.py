"""`aspdigest run` and `schedule send-now` as processes: who may serve a store, and when.

Schedule/outbox → deliver, around `queue/runner.py`: `serve(project, event)` opens the
project's store, takes the runner lock (`store/lock.py`; on SQLite it refuses a second
runner, on PostgreSQL it waits as a standby and takes over when the active runner dies) and
runs a `Runner` until stopped. `deliver_now(project, store, id)` delivers one due delivery in
this process when no runner is up, holding the lock meanwhile; it returns False when a runner
is serving the store (it sends the delivery at its next poll). `store_name` is how messages
name a store without its password.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from aspdigest.config import Project
from aspdigest.errors import UserError
from aspdigest.queue.joblog import note
from aspdigest.queue.runner import LOST_BACKOFF, Runner
from aspdigest.store import Store

if TYPE_CHECKING:
    from aspdigest.store.lock import RunnerLock


def store_name(project: Project, store: Store) -> str:
    """The store as messages show it: a project-relative SQLite path, else the URL
    without its password."""
    url = store.engine.url
    if url.get_backend_name() == "sqlite" and url.database:
        from pathlib import Path

        return project.relative(Path(url.database))
    return url.render_as_string(hide_password=True)


def serve(
    project: Project,
    event_id: str,
    *,
    environ: Mapping[str, str] | None = None,
    poll: float | None = None,
) -> None:
    """`aspdigest run`: on SQLite, refuse if another runner serves the store; on
    PostgreSQL, wait as a standby until this process holds the lock. Runs until stopped."""
    from aspdigest.store import open_project_store
    from aspdigest.store.lock import RunnerLock

    with open_project_store(project) as store:
        lock = RunnerLock(store, store_name(project, store))
        if not lock.shared:
            lock.acquire()
            try:
                Runner(project, event_id, store, environ=environ, poll=poll).start()
            finally:
                lock.release()
            return
        _serve_shared(project, event_id, store, lock, environ, poll)


def _serve_shared(
    project: Project,
    event_id: str,
    store: Store,
    lock: RunnerLock,
    environ: Mapping[str, str] | None,
    poll: float | None,
) -> None:
    """Standby until the lock is free, active until stopped; after losing the lock (its
    connection went away) back to standby."""
    stop = threading.Event()
    main = threading.current_thread() is threading.main_thread()
    pid = os.getpid()

    def waiting_signals() -> None:
        if main:  # while waiting, a signal only ends the wait
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            signal.signal(signal.SIGINT, lambda *_: stop.set())

    while not stop.is_set():
        runner = Runner(project, event_id, store, environ=environ, poll=poll, lock_alive=lock.alive)
        waiting_signals()
        took = lock.wait_turn(
            lambda holder: note(
                "standby",
                event=event_id,
                pid=pid,
                active=holder.get("pid"),
                active_host=holder.get("host"),
            ),
            stop.is_set,
        )
        if not took:
            note("runner stopped", event=event_id, pid=pid, standby=True)
            return
        try:
            note("active", event=event_id, pid=pid)
            runner.start(install_signals=main)
        finally:
            lock.release()
        if not runner.lost_lock or runner._signalled is not None:  # stopped, or told to
            return
        waiting_signals()
        # Whoever lost its connection is the suspect one: let a standby go first.
        stop.wait(LOST_BACKOFF)


def deliver_now(
    project: Project,
    store: Store,
    delivery_id: int,
    *,
    environ: Mapping[str, str] | None = None,
) -> bool:
    """Deliver one due delivery in this process, if no runner is up (else False: the
    runner sends it at its next poll). Holds the runner lock meanwhile, so a runner
    started now waits its turn instead of racing."""
    from aspdigest.store.lock import RunnerBusy, RunnerLock

    d = store.delivery(delivery_id)
    if d is None:
        raise UserError(f"delivery {delivery_id}: no such delivery")
    lock = RunnerLock(store, store_name(project, store), "aspdigest schedule send-now")
    try:
        lock.acquire()
    except RunnerBusy:
        return False
    try:
        Runner(project, d.event, store, environ=environ, actor="send-now").fire(d.id)
    finally:
        lock.release()
    return True
