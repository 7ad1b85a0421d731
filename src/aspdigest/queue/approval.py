"""Approval: a person signs off the built artifacts of a day's deliveries, by their sha256.

Between the schedule and the deliver stage (… → build → schedule/outbox → deliver).
`approve(project, store, event, date, channel=…, platform=…, by=…)` reads the day's built manifest,
checks the files on disk still match it, and records on each matching delivery in the state
store the sha256 of every artifact it carries (`BuiltDay.carries`), who approved and
when; it returns one frozen `Approved` per delivery. At send time `changed_since_approval`
compares the files with those hashes again: a delivery whose files changed is not sent.
A delivery whose thread the build marked `blocked` is refused with the manifest's reason.
`status(store, event)` returns every delivery as a frozen `DeliveryStatus` for the live
status `aspdigest preview` shows (`livestatus.py`; built pages never read the store) and
`aspdigest status`. Both raise `UserError` with one line per problem.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from aspdigest.artifacts import BuiltDay
from aspdigest.config import Project
from aspdigest.errors import UserError
from aspdigest.queue.schedule import CHANNELS
from aspdigest.readiness import built_without_sender, digest_ready
from aspdigest.store import Delivery, Store
from aspdigest.store.lifecycle import APPROVABLE, Status

APPROVER_VARIABLE = "ASPDIGEST_APPROVER"
BLOCKED = "blocked: "  # how a delivery skipped for a blocked artifact says why (last_error)


@dataclass(frozen=True)
class Approved:
    delivery_id: int
    channel: str
    platform: str  # "" for the digest
    hashes: dict[str, str]  # day-relative artifact path → sha256 approved


@dataclass(frozen=True)
class DeliveryStatus:
    id: int
    date: dt.date  # the conference day it is about
    channel: str
    platform: str  # "" for the digest
    status: str
    send_at_utc: dt.datetime | None
    send_at_local: dt.datetime | None  # in the event's zone
    approved_by: str | None
    approved_at: dt.datetime | None
    approved: Mapping[str, str] | None
    last_error: str | None
    posted: int = 0  # posts already up on Bluesky or Mastodon (an API publisher's progress)
    sent_at: dt.datetime | None = None
    # Approved, but its built files no longer match what was approved (set by a listing that
    # was given the project to read the build; False otherwise).
    changed: bool = False


def default_approver(environ: Mapping[str, str] | None = None) -> str:
    """ASPDIGEST_APPROVER, else the operating-system user."""
    environ = os.environ if environ is None else environ
    name = (environ.get(APPROVER_VARIABLE) or "").strip()
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def label(d: Delivery) -> str:
    """How messages name a delivery: `delivery 3 (2024-12-02 thread x)`."""
    what = f"{d.channel} {d.platform}" if d.platform else d.channel
    return f"delivery {d.id} ({d.date} {what})"


def normalise_selection(channel: str | None, platform: str | None) -> tuple[str | None, str | None]:
    """Check --channel/--platform; "email" names the digest's platform (stored as "")."""
    if channel is not None and channel not in CHANNELS:
        raise UserError(f'--channel: expected one of {", ".join(CHANNELS)}, got "{channel}"')
    if platform == "email":
        if channel not in (None, "digest"):
            raise UserError(f"--platform: email goes with --channel digest, not {channel}")
        return "digest", ""
    if platform is not None and channel == "digest":
        raise UserError(f'--platform: the digest goes by email, not "{platform}"')
    return channel, platform


def _not_approvable(d: Delivery, tz: ZoneInfo | None) -> str:
    if d.status == "sent":
        when = (
            d.sent_at.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")
            if d.sent_at and tz
            else "already"
        )
        return f"{label(d)}: already sent ({when}); nothing to approve"
    if d.status == "claimed":
        return f"{label(d)}: is being sent right now; nothing to approve"
    if d.status == "unknown":
        return (
            f"{label(d)}: its send was interrupted; resolve it first with "
            f"`aspdigest schedule resolve {d.id} --sent` or `--not-sent`"
        )
    if (d.last_error or "").startswith(BLOCKED):
        return f"{label(d)}: {d.last_error}; fix it, then build and `schedule plan` again"
    return (
        f"{label(d)}: was skipped; bring it back with `aspdigest schedule reschedule {d.id} HH:MM`"
    )


def check_request(
    project: Project,
    event_id: str,
    date: dt.date,
    *,
    channel: str | None = None,
    platform: str | None = None,
    by: str,
) -> dict[str, str]:
    """What `approve` checks before it reads the store (the options, the approver, the day's
    build), so a caller can refuse bad input before opening one; the built hashes."""
    normalise_selection(channel, platform)
    if not by.strip():
        raise UserError(f"--by: give the approver's name (or set {APPROVER_VARIABLE})")
    return BuiltDay(project, event_id, date).hashes()


@dataclass(frozen=True)
class DayApproval:
    """What approving a whole day did: the deliveries approved, and one line per digest left
    unapproved because the settings cannot send it yet (naming each missing setting)."""

    approved: list[Approved]
    held: list[str]


def approve(
    project: Project,
    store: Store,
    event_id: str,
    date: dt.date,
    *,
    channel: str | None = None,
    platform: str | None = None,
    by: str,
) -> list[Approved]:
    """Approve the built artifacts of the day's deliveries (all, or one channel/platform)."""
    return approve_day(
        project, store, event_id, date, channel=channel, platform=platform, by=by
    ).approved


def approve_day(
    project: Project,
    store: Store,
    event_id: str,
    date: dt.date,
    *,
    channel: str | None = None,
    platform: str | None = None,
    by: str,
    hold_unready: bool = False,
) -> DayApproval:
    """`approve`; with `hold_unready`, a digest the settings cannot send yet (no email.from,
    no unsubscribe URL, no postal address) is left unapproved and named in `held` while the
    day's threads and quote posts are approved, unless the digest is all there is."""
    built = check_request(project, event_id, date, channel=channel, platform=platform, by=by)
    channel, platform = normalise_selection(channel, platform)
    built_day = BuiltDay(project, event_id, date)
    chosen = [
        d
        for d in store.deliveries(event_id)
        if d.date == date
        and (channel is None or d.channel == channel)
        and (platform is None or d.platform == platform)
    ]
    if not chosen:
        what = " ".join(w for w in (channel, platform) if w)
        raise UserError(
            f"{event_id} {date}: no {what + ' ' if what else ''}delivery "
            f"planned; run `aspdigest schedule plan {event_id}` first"
        )
    queue = store.queue(event_id)
    tz = ZoneInfo(queue.timezone) if queue else None
    todo = [d for d in chosen if d.status in APPROVABLE]
    if not todo:
        raise UserError("\n".join(_not_approvable(d, tz) for d in chosen))
    problems: list[str] = []
    held: list[str] = []
    plans: list[tuple[Delivery, dict[str, str]]] = []
    unready = [str(p) for p in digest_ready(project.settings)]
    hold = hold_unready and any(d.channel != "digest" for d in todo)
    blocked = built_day.blocked()
    for d in todo:
        if d.channel != "digest" and d.platform in blocked:
            problems.append(f"{label(d)}: {BLOCKED}{blocked[d.platform]}")
            continue
        if d.channel == "digest" and unready:  # a digest nobody can send or answer must not go
            if hold:
                held += [f"{label(d)}: not approved: {line}" for line in unready]
                continue
            problems.extend(unready)
        elif d.channel == "digest" and _stale_sender(built_day):
            problems.append(
                f"{project.relative(built_day.eml)}: built while email.from or "
                f"email.unsubscribe_url was unset; run `aspdigest build {event_id}` again"
            )
        hashes = built_day.carries(built, d.channel, d.platform)
        if not hashes:
            problems.append(
                f"{label(d)}: the build of {date} has nothing to send for it; "
                f"run `aspdigest build {event_id}`, then "
                f"`aspdigest schedule plan {event_id}`"
            )
            continue
        for name in built_day.changed(hashes):
            problems.append(
                f"{built_day.shown(name)}: changed or missing since "
                f"the build; run `aspdigest build {event_id}` again"
            )
        plans.append((d, hashes))
    if problems:
        raise UserError("\n".join(dict.fromkeys(problems)))
    approved = [
        a for d, hashes in plans if (a := record_approval(store, d, hashes, by)) is not None
    ]
    return DayApproval(approved, held)


def _stale_sender(day: BuiltDay) -> bool:
    try:
        return built_without_sender(day.eml.read_bytes())
    except OSError:
        return False  # not built: `carries` finds nothing to approve and says so


def record_approval(store: Store, d: Delivery, hashes: dict[str, str], by: str) -> Approved | None:
    moved = store.move(
        d.id,
        Status.APPROVED,
        actor=by,
        note=f"{len(hashes)} artifact(s)",
        expect=APPROVABLE,
        approved=hashes,
        artifacts=hashes,
        approved_by=by,
        approved_at=store.clock(),
        last_error=None,
    )
    if not moved:  # claimed, sent or skipped meanwhile: not ours to approve any more
        return None
    return Approved(d.id, d.channel, d.platform, dict(hashes))


def changed_since_approval(project: Project, d: Delivery) -> list[str]:
    """Project-relative paths of this delivery's files that differ from what was approved
    (all of them when nothing was approved)."""
    day = BuiltDay(project, d.event, d.date)
    if not d.approved:
        return [day.shown()]
    return [day.shown(name) for name in day.changed(d.approved)]


def delivery_status(d: Delivery, tz: ZoneInfo | None, posted: int = 0) -> DeliveryStatus:
    local = d.send_at.astimezone(tz) if d.send_at and tz else None
    return DeliveryStatus(
        d.id,
        d.date,
        d.channel,
        d.platform,
        d.status,
        d.send_at,
        local,
        d.approved_by,
        d.approved_at,
        dict(d.approved) if d.approved is not None else None,
        d.last_error,
        posted,
        d.sent_at,
    )


def status(store: Store, event_id: str) -> list[DeliveryStatus]:
    """Every delivery of the event, by day, channel and platform."""
    queue = store.queue(event_id)
    tz = ZoneInfo(queue.timezone) if queue else None
    posted = store.posted_counts(event_id)
    return [delivery_status(d, tz, posted.get(d.id, 0)) for d in store.deliveries(event_id)]
