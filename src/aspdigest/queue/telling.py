"""What a delivery's status means, said in words: the one wording every listing uses.

Beside the schedule/outbox stage, after `queue.approval` (which returns `DeliveryStatus`
rows). `status_text(row, now, tz)` turns one row into what will really happen or what did:
"scheduled for Tue 2024-12-03 07:30 CET (approved by ana)", "sent at …", "missed: not
approved before …", "held: …", "changed since approval — approve again". Listings (`schedule
list`/`plan`, `status`, `export`, the rehearsal) print these rather than the bare status, so
no listing says "sent" for what is only planned. The statuses themselves come from
`store.lifecycle.Status`; this module only words them. Takes rows and a clock reading,
returns strings.
"""

from __future__ import annotations

import datetime as dt

from aspdigest.config import Project
from aspdigest.queue.approval import DeliveryStatus
from aspdigest.queue.schedule import local_text
from aspdigest.store.base import Clock, utcnow
from aspdigest.store.lifecycle import Status

CHANGED = "changed since approval — approve again"


def is_missed(row: DeliveryStatus, now: dt.datetime) -> bool:
    """Its time has passed and it is neither out nor decided: planned and never approved, or
    approved and not taken by a runner."""
    return (
        row.status in (Status.PLANNED, Status.APPROVED)
        and row.send_at_utc is not None
        and row.send_at_utc <= now
    )


def status_text(row: DeliveryStatus, now: dt.datetime, tz: dt.tzinfo | None = None) -> str:
    zone = tz or (row.send_at_local.tzinfo if row.send_at_local else None) or dt.UTC
    at = local_text(row.send_at_utc, zone)
    who = f" (approved by {row.approved_by})" if row.approved_by else ""
    status = Status(row.status)
    if status is Status.APPROVED and row.changed:
        return f"{CHANGED} (was scheduled for {at}{who})"
    if is_missed(row, now):
        if status is Status.APPROVED:
            return f"missed: due {at}{who}, not sent"
        return f"missed: due {at}, never approved"
    if status is Status.PLANNED:
        return f"planned for {at}, not approved"
    if status is Status.APPROVED:
        return f"scheduled for {at}{who}"
    if status is Status.SENT:
        return f"sent at {local_text(row.sent_at, zone)}"
    if status is Status.CLAIMED:
        return "sending now"
    if status is Status.UNKNOWN:
        return "in doubt: interrupted while sending; `schedule resolve` it"
    if status is Status.HELD:
        return "held" + (f": {row.last_error}" if row.last_error else "")
    if status is Status.FAILED:
        return "failed" + (f": {row.last_error}" if row.last_error else "")
    return str(status)  # skipped


NO_SUBSCRIBERS = (
    "the digest has no subscribers yet: it would fail at send time; import them with "
    "`aspdigest subscribers import`"
)


def subscriber_warning(count: int, has_digest: bool = True) -> str | None:
    """The warning `plan`, `approve` and `status` print when a digest would go to nobody."""
    return NO_SUBSCRIBERS if has_digest and count == 0 else None


def queue_words(
    project: Project, event_id: str, *, clock: Clock = utcnow
) -> dict[tuple[str, str, str], str]:
    """What the state store's queue will do with each (day, channel, platform) of the event,
    in `status_text`'s words, for `export`; empty when there is no store yet (reading never
    creates one) or nothing is planned."""
    from aspdigest.livestatus import store_exists
    from aspdigest.queue.actions import listing
    from aspdigest.store import open_project_store

    if not store_exists(project):
        return {}
    with open_project_store(project, clock=clock) as store:
        if store.queue(event_id) is None:
            return {}
        now = store.clock()
        rows = listing(store, event_id, project=project)
    return {(r.date.isoformat(), r.channel, r.platform): status_text(r, now) for r in rows}
