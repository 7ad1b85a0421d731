"""Live approval status for the review site, read from the state store when it is asked for.

Beside `aspdigest preview`, after build and approval (… → build → schedule/approve → preview).
The review pages are pure (built from content alone), so their Approval panel and the index's
counts are filled in by review.js from `GET /_status.json`, which preview.py answers with
`live_status(project, event_id, tz, locale, date)`: a JSON-ready dict of every delivery (or
one day's) from `approval.status`, the code behind `aspdigest status`, with times in the
event's zone, each approved file's sha256, whether the day's current build still matches
them, and per-day counts. Reading never creates a store; an unreadable store is a message,
never an exception, and store errors are already redacted by the store itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from babel.dates import format_datetime

from aspdigest.artifacts import BuiltDay
from aspdigest.config import Project
from aspdigest.errors import UserError
from aspdigest.platforms import display_name
from aspdigest.queue.approval import DeliveryStatus, status
from aspdigest.store import open_project_store

APPROVED = ("approved", "claimed", "sent")  # approved, or sent on an approval
CHANNELS = {"digest": "email digest", "thread": "thread", "quotes": "quote posts"}
NO_STORE = "No state store yet: nothing has been planned or approved."
NOTHING_PLANNED = "Nothing planned yet."


def store_exists(project: Project) -> bool:
    """Whether the configured store exists; a SQLite file that is not there yet does not."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(project.settings.state.url)
    except ArgumentError:
        return True  # let the store itself report the bad URL
    if url.get_backend_name() != "sqlite":
        return True
    if url.database in (None, "", ":memory:"):
        return False
    path = Path(url.database or "")
    return (path if path.is_absolute() else project.root / path).is_file()


def delivery_label(channel: str, platform: str) -> str:
    what = CHANNELS.get(channel, channel)
    if not platform:
        return what[:1].upper() + what[1:]
    return f"{display_name(platform)} {what}"


def when(value: dt.datetime | None, tz: dt.tzinfo, locale: str) -> str:
    if value is None:
        return ""
    aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return format_datetime(aware, "EEE d MMM, HH:mm", tzinfo=tz, locale=locale.replace("-", "_"))


def _built(project: Project, event_id: str, dates: set[dt.date]) -> dict[dt.date, dict[str, str]]:
    """Each day's artifact hashes as the current build has them ({} when not built)."""
    out: dict[dt.date, dict[str, str]] = {}
    for date in dates:
        try:
            out[date] = BuiltDay(project, event_id, date).hashes()
        except UserError:
            out[date] = {}
    return out


def changed(approved: Mapping[str, str] | None, built: Mapping[str, str]) -> bool:
    """Approved, but the build now differs from (or no longer has) what was approved."""
    return any(built.get(path) != sha for path, sha in (approved or {}).items())


def _ordered(rows: Sequence[DeliveryStatus], platforms: Sequence[str]) -> list[DeliveryStatus]:
    channels = list(CHANNELS)

    def order(row: DeliveryStatus) -> tuple[dt.date, int, int, str, int]:
        return (
            row.date,
            channels.index(row.channel) if row.channel in channels else 99,
            platforms.index(row.platform) if row.platform in platforms else 99,
            row.platform,
            row.id,
        )

    return sorted(rows, key=order)


def live_status(
    project: Project,
    event_id: str,
    tz: dt.tzinfo,
    locale: str,
    date: dt.date | None = None,
) -> dict[str, Any]:
    """The event's deliveries (or one day's) as review.js shows them, with per-day counts."""
    base: dict[str, Any] = {"event": event_id, "timezone": str(tz), "deliveries": [], "days": {}}
    if not store_exists(project):
        return {**base, "state": "none", "message": NO_STORE}
    try:
        with open_project_store(project) as store:
            rows = status(store, event_id)
    except UserError as exc:
        message = f"The state store could not be read: {' '.join(exc.lines())}"
        return {**base, "state": "error", "message": message}
    built = _built(project, event_id, {row.date for row in rows})
    deliveries: list[dict[str, Any]] = []
    days: dict[str, dict[str, int]] = {}
    for row in _ordered(rows, list(project.settings.social.platforms)):
        key = row.date.isoformat()
        is_changed = changed(row.approved, built[row.date])
        count = days.setdefault(key, {"planned": 0, "approved": 0})
        count["planned"] += 1
        count["approved"] += row.status in APPROVED and not is_changed
        if date is not None and row.date != date:
            continue
        deliveries.append(
            {
                "id": row.id,
                "date": key,
                "channel": row.channel,
                "platform": row.platform,
                "label": delivery_label(row.channel, row.platform),
                "status": row.status,
                "send_at": when(row.send_at_utc, tz, locale),
                "approved_by": row.approved_by,
                "approved_at": when(row.approved_at, tz, locale),
                "approved": dict(sorted((row.approved or {}).items())),
                "changed": is_changed,
                "last_error": row.last_error,
            }
        )
    return {
        **base,
        "state": "ok",
        "message": "" if rows else NOTHING_PLANNED,
        "deliveries": deliveries,
        "days": days,
        "planned": len(rows),
        "approved": sum(d["approved"] for d in days.values()),
    }
