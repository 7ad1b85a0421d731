"""`aspdigest run`: the one scheduler process that delivers each approved delivery once.

Schedule/outbox → deliver. `Runner(project, event, store, …).start()` blocks in an
APScheduler 3 `BlockingScheduler` in the event's time zone. Jobs carry only a delivery id
and are rebuilt from the store at start and at every poll (`delivery.poll_seconds`), so
`schedule reschedule`, `pause` or `approve` run from another shell take effect without a
restart. Every job has coalesce, max_instances=1 and an explicit misfire_grace_time (the
schedule's per-channel grace); a delivery found later than its grace is skipped or held as
its schedule says, with a reason, never dropped silently.

A fired job re-reads its row, checks the files against the approved sha256 (a mismatch
becomes `held`), claims the row atomically (`UPDATE … WHERE status = 'approved'`) and hands it
to its channel (`deliver.Channel`, picked from `deliver.channels_for` by `channel_key`): the
email digest and each platform's publisher alike; the runner only schedules.
At start, an email delivery left `claimed` by a dead runner is resumed (its recipients left
`sending` become `unknown`, never resent), and so is a thread of an API publisher (Bluesky,
Mastodon), which keeps each post's progress in the store and resumes after its last post;
a handoff delivery left `claimed` becomes `unknown` for a person.
SIGTERM/SIGINT stop new work, let the delivery in hand finish, and exit 0. Every state
change is a record of the `aspdigest.run` logger (and a row in the delivery's log); the CLI
writes them as JSON lines on stderr (`queue/joblog.py`).

On PostgreSQL several runners may serve one store: one holds the advisory lock (store/lock.py)
and is active, the others log `standby` and take over within about a second of its death.
The active one checks its lock at every poll and before each claim; once it has lost it, it
takes no further delivery or recipient (a digest in hand is left `claimed` for the next
active runner to resume) and goes back to waiting. Opening the store, taking the lock and
waiting as a standby are `queue/serve.py`'s.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from aspdigest.config import Project
from aspdigest.deliver import Channel, PublishUncertain, channel_key, channels_for
from aspdigest.errors import UserError
from aspdigest.queue.approval import changed_since_approval
from aspdigest.queue.joblog import note
from aspdigest.queue.schedule import local_text
from aspdigest.store import Delivery, Store
from aspdigest.store.lifecycle import Status

DEFAULT_GRACE = 3600  # seconds, for rows planned before grace was recorded
LOST_BACKOFF = 3.0  # seconds a runner that lost its lock waits before competing again


@dataclass(frozen=True)
class Fired:
    delivery_id: int
    late_seconds: float  # when the job ran, after the delivery's send time


class Runner:
    def __init__(
        self,
        project: Project,
        event_id: str,
        store: Store,
        *,
        environ: Mapping[str, str] | None = None,
        channels: Mapping[str, Channel] | None = None,
        poll: float | None = None,
        actor: str = "runner",
        stop_when_idle: bool = False,
        lock_alive: Callable[[], bool] | None = None,
    ) -> None:
        self.project = project
        self.event = event_id
        self.store = store
        # Made now so a bad setting (an unknown publisher) stops the start.
        self.channels = dict(channels) if channels is not None else channels_for(project, environ)
        self.poll = poll or project.settings.delivery.poll_seconds
        self.actor = actor
        self.stop_when_idle = stop_when_idle
        self.lock_alive = lock_alive  # None: nothing to check (SQLite's lock cannot be lost)
        self.lost_lock = False
        queue = store.queue(event_id)
        if queue is None:
            raise UserError(
                f"{event_id}: nothing planned; run `aspdigest schedule plan {event_id}` first"
            )
        self.tz = ZoneInfo(queue.timezone)
        self.stopping = False
        self.fired: list[Fired] = []
        self._busy: set[int] = set()  # submitted to the executor or being delivered
        self._orphans: set[int] = set()  # claimed by a runner that died: resume them
        # apscheduler announces a submitted job only after the round's other submissions, so
        # a quick job can start, even finish, before its announcement: such ids wait here,
        # and the late announcement must not mark them busy again (a stop_when_idle runner
        # then never found itself idle: a rehearsal hung with every delivery sent).
        self._started_early: set[int] = set()
        self._queued: set[int] = set()  # announced, not yet started
        self._warned: set[int] = set()
        self._cv = threading.Condition()
        self._sync_lock = threading.Lock()
        self.pid, self.host = os.getpid(), socket.gethostname()
        self.scheduler: Any = None
        self._signalled: threading.Thread | None = None

    # -- process lifecycle ------------------------------------------------------------------

    def start(self, install_signals: bool = True) -> None:
        """Serve the queue until SIGTERM/SIGINT (or, with stop_when_idle, until nothing is
        left to deliver); returns once the delivery in hand has finished."""
        from apscheduler.events import EVENT_JOB_MISSED, EVENT_JOB_SUBMITTED
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.blocking import BlockingScheduler

        self.scheduler = BlockingScheduler(
            timezone=self.tz,
            executors={"default": ThreadPoolExecutor(4)},
            job_defaults={"coalesce": True, "max_instances": 1},
        )
        if install_signals and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        self.scheduler.add_listener(self._submitted, EVENT_JOB_SUBMITTED)
        self.scheduler.add_listener(self._missed_event, EVENT_JOB_MISSED)
        self.store.runner_seen(self.pid, self.host, started=True)
        self.log(
            "runner started", event=self.event, pid=self.pid, poll=self.poll, timezone=self.tz.key
        )
        self.recover()
        self.sync()
        self.log(
            "ready",
            event=self.event,
            jobs=len(self.scheduler.get_jobs()),
            resuming=sorted(self._orphans | self._busy) or None,
        )
        # The poll job may run late (a busy machine) but is never skipped: explicit None.
        self.scheduler.add_job(
            self.sync,
            "interval",
            seconds=self.poll,
            id="sync",
            misfire_grace_time=None,
            coalesce=True,
            max_instances=1,
        )
        if not self.stopping:
            self.scheduler.start()
        with self._cv:
            while self._busy:
                self._cv.wait(timeout=1.0)
        if self._signalled is not None:
            self._signalled.join(timeout=5.0)
        self.store.runner_seen(self.pid, self.host, stopped=True)
        self.log("runner stopped", event=self.event, pid=self.pid)

    def _on_signal(self, signum: int, _frame: object) -> None:
        # Only a flag and a thread here: the handler may have interrupted this very thread
        # while it held the log's or the scheduler's lock.
        again = self.stopping
        self.stopping = True
        self._signalled = threading.Thread(
            target=self._stopping, daemon=True, args=(signal.Signals(signum).name, again)
        )
        self._signalled.start()

    def _stopping(self, name: str, again: bool) -> None:
        self.log("still stopping" if again else "stopping", signal=name, busy=sorted(self._busy))
        self._shutdown()

    def stop(self) -> None:
        self.stopping = True
        threading.Thread(target=self._shutdown, daemon=True).start()

    def _shutdown(self) -> None:
        from apscheduler.schedulers import SchedulerNotRunningError

        with suppress(SchedulerNotRunningError):
            self.scheduler.shutdown(wait=False)

    # -- keeping the jobs in step with the store ----------------------------------------------

    def recover(self) -> None:
        """Claimed rows at start were in the hands of a runner that died."""
        for d in self.store.deliveries(self.event, "claimed"):
            if self._channel(d).resumable:
                self._orphans.add(d.id)
                continue
            note = (
                "interrupted: the runner stopped while handing it to the publisher; check "
                "the outbox folder (and the team's inbox), then `aspdigest schedule resolve "
                f"{d.id} --sent` or `--not-sent`"
            )
            if self.store.mark_unknown(d.id, note, actor=self.actor):
                self._state(d, "claimed", "unknown", error=note)

    def sync(self) -> None:
        if self.stopping:  # a signal that came before the scheduler was running
            self._shutdown()
            return
        if not self._still_active():
            return
        with self._sync_lock:
            try:
                self._sync()
            except Exception as exc:  # the store was busy or away: try again at the next poll
                self.log("sync failed", error=f"{type(exc).__name__}: {exc}")

    def _sync(self) -> None:
        from apscheduler.triggers.date import DateTrigger

        store = self.store
        store.runner_seen(self.pid, self.host)
        queue = store.queue(self.event)
        paused = queue is not None and queue.paused_at is not None
        now = store.clock()
        wanted: dict[str, Delivery] = {}
        for d in store.deliveries(self.event, "approved"):
            if d.id in self._busy or d.send_at is None or paused:
                continue
            grace = self._grace(d)
            if (now - d.send_at).total_seconds() > grace:
                self.missed(d, now)
                continue
            wanted[f"d{d.id}"] = d
        jobs = {job.id: job for job in self.scheduler.get_jobs() if job.id.startswith("d")}
        for job_id, job in jobs.items():
            if job_id not in wanted:
                job.remove()
        added = []
        for job_id, d in wanted.items():
            job = jobs.get(job_id)
            if job is not None and job.trigger.run_date == d.send_at:
                continue
            self.scheduler.add_job(
                self.fire,
                DateTrigger(run_date=d.send_at, timezone=self.tz),
                args=[d.id],
                id=job_id,
                replace_existing=True,
                misfire_grace_time=self._grace(d),
                coalesce=True,
                max_instances=1,
            )
            added.append(d)
        if len(added) > 20:  # a start with a full queue: one line, not thousands
            self.log("scheduled", event=self.event, deliveries=len(added))
        for d in added if len(added) <= 20 else ():
            self.log("scheduled", **self._fields(d), at=local_text(d.send_at, self.tz))
        for delivery_id in sorted(self._orphans - self._busy):
            if not paused:
                self._orphans.discard(delivery_id)
                self._busy.add(delivery_id)
                self.scheduler.add_job(
                    self.resume,
                    args=[delivery_id],
                    id=f"r{delivery_id}",
                    misfire_grace_time=None,
                    replace_existing=True,
                )
        for d in store.deliveries(self.event, "planned"):
            # Once per process, and only for the last day: older ones are history by now.
            if (
                d.send_at is not None
                and now - dt.timedelta(days=1) <= d.send_at <= now
                and d.id not in self._warned
            ):
                self._warned.add(d.id)
                self.log(
                    "due but not approved",
                    **self._fields(d),
                    hint=f"aspdigest approve {d.event} {d.date} --channel {d.channel}",
                )
        if (
            self.stop_when_idle
            and not self._busy
            and not self._orphans
            and not wanted
            and not store.deliveries(self.event, "claimed")
        ):
            self.log("nothing left to deliver", event=self.event)
            self.stop()

    def _still_active(self) -> bool:
        """False (and stopping) once this runner's lock has gone with its connection."""
        if self.lost_lock:
            return False
        if self.lock_alive is None or self.lock_alive():
            return True
        self.lost_lock = True
        self.log(
            "lost the runner lock", event=self.event, pid=self.pid, busy=sorted(self._busy) or None
        )
        self.stop()
        return False

    def _grace(self, d: Delivery) -> int:
        return max(1, d.grace_seconds if d.grace_seconds is not None else DEFAULT_GRACE)

    def _submitted(self, event: Any) -> None:
        if str(event.job_id).startswith("d"):
            delivery_id = int(event.job_id[1:])
            with self._cv:
                if delivery_id in self._started_early:
                    self._started_early.discard(delivery_id)
                else:
                    self._queued.add(delivery_id)
                    self._busy.add(delivery_id)

    def _missed_event(self, event: Any) -> None:
        if str(event.job_id).startswith("d"):
            d = self.store.delivery(int(event.job_id[1:]))
            if d is not None and d.status == "approved":
                self.missed(d, self.store.clock())

    def missed(self, d: Delivery, now: dt.datetime) -> None:
        """Past its grace period: skip or hold, as the schedule says, with the reason."""
        assert d.send_at is not None
        late = now - d.send_at
        to = Status.SKIPPED if d.missed == "skip" else Status.HELD
        note = (
            f"missed: due {local_text(d.send_at, self.tz)}, found {_span(late)} late "
            f"(grace {_span(dt.timedelta(seconds=self._grace(d)))}) while nothing was "
            "running"
        )
        if to == "held":
            note += (
                f"; send it with `aspdigest schedule send-now {d.id}` or skip it with "
                f"`aspdigest schedule skip {d.id}`"
            )
        if self.store.move(
            d.id, to, actor=self.actor, note=note, expect=Status.APPROVED, last_error=note
        ):
            self._state(d, "approved", to, error=note)

    # -- delivering --------------------------------------------------------------------------

    @contextmanager
    def _held(self, delivery_id: int) -> Iterator[None]:
        with self._cv:
            self._busy.add(delivery_id)
        try:
            yield
        finally:
            with self._cv:
                self._busy.discard(delivery_id)
                self._cv.notify_all()

    def fire(self, delivery_id: int) -> None:
        """The job: deliver one approved delivery if it is still due, approved and unchanged."""
        with self._cv:
            if delivery_id in self._queued:
                self._queued.discard(delivery_id)
            else:
                self._started_early.add(delivery_id)
        with self._held(delivery_id):
            if self.stopping:
                return
            try:
                self._fire(delivery_id)
            except Exception as exc:  # a bug or the store gone: say so, keep the process up
                self.log("job error", delivery=delivery_id, error=f"{type(exc).__name__}: {exc}")

    def _fire(self, delivery_id: int) -> None:
        store = self.store
        d = store.delivery(delivery_id)
        if d is None or d.status != "approved" or d.send_at is None:
            return
        queue = store.queue(d.event)
        if queue is not None and queue.paused_at is not None:
            self.log("paused; not sent", **self._fields(d))
            return
        now = store.clock()
        late = (now - d.send_at).total_seconds()
        if late < -1.0:  # moved later since the job was made; the next sync schedules it
            return
        changed = changed_since_approval(self.project, d)
        if changed:
            note = (
                f"not sent: {', '.join(changed)} changed since it was approved by "
                f"{d.approved_by}; approve the new build (`aspdigest approve {d.event} "
                f"{d.date} --channel {d.channel}`), then `aspdigest schedule send-now {d.id}`"
            )
            if store.move(
                d.id,
                Status.HELD,
                actor=self.actor,
                note=note,
                expect=Status.APPROVED,
                last_error=note,
            ):
                self._state(d, "approved", "held", error=note)
            return
        if not self._still_active():
            return
        if not store.claim(d.id, actor=self.actor):
            self.log("claimed elsewhere", **self._fields(d))
            return
        self.fired.append(Fired(d.id, late))
        self._state(d, "approved", "claimed", late_s=round(late, 3))
        claimed = store.delivery(d.id)
        assert claimed is not None
        self._deliver(claimed)

    def _channel(self, d: Delivery) -> Channel:
        return self.channels[channel_key(d)]

    def resume(self, delivery_id: int) -> None:
        """Finish a digest or thread a dead runner had claimed (never resending in doubt)."""
        with self._held(delivery_id):
            d = self.store.delivery(delivery_id)
            if d is None or d.status != "claimed" or self.stopping or not self._still_active():
                return
            self.log("resuming", **self._fields(d))
            self._deliver(d)

    def _deliver(self, d: Delivery) -> None:
        store = self.store
        try:
            channel = self._channel(d)
            outcome = channel.deliver(
                store,
                d,
                actor=self.actor,
                halt=(lambda: self.lost_lock or self.stopping)
                if channel.halt_on_stop
                else (lambda: self.lost_lock),
            )
            if outcome.status == "claimed":  # halted: the next active runner resumes it
                self.log("left for the next runner", **self._fields(d), **outcome.details)
                return
            self._state(d, "claimed", outcome.status, **outcome.details)
        except PublishUncertain as exc:
            store.mark_unknown(d.id, exc.text, actor=self.actor)
            self._state(d, "claimed", "unknown", error=exc.text)
        except UserError as exc:
            # A no-op when send_digest already marked it (and logged it).
            store.mark_failed(d.id, exc.text, actor=self.actor)
            now = store.delivery(d.id)
            self._state(d, "claimed", now.status if now else "failed", error=exc.text)
        except Exception as exc:
            # We cannot tell how far it got: in doubt, for a person, never resent blindly.
            error = f"stopped by an unexpected error: {type(exc).__name__}: {exc}"
            store.mark_interrupted(d.id, error)
            store.mark_unknown(d.id, error, actor=self.actor)
            self._state(d, "claimed", "unknown", error=error)

    # -- reporting ---------------------------------------------------------------------------

    def log(self, msg: str, **fields: Any) -> None:
        note(msg, **fields)

    def _fields(self, d: Delivery) -> dict[str, Any]:
        return {
            "delivery": d.id,
            "event": d.event,
            "date": d.date.isoformat(),
            "channel": d.channel,
            "platform": d.platform or None,
        }

    def _state(self, d: Delivery, previous: str, to: str, **fields: Any) -> None:
        """The JSON line for a status change the store has made and logged already (its
        `move` writes the status and the delivery's log in one transaction)."""
        self.log("state", **self._fields(d), **{"from": previous, "to": to}, **fields)


def _span(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 1:
        return f"{int(delta.total_seconds())} s"
    hours, minutes = divmod(minutes, 60)
    if hours >= 48:
        return f"{hours // 24} days {hours % 24} h"
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"
