"""The daily email digest: Jinja2 → MJML → HTML, plus its text part, .eml and web archive.

Render stage. `render(day, ctx)` takes one `Day` and returns the artifacts
`digest.mjml`, `digest.html`, `digest.txt`, `digest.eml` and `archive.html` (the HTML
without the per-recipient footer). `digest(day, ctx)` returns the same as a frozen
`Digest` for callers that want the values, not files.

The email's per-recipient parts (address, signed unsubscribe token) are placeholders
here, so the artifacts are deterministic and can be approved; `deliver/` swaps in each
recipient's values at send time (see `render/message.py`). Record text is never trusted
as HTML: templates autoescape, bodies go through `render/markdown.py`, and the generated
MJML is linted (`render/mjml_lint.py`) before mjml-python compiles it.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
import weakref
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import jinja2
from babel.lists import format_list
from markupsafe import Markup

from aspdigest.days import Day
from aspdigest.errors import Problem, RenderError, UserError
from aspdigest.records import Link, Record
from aspdigest.render import Artifact, RenderContext, Rendered, palette
from aspdigest.render.feed import feed_location
from aspdigest.render.markdown import to_html, to_text
from aspdigest.render.message import (
    ADDRESS_PLACEHOLDER,
    TOKEN_PLACEHOLDER,
    Letter,
    UnsafeHeader,
    list_id_header,
)
from aspdigest.render.mjml_lint import lint
from aspdigest.render.quotemarks import direction, marks
from aspdigest.render.templates import render_template

KB = 1024
WARN_BYTES = 90 * KB  # Gmail clips a message whose HTML is over about 102 KB
LIMIT_BYTES = 102 * KB
TEMPLATES = {"mjml": "email/digest.mjml.j2", "text": "email/digest.txt.j2"}
LABELS = "email/labels.toml"
CONTENTS_FROM = 3  # a day with this many items opens with an "In this issue" list
SUBJECT_CHARS = 60  # inboxes show about this much of a subject


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


@dataclass(frozen=True)
class Digest:
    subject: str
    preheader: str
    mjml: str
    html: str
    text: str
    archive_html: str
    eml: bytes
    letter: Letter


def _labels(env: jinja2.Environment, language: str) -> dict[str, Any]:
    assert env.loader is not None
    source, filename, _ = env.loader.get_source(env, LABELS)
    try:
        table = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        raise RenderError([Problem(filename or LABELS, "", f"invalid TOML: {exc}")]) from None
    english: dict[str, Any] = table.get("en", {})
    chosen: dict[str, Any] = table.get(
        language.lower(), table.get(language.split("-")[0].lower(), {})
    )
    merged = {**english, **chosen}
    merged["kinds"] = {**english.get("kinds", {}), **chosen.get("kinds", {})}
    return merged


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


def _item(day: Day, record: Record, labels: dict[str, Any], colors: dict[str, str]) -> ItemView:
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


# The subject and preheader settings compiled once per environment (a build renders them for
# every day, and the social renderer once more for the Bluesky link cards).
_SETTING_TEMPLATES: weakref.WeakKeyDictionary[jinja2.Environment, dict[str, jinja2.Template]] = (
    weakref.WeakKeyDictionary()
)


def _setting_template(
    env: jinja2.Environment, name: str, source: str, values: dict[str, Any]
) -> str:
    try:
        compiled = _SETTING_TEMPLATES.setdefault(env, {})
        if source not in compiled:
            compiled[source] = env.from_string(source)
        text = compiled[source].render(**values)
    except (jinja2.TemplateError, IndexError, AttributeError) as exc:
        raise RenderError([Problem("aspdigest.toml", f"email.{name}", f"{exc}")]) from None
    return " ".join(text.split())


def _url(template: str, setting: str, **values: str) -> str:
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError) as exc:
        raise UserError(
            [
                Problem(
                    "aspdigest.toml",
                    f"email.{setting}",
                    (f"unknown placeholder {exc}; use {', '.join('{' + k + '}' for k in values)}"),
                )
            ]
        ) from None


def _mailto(setting: str | None) -> str | None:
    if not setting:
        return None
    if setting.startswith("mailto:"):
        return setting.replace("{token}", TOKEN_PLACEHOLDER)
    return f"mailto:{setting}?subject=unsubscribe%20{TOKEN_PLACEHOLDER}"


def _compile(mjml_source: str, path: str) -> str:
    from mjml import mjml2html

    lint(mjml_source, path)
    try:
        html: str = mjml2html(mjml_source, fonts={})
    except Exception as exc:  # MRML raises plain exceptions with a parser message
        raise RenderError([Problem(path, "", f"MJML did not compile: {exc}")]) from None
    return html if html.endswith("\n") else html + "\n"


def artifact_date(day: Day) -> dt.datetime:
    """The Date of the built .eml: midnight of the day at the venue (never the build time)."""
    return dt.datetime.combine(day.date, dt.time(0, 0), tzinfo=day.event.tz)


def artifact_message_id(day: Day, list_id: str) -> str:
    return f"<{day.event.id}.{day.key}.digest@{list_id}>"


def digest(day: Day, ctx: RenderContext) -> Digest:
    settings = ctx.project.settings
    email = settings.email
    event = day.event
    language = event.language
    where = f"{event.id}/{day.key}"
    if "{token}" not in email.unsubscribe:
        raise UserError(
            [
                Problem(
                    "aspdigest.toml",
                    "email.unsubscribe_url",
                    (
                        'must contain "{token}", where each recipient\'s signed unsubscribe token goes'
                    ),
                )
            ]
        )
    labels = _labels(ctx.env, language)
    colors = palette.light(settings.brand)
    items = [_item(day, r, labels, colors) for r in day.records]
    subject, preheader = subject_and_preheader(day, ctx, labels)
    # Unset: a marker under .invalid (settings_warnings says so; approval refuses it).
    unsubscribe_url = email.unsubscribe.replace("{token}", TOKEN_PLACEHOLDER)
    preferences_url = (
        email.preferences_url.replace("{token}", TOKEN_PLACEHOLDER)
        if email.preferences_url
        else None
    )
    archive_url = (
        _url(email.archive_url, "archive_url", event=event.id, date=day.key)
        if email.archive_url
        else None
    )
    dir_ = direction(language)
    values: dict[str, Any] = {
        "event": event,
        "day": day,
        "items": items,
        "contents": items if len(items) >= CONTENTS_FROM else [],
        "brand": settings.brand.named(event.publisher),
        "colors": colors,
        "dark": palette.dark(settings.brand),
        "labels": labels,
        "subject": subject,
        "preheader": preheader,
        "locale": language,
        "lang": language,
        "dir": dir_,
        "align": "right" if dir_ == "rtl" else "left",
        "unsubscribe_url": unsubscribe_url,
        "preferences_url": preferences_url,
        "archive_url": archive_url,
        "feed_url": feed_location(email.feed_url, email.archive_url, event.id),
        "signup_url": email.signup_url,
        "recipient": ADDRESS_PLACEHOLDER,
        "format_list": lambda names: format_list(list(names), locale=language.replace("-", "_")),
    }
    values["og_image"] = og_image(day, archive_url) if archive_url else None
    mjml_source = render_template(ctx.env, TEMPLATES["mjml"], {**values, "archive": False})
    html = _compile(mjml_source, f"{where}/digest.mjml")
    archive_source = render_template(ctx.env, TEMPLATES["mjml"], {**values, "archive": True})
    archive_html = _compile(archive_source, f"{where}/archive.mjml")
    text = render_template(ctx.env, TEMPLATES["text"], {**values, "archive": False})
    brand = settings.brand.named(event.publisher)
    letter = Letter(
        from_=email.sender(brand.name or event.publisher),
        subject=subject,
        html=html,
        text=text,
        list_id=list_id_header(brand.name or "", email.list_name),
        unsubscribe_url=unsubscribe_url,
        unsubscribe_mailto=_mailto(email.unsubscribe_mailto),
        reply_to=email.reply_to,
        archive_url=archive_url,
        language=language,
    )
    try:
        eml = letter.message(
            date=artifact_date(day), message_id=artifact_message_id(day, email.list_name)
        )
    except UnsafeHeader as exc:  # from a setting; content is refused by `check` before this
        raise RenderError([Problem(where, f"digest.eml {exc.header}", exc.problem)]) from None
    return Digest(subject, preheader, mjml_source, html, text, archive_html, eml, letter)


def subject_and_preheader(
    day: Day, ctx: RenderContext, labels: dict[str, Any] | None = None
) -> tuple[str, str]:
    """The digest's subject and preheader: also the archive page's og:title and
    og:description, and so the title and description of a link card to it."""
    email = ctx.project.settings.email
    labels = labels if labels is not None else _labels(ctx.env, day.event.language)
    values = {
        "event": day.event,
        "day": day,
        "day_preheader": day.event.day_info(day.date).preheader,
        "teaser": teaser(day, labels),
    }
    subject = _setting_template(ctx.env, "subject", email.subject, values)
    return subject, _setting_template(ctx.env, "preheader", email.preheader, values)


def og_card(day: Day) -> tuple[str, int] | None:
    """The record id and quote index whose preview-size card is the day's share image."""
    ranked = sorted(day.records, key=lambda r: not r.highlight)
    for record in ranked:
        for index, quote in enumerate(record.quotes):
            if quote.makes_card:
                return record.id, index
    return None


def og_image(day: Day, archive_url: str) -> str | None:
    """The archive page's share image: the preview-size card (1200×630, the size link
    previews use) of the day's first carded quote, a highlighted record's first, as an
    absolute URL; the archive folder holds the day's cards/ beside archive.html."""
    card = og_card(day)
    if card is None:
        return None
    return urljoin(archive_url, f"cards/{card[0]}-{card[1] + 1}.preview.png")


def subject_warning(day: Day, subject: str) -> Problem | None:
    """A subject longer than an inbox shows: a warning naming the day's title."""
    if len(subject) <= SUBJECT_CHARS:
        return None
    return Problem(
        day.event.path,
        f"days.{day.key}.title",
        f'the digest\'s subject is {len(subject)} characters ("{subject}"); inboxes show '
        f"about {SUBJECT_CHARS}, so shorten the day's title (or email.subject)",
    )


def subject_warnings(ctx: RenderContext, days: list[Day]) -> list[Problem]:
    """The subject warning of every day with records, for `check`."""
    email = ctx.project.settings.email
    labels = _labels(ctx.env, ctx.content.event.language)
    out = []
    for day in days:
        if not day.records:
            continue
        values = {"event": day.event, "day": day, "day_preheader": None, "teaser": ""}
        values["teaser"] = teaser(day, labels)
        subject = _setting_template(ctx.env, "subject", email.subject, values)
        warning = subject_warning(day, subject)
        if warning is not None:
            out.append(warning)
    return out


def size_check(day: Day, html: str) -> tuple[int, list[str]]:
    """The HTML's size in bytes and any warning; over the limit is a RenderError."""
    size = len(html.encode("utf-8"))
    kb = size / KB
    if size > LIMIT_BYTES:
        raise RenderError(
            [
                Problem(
                    f"{day.event.id}/{day.key}",
                    "digest.html",
                    (
                        f"{kb:.1f} KB of HTML is over Gmail's 102 KB clipping limit; move some items to "
                        "another day or shorten their bodies"
                    ),
                )
            ]
        )
    if size >= WARN_BYTES:
        return size, [
            f"digest.html is {kb:.1f} KB, close to Gmail's 102 KB clipping limit "
            "(warning from 90 KB); consider fewer items or shorter bodies"
        ]
    return size, []


def render(day: Day, ctx: RenderContext) -> Rendered:
    if not day.records:
        return Rendered(warnings=("no records, so no email digest",))
    result = digest(day, ctx)
    size, warnings = size_check(day, result.html)
    long_subject = subject_warning(day, result.subject)
    if long_subject is not None:
        warnings.append(f"{long_subject.field}: {long_subject.message}")
    sources = tuple(r.id for r in day.records)
    meta = {"subject": result.subject, "preheader": result.preheader}

    def artifact(path: str, data: bytes, **extra: Any) -> Artifact:
        return Artifact(path=path, data=data, sources=sources, meta={**meta, **extra})

    return Rendered(
        artifacts=(
            artifact("digest.mjml", result.mjml.encode("utf-8")),
            artifact(
                "digest.html",
                result.html.encode("utf-8"),
                html_bytes=size,
                html_kb=round(size / KB, 1),
                clip_kb=LIMIT_BYTES // KB,
            ),
            artifact("digest.txt", result.text.encode("utf-8")),
            artifact("digest.eml", result.eml),
            artifact("archive.html", result.archive_html.encode("utf-8")),
        ),
        warnings=tuple(warnings),
    )
