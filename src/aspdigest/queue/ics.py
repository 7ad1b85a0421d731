"""The delivery queue as an iCalendar file, for people's calendars (`aspdigest schedule ics`).

Schedule/outbox stage, a read-only view beside `queue.actions`. `ics(store, events, names)`
takes the state store, one or several event ids and their names, and returns the bytes of
one calendar: one VEVENT per delivery with a send time, titled with the event's name and
carrying its status, with a UID that stays the same across plans and stores.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from zoneinfo import ZoneInfo

from aspdigest.queue.schedule import local_text
from aspdigest.store import Store


def _tz(store: Store, event: str) -> ZoneInfo:
    queue = store.queue(event)
    return ZoneInfo(queue.timezone) if queue else ZoneInfo("UTC")


def ics(
    store: Store, event_id: str | Sequence[str], names: Mapping[str, str] | None = None
) -> bytes:
    """The queue of one or several events as an iCalendar file: one event per delivery,
    titled with the event's name (`names`, id → name; the id where missing), with a UID that
    stays the same across plans and stores (event, day, channel, platform), so calendars
    update."""
    from icalendar import Calendar
    from icalendar import Event as VEvent

    ids = [event_id] if isinstance(event_id, str) else list(event_id)
    names = names or {}
    cal = Calendar()
    cal.add("prodid", "-//aspdigest//delivery queue//EN")
    cal.add("version", "2.0")
    title = ", ".join(names.get(e, e) for e in ids)
    cal.add("x-wr-calname", f"{title} delivery queue")
    deliveries = [(e, d) for e in ids for d in store.deliveries(e)]
    for event, d in sorted(
        deliveries, key=lambda p: (p[1].date, p[0], p[1].channel, p[1].platform)
    ):
        if d.send_at is None:
            continue
        tz = _tz(store, event)
        event_title = names.get(event, event)
        what = f"{d.channel} {d.platform}".strip()
        item = VEvent()
        item.add(
            "uid",
            f"{d.event}-{d.date}-{d.channel}{'-' + d.platform if d.platform else ''}@aspdigest",
        )
        item.add("dtstamp", d.updated_at)
        item.add("dtstart", d.send_at)
        item.add("duration", dt.timedelta(minutes=15))
        item.add("summary", f"{event_title}: {what} for {d.date} [{d.status}]")
        lines = [f"delivery {d.id}: {d.status}", f"local time: {local_text(d.send_at, tz)}"]
        if d.approved_by:
            lines.append(f"approved by {d.approved_by}")
        if d.last_error:
            lines.append(d.last_error)
        item.add("description", "\n".join(lines))
        item.add(
            "status",
            {"skipped": "CANCELLED", "planned": "TENTATIVE", "held": "TENTATIVE"}.get(
                d.status, "CONFIRMED"
            ),
        )
        cal.add_component(item)
    data: bytes = cal.to_ical()
    return data
