"""An Atom feed of every digest of the event: `out/<event>/feed.atom`.

Event renderer (render stage). `render_event(days, ctx)` takes every day's output and
returns one artifact, an Atom feed (feedgen) with one entry per day that has a digest:
its subject, preheader, the day's items as a short HTML list and a link to the web
archive. Deterministic: every time in it comes from the build's inputs, never from the
clock: a day's entry is dated when its digest is planned to go out (the digest time of
`schedules/<event>.toml`, a build input like the content; never the state store), or at
the end of the day at the venue when there is no schedule.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Sequence

from aspdigest.days import Day
from aspdigest.render import Artifact, DayOutput, RenderContext, Rendered

FEED = "feed.atom"


def day_end(day: Day) -> dt.datetime:
    return dt.datetime.combine(day.date, dt.time(23, 59, 59), tzinfo=day.event.tz)


def send_times(ctx: RenderContext) -> tuple[dict[dt.date, dt.datetime], list[str]]:
    """When each day's digest is planned to go out, from the schedule file; and a warning
    when there is a schedule that cannot be read (its entries then use the day's end)."""
    from aspdigest.errors import UserError
    from aspdigest.inputs import schedule_file

    event = ctx.content.event
    if not schedule_file(ctx.project, event.id).is_file():
        return {}, []
    # Only now: the schedule's models cost a build without a schedule ~10 ms to import.
    from aspdigest.queue.schedule import load_schedule

    try:
        planned = load_schedule(ctx.project, event).planned()
    except UserError as exc:
        first = exc.lines()[0] if exc.lines() else str(exc)
        return {}, [
            f"feed: entries dated at the end of each day, as the schedule has a problem: {first}"
        ]
    return {p.date: p.local for p in planned if p.channel == "digest"}, []


def archive_index(archive_url: str, event_id: str) -> str:
    """The web archive's page of the whole event: archive_url up to {date}."""
    return archive_url.split("{date}", 1)[0].format(event=event_id)


def feed_location(feed_url: str | None, archive_url: str | None, event_id: str) -> str | None:
    """The feed's own URL: as configured, or beside the day pages of the web archive; None
    without email.archive_url (no feed is built: its entries would link nowhere)."""
    if not archive_url:
        return None
    if feed_url:
        return feed_url.format(event=event_id)
    base = archive_url.split("{date}", 1)[0].format(event=event_id)
    return base.rstrip("/") + "/" + FEED


def _summary_html(day: Day) -> str:
    parts = [f"<p>{html.escape(day.intro)}</p>"] if day.intro else []
    items = "".join(
        f"<li><strong>{html.escape(r.title)}</strong>: {html.escape(r.summary)}</li>"
        for r in day.records
    )
    parts.append(f"<ul>{items}</ul>")
    return "".join(parts)


def render_event(days: Sequence[DayOutput], ctx: RenderContext) -> Rendered:
    from feedgen.feed import FeedGenerator

    settings = ctx.project.settings
    event = ctx.content.event
    entries = []
    for out in days:
        digest = next((a for a in out.rendered.artifacts if a.path == "digest.html"), None)
        if digest is not None:
            entries.append((out.day, digest))
    archive_url = settings.email.archive_url
    feed_url = feed_location(settings.email.feed_url, archive_url, event.id)
    if not entries or not archive_url or not feed_url:
        return Rendered()
    fg = FeedGenerator()
    fg.id(feed_url)
    fg.title(f"{event.short_name}: {event.name}")
    fg.subtitle(f"Daily digest from {event.publisher}")
    fg.author({"name": event.publisher})
    fg.link(href=feed_url, rel="self", type="application/atom+xml")
    fg.link(href=archive_index(archive_url, event.id), rel="alternate")
    if settings.brand.logo_url:
        fg.icon(settings.brand.logo_url)
        fg.logo(settings.brand.logo_url)
    fg.language(event.language)
    fg.generator("aspdigest")
    planned, warnings = send_times(ctx)

    def entry_time(day: Day) -> dt.datetime:
        return planned.get(day.date) or day_end(day)

    fg.updated(max(entry_time(day) for day, _ in entries))
    for day, digest in entries:
        url = archive_url.format(event=event.id, date=day.key)
        entry = fg.add_entry(order="append")
        entry.id(url)
        entry.title(str(digest.meta.get("subject", day.title)))
        entry.link(href=url, rel="alternate", type="text/html")
        entry.updated(entry_time(day))
        entry.published(entry_time(day))
        entry.summary(str(digest.meta.get("preheader", "")) or day.title)
        entry.content(_summary_html(day), type="html")
    data: bytes = fg.atom_str(pretty=True)
    return Rendered(
        artifacts=(
            Artifact(
                path=FEED,
                data=data,
                sources=tuple(r.id for d, _ in entries for r in d.records),
                meta={"entries": len(entries)},
            ),
        ),
        warnings=tuple(warnings),
    )
