"""The daily email digest: Jinja2 → MJML → HTML, plus its text part, .eml and web archive.

Render stage. `render(day, ctx)` takes one `Day` and returns the artifacts
`digest.mjml`, `digest.html`, `digest.txt`, `digest.eml` and `archive.html` (the HTML
without the per-recipient footer). `digest(day, ctx)` returns the same as a frozen
`Digest` for callers that want the values, not files.

The email's per-recipient parts (address, signed unsubscribe token) are placeholders
here, so the artifacts are deterministic and can be approved; `deliver/` swaps in each
recipient's values at send time (see `render/message.py`). Record text is never trusted
as HTML: templates autoescape, bodies go through `render/markdown.py` (in the per-item
views of `render/emailitems.py`), and the generated MJML is linted (`render/mjml_lint.py`)
before mjml-python compiles it.
"""

from __future__ import annotations

import datetime as dt
import tomllib
import weakref
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import jinja2
from babel.lists import format_list

from aspdigest.days import Day
from aspdigest.errors import Problem, RenderError, UserError
from aspdigest.render import Artifact, RenderContext, Rendered, palette
from aspdigest.render.emailitems import item_view, teaser
from aspdigest.render.feed import feed_location
from aspdigest.render.message import (
    ADDRESS_PLACEHOLDER,
    TOKEN_PLACEHOLDER,
    Letter,
    UnsafeHeader,
    list_id_header,
)
from aspdigest.render.mjml_lint import lint
from aspdigest.render.quotemarks import direction
from aspdigest.render.templates import render_template

KB = 1024
WARN_BYTES = 90 * KB  # Gmail clips a message whose HTML is over about 102 KB
LIMIT_BYTES = 102 * KB
TEMPLATES = {"mjml": "email/digest.mjml.j2", "text": "email/digest.txt.j2"}
LABELS = "email/labels.toml"
CONTENTS_FROM = 3  # a day with this many items opens with an "In this issue" list
SUBJECT_CHARS = 60  # inboxes show about this much of a subject


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
    items = [item_view(day, r, labels, colors) for r in day.records]
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
