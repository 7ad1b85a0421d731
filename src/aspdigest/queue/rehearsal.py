"""`aspdigest run --rehearse DATE --speed N`: replay one conference day's queue, safely.

Schedule/outbox → deliver, in a sandbox. `rehearse(project, event, date, speed)` plans the
day from the schedule and the current build into a fresh store under
`<delivery.outbox>/<event>/rehearsal/<date>/` and copies into it what the real store holds for
that day: each delivery's approval (the approved hashes and who approved) or its status (a
delivery not approved, skipped or already sent stays out of the rehearsal), and the real
subscribers and suppressions. So the rehearsal does what the real run would, and each
delivery's `outcome` says so: "would send to 2 subscribers", "would post 8 posts to Bluesky",
"would not send: not approved", "would fail: no subscribers". With `as_approved=True`
(`--as-approved`) every delivery of the day is approved as "rehearsal" and an empty real
subscriber list is filled from subscribers.csv, to try a day nobody has signed off yet. The
real store is only read. The rehearsal squeezes the day's send times onto a clock running
`speed` times faster than real time, and runs the same `Runner` as `aspdigest run` against a
local SMTP sink on 127.0.0.1 (every message lands in `mail/`, nothing leaves the machine) and
the handoff publisher writing to `outbox/`. A platform set to an API publisher (Bluesky,
Mastodon) posts through it only when its server is on this machine (a test PDS or instance on
127.0.0.1 or localhost); otherwise it too is handed to files, so a rehearsal never posts to a
real account. It returns a frozen `RehearsalResult` with each
delivery's outcome and how late its job fired, in real seconds.
"""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from aspdigest.config import PLATFORMS, Project
from aspdigest.deliver import Publisher, channels_for, make_publisher, publisher_name
from aspdigest.deliver.handoff import HandoffPublisher
from aspdigest.errors import UserError
from aspdigest.platforms import display_name
from aspdigest.queue.approval import record_approval
from aspdigest.queue.joblog import context, note
from aspdigest.queue.plan import plan
from aspdigest.queue.runner import Runner
from aspdigest.store import Delivery, Store, open_project_store, open_store
from aspdigest.store.lifecycle import Status
from aspdigest.store.lock import RunnerLock
from aspdigest.subscribers import import_csv, subscribers_path

Key = tuple[str, str]  # (channel, platform)
LEAD_SECONDS = 2.0  # real time between the start and the day's first delivery
REHEARSAL_KEY = "rehearsal-only-unsubscribe-key"  # signs links in mail that never leaves


@dataclass(frozen=True)
class Rehearsed:
    delivery_id: int
    channel: str
    platform: str
    planned_local: dt.datetime  # the real schedule's local time
    status: str
    late_seconds: float | None  # real seconds after its compressed time; None if not fired
    detail: str
    outcome: str = ""  # what the real run would do: "would send to 2 subscribers", …


@dataclass(frozen=True)
class RehearsalResult:
    folder: Path
    speed: float
    deliveries: tuple[Rehearsed, ...]
    messages: int  # accepted by the sink

    @property
    def lateness(self) -> list[float]:
        return [r.late_seconds for r in self.deliveries if r.late_seconds is not None]


class Sink:
    """An aiosmtpd handler writing every accepted message to a folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0
        self.lock = threading.Lock()
        folder.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.count += 1
            n = self.count
        for rcpt in envelope.rcpt_tos:
            safe = "".join(c if c.isalnum() or c in "@.-_" else "_" for c in rcpt)
            (self.folder / f"{n:05d}-{safe}.eml").write_bytes(envelope.content)
        return "250 2.0.0 kept in the rehearsal folder"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _audience(project: Project, rehearsal: Store, *, as_approved: bool) -> int:
    """Copy the real subscribers and suppressions into the sandbox; returns how many would get
    the digest. Only `as_approved` falls back to subscribers.csv when the store has none."""
    with open_project_store(project) as real:
        people = real.subscribers()
        suppressed = real.suppressions()
    if people:
        rehearsal.import_subscribers((p.address, p.name, p.language) for p in people)
    elif as_approved:
        path = subscribers_path(project)
        if not path.is_file():
            raise UserError(
                f"{project.relative(path)}: no subscribers to rehearse with; import "
                "them with `aspdigest subscribers import`"
            )
        import_csv(rehearsal, path, shown=project.relative(path))
    for s in suppressed:
        rehearsal.suppress(s.address, s.reason, s.note)
    return len(rehearsal.active_subscribers())


def _real_day(project: Project, event_id: str, date: dt.date) -> dict[Key, Delivery]:
    """The real queue's deliveries of the day, by (channel, platform); the real store is only
    read, and never created."""
    from aspdigest.livestatus import store_exists

    again = (
        f"`aspdigest schedule plan {event_id}` first, or rehearse everything as if approved "
        "with --as-approved"
    )
    if not store_exists(project):
        raise UserError(f"{event_id}: no state store yet; run {again}")
    with open_project_store(project) as real:
        if real.queue(event_id) is None:
            raise UserError(f"{event_id}: nothing planned; run {again}")
        return {(d.channel, d.platform): d for d in real.deliveries(event_id) if d.date == date}


def _copy_state(store: Store, d: Delivery, real: Delivery | None) -> str | None:
    """Give the sandbox delivery the real one's approval; returns why it would not be sent
    (and skips it in the sandbox) when the real one is not approved."""
    if real is not None and real.status == Status.APPROVED and real.approved is not None:
        record_approval(store, d, dict(real.approved), real.approved_by or "rehearsal")
        return None
    if real is None:
        why = "not in the real queue; run `aspdigest schedule plan`"
    elif real.status == Status.PLANNED:
        why = "not approved"
    elif real.status == Status.SENT:
        why = "already sent"
    elif real.status == Status.CLAIMED:
        why = "being sent right now"
    else:
        why = str(real.status) + (f" ({real.last_error})" if real.last_error else "")
    store.move(d.id, Status.SKIPPED, actor="rehearsal", note=why, expect=d.status)
    return f"would not send: {why}"


def _outcome(project: Project, store: Store, d: Delivery, audience: int) -> str:
    """What the real run would do, from how the sandbox's run went."""
    if d.status == Status.SENT:
        if d.channel == "digest":
            sent = store.recipient_counts(d.id).get("sent", 0)
            return f"would send to {sent} subscriber{'s' if sent != 1 else ''}"
        from aspdigest.deliver import publication_for

        posts = sum(len(g) for g in publication_for(project, d).groups)
        return f"would post {posts} post{'s' if posts != 1 else ''} to {display_name(d.platform)}"
    if d.channel == "digest" and audience == 0:
        return "would fail: no subscribers"
    if d.status == Status.FAILED:
        return f"would fail: {d.last_error or 'see the log'}"
    return f"would not send: {d.status}" + (f" ({d.last_error})" if d.last_error else "")


def on_this_machine(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host in ("127.0.0.1", "localhost", "::1") or host.endswith(".localhost")


def _publishers(project: Project, env: Mapping[str, str], folder: Path) -> dict[str, Publisher]:
    servers = {
        "bluesky": project.settings.bluesky.service,
        "mastodon": project.settings.mastodon.instance,
    }
    chosen: dict[str, Publisher] = {}
    for platform in PLATFORMS:
        name = publisher_name(project, platform)
        if name != "handoff" and on_this_machine(servers.get(name, "")):
            chosen[platform] = make_publisher(name, project, env)
            continue
        if name != "handoff":
            note(
                "handed to files in the rehearsal",
                platform=platform,
                publisher=name,
                reason=f"{servers.get(name) or 'no server'} is not on this machine",
            )
        chosen[platform] = HandoffPublisher(project, env, folder / "outbox")
    return chosen


def rehearse(
    project: Project,
    event_id: str,
    date: dt.date,
    speed: float,
    *,
    environ: Mapping[str, str],
    lead: float = LEAD_SECONDS,
    as_approved: bool = False,
) -> RehearsalResult:
    if not speed > 0:
        raise UserError(f"--speed: expected a positive number, got {speed:g}")
    try:
        from aiosmtpd.controller import Controller
    except ImportError:
        raise UserError(
            "--rehearse needs the aiosmtpd package for its local SMTP sink; "
            "install it with `pip install aiosmtpd`"
        ) from None
    real = {} if as_approved else _real_day(project, event_id, date)
    folder = (
        project.path(project.settings.delivery.outbox) / event_id / "rehearsal" / date.isoformat()
    )
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    store = open_store(f"sqlite:///{folder / 'state.sqlite'}")
    try:
        plan(project, event_id, store, by="rehearsal", only=date)
        day = [d for d in store.deliveries(event_id) if d.status in ("planned", "approved")]
        if not day:
            raise UserError(f"{event_id} {date}: the schedule plans nothing for this day")
        held_back: dict[int, str] = {}
        for d in day:
            if as_approved:
                record_approval(store, d, dict(d.artifacts), "rehearsal")
            elif (why := _copy_state(store, d, real.get((d.channel, d.platform)))) is not None:
                held_back[d.id] = why
        audience = _audience(project, store, as_approved=as_approved)
        going = store.deliveries(event_id, "approved")
        if not going:
            return _result(store, event_id, folder, speed, day, held_back, audience)
        first = min(d.send_at for d in going if d.send_at is not None)
        start = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=lead)
        for d in going:
            assert d.send_at is not None
            at = start + (d.send_at - first) / speed
            grace = max(1, int((d.grace_seconds or 3600) / speed))
            store.update_delivery(
                d.id,
                expect="approved",
                send_at=at,
                schedule_at=at,
                grace_seconds=grace,
            )
        queue = store.queue(event_id)
        zone = queue.timezone if queue else "UTC"

        def simulated() -> dict[str, Any]:
            now = dt.datetime.now(dt.UTC)
            at = first + (now - start) * speed
            return {"rehearsal": at.astimezone(ZoneInfo(zone)).isoformat(timespec="seconds")}

        sink = Sink(folder / "mail")
        port = _free_port()
        controller = Controller(sink, hostname="127.0.0.1", port=port)
        controller.start()
        try:
            with context(simulated):
                env = {k: v for k, v in environ.items() if k != "ASPDIGEST_SMTP_PASSWORD"}
                env["ASPDIGEST_SMTP_URL"] = f"smtp://127.0.0.1:{port}"
                env.setdefault("ASPDIGEST_UNSUBSCRIBE_KEY", REHEARSAL_KEY)
                runner = Runner(
                    project,
                    event_id,
                    store,
                    environ=env,
                    channels=channels_for(project, env, _publishers(project, env, folder)),
                    poll=min(1.0, project.settings.delivery.poll_seconds),
                    actor="rehearsal",
                    stop_when_idle=True,
                )
                with RunnerLock(store, project.relative(folder / "state.sqlite")):
                    note(
                        "rehearsal",
                        event=event_id,
                        date=date.isoformat(),
                        speed=speed,
                        sink=f"127.0.0.1:{port}",
                        folder=project.relative(folder),
                    )
                    runner.start()
        finally:
            controller.stop()
        late = {f.delivery_id: f.late_seconds for f in runner.fired}
        return _result(
            store, event_id, folder, speed, day, held_back, audience, late, sink.count, project
        )
    finally:
        store.close()


def _result(
    store: Store,
    event_id: str,
    folder: Path,
    speed: float,
    day: list[Delivery],
    held_back: Mapping[int, str],
    audience: int,
    late: Mapping[int, float] | None = None,
    messages: int = 0,
    project: Project | None = None,
) -> RehearsalResult:
    queue = store.queue(event_id)
    zone = ZoneInfo(queue.timezone if queue else "UTC")
    planned = {d.id: d.send_at for d in day}
    late = late or {}
    out = []
    for d in store.deliveries(event_id):
        at = planned.get(d.id)
        if at is None:
            continue
        receipt = dict(d.receipt or {})
        detail = d.last_error or ""
        if "recipients" in receipt:
            detail = ", ".join(f"{n} {s}" for s, n in receipt["recipients"].items() if n)
        elif "folder" in receipt:
            detail = str(receipt["folder"])
        elif "posts" in receipt:
            detail = f"{len(receipt['posts'])} post(s) as {receipt.get('account')}"
        if d.id in held_back:
            outcome = held_back[d.id]
        elif project is not None:
            outcome = _outcome(project, store, d, audience)
        else:
            outcome = f"would not send: {d.status}"
        out.append(
            Rehearsed(
                d.id,
                d.channel,
                d.platform,
                at.astimezone(zone),
                d.status,
                late.get(d.id),
                detail,
                outcome,
            )
        )
    out.sort(key=lambda r: (r.planned_local, r.channel, r.platform))
    return RehearsalResult(folder, speed, tuple(out), messages)
