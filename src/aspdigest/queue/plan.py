"""Plan: turn the schedule and the build into deliveries in the state store, safely again.

Schedule/outbox stage (… → build → schedule/outbox → deliver). `plan(project, event, store)`
reads `schedules/<event>.toml` (`schedule.load_schedule`) and each built day's manifest,
creates or updates one delivery per (day, channel, platform) and returns a frozen
`PlanResult` saying what it did to each. Running it again never duplicates a delivery (the
store's unique key) and never moves one already sent, claimed, in doubt or skipped; a changed
send time or a changed artifact drops an approval (the reason goes in the delivery's log and
`last_error`); a time moved by hand (`schedule reschedule`) stands until the schedule's own
time for it changes. Channels with `approval = false` are approved here, by hash, like any.
A thread or quote posts whose artifact the build marked `blocked` (one platform that could not
be made that day) is refused, one `Refusal` each with the manifest's reason, and the others
are planned; a delivery planned before it was blocked is skipped with the reason
(`last_error` "blocked: …"), and planned again by the first plan after the build unblocks it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from aspdigest.artifacts import BuiltDay
from aspdigest.config import Project
from aspdigest.content import load_content
from aspdigest.errors import UserError
from aspdigest.queue.approval import BLOCKED, record_approval
from aspdigest.queue.schedule import load_schedule, local_text
from aspdigest.store import Delivery, Store
from aspdigest.store.lifecycle import OPEN, Status


@dataclass(frozen=True)
class PlanChange:
    delivery_id: int
    date: dt.date
    channel: str
    platform: str
    action: str  # created, updated, unapproved, unchanged, kept, removed
    note: str = ""


@dataclass(frozen=True)
class Refusal:
    """A delivery plan would not create (or keep open): its artifact is blocked."""

    date: dt.date
    channel: str
    platform: str
    reason: str  # the manifest's `meta.blocked`

    def __str__(self) -> str:
        return f"{self.platform} {self.date} {self.channel}: not planned: {BLOCKED}{self.reason}"


@dataclass(frozen=True)
class PlanResult:
    event: str
    changes: tuple[PlanChange, ...]
    notes: tuple[str, ...]  # days or channels with nothing built to plan
    refused: tuple[Refusal, ...] = ()  # blocked artifacts, one per delivery not planned

    def count(self, action: str) -> int:
        return sum(1 for c in self.changes if c.action == action)


def plan(
    project: Project, event_id: str, store: Store, *, by: str = "plan", only: dt.date | None = None
) -> PlanResult:
    """Create or update the event's deliveries from its schedule and its build."""
    event = load_content(project, event_id).event
    schedule = load_schedule(project, event)
    dates = [only] if only else event.dates()
    wanted = schedule.planned(dates)
    built: dict[dt.date, dict[str, str]] = {}
    blocked: dict[dt.date, dict[str, str]] = {}
    notes: list[str] = []
    for date in dates:
        try:
            built[date] = BuiltDay(project, event_id, date).hashes()
            blocked[date] = BuiltDay(project, event_id, date).blocked()
        except UserError:
            notes.append(
                f"{date}: not built; nothing planned for it (run `aspdigest build {event_id}`)"
            )
    if not built:
        where = project.relative(project.output_dir / event_id)
        raise UserError(f"{where}: not built; run `aspdigest build {event_id}` first")
    now = store.clock()
    store.set_queue(event_id, timezone=event.timezone, planned_at=now)
    existing = {
        (d.date, d.channel, d.platform): d
        for d in store.deliveries(event_id)
        if only is None or d.date == only
    }
    changes: list[PlanChange] = []
    refused: list[Refusal] = []
    seen: set[tuple[dt.date, str, str]] = set()
    missing: dict[dt.date, list[str]] = {}
    for want in wanted:
        if want.date not in built:
            continue
        why = blocked[want.date].get(want.platform) if want.channel != "digest" else None
        if why is not None:
            refusal = Refusal(want.date, want.channel, want.platform, why)
            seen.add(want.key)
            d = existing.get(want.key)
            if d is None or d.status in OPEN or _was_blocked(d):
                refused.append(refusal)  # still blocked: said at every plan until fixed
            if d is not None and d.status in OPEN:
                note = f"{BLOCKED}{why}"
                if store.move(
                    d.id, Status.SKIPPED, actor=by, note=note, expect=d.status, last_error=note
                ):
                    changes.append(PlanChange(d.id, d.date, d.channel, d.platform, "removed", note))
            continue
        files = BuiltDay(project, event_id, want.date).carries(
            built[want.date], want.channel, want.platform
        )
        if files is None:
            if want.channel != "quotes":  # a day without quotes has no quote posts: normal
                missing.setdefault(want.date, []).append(f"{want.channel} {want.platform}".rstrip())
            continue
        seen.add(want.key)
        values = {
            "schedule_at": want.send_at,
            "grace_seconds": int(want.grace.total_seconds()),
            "missed": want.missed,
        }
        d = existing.get(want.key)
        if d is not None and d.status == Status.SKIPPED and _was_blocked(d):
            # Skipped by an earlier plan because the build blocked it: no longer blocked.
            note = "planned again: the build no longer blocks it"
            store.move(d.id, Status.PLANNED, actor=by, note=note, expect=d.status, last_error=None)
            d = store.delivery(d.id) or d
        if d is None:
            d = store.ensure_delivery(
                event_id,
                want.date,
                want.channel,
                want.platform,
                send_at=want.send_at,
                artifacts=files,
                actor=by,
                note=f"for {local_text(want.send_at, event.tz)}",
            )
            store.update_delivery(d.id, expect=d.status, **values)
            change = PlanChange(d.id, want.date, want.channel, want.platform, "created")
        else:
            change = _update(store, d, want.send_at, files, values, by, event.tz)
        changes.append(change)
        if not want.approval and change.action != "kept":
            fresh = store.delivery(change.delivery_id)
            if fresh is not None and fresh.status == Status.PLANNED:
                record_approval(store, fresh, files, "schedule (approval not required)")
    for date, what in sorted(missing.items()):
        notes.append(f"{date}: the build has nothing to send for {', '.join(what)}; not planned")
    for key, d in sorted(existing.items()):
        if key in seen or d.date not in built:
            continue
        note = f"no longer wanted by {schedule.path} or not in the build"
        if d.status in OPEN and _move(store, d, Status.SKIPPED, by, note):
            changes.append(PlanChange(d.id, d.date, d.channel, d.platform, "removed", note))
    return PlanResult(event_id, tuple(changes), tuple(notes), tuple(refused))


def _was_blocked(d: Delivery) -> bool:
    return (d.last_error or "").startswith(BLOCKED)


def _update(
    store: Store,
    d: Delivery,
    send_at: dt.datetime,
    files: dict[str, str],
    values: dict[str, object],
    by: str,
    tz: ZoneInfo,
) -> PlanChange:
    key = (d.id, d.date, d.channel, d.platform)
    if d.status not in OPEN:  # sent, claimed, unknown or skipped: history, never moved
        return PlanChange(*key, "kept", f"{d.status}; not changed")
    before = d.schedule_at or d.send_at
    moved = before != send_at
    compared = d.approved if d.approved is not None and d.status != "planned" else d.artifacts
    changed = sorted(set(compared) ^ set(files) | {n for n in files if compared.get(n) != files[n]})
    update: dict[str, object] = {**values, "artifacts": files}
    if moved:
        update["send_at"] = send_at  # a hand-made reschedule stands until the schedule moves
    if d.status != "planned" and (moved or changed):
        why = (
            f"send time moved from {local_text(before, tz)} to {local_text(send_at, tz)}"
            if moved
            else f"changed since approval: {', '.join(changed)}"
        )
        ok = store.move(
            d.id,
            Status.PLANNED,
            actor=by,
            note=f"approval dropped: {why}",
            expect=d.status,
            approved=None,
            approved_by=None,
            approved_at=None,
            last_error=f"approval dropped: {why}",
            **update,
        )
        return PlanChange(*key, "unapproved" if ok else "kept", why)
    same = (
        not moved
        and not changed
        and d.grace_seconds == values["grace_seconds"]
        and d.missed == values["missed"]
    )
    if same:
        return PlanChange(*key, "unchanged")
    store.update_delivery(d.id, expect=d.status, **update)
    return PlanChange(*key, "updated", f"to {local_text(send_at, tz)}" if moved else "")


def _move(store: Store, d: Delivery, to: str, by: str, note: str | None = None) -> bool:
    return store.move(d.id, to, actor=by, note=note, expect=d.status)


def skip_past_deliveries(store: Store, event_id: str, *, by: str) -> list[Delivery]:
    """`schedule plan --skip-past`: every planned or approved delivery whose time has passed
    (by the store's clock) becomes skipped, through the lifecycle's checked move, so that a
    runner started late does not send a week-old digest. Returns the ones it skipped."""
    now = store.clock()
    skipped = []
    for d in store.deliveries(event_id):
        if d.status not in (Status.PLANNED, Status.APPROVED) or d.send_at is None:
            continue
        if d.send_at <= now and store.move(
            d.id,
            Status.SKIPPED,
            actor=by,
            note="its time had passed when planned (--skip-past)",
            expect=(d.status,),
            last_error=f"skipped by {by}: its time had passed",
        ):
            skipped.append(d)
    return skipped
