"""An Atom feed of every digest of the event: `out/<event>/feed.atom`.

Event renderer (render stage). `render_event(days, ctx)` takes every day's output and
returns one artifact, an Atom feed (feedgen) with one entry per day that has a digest:
its subject, preheader, the day's items as a short HTML list and a link to the web
archive. Deterministic: every time in it comes from the build's inputs, never from the
clock: a day's entry is dated when its digest is planned to go out (the digest time of
`schedules/<event>.toml`, a build input like the content; never the state store), or at
the end of the day at the venue when there is no schedule.

The feed is written here (`atom`), in exactly the bytes feedgen's `atom_str(pretty=True)`
gives, for the common case of text XML holds as it is; feedgen (with lxml and dateutil, ~10 ms
to import on every build) writes any feed with an empty field or a character outside that
(tests/test_feed.py holds the two to the same bytes).
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Entry:
    """One day's entry of the feed."""

    url: str
    title: str
    time: dt.datetime  # both `updated` and `published`
    summary: str
    content: str  # HTML, carried as escaped text (type="html")


@dataclass(frozen=True)
class Feed:
    """What the feed says, before it is written."""

    url: str
    title: str
    subtitle: str
    author: str
    archive: str
    logo: str | None
    language: str
    updated: dt.datetime
    entries: tuple[Entry, ...]


def render_event(days: Sequence[DayOutput], ctx: RenderContext) -> Rendered:
    settings = ctx.project.settings
    event = ctx.content.event
    found = []
    for out in days:
        digest = next((a for a in out.rendered.artifacts if a.path == "digest.html"), None)
        if digest is not None:
            found.append((out.day, digest))
    archive_url = settings.email.archive_url
    feed_url = feed_location(settings.email.feed_url, archive_url, event.id)
    if not found or not archive_url or not feed_url:
        return Rendered()
    planned, warnings = send_times(ctx)

    def entry_time(day: Day) -> dt.datetime:
        return planned.get(day.date) or day_end(day)

    feed = Feed(
        url=feed_url,
        title=f"{event.short_name}: {event.name}",
        subtitle=f"Daily digest from {event.publisher}",
        author=event.publisher,
        archive=archive_index(archive_url, event.id),
        logo=settings.brand.logo_url,
        language=event.language,
        updated=max(entry_time(day) for day, _ in found),
        entries=tuple(
            Entry(
                url=archive_url.format(event=event.id, date=day.key),
                title=str(digest.meta.get("subject", day.title)),
                time=entry_time(day),
                summary=str(digest.meta.get("preheader", "")) or day.title,
                content=_summary_html(day),
            )
            for day, digest in found
        ),
    )
    data = atom(feed)
    return Rendered(
        artifacts=(
            Artifact(
                path=FEED,
                data=data if data is not None else feedgen_atom(feed),
                sources=tuple(r.id for d, _ in found for r in d.records),
                meta={"entries": len(found)},
            ),
        ),
        warnings=tuple(warnings),
    )


def feedgen_atom(feed: Feed) -> bytes:
    """The feed as feedgen writes it (`atom_str(pretty=True)`)."""
    from feedgen.feed import FeedGenerator

    fg = FeedGenerator()
    fg.id(feed.url)
    fg.title(feed.title)
    fg.subtitle(feed.subtitle)
    fg.author({"name": feed.author})
    fg.link(href=feed.url, rel="self", type="application/atom+xml")
    fg.link(href=feed.archive, rel="alternate")
    if feed.logo:
        fg.icon(feed.logo)
        fg.logo(feed.logo)
    fg.language(feed.language)
    fg.generator("aspdigest")
    fg.updated(feed.updated)
    for item in feed.entries:
        entry = fg.add_entry(order="append")
        entry.id(item.url)
        entry.title(item.title)
        entry.link(href=item.url, rel="alternate", type="text/html")
        entry.updated(item.time)
        entry.published(item.time)
        entry.summary(item.summary)
        entry.content(item.content, type="html")
    data: bytes = fg.atom_str(pretty=True)
    return data


# What XML 1.0 holds as it is: text without a carriage return (which lxml writes as &#13;),
# attribute values without tab, line feed or carriage return (written as character
# references); no control character (lxml refuses one) and no U+FFFE or U+FFFF.
_TEXT = re.compile("[\t\n\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]+")
_ATTRIBUTE = re.compile("[\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]+")


def _text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _attribute(value: str) -> str:
    return _text(value).replace('"', "&quot;")


def atom(feed: Feed) -> bytes | None:
    """The bytes `feedgen_atom` gives, or None when a field is empty or holds a character
    XML does not carry as it is (feedgen then writes the feed, or says what is wrong)."""
    texts = [feed.url, feed.title, feed.subtitle, feed.author, feed.language, "aspdigest"]
    attributes = [feed.url, feed.archive, feed.language]
    if feed.logo is not None:
        texts.append(feed.logo)
    for item in feed.entries:
        texts += [item.url, item.title, item.summary, item.content]
        attributes.append(item.url)
    if feed.logo == "" or not all(_TEXT.fullmatch(t) for t in texts):
        return None
    if not all(_ATTRIBUTE.fullmatch(a) for a in attributes):
        return None
    if any(t.tzinfo is None for t in (feed.updated, *(e.time for e in feed.entries))):
        return None

    def element(name: str, value: str, indent: str = "  ") -> str:
        return f"{indent}<{name}>{_text(value)}</{name}>\n"

    parts = [
        "<?xml version='1.0' encoding='UTF-8'?>\n",
        f'<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="{_attribute(feed.language)}">\n',
        element("id", feed.url),
        element("title", feed.title),
        element("updated", feed.updated.isoformat()),
        "  <author>\n",
        element("name", feed.author, "    "),
        "  </author>\n",
        f'  <link href="{_attribute(feed.url)}" rel="self" type="application/atom+xml"/>\n',
        f'  <link href="{_attribute(feed.archive)}" rel="alternate"/>\n',
        element("generator", "aspdigest"),
    ]
    if feed.logo:
        parts += [element("icon", feed.logo), element("logo", feed.logo)]
    parts.append(element("subtitle", feed.subtitle))
    for item in feed.entries:
        parts += [
            "  <entry>\n",
            element("id", item.url, "    "),
            element("title", item.title, "    "),
            element("updated", item.time.isoformat(), "    "),
            f'    <content type="html">{_text(item.content)}</content>\n',
            # feedgen writes an entry's link with its href only (it looks rel and type up on
            # the new element instead of the link it was given).
            f'    <link href="{_attribute(item.url)}"/>\n',
            element("summary", item.summary, "    "),
            element("published", item.time.isoformat(), "    "),
            "  </entry>\n",
        ]
    parts.append("</feed>\n")
    return "".join(parts).encode("utf-8")
