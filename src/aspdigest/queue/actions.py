"""The delivery queue as people steer it: the `aspdigest schedule …` verbs and `status`.

Schedule/outbox stage, after `plan` (… → build → schedule/outbox → deliver). Each
function is a guarded status change on one delivery (or on one event's queue) in the state
store that returns the new frozen `Delivery` (or `Queue`) or raises a one-line `UserError`:
`reschedule`, `send_now`, `skip`, `retry`, `resolve` (`resolve_recipients` for single
recipients), `pause`, `resume`; and the read-only views `show` (one delivery), `listing` and
`report` (for `aspdigest status`); the calendar view is `queue.ics`. Every change is written to the delivery's log with who made it.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

from aspdigest.config import Project
from aspdigest.errors import UserError
from aspdigest.queue.approval import DeliveryStatus, changed_since_approval, delivery_status, label
from aspdigest.queue.ics import ics as ics  # re-exported: the calendar lived here at first
from aspdigest.queue.plan import PlanChange as PlanChange  # re-exported: plan lived here at first
from aspdigest.queue.plan import PlanResult as PlanResult
from aspdigest.queue.plan import plan as plan
from aspdigest.queue.schedule import local_datetime, local_text
from aspdigest.safetext import terminal_safe
from aspdigest.store import (
    Delivery,
    LogEntry,
    Queue,
    Recipient,
    RunnerHeartbeat,
    Store,
    normalise_address,
)
from aspdigest.store.lifecycle import OPEN, Status, ordered

OVERDUE_CHOICES = ("send", "skip", "reschedule")


# -- one delivery at a time ---------------------------------------------------------------------


def _move(
    store: Store,
    d: Delivery,
    to: str,
    by: str,
    note: str | None = None,
    allowed: Sequence[str] | None = None,
    **values: object,
) -> bool:
    return store.move(d.id, to, actor=by, note=note, expect=allowed or d.status, **values)


def get(store: Store, delivery_id: int) -> Delivery:
    d = store.delivery(delivery_id)
    if d is None:
        raise UserError(
            f"delivery {delivery_id}: no such delivery; `aspdigest schedule list` shows the ids"
        )
    return d


def _tz(store: Store, event: str) -> ZoneInfo:
    queue = store.queue(event)
    return ZoneInfo(queue.timezone) if queue else ZoneInfo("UTC")


def describe(store: Store, d: Delivery) -> str:
    """`delivery 3 (2024-12-02 thread x): approved, Tue 2024-12-03 12:00 CET`."""
    return f"{label(d)}: {d.status}, {local_text(d.send_at, _tz(store, d.event))}"


def _refuse(d: Delivery, verb: str, allowed: Sequence[str]) -> UserError:
    hint = {
        "sent": "it is already sent",
        "claimed": "it is being sent right now",
        "unknown": f"its send was interrupted; resolve it first with "
        f"`aspdigest schedule resolve {d.id} --sent` or `--not-sent`",
        "planned": "it is not approved; approve it first with "
        f"`aspdigest approve {d.event} {d.date} --channel {d.channel}`",
    }.get(d.status, f"it is {d.status}")
    return UserError(f"{label(d)}: cannot {verb}: {hint} (only {'/'.join(allowed)} can)")


def _check_files(project: Project, d: Delivery) -> None:
    changed = changed_since_approval(project, d)
    if changed:
        raise UserError(
            f"{label(d)}: {', '.join(changed)} changed since it was approved; "
            f"approve the new build with `aspdigest approve {d.event} {d.date} "
            f"--channel {d.channel}`"
        )


def parse_when(text: str, d: Delivery, tz: ZoneInfo) -> dt.datetime:
    """TIME as people type it, in the event's zone: HH:MM (on the delivery's current local
    day) or YYYY-MM-DD HH:MM; clock-change gaps and repeats are refused."""
    raw = text.strip().replace("T", " ")
    try:
        if len(raw) <= 5:
            base = (d.send_at or dt.datetime.now(dt.UTC)).astimezone(tz).date()
            clock = dt.time.fromisoformat(raw.zfill(5))
        else:
            day, _, hhmm = raw.partition(" ")
            base = dt.date.fromisoformat(day)
            clock = dt.time.fromisoformat(hhmm)
    except ValueError:
        raise UserError(
            f'TIME: expected HH:MM or "YYYY-MM-DD HH:MM" (local time in {tz.key}), got "{text}"'
        ) from None
    try:
        return local_datetime(base, clock.replace(second=0, microsecond=0), tz)
    except ValueError as exc:
        raise UserError(f"TIME: {exc}") from None


def reschedule(project: Project, store: Store, delivery_id: int, when: str, *, by: str) -> Delivery:
    """Move a delivery not yet out to another local time; a held, failed or skipped one
    comes back (approved if it was approved, else planned)."""
    d = get(store, delivery_id)
    allowed = ordered(OPEN | {Status.SKIPPED})
    if d.status not in allowed:
        raise _refuse(d, "reschedule", allowed)
    tz = _tz(store, d.event)
    at = parse_when(when, d, tz)
    if at <= store.clock():
        raise UserError(
            f"TIME: {local_text(at, tz)} is in the past; use "
            f"`aspdigest schedule send-now {d.id}` to send it now"
        )
    to = "approved" if d.approved is not None and d.status != "planned" else "planned"
    note = f"rescheduled to {local_text(at, tz)}"
    if not _move(store, d, to, by, note, send_at=at, last_error=None):
        raise UserError(f"{label(d)}: changed while rescheduling; try again")
    return get(store, d.id)


def _changed_meanwhile(d: Delivery) -> UserError:
    return UserError(f"{label(d)}: changed meanwhile; look again with `aspdigest schedule list`")


def _never_approved(d: Delivery) -> UserError:
    return UserError(
        f"{label(d)}: was never approved; approve it first with "
        f"`aspdigest approve {d.event} {d.date} --channel {d.channel}`"
    )


def send_now(project: Project, store: Store, delivery_id: int, *, by: str) -> Delivery:
    """Make an approved (or held) delivery due now; the runner sends it at once."""
    d = get(store, delivery_id)
    if d.status not in ("approved", "held"):
        raise _refuse(d, "send now", ("approved", "held"))
    if d.approved is None:
        raise _never_approved(d)
    _check_files(project, d)
    if not _move(store, d, "approved", by, "send now", send_at=store.clock(), last_error=None):
        raise _changed_meanwhile(d)
    return get(store, d.id)


def skip(project: Project, store: Store, delivery_id: int, *, by: str) -> Delivery:
    d = get(store, delivery_id)
    if d.status not in OPEN:
        raise _refuse(d, "skip", ordered(OPEN))
    if not _move(store, d, "skipped", by, f"skipped by {by}", last_error=f"skipped by {by}"):
        raise _changed_meanwhile(d)
    return get(store, d.id)


def retry(project: Project, store: Store, delivery_id: int, *, by: str) -> Delivery:
    """Send a failed or held delivery again now (an email resumes where it stopped:
    recipients already sent are not sent again)."""
    d = get(store, delivery_id)
    if d.status not in ("failed", "held"):
        raise _refuse(d, "retry", ("failed", "held"))
    if d.approved is None:
        raise _never_approved(d)
    _check_files(project, d)
    if not _move(
        store,
        d,
        "approved",
        by,
        f"retry after: {d.last_error or d.status}",
        send_at=store.clock(),
        last_error=None,
    ):
        raise _changed_meanwhile(d)
    return get(store, d.id)


def resolve(project: Project, store: Store, delivery_id: int, *, sent: bool, by: str) -> Delivery:
    """A person decides an `unknown` delivery: --sent (it went; recipients in doubt count as
    sent) or --not-sent (it becomes failed, and `retry` sends it to those still without it)."""
    d = get(store, delivery_id)
    if d.status != "unknown":
        raise UserError(
            f"{label(d)}: is {d.status}, not unknown; only a delivery in doubt is resolved"
        )
    if sent:
        n = store.resolve_recipients(d.id, "sent", f"resolved as sent by {by}")
        ok = _move(
            store,
            d,
            "sent",
            by,
            f"resolved as sent ({n} recipient(s) in doubt)",
            sent_at=store.clock(),
            last_error=None,
        )
    else:
        n = store.resolve_recipients(d.id, "pending", f"resolved as not sent by {by}")
        store.forget_sending(d.id)  # a thread's post in doubt is posted again by `retry`
        extra = f" ({n} recipient(s) left)" if n else ""
        ok = _move(
            store,
            d,
            "failed",
            by,
            f"resolved as not sent{extra}",
            last_error=f"resolved as not sent by {by}; `aspdigest schedule retry "
            f"{d.id}` sends it{extra}",
        )
    if not ok:
        raise _changed_meanwhile(d)
    return get(store, d.id)


def resolve_recipients(
    project: Project,
    store: Store,
    delivery_id: int,
    addresses: Sequence[str],
    *,
    sent: bool,
    by: str,
) -> Delivery:
    """A person decides single recipients left `unknown`: --sent (it arrived) or --not-sent
    (it did not; `retry` sends to it once the delivery is no longer in doubt). Every address
    is checked first; one problem and nothing is changed."""
    d = get(store, delivery_id)
    if d.status == "claimed":
        raise UserError(
            f"{label(d)}: cannot resolve a recipient: it is being sent right now; "
            "wait until the send ends"
        )
    wanted = list(dict.fromkeys(normalise_address(a) for a in addresses))
    have = {r.address: r for r in store.recipients(d.id)}
    problems = []
    for address in wanted:
        r = have.get(address)
        if r is None:
            problems.append(
                f"{label(d)}: {terminal_safe(address)}: not a recipient of this delivery; "
                f"`aspdigest schedule show {d.id}` lists the ones in doubt"
            )
        elif r.status != "unknown":
            problems.append(
                f"{label(d)}: {address}: is {r.status}, not unknown; "
                "only a recipient in doubt is resolved"
            )
    if problems:
        raise UserError("\n".join(problems))
    to, note = (
        ("sent", f"resolved as sent by {by}")
        if sent
        else (
            "pending",
            f"resolved as not sent by {by}",
        )
    )
    try:
        store.resolve_recipient_addresses(d.id, wanted, to, actor=by, note=note)
    except LookupError:
        raise _changed_meanwhile(d) from None
    return get(store, d.id)


@dataclass(frozen=True)
class DeliveryView:
    """What `schedule show` prints: the delivery, its recipients per status, its log, and the
    recipients in doubt (address, since when, why)."""

    delivery: Delivery
    counts: dict[str, int]
    history: list[LogEntry]
    in_doubt: list[Recipient]
    tz: ZoneInfo


def show(store: Store, delivery_id: int) -> DeliveryView:
    d = get(store, delivery_id)
    counts = {k: n for k, n in store.recipient_counts(d.id).items() if n}
    return DeliveryView(
        d, counts, store.history(d.id), store.recipients(d.id, "unknown"), _tz(store, d.event)
    )


# -- the whole queue ----------------------------------------------------------------------------


def queue_of(store: Store, event_id: str) -> Queue:
    queue = store.queue(event_id)
    if queue is None:
        raise UserError(
            f"{event_id}: nothing planned; run `aspdigest schedule plan {event_id}` first"
        )
    return queue


def pause(store: Store, event_id: str, *, by: str) -> Queue:
    """Stop the runner from starting any of the event's deliveries (one in hand finishes)."""
    queue = queue_of(store, event_id)
    if queue.paused_at is None:
        store.set_queue(event_id, paused_at=store.clock(), paused_by=by)
    return queue_of(store, event_id)


class OverdueDecision(UserError):
    """Resuming would meet deliveries whose time passed while paused: a person chooses."""

    def __init__(self, overdue: Sequence[Delivery], tz: ZoneInfo) -> None:
        self.overdue = tuple(overdue)
        shown = ", ".join(f"{d.id} ({d.channel} {local_text(d.send_at, tz)})" for d in overdue[:5])
        more = f" and {len(overdue) - 5} more" if len(overdue) > 5 else ""
        super().__init__(
            f"{len(overdue)} delivery(ies) came due while paused: {shown}{more}; "
            "say what to do with --overdue send|skip|reschedule --at TIME"
        )


def overdue(store: Store, event_id: str) -> list[Delivery]:
    now = store.clock()
    return [
        d
        for d in store.deliveries(event_id, "approved")
        if d.send_at is not None and d.send_at <= now
    ]


def resume(
    project: Project,
    store: Store,
    event_id: str,
    *,
    choice: str | None,
    by: str,
    at: str | None = None,
) -> list[Delivery]:
    """Unpause; deliveries that came due meanwhile are sent now, skipped or rescheduled to
    `at` (HH:MM or YYYY-MM-DD HH:MM local), as `choice` says. Returns those overdue ones."""
    queue = queue_of(store, event_id)
    tz = ZoneInfo(queue.timezone)
    late = overdue(store, event_id)
    if late and choice is None:
        raise OverdueDecision(late, tz)
    if choice is not None and choice not in OVERDUE_CHOICES:
        raise UserError(f'--overdue: expected send, skip or reschedule, got "{choice}"')
    if late and choice == "reschedule" and not at:
        raise UserError("--at: give the time to move the overdue deliveries to (HH:MM)")
    for d in late:
        if choice == "send":
            _move(store, d, "approved", by, "sent late after a pause", send_at=store.clock())
        elif choice == "skip":
            _move(
                store,
                d,
                "skipped",
                by,
                "came due while paused; skipped",
                last_error=f"came due while paused; skipped by {by}",
            )
        else:
            assert at is not None
            reschedule(project, store, d.id, at, by=by)
    store.set_queue(event_id, paused_at=None, paused_by=None)
    return [get(store, d.id) for d in late]


def listing(
    store: Store,
    event_id: str,
    *,
    day: dt.date | None = None,
    status: str | None = None,
    project: Project | None = None,
) -> list[DeliveryStatus]:
    """The event's deliveries by send time. Given the project, each approved delivery's
    built files are compared with what was approved (`DeliveryStatus.changed`)."""
    tz = _tz(store, event_id)
    posted = store.posted_counts(event_id)
    rows = []
    for d in store.deliveries(event_id, status):
        if day is not None and d.date != day:
            continue
        row = delivery_status(d, tz, posted.get(d.id, 0))
        if (
            project is not None
            and d.status == Status.APPROVED
            and changed_since_approval(project, d)
        ):
            row = replace(row, changed=True)
        rows.append(row)
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    return sorted(rows, key=lambda r: (r.send_at_utc or far, r.channel, r.platform, r.id))


@dataclass(frozen=True)
class StatusReport:
    event: str
    timezone: str
    paused_at: dt.datetime | None
    paused_by: str | None
    runner: RunnerHeartbeat | None
    running: bool
    counts: dict[str, int]
    upcoming: tuple[DeliveryStatus, ...]  # the next approved deliveries still ahead
    attention: tuple[DeliveryStatus, ...]  # unknown, held, failed, changed, or due soon unapproved
    missed: tuple[DeliveryStatus, ...] = ()  # their time passed; neither sent nor decided
    subscribers: int = 0  # who the digest would go to now
    now: dt.datetime | None = None  # the clock reading the report was made at
    warnings: tuple[str, ...] = ()  # e.g. a digest still to go out with no subscribers


def report(
    store: Store, event_id: str, *, running: bool, project: Project | None = None
) -> StatusReport:
    """The queue at a glance. Given the project, approved deliveries whose built files
    changed since approval are among those needing a person."""
    from aspdigest.queue.telling import is_missed, subscriber_warning

    queue = queue_of(store, event_id)
    tz = ZoneInfo(queue.timezone)
    now = store.clock()
    rows = listing(store, event_id, project=project)
    soon = now + dt.timedelta(hours=24)
    missed = [r for r in rows if is_missed(r, now)]
    attention = [
        r
        for r in rows
        if r.status in (Status.UNKNOWN, Status.HELD, Status.FAILED)
        or (r.changed and not is_missed(r, now))
        or (
            r.status == Status.PLANNED and r.send_at_utc is not None and now < r.send_at_utc <= soon
        )
    ]
    upcoming = [r for r in rows if r.status == Status.APPROVED and not is_missed(r, now)][:5]
    counts = Counter(r.status for r in rows)
    audience = len(store.active_subscribers())
    digest_ahead = any(r.channel == "digest" and r.status in OPEN for r in rows)
    warning = subscriber_warning(audience, digest_ahead)
    return StatusReport(
        event_id,
        str(tz.key),
        queue.paused_at,
        queue.paused_by,
        store.runner(),
        running,
        dict(sorted(counts.items())),
        tuple(upcoming),
        tuple(attention),
        tuple(missed),
        audience,
        now,
        (warning,) if warning else (),
    )
