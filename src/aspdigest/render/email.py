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
import tomllib
from dataclasses import dataclass
from typing import Any

import jinja2
from babel.lists import format_list
from markupsafe import Markup

from aspdigest.days import Day
from aspdigest.errors import Problem, RenderError, UserError
from aspdigest.records import Link, Record
from aspdigest.render import Artifact, RenderContext, Rendered
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


@dataclass(frozen=True)
class QuoteView:
    text: str  # verbatim, without marks
    marked: str  # with the quotation marks of its language
    lang: str
    dir: str
    by: str
    role: str | None


@dataclass(frozen=True)
class ItemView:
    record: Record
    kind_label: str
    time: dt.time | None
    title: str
    summary: str
    organisers: tuple[str, ...]
    speakers: tuple[str, ...]  # "Name (Role)"
    body_html: Markup
    body_text: str
    quotes: tuple[QuoteView, ...]
    links: tuple[Link, ...]


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


def _quote(record: Record, index: int, event_language: str) -> QuoteView:
    quote = record.quotes[index]
    lang = quote.lang or event_language
    speaker = record.speaker(quote.by)
    return QuoteView(
        text=quote.text,
        marked=marks(lang).wrap(quote.text),
        lang=lang,
        dir=direction(lang),
        by=quote.by,
        role=speaker.role if speaker else None,
    )


def _item(record: Record, labels: dict[str, Any], language: str) -> ItemView:
    return ItemView(
        record=record,
        kind_label=str(labels["kinds"].get(record.kind, record.kind)),
        time=record.time,
        title=record.title,
        summary=record.summary,
        organisers=tuple(record.organisers),
        speakers=tuple(f"{s.name} ({s.role})" if s.role else s.name for s in record.speakers),
        body_html=Markup(to_html(record.body)),
        body_text=to_text(record.body),
        quotes=tuple(_quote(record, i, language) for i in range(len(record.quotes))),
        links=tuple(record.links),
    )


def _setting_template(
    env: jinja2.Environment, name: str, source: str, values: dict[str, Any]
) -> str:
    try:
        text = env.from_string(source).render(**values)
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
    if "{token}" not in email.unsubscribe_url:
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
    items = [_item(r, labels, language) for r in day.records]
    subject = _setting_template(ctx.env, "subject", email.subject, {"event": event, "day": day})
    preheader = _setting_template(
        ctx.env, "preheader", email.preheader, {"event": event, "day": day}
    )
    unsubscribe_url = email.unsubscribe_url.replace("{token}", TOKEN_PLACEHOLDER)
    archive_url = _url(email.archive_url, "archive_url", event=event.id, date=day.key)
    dir_ = direction(language)
    values: dict[str, Any] = {
        "event": event,
        "day": day,
        "items": items,
        "brand": settings.brand.named(event.publisher),
        "labels": labels,
        "subject": subject,
        "preheader": preheader,
        "locale": language,
        "lang": language,
        "dir": dir_,
        "align": "right" if dir_ == "rtl" else "left",
        "unsubscribe_url": unsubscribe_url,
        "archive_url": archive_url,
        "signup_url": email.signup_url,
        "recipient": ADDRESS_PLACEHOLDER,
        "format_list": lambda names: format_list(list(names), locale=language.replace("-", "_")),
    }
    mjml_source = render_template(ctx.env, TEMPLATES["mjml"], {**values, "archive": False})
    html = _compile(mjml_source, f"{where}/digest.mjml")
    archive_source = render_template(ctx.env, TEMPLATES["mjml"], {**values, "archive": True})
    archive_html = _compile(archive_source, f"{where}/archive.mjml")
    text = render_template(ctx.env, TEMPLATES["text"], {**values, "archive": False})
    letter = Letter(
        from_=email.from_,
        subject=subject,
        html=html,
        text=text,
        list_id=list_id_header(settings.brand.named(event.publisher).name or "", email.list_id),
        unsubscribe_url=unsubscribe_url,
        unsubscribe_mailto=_mailto(email.unsubscribe_mailto),
        reply_to=email.reply_to,
        archive_url=archive_url,
        language=language,
    )
    try:
        eml = letter.message(
            date=artifact_date(day), message_id=artifact_message_id(day, email.list_id)
        )
    except UnsafeHeader as exc:  # from a setting; content is refused by `check` before this
        raise RenderError([Problem(where, f"digest.eml {exc.header}", exc.problem)]) from None
    return Digest(subject, preheader, mjml_source, html, text, archive_html, eml, letter)


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
