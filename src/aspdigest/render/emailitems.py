"""The email digest's per-item views: what the digest templates show of each record.

Render stage, inside `render/email.py`: `item_view(day, record, labels, colors)` takes one
record of the day and returns its `ItemView` (kind and local time labels, the body as
sanitised HTML with inline styles and as text, and its quotes as `QuoteView`s: short
fragments grouped by whom they quote, whole statements as blocks, a long one in
paragraphs). `teaser(day, labels)` is the default preview line made of the items'
titles. Nothing here reads settings or templates; `labels` come from the caller.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from aspdigest.days import Day
from aspdigest.records import Link, Record
from aspdigest.render.markdown import to_html, to_text
from aspdigest.render.quotemarks import direction, marks


@dataclass(frozen=True)
class QuoteView:
    text: str  # verbatim, without marks
    marked: str  # with the quotation marks of its language
    lang: str
    dir: str
    by: str | None  # the speaker, or None for a quoted document …
    role: str | None
    source: str | None  # … whose title this is
    url: str | None  # where to read the source
    # A long quote as paragraphs (first sentence, then the rest at body size), marks
    # included; joined with single spaces they give `marked` back. Empty when short.
    parts: tuple[str, ...] = ()


@dataclass(frozen=True)
class ItemView:
    record: Record
    kind_label: str
    time: dt.time | None
    time_label: str  # the local time with its zone, "9:30 AM CET"; "" without a time
    anchor: str  # the id of the item's heading, for the "In this issue" list
    title: str
    summary: str
    organisers: tuple[str, ...]
    speakers: tuple[str, ...]  # "Name (Role)"
    body_html: Markup
    body_text: str
    pulls: tuple[tuple[QuoteView, ...], ...]  # short phrases, grouped by whom they quote
    blocks: tuple[QuoteView, ...]  # whole statements, each in a blockquote
    links: tuple[Link, ...]

    @property
    def quotes(self) -> tuple[QuoteView, ...]:
        return tuple(q for group in self.pulls for q in group) + self.blocks


LONG_QUOTE_WORDS = 60  # over this, a quote is set as its first sentence, then the rest
_PART_WORDS = 45  # the rest of a long quote in paragraphs of about this many words
# A sentence ends at . ! ? … (and any closing marks) before a space and a capital or an
# opening mark; "U.S." or "Dr." (short words with a capital) do not end one.
_SENTENCE_BREAK = re.compile(r"(?<=[.!?…])[\"'’”»)]*(?= +[\"'‘“«(]?[^\W\d_a-z])")
_ABBREVIATION = re.compile(r"(?:^|\s)(?:[A-Z][a-z]?|[A-Z]\.[A-Z])\.$")


def sentences(text: str) -> list[str]:
    """`text` cut into sentences; " ".join(result) == text when spaces between are single."""
    out: list[str] = []
    start = 0
    for match in _SENTENCE_BREAK.finditer(text):
        end = match.end()
        if _ABBREVIATION.search(text[start:end]):
            continue
        out.append(text[start:end])
        start = end + 1
    out.append(text[start:])
    return [s for s in out if s]


def _parts(text: str, marked: str) -> tuple[str, ...]:
    """A long quote's paragraphs, marks included; () when it is not long or is one sentence."""
    if len(text.split()) <= LONG_QUOTE_WORDS or "  " in text or "\n" in text:
        return ()
    found = sentences(text)
    if len(found) < 2:
        return ()
    opening, closing = marked[: marked.index(text)], marked[marked.index(text) + len(text) :]
    paragraphs = [found[0]]
    current: list[str] = []
    for sentence in found[1:]:
        if current and len(" ".join([*current, sentence]).split()) > _PART_WORDS:
            paragraphs.append(" ".join(current))
            current = []
        current.append(sentence)
    paragraphs.append(" ".join(current))
    paragraphs[0] = opening + paragraphs[0]
    paragraphs[-1] = paragraphs[-1] + closing
    return tuple(paragraphs)


def _quote(record: Record, index: int, event_language: str) -> QuoteView:
    quote = record.quotes[index]
    lang = quote.lang or event_language
    speaker = record.speaker(quote.by)
    source = record.source(quote.from_)
    marked = marks(lang).wrap(quote.text)
    return QuoteView(
        text=quote.text,
        marked=marked,
        lang=lang,
        dir=direction(lang),
        by=quote.by,
        role=speaker.role if speaker else None,
        source=source.title if source else None,
        url=source.url if source else None,
        parts=_parts(quote.text, marked),
    )


def time_label(day: Day, time: dt.time | None) -> str:
    """The item's local time and the venue's zone as a reader elsewhere needs it: the
    locale's short time and the zone's abbreviation ("9:30 AM CET", "09:30 CET"), from
    CLDR (Babel) where it has one for the locale, else from the tz database."""
    if time is None:
        return ""
    from babel.dates import format_time, get_timezone_name

    locale = day.language.replace("-", "_")
    when = dt.datetime.combine(day.date, time, tzinfo=day.event.tz)
    zone = get_timezone_name(when, "short", locale=locale)
    if not zone.isalpha():
        zone = when.tzname() or ""
        if not zone.isalpha():  # zones without an abbreviation ("+04"): say UTC+4
            zone = "UTC" + format_time(when, "xxx", locale="en").replace(":00", "")
    return f"{format_time(when, 'short', locale=locale)} {zone}"


_BODY_TAG = re.compile(r"<(a|p|ul|ol|li|blockquote)([ >])")


def _inline_styles(body: str, colors: dict[str, str]) -> str:
    """Inline the colour and margins of a sanitised body's tags (a mail program that drops
    <style> would lose them); the dark-mode rules in <style> still override them."""
    styles = {
        "a": f"color:{colors['link']};text-decoration:underline;",
        "p": "margin:0 0 12px;",
        "ul": "margin:0 0 12px;",
        "ol": "margin:0 0 12px;",
        "li": "margin:0 0 4px;",
        "blockquote": "margin:0 0 12px;padding:0 12px;",
    }
    return _BODY_TAG.sub(lambda m: f'<{m[1]} style="{styles[m[1]]}"{m[2]}', body)


def item_view(day: Day, record: Record, labels: dict[str, Any], colors: dict[str, str]) -> ItemView:
    quotes = [_quote(record, i, day.language) for i in range(len(record.quotes))]
    pulls: dict[tuple[str | None, str | None], list[QuoteView]] = {}
    blocks = []
    for quote, source in zip(quotes, record.quotes, strict=True):
        if source.fragment:
            pulls.setdefault((quote.by, quote.source), []).append(quote)
        else:
            blocks.append(quote)
    return ItemView(
        record=record,
        kind_label=str(labels["kinds"].get(record.kind, record.kind)),
        time=record.time,
        time_label=time_label(day, record.time),
        anchor=f"item-{record.id}",
        title=record.title,
        summary=record.summary,
        organisers=tuple(record.organisers),
        speakers=tuple(f"{s.name} ({s.role})" if s.role else s.name for s in record.speakers),
        body_html=Markup(_inline_styles(to_html(record.body), colors)),
        body_text=to_text(record.body),
        pulls=tuple(tuple(group) for group in pulls.values()),
        blocks=tuple(blocks),
        links=tuple(record.links),
    )


TEASER_CHARS = 110  # what an inbox shows of a preview line, about


def teaser(day: Day, labels: dict[str, Any]) -> str:
    """The preview line when the day gives none: the items' titles, as many as fit."""
    titles = [r.title for r in day.records]
    shown: list[str] = []
    for i, title in enumerate(titles):
        rest = len(titles) - i - 1
        more = f" {labels['more'].format(count=rest)}" if rest else ""
        if shown and len(" · ".join([*shown, title]) + more) > TEASER_CHARS:
            return " · ".join(shown) + f" {labels['more'].format(count=len(titles) - i)}"
        shown.append(title)
    return " · ".join(shown)
