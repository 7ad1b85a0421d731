"""The day's thread before packing: its sections, chosen within the thread budget.

Render stage, under `social.py`: `thread_sections(day, ctx, platform)` takes a `Day` and
returns the sections (a tuple of units each, see `render/threads.py`) that `compose` packs into
posts: the opener, each chosen record's item then its quotes, the closing with the digest link.
Past the budget (`social.max_posts`, per platform), the records marked `highlight` are kept
first, then the others in order, their quotes while the budget allows, and the closing says how
many more the digest has. The text comes from templates/social/{opener,item,quote,closing}.txt.j2.

It also holds what `social.py` shares with the thread for its quote posts and files: the
templates' values (`template_values`), a quote as a unit (`quote_unit`) and the cards per quote
(`QuoteMedia`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

import jinja2
from babel.lists import format_list

from aspdigest.days import Day
from aspdigest.errors import Problem, RenderError, UserError
from aspdigest.records import Event, Record
from aspdigest.render import RenderContext
from aspdigest.render.mentions import Mentions, handle, hashtag_line
from aspdigest.render.quotemarks import marks
from aspdigest.render.quoteposts import CardIndex, attach
from aspdigest.render.templates import render_template
from aspdigest.render.threads import (
    CardQuote,
    Media,
    Platform,
    QuoteUnit,
    Section,
    TextUnit,
)
from aspdigest.render.threads import count as count_posts
from aspdigest.text.excerpt import excerpt
from aspdigest.text.links import linkable

TEMPLATES = {
    "opener": "social/opener.txt.j2",
    "item": "social/item.txt.j2",
    "quote": "social/quote.txt.j2",
    "closing": "social/closing.txt.j2",
}
NUMBER_RESERVE = "\n99/99"  # the widest "3/7" label a thread within budget carries
SENTINEL = "\x00quote\x00"
_PARAGRAPH = re.compile(r"\n[ \t]*\n\s*")


def thread_sections(
    day: Day,
    ctx: RenderContext,
    platform: Platform,
    media: QuoteMedia | None = None,
    values: dict[str, Any] | None = None,
) -> list[Section]:
    """The day's thread before packing: the opener, each chosen record (its item, then its
    quotes), the closing with the digest link. Within the thread budget
    (`social.max_posts`): when the day has more than fits, the records marked `highlight`
    first, then the others in order, and the closing says how many more the digest has."""
    media = media or QuoteMedia(None, [])
    values = values or template_values(day, ctx, platform)
    budget = ctx.project.settings.social.budget(platform.name)
    archive = values["archive_url"]
    # Within the budget the thread is built once per record tried, each time from the same
    # parts: each is made once. An item depends on the record and on what the thread has
    # named and linked before it, so it is remembered under those; a record's quotes and the
    # opener depend on nothing else (the cards' warnings are collected on the first call).
    opener = _opener(day, ctx, platform, values)
    items: dict[tuple[int, frozenset[str], frozenset[str]], _Made] = {}
    quotes: dict[int, list[Section]] = {}
    closings: dict[tuple[int, bool], Section] = {}

    def item(n: int, seen: frozenset[str], used: frozenset[str]) -> _Made:
        # The same frozensets come back from the memo, with their hashes computed once.
        made = items.get((n, seen, used))
        if made is None:
            mentions, now_used = Mentions(day.event, platform.name), set(used)
            mentions.seen = set(seen)
            unit = _item(day.records[n], ctx, platform, values, mentions, now_used)
            made = items[(n, seen, used)] = _Made(
                unit, frozenset(mentions.seen), frozenset(now_used)
            )
        return made

    def build(chosen: set[int], quoted: set[int]) -> list[Section]:
        seen: frozenset[str] = frozenset()
        used = frozenset({archive})
        sections: list[Section] = [(opener,)]
        for n, record in enumerate(day.records):
            if n not in chosen:
                continue
            made = item(n, seen, used)
            seen, used = made.seen, made.used
            sections.append((made.unit,))
            if n in quoted:
                if n not in quotes:
                    quotes[n] = _quote_units(day, ctx, record, platform, media, values)
                sections.extend(quotes[n])
        more = len(day.records) - len(chosen)
        # The closing depends only on how many records are left out and on whether the
        # thread already carries the sign-up link.
        key = (more, values["signup_url"] in used)
        if key not in closings:
            closings[key] = _closing(ctx, values, more, used)
        closing = closings[key]
        return [*sections, closing] if closing else sections

    everything = set(range(len(day.records)))
    sections = build(everything, everything)
    if not platform.rule.thread or _size(sections, platform) <= budget:
        return sections
    order = sorted(everything, key=lambda n: (not day.records[n].highlight, n))
    chosen: set[int] = set()
    for n in order:  # the items first, then their quotes while the budget allows
        if _size(build(chosen | {n}, set()), platform) <= budget:
            chosen.add(n)
    quoted: set[int] = set()
    for n in (n for n in order if n in chosen):
        if _size(build(chosen, quoted | {n}), platform) <= budget:
            quoted.add(n)
    return build(chosen, quoted)


@dataclass(frozen=True)
class _Made:
    """An item unit and what the thread has named and linked once it is posted."""

    unit: TextUnit
    seen: frozenset[str]
    used: frozenset[str]


def _size(sections: list[Section], platform: Platform) -> int:
    """How many posts `compose` makes of the sections (counted, not composed)."""
    return count_posts(sections, platform)


def _opener(day: Day, ctx: RenderContext, platform: Platform, values: dict[str, Any]) -> TextUnit:
    """Post 1: the day's news (hook, else title), the intro when it fits, the hashtags."""
    date_key = f'days."{day.key}"'
    info = (
        (f"{date_key}.hook", day.hook or ""),
        (f"{date_key}.title", day.title),
        (f"{date_key}.intro", day.intro or ""),
    )
    opener = {**values, "hook": day.hook or day.title}
    text = "\n\n".join(paragraphs(_render(ctx.env, "opener", opener)))
    if day.intro and not platform.fits(text + NUMBER_RESERVE):
        text = "\n\n".join(
            paragraphs(_render(ctx.env, "opener", {**opener, "day": _no_intro(day)}))
        )
    return TextUnit(text, day.event.path, (), info)


def _no_intro(day: Day) -> Day:
    return replace(day, intro=None)


def _item(
    record: Record,
    ctx: RenderContext,
    platform: Platform,
    values: dict[str, Any],
    mentions: Mentions,
    used: set[str],
) -> TextUnit:
    """One record as one unit: heading with its organisers, the summary, the speakers with a
    handle here, and its first link not yet in the thread."""
    link = None
    for candidate in record.links:
        if candidate.url not in used:
            used.add(candidate.url)
            # Encoded where this platform's link detection would stop, so all of it is linked.
            link = linkable(candidate.url, platform.name)
            break
    fields = (("title", record.title), ("summary", record.summary))
    seen = set(mentions.seen)
    for named in (True, False):
        # When the item would not fit one post, organisers without a handle here are left
        # out of its heading (the digest names them) before the item is split.
        mentions.seen = set(seen)
        organisers = [
            mentions.name(name)
            for name in record.organisers
            if named or handle(day_event(values), name, platform.name)
        ]
        speakers = mentions.speakers(record)
        text = _render(
            ctx.env,
            "item",
            {**values, "record": record, "organisers": organisers, "speakers": speakers},
        )
        unit = TextUnit("\n\n".join(paragraphs(text)), record.path, (record.id,), fields, link)
        if platform.fits(unit.full + NUMBER_RESERVE):
            break
    return unit


def day_event(values: dict[str, Any]) -> Event:
    event: Event = values["event"]
    return event


def _quote_units(
    day: Day,
    ctx: RenderContext,
    record: Record,
    platform: Platform,
    media: QuoteMedia,
    values: dict[str, Any],
) -> list[Section]:
    """Each quote of `record` as its own section: a carded quote one post (excerpt, card,
    attribution); any other quote whole, split over posts if it must be."""
    out: list[Section] = []
    for index, quote in enumerate(record.quotes):
        unit = quote_unit(day, ctx, record, index, values)
        card = media.get(day, record, index, platform.name) if platform.max_media else None
        if card is None or ctx.project.settings.social.long_quotes == "split":
            out.append((replace(unit, media=(card,)) if card else unit,))
            continue
        before, after = unit.frame_last

        def fits(
            shown: str, before: str = before, after: str = after, unit: QuoteUnit = unit
        ) -> bool:
            return platform.fits(before + unit.marks.wrap(shown) + after + NUMBER_RESERVE)

        cut = excerpt(quote.text, fits, quote.excerpt)
        if cut is None:
            out.append((replace(unit, media=(card,)),))
            continue
        text = before + unit.marks.wrap(cut.shown) + after
        out.append((CardQuote(record.id, index, text, cut.start, cut.end, record.path, (card,)),))
    return out


def _closing(
    ctx: RenderContext, values: dict[str, Any], more: int, used: frozenset[str] | set[str]
) -> Section:
    signup = values["signup_url"] if values["signup_url"] not in used else None
    text = _render(ctx.env, "closing", {**values, "more": more, "signup_url": signup})
    return tuple(TextUnit(p, "aspdigest.toml") for p in paragraphs(text))


def quote_unit(
    day: Day, ctx: RenderContext, record: Record, index: int, values: dict[str, Any]
) -> QuoteUnit:
    quote = record.quotes[index]
    frame, frame_last = _frames(ctx, quote_values(record, index, values))
    return QuoteUnit(
        record.id,
        index,
        quote.text,
        marks(quote.lang or day.event.language),
        frame,
        frame_last,
        record.path,
    )


def _frames(ctx: RenderContext, values: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    out = []
    for last in (False, True):
        text = _render(ctx.env, "quote", {**values, "text": SENTINEL, "last": last}).strip()
        if text.count(SENTINEL) != 1:
            raise RenderError(
                [Problem(TEMPLATES["quote"], "", "must print {{ text }} (the quote) exactly once")]
            )
        before, after = text.split(SENTINEL)
        out.append((before, after))
    return tuple(out)


def quote_values(record: Record, index: int, values: dict[str, Any]) -> dict[str, Any]:
    quote = record.quotes[index]
    speaker = record.speaker(quote.by)
    return {
        **values,
        "record": record,
        "by": quote.attribution,
        "role": speaker.role if speaker and speaker.role else None,
    }


@dataclass
class QuoteMedia:
    """Cards per quote for one platform, and why a quote has none."""

    cards: CardIndex | None
    missing: list[tuple[str, int, str]]

    def get(self, day: Day, record: Record, index: int, platform: str) -> Media | None:
        if self.cards is None:
            return None
        media, why = attach(self.cards, record, index, platform, day.event.language)
        if why is not None and (record.id, index, why) not in self.missing:
            self.missing.append((record.id, index, why))
        return media


def template_values(day: Day, ctx: RenderContext, platform: Platform) -> dict[str, Any]:
    settings = ctx.project.settings
    language = day.event.language
    return {
        "event": day.event,
        "day": day,
        "platform": platform.name,
        "label": platform.label,
        "locale": language,
        "brand": settings.brand.named(day.event.publisher),
        "hashtags": hashtag_line(day.event, platform.name),
        "archive_url": archive_url(ctx, day),
        "signup_url": settings.social.signup_url or settings.email.signup_url,
        "format_list": lambda names: format_list(list(names), locale=language.replace("-", "_")),
    }


def archive_url(ctx: RenderContext, day: Day) -> str | None:
    """The day's digest on the web; None without email.archive_url (posts then link none)."""
    template = ctx.project.settings.email.archive_url
    if not template:
        return None
    try:
        return template.format(event=day.event.id, date=day.key)
    except (KeyError, IndexError, ValueError) as exc:
        raise UserError(
            [
                Problem(
                    "aspdigest.toml",
                    "email.archive_url",
                    f"unknown placeholder {exc}; use {{event}}, {{date}}",
                )
            ]
        ) from None


def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in _PARAGRAPH.split(text.strip()) if p.strip()]


def _render(env: jinja2.Environment, key: str, values: dict[str, Any]) -> str:
    return render_template(env, TEMPLATES[key], values)
