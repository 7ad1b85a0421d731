"""The email digest renderer: MJML and text (golden), HTML, .eml headers, archive, feed, lint."""

from __future__ import annotations

import binascii
import dataclasses
import datetime as dt
import email.policy
import functools
import html
import re
import string
import xml.etree.ElementTree as ET
from collections.abc import Callable
from email.message import EmailMessage
from email.parser import BytesParser
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aspdigest.build import build
from aspdigest.config import Project, load_project
from aspdigest.content import load_content
from aspdigest.days import Day, plan_days
from aspdigest.deliver.smtp import _wire_body
from aspdigest.errors import RenderError, UserError
from aspdigest.render import RenderContext
from aspdigest.render.email import Digest, digest, render, size_check
from aspdigest.render.feed import render_event
from aspdigest.render.markdown import to_html, to_text
from aspdigest.render.message import (
    _PLACEHOLDERS,
    ADDRESS_PLACEHOLDER,
    SMTP_POLICY,
    TOKEN_PLACEHOLDER,
    Letter,
    UnsafeHeader,
    _personal_qp,
    _qp,
    _qp_pieces,
    recipient_header,
)
from aspdigest.render.mjml_lint import lint
from aspdigest.render.quotemarks import marks
from aspdigest.render.templates import make_environment

DATES = ["2024-12-02", "2024-12-03", "2024-12-04", "2024-12-05", "2024-12-06"]
PAYLOAD = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'


def context(project: Project) -> tuple[RenderContext, list[Day]]:
    content = load_content(project, "asp23")
    return RenderContext(project, content, make_environment(project)), plan_days(content)


def render_day(project: Project, date: str) -> Digest:
    ctx, days = context(project)
    [day] = [d for d in days if d.key == date]
    return digest(day, ctx)


def parse(data: bytes, policy: email.policy.Policy = email.policy.default) -> EmailMessage:
    msg = BytesParser(policy=policy).parsebytes(data)
    assert isinstance(msg, EmailMessage)
    return msg


def quoted_texts(page: str) -> set[str]:
    """The text of every blockquote and pull phrase, its paragraphs joined by a space."""
    found = re.findall(r"<blockquote[^>]*>(.*?)</blockquote>", page, re.S)
    found += re.findall(
        r'<span lang="[^"]+" dir="[^"]+" style="font-style:italic;">(.*?)</span>', page
    )
    return {html.unescape(" ".join(re.sub(r"<[^>]+>", " ", f).split())) for f in found}


class Tags(HTMLParser):
    """Every tag and attribute a browser would see."""

    def __init__(self, source: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(source)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


@pytest.mark.parametrize("date", DATES)
def test_golden_mjml_and_text(
    sample_project: Project, golden: Callable[[str, str], None], date: str
) -> None:
    result = render_day(sample_project, date)
    golden(f"email/{date}.mjml", result.mjml)
    golden(f"email/{date}.txt", result.text)


def test_every_item_quote_and_link_is_in_both_parts(sample_project: Project) -> None:
    ctx, days = context(sample_project)
    for day in days:
        result = digest(day, ctx)
        text = " ".join(result.text.split())
        for record in day.records:
            assert " ".join(record.title.split()) in text
            for quote in record.quotes:
                # Verbatim, with the marks of its language, attributed to its speaker or
                # its source; whole in the HTML too (a long one in paragraphs).
                marked = marks(quote.lang or "en").wrap(quote.text)
                assert " ".join(marked.split()) in text
                assert f"— {quote.by}" in text or f"— from {quote.from_}" in text
                assert marked in quoted_texts(result.html)
            for link in record.links:
                assert f"{link.title}: {link.url}" in result.text
                assert f'href="{link.url}"' in result.html


def test_renderer_artifacts_are_deterministic(sample_project: Project) -> None:
    ctx, days = context(sample_project)
    first, second = render(days[0], ctx), render(days[0], ctx)
    assert [a.path for a in first.artifacts] == [
        "digest.mjml",
        "digest.html",
        "digest.txt",
        "digest.eml",
        "archive.html",
    ]
    assert [a.data for a in first.artifacts] == [a.data for a in second.artifacts]
    html = first.artifacts[1]
    assert html.meta["html_bytes"] == len(html.data) and html.meta["clip_kb"] == 102
    assert html.meta["html_kb"] == round(len(html.data) / 1024, 1)
    assert html.meta["subject"] == "If the ICC collapses, the rule of law collapses | ASP23"
    assert first.warnings == ()
    assert set(html.sources) == {r.id for r in days[0].records}


def test_html_is_accessible_and_complete(sample_project: Project) -> None:
    result = render_day(sample_project, "2024-12-02")
    assert result.html.startswith('<!doctype html><html lang="en" dir="ltr"')
    assert "fonts.googleapis" not in result.html
    tags = Tags(result.html).tags
    assert all(attrs.get("alt") for tag, attrs in tags if tag == "img")
    assert [attrs["lang"] for tag, attrs in tags if tag == "blockquote"] == ["en"]
    assert (
        "h1",
        {"style": "margin:0 0 12px;font-size:26px;line-height:1.25;color:#4b2c83;"},
    ) in tags
    assert sum(1 for tag, _ in tags if tag == "h2") == 3
    assert "Monday, December 2, 2024" in result.html
    assert (
        f"token={TOKEN_PLACEHOLDER}" in result.html and "subscriber@example.invalid" in result.html
    )
    assert "https://example.org/digest/asp23/2024-12-02/" in result.html


def test_logo_gets_alt_text_from_brand(sample_root: Path) -> None:
    toml = sample_root / "aspdigest.toml"
    toml.write_text(
        toml.read_text().replace(
            "[brand]\n",
            '[brand]\nlogo_url = "https://example.org/logo.png"\nlogo_width = 200\nlogo_height = 48\n',
            1,
        )
    )
    result = render_day(load_project(sample_root, environ={}), "2024-12-02")
    [logo] = [a for t, a in Tags(result.html).tags if t == "img"]
    assert logo["src"] == "https://example.org/logo.png"
    assert logo["alt"] == "Women's Initiatives for Gender Justice"
    assert logo["width"] == "200" and logo["height"] == "48"


def test_archive_page_leaves_out_the_recipient(sample_project: Project) -> None:
    result = render_day(sample_project, "2024-12-03")
    for per_recipient in (TOKEN_PLACEHOLDER, "subscriber@example.invalid", "Unsubscribe"):
        assert per_recipient in result.html
        assert per_recipient not in result.archive_html
    assert "This is the web version of a daily email digest." in result.archive_html
    assert "Conflict-related sexual violence in Ukraine" in result.archive_html


def test_archive_page_has_share_tags_with_the_days_preview_card(
    sample_project: Project,
) -> None:
    result = render_day(sample_project, "2024-12-03")
    tags = Tags(result.archive_html).tags
    meta = {a.get("property") or a.get("name"): a.get("content") for t, a in tags if t == "meta"}
    url = "https://example.org/digest/asp23/2024-12-03/"
    image = url + "cards/kit-general-debate-1.preview.png"
    assert {k: v for k, v in meta.items() if k and k.startswith(("og:", "twitter:"))} == {
        "og:type": "article",
        "og:title": result.subject,
        "og:description": result.preheader,
        "og:url": url,
        "og:image": image,
        "og:image:width": "1200",
        "og:image:height": "630",
        "twitter:card": "summary_large_image",
    }
    assert [a["href"] for t, a in tags if t == "link" and a.get("rel") == "canonical"] == [url]
    # The image is a card the build draws, in the day's folder beside archive.html.
    from aspdigest.render.cards import render as cards_render

    ctx, days = context(sample_project)
    day = next(d for d in days if d.key == "2024-12-03")
    assert "cards/kit-general-debate-1.preview.png" in {
        a.path for a in cards_render(day, ctx).artifacts
    }
    # The email itself carries none of them.
    assert "og:" not in result.html and 'rel="canonical"' not in result.html


def test_eml_is_a_complete_message_whose_headers_survive_parsing(sample_project: Project) -> None:
    result = render_day(sample_project, "2024-12-02")
    assert b"\r\n" in result.eml and b"\n" not in result.eml.replace(b"\r\n", b"")
    for policy in (email.policy.default, SMTP_POLICY):
        msg = parse(result.eml, policy)
        assert msg["From"] == "Gender Justice Digest <digest@example.org>"
        assert msg["Reply-To"] == "comms@example.org"
        assert msg["Subject"] == "If the ICC collapses, the rule of law collapses | ASP23"
        assert msg["Date"] == "Mon, 02 Dec 2024 00:00:00 +0100"
        assert msg["Message-ID"] == "<asp23.2024-12-02.digest@asp-digest.example.org>"
        assert msg["List-Id"] == "Women's Initiatives for Gender Justice <asp-digest.example.org>"
        assert msg["List-Unsubscribe"] == (
            f"<https://example.org/unsubscribe?token={TOKEN_PLACEHOLDER}>, "
            f"<mailto:unsubscribe@example.org?subject=unsubscribe%20{TOKEN_PLACEHOLDER}>"
        )
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert msg["List-Archive"] == "<https://example.org/digest/asp23/2024-12-02/>"
        assert msg.get_content_type() == "multipart/alternative"
        plain, html = msg.iter_parts()
        assert isinstance(plain, EmailMessage) and isinstance(html, EmailMessage)
        assert plain.get_content().replace("\r\n", "\n") == result.text
        assert html.get_content().replace("\r\n", "\n") == result.html
    assert Letter.from_eml(result.eml) == result.letter


def test_long_list_unsubscribe_url_is_not_folded_into_an_encoded_word() -> None:
    long_url = "https://unsubscribe.example.org/" + "x" * 300 + "?token=" + TOKEN_PLACEHOLDER
    letter = Letter(
        from_="d@example.org",
        subject="S",
        html="<p>h</p>\n",
        text="t\n",
        list_id="L <l.example.org>",
        unsubscribe_url=long_url,
        unsubscribe_mailto="mailto:u@example.org",
    )
    token = "QW5hQGV4YW1wbGUub3Jn.abcdefghijklmnopqrstuv"
    data = letter.message(
        date=dt.datetime(2024, 12, 2, tzinfo=dt.UTC), message_id="<m@x>", token=token
    )
    raw = data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    assert "=?" not in raw
    header = long_url.replace(TOKEN_PLACEHOLDER, token)
    assert parse(data)["List-Unsubscribe"] == f"<{header}>, <mailto:u@example.org>"


def test_record_text_is_never_trusted_as_html(sample_root: Path) -> None:
    # A raw `"><script>` in a URL is refused by `check` (test_text_safety); its
    # percent-encoded form is a valid URL and must stay inert in the href.
    link = "https://example.org/?q=%22%3E%3Cscript%3Ealert(1)%3C/script%3E"
    (sample_root / "content/asp23/2024-12-02/injection.md").write_text(
        f"""---
title: '{PAYLOAD}'
kind: statement
summary: '{PAYLOAD}'
organisers: ['{PAYLOAD}']
speakers:
  - name: '{PAYLOAD}'
    role: '{PAYLOAD}'
quotes:
  - text: '{PAYLOAD}'
    by: '{PAYLOAD}'
links:
  - title: '{PAYLOAD}'
    url: '{link}'
---
{PAYLOAD} [click](javascript:alert(1)) <a href="javascript:alert(1)">x</a>
""",
        encoding="utf-8",
    )
    event = sample_root / "content/asp23/event.toml"
    event.write_text(
        event.read_text().replace(
            'title = "If the ICC collapses, the rule of law collapses"', "title = '" + PAYLOAD + "'"
        ),
        encoding="utf-8",
    )
    result = render_day(load_project(sample_root, environ={}), "2024-12-02")
    for page in (result.html, result.archive_html):
        tags = Tags(page).tags
        assert not [t for t, _ in tags if t in ("script", "img")]
        assert not [a for _, attrs in tags for a in attrs if a.startswith("on")]
        hrefs = [attrs["href"] for t, attrs in tags if t == "a"]
        assert link in hrefs
        assert not [h for h in hrefs if h and h.lower().startswith("javascript")]
        assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 8
    # The text part is not HTML: it shows the characters as written.
    assert PAYLOAD in result.text


def test_quotes_get_the_marks_and_direction_of_their_language(sample_root: Path) -> None:
    (sample_root / "content/asp23/2024-12-02/voices.md").write_text(
        """---
title: Voices
kind: statement
summary: Three languages.
speakers:
  - name: Amina
quotes:
  - text: La justice n'attend pas, et les victimes non plus.
    by: Amina
    lang: fr
  - text: Gerechtigkeit wartet nicht, und die Opfer warten auch nicht.
    by: Amina
    lang: de
  - text: العدالة لا تنتظر، والضحايا لا ينتظرون أيضا، ولا يجب أن ينتظروا.
    by: Amina
    lang: ar
  - text: Justice tardive
    by: Amina
    lang: fr
---
""",
        encoding="utf-8",
    )
    result = render_day(load_project(sample_root, environ={}), "2024-12-02")
    assert '<blockquote lang="fr" dir="ltr"' in result.html
    assert (
        "«\u202f\u2068La justice n&#39;attend pas, et les victimes non plus.\u2069\u202f»</blockquote>"
        in (result.html)
    )
    assert (
        "„\u2068Gerechtigkeit wartet nicht, und die Opfer warten auch nicht.\u2069“</blockquote>"
        in (result.html)
    )
    assert '<blockquote lang="ar" dir="rtl" style="margin:6px 0 0;border-right:' in result.html
    assert (
        "”\u2068العدالة لا تنتظر، والضحايا لا ينتظرون أيضا، ولا يجب أن ينتظروا.\u2069“</blockquote>"
        in (result.html)
    )
    assert (
        "    «\u202f\u2068La justice n'attend pas, et les victimes non plus.\u2069\u202f»\n    — Amina\n"
        in (result.text)
    )
    # A two-word phrase is set inline, in its language's marks, not as a blockquote.
    assert (
        '<span lang="fr" dir="ltr" style="font-style:italic;">«\u202f\u2068Justice tardive\u2069\u202f»</span>'
        in (result.html)
    )
    assert "«\u202f\u2068Justice tardive\u2069\u202f» — Amina\n" in result.text


def test_event_language_sets_lang_dates_and_labels(sample_root: Path) -> None:
    event = sample_root / "content/asp23/event.toml"
    event.write_text(event.read_text().replace('language = "en"', 'language = "fr"'))
    result = render_day(load_project(sample_root, environ={}), "2024-12-04")
    assert result.html.startswith('<!doctype html><html lang="fr" dir="ltr"')
    assert "ASP23 · Jour 3 · mercredi 4 décembre 2024" in result.text
    assert "ÉVÉNEMENT PARALLÈLE" in result.text
    assert "Se désabonner: https://example.org/unsubscribe?token=" in result.text


def test_subject_and_preheader_come_from_settings(sample_root: Path) -> None:
    toml = sample_root / "aspdigest.toml"
    toml.write_text(
        toml.read_text().replace(
            "[email]\n",
            (
                "[email]\n"
                'subject = "{{ day.date.isoformat() }} | {{ day.records|length }} items"\n'
                'preheader = "{{ day.records[-1].title }}"\n'
            ),
            1,
        )
    )
    result = render_day(load_project(sample_root, environ={}), "2024-12-05")
    assert result.subject == "2024-12-05 | 3 items"
    assert "<title>2024-12-05 | 3 items</title>" in result.html
    assert result.preheader == "ICC Under Siege"
    toml.write_text(
        toml.read_text().replace(
            'preheader = "{{ day.records[-1].title }}"', 'preheader = "{{ day.nope }}"'
        )
    )
    with pytest.raises(RenderError) as err:
        render_day(load_project(sample_root, environ={}), "2024-12-05")
    assert (
        str(err.value)
        == "aspdigest.toml: email.preheader: 'aspdigest.days.Day object' has no attribute 'nope'"
    )


def test_unsubscribe_url_needs_a_token_placeholder(sample_root: Path) -> None:
    toml = sample_root / "aspdigest.toml"
    toml.write_text(toml.read_text().replace("?token={token}", "?t=1"))
    with pytest.raises(UserError) as err:
        render_day(load_project(sample_root, environ={}), "2024-12-02")
    assert str(err.value) == (
        'aspdigest.toml: email.unsubscribe_url: must contain "{token}", '
        "where each recipient's signed unsubscribe token goes"
    )


def test_size_budget_warns_then_fails_naming_the_day(sample_project: Project) -> None:
    _, days = context(sample_project)
    day = days[1]
    assert size_check(day, "x" * (89 * 1024)) == (89 * 1024, [])
    assert size_check(day, "x" * (95 * 1024)) == (
        95 * 1024,
        [
            "digest.html is 95.0 KB, close to Gmail's 102 KB clipping limit (warning from 90 KB); "
            "consider fewer items or shorter bodies"
        ],
    )
    with pytest.raises(RenderError) as err:
        size_check(day, "é" * (52 * 1024))  # 104 KB of UTF-8
    assert str(err.value) == (
        "asp23/2024-12-03: digest.html: 104.0 KB of HTML is over Gmail's 102 KB clipping limit; "
        "move some items to another day or shorten their bodies"
    )


def test_an_overfull_day_fails_the_build(sample_root: Path) -> None:
    body = "\n\n".join(["The panel discussed accountability at length. " * 12] * 4)
    for i in range(40):
        (sample_root / f"content/asp23/2024-12-05/extra-{i}.md").write_text(
            f"---\ntitle: Extra {i}\nkind: session\nsummary: More.\n---\n{body}\n"
        )
    with pytest.raises(RenderError) as err:
        build(load_project(sample_root, environ={}), "asp23")
    assert re.fullmatch(
        r"asp23/2024-12-05: digest\.html: 1\d\d\.\d KB of HTML is over Gmail's "
        r"102 KB clipping limit; move some items to another day or shorten their "
        r"bodies",
        str(err.value),
    )
    assert not (sample_root / "out").exists() or not any((sample_root / "out").iterdir())


def test_day_without_records_has_no_digest(sample_project: Project) -> None:
    ctx, days = context(sample_project)
    empty = Day(days[0].event, days[0].date, 1, "Empty", None, ())
    assert render(empty, ctx).artifacts == ()
    assert render(empty, ctx).warnings == ("no records, so no email digest",)


def test_markdown_bodies_are_sanitised_html_and_plain_text() -> None:
    source = (
        "A *b* [site](https://e.org/?a=1&b=2) [bad](javascript:alert(1)) "
        "<b onclick=x>raw</b>\n\n- one\n- two\n"
    )
    assert to_html(source) == (
        '<p>A <em>b</em> <a href="https://e.org/?a=1&amp;b=2">site</a> '
        "[bad](javascript:alert(1)) &lt;b onclick=x&gt;raw&lt;/b&gt;</p>\n"
        "<ul>\n<li>one</li>\n<li>two</li>\n</ul>"
    )
    assert to_text(source) == (
        "A b site (https://e.org/?a=1&b=2) [bad](javascript:alert(1)) <b onclick=x>raw</b>\n\n"
        "- one\n- two"
    )


LINT_CASES = [
    (
        '<mjml><mj-body><mj-section><mj-column><mj-text colour="red">x</mj-text>'
        "</mj-column></mj-section></mj-body></mjml>",
        'digest.mjml: line 1: unknown attribute "colour" on <mj-text>; did you mean "color"? MJML '
        "would drop it silently",
    ),
    (
        "<mjml><mj-body><mj-section><mj-column><mj-txt>x</mj-txt></mj-column></mj-section>"
        "</mj-body></mjml>",
        "digest.mjml: line 1: unknown MJML tag <mj-txt>; MJML would not render it (known: mj-attributes, "
        "mj-body, mj-breakpoint, mj-button, mj-column, mj-divider, mj-font, mj-group, mj-head, "
        "mj-image, mj-preview, mj-raw, mj-section, mj-spacer, mj-style, mj-table, mj-text, mj-title, "
        "mj-wrapper, mjml)",
    ),
    (
        "<mjml><mj-body><mj-section><mj-text>x</mj-text></mj-section></mj-body></mjml>",
        "digest.mjml: line 1: <mj-text> is not allowed inside <mj-section>; put it in <mj-column>",
    ),
    (
        '<mjml><mj-body><mj-section><mj-column>\n<mj-image src="a.png" /></mj-column></mj-section>'
        "</mj-body></mjml>",
        "digest.mjml: line 2: <mj-image> has no alt text; every image needs one for screen readers "
        "and for clients that block images",
    ),
    (
        '<mjml><mj-body><mj-section><mj-column><mj-text><img src="a.png"></mj-text></mj-column>'
        "</mj-section></mj-body></mjml>",
        "digest.mjml: line 1: <img> has no alt text; every image needs one for screen readers and "
        "for clients that block images",
    ),
    (
        "<mjml><mj-body><mj-section><mj-column><p>x</p></mj-column></mj-section></mj-body></mjml>",
        "digest.mjml: line 1: HTML <p> directly inside <mj-column> would be dropped; wrap it in "
        "<mj-text> or <mj-raw>",
    ),
    (
        "<mjml><mj-body><mj-section><mj-column>loose words</mj-column></mj-section></mj-body></mjml>",
        'digest.mjml: line 1: text "loose words" directly inside <mj-column> would be dropped; put '
        "it in <mj-text>",
    ),
    (
        '<mjml><mj-head><mj-attributes><mj-text shadow="x" /></mj-attributes></mj-head>'
        "<mj-body></mj-body></mjml>",
        'digest.mjml: line 1: unknown attribute "shadow" on <mj-text>; MJML would drop it silently '
        "(allowed: align, color, container-background-color, css-class, font-family, font-size, "
        "font-style, font-weight, height, letter-spacing, line-height, padding, padding-bottom, "
        "padding-left, padding-right, padding-top, text-decoration, text-transform)",
    ),
    (
        "<mjml><mj-body><mj-section><mj-column><mj-text>x</mj-column></mj-section></mj-body></mjml>",
        "digest.mjml: line 1: <mj-text> is not closed before </mj-column>",
    ),
]


@pytest.mark.parametrize(("source", "message"), LINT_CASES)
def test_lint_rejects_what_mjml_would_silently_drop(source: str, message: str) -> None:
    with pytest.raises(RenderError) as err:
        lint(source, "digest.mjml")
    assert err.value.lines()[0] == message


def test_lint_accepts_the_generated_mjml(sample_project: Project) -> None:
    lint(render_day(sample_project, "2024-12-03").mjml, "digest.mjml")


def test_a_project_template_with_a_typo_fails_the_build(sample_root: Path) -> None:
    override = sample_root / "templates/email/digest.mjml.j2"
    override.parent.mkdir(parents=True)
    source = (
        Path(__file__).parents[1] / "src/aspdigest/templates/email/digest.mjml.j2"
    ).read_text()
    override.write_text(
        source.replace(
            'border-width="1px" padding="8px 24px 14px"',
            'border-width="1px" paddin="8px 24px 14px"',
            1,
        )
    )
    with pytest.raises(RenderError) as err:
        build(load_project(sample_root, environ={}), "asp23")
    lines = err.value.lines()
    assert lines[0] == (
        "asp23/2024-12-02/digest.mjml: line 57: unknown attribute "
        '"paddin" on <mj-divider>; did you mean "padding"? MJML would drop it silently'
    )
    assert len(lines) == 3  # one per item of the first day
    override.write_text(
        "{% extends 'email/layout.mjml.j2' %}{% block content %}{{ nope }}{% endblock %}"
    )
    with pytest.raises(RenderError) as err:
        build(load_project(sample_root, environ={}), "asp23")
    assert str(err.value) == "email/digest.mjml.j2: 'nope' is undefined"


def test_build_writes_digests_and_a_deterministic_feed(sample_project: Project) -> None:
    result = build(sample_project, "asp23")
    out = result.written.event_dir
    for date in DATES:
        for name in ("digest.mjml", "digest.html", "digest.txt", "digest.eml", "archive.html"):
            assert (out / date / name).is_file()
    feed = (out / "feed.atom").read_bytes()
    ns = {"a": "http://www.w3.org/2005/Atom"}
    root = ET.fromstring(feed)
    assert root.findtext("a:id", namespaces=ns) == "https://example.org/digest/asp23/feed.atom"
    # Dated when each digest is planned to go out (schedules/asp23.toml: 07:30 the next
    # morning, 08:00 for the last day), never 00:00 of the conference day.
    assert root.findtext("a:updated", namespaces=ns) == "2024-12-07T08:00:00+01:00"
    entries = root.findall("a:entry", ns)
    assert [e.findtext("a:published", namespaces=ns) for e in entries] == [
        "2024-12-03T07:30:00+01:00",
        "2024-12-04T07:30:00+01:00",
        "2024-12-05T07:30:00+01:00",
        "2024-12-06T07:30:00+01:00",
        "2024-12-07T08:00:00+01:00",
    ]
    [alternate] = [link for link in root.findall("a:link", ns) if link.get("rel") == "alternate"]
    assert alternate.get("href") == "https://example.org/digest/asp23/"
    assert [e.findtext("a:id", namespaces=ns) for e in entries] == [
        f"https://example.org/digest/asp23/{d}/" for d in DATES
    ]
    assert entries[2].findtext("a:title", namespaces=ns) == (
        "Gender persecution, gender apartheid and veto abuse | ASP23"
    )
    # Every archive page names the feed for feed readers to discover.
    for date in DATES:
        page = (out / date / "archive.html").read_text()
        assert (
            '<link rel="alternate" type="application/atom+xml" title="ASP23: daily digest" '
            'href="https://example.org/digest/asp23/feed.atom" />'
        ) in page
    ctx, _ = context(sample_project)
    again = render_event(result.days, ctx)
    assert again.artifacts[0].data == feed


# -- issue 19: header injection -----------------------------------------------------------------

INJECTED = "Day one =?utf-8?q?=0D=0AList-Unsubscribe:_<https://evil.example/u>?="
BLANK_LINE = "Day one =?utf-8?q?=0D=0A=0D=0AList-Unsubscribe:_<https://evil.example/u>?="
HEADERS = [
    "From",
    "Reply-To",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "List-Archive",
    "Content-Language",
    "MIME-Version",
    "Content-Type",
]


@pytest.mark.parametrize("title", [INJECTED, BLANK_LINE])
def test_an_encoded_line_break_that_bypassed_check_stays_text_in_the_subject(
    sample_project: Project, title: str
) -> None:
    ctx, days = context(sample_project)
    # As if a title had reached the renderer without `check` (Day is built from DayInfo).
    result = digest(dataclasses.replace(days[0], title=title), ctx)
    for policy in (email.policy.default, SMTP_POLICY):
        msg = parse(result.eml, policy)
        assert msg.keys() == HEADERS
        assert msg.get_all("List-Unsubscribe") == [
            f"<https://example.org/unsubscribe?token={TOKEN_PLACEHOLDER}>, "
            f"<mailto:unsubscribe@example.org?subject=unsubscribe%20{TOKEN_PLACEHOLDER}>"
        ]
        # A mail program shows the title as it was written, "=?…?=" and all.
        assert msg["Subject"] == f"{title} | ASP23"
        assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    head = result.eml.split(b"\r\n\r\n", 1)[0].decode("ascii")
    assert all(len(word) <= 75 for word in re.findall(r"=\?[^?]+\?[bqBQ]\?[^?]*\?=", head))
    assert Letter.from_eml(result.eml) == result.letter


def test_a_control_character_in_a_header_setting_stops_the_build_with_one_line(
    sample_root: Path,
) -> None:
    project = load_project(
        sample_root, environ={"ASPDIGEST_EMAIL_FROM": "Digest <digest@example.org>\r\nBcc: x@y.org"}
    )
    with pytest.raises(RenderError) as err:
        render_day(project, "2024-12-02")
    assert err.value.lines() == [
        "asp23/2024-12-02: digest.eml From: contains the control character "
        "U+000D (CARRIAGE RETURN); remove it"
    ]


def _eml_with(sample_project: Project, old: bytes, new: bytes) -> bytes:
    eml = render_day(sample_project, "2024-12-02").eml
    assert old in eml
    return eml.replace(old, new, 1)


def test_from_eml_refuses_a_second_list_unsubscribe(sample_project: Project) -> None:
    # What a digest built before the fix from the day title looked like.
    data = _eml_with(
        sample_project, b"\r\nDate:", b"\r\nList-Unsubscribe: <https://evil.example/u>\r\nDate:"
    )
    with pytest.raises(UserError) as err:
        Letter.from_eml(data, "out/asp23/2024-12-02/digest.eml")
    assert err.value.lines() == [
        "out/asp23/2024-12-02/digest.eml: List-Unsubscribe: 2 headers where a digest has one; "
        "rebuild it with `aspdigest build`"
    ]


def test_from_eml_refuses_a_header_block_cut_short_by_a_blank_line(
    sample_project: Project,
) -> None:
    data = _eml_with(
        sample_project, b"\r\nDate:", b"\r\n\r\nList-Unsubscribe: <https://e.x/>\r\nDate:"
    )
    with pytest.raises(UserError) as err:
        Letter.from_eml(data)
    fix = "; rebuild it with `aspdigest build`"
    assert err.value.lines() == [
        f"digest.eml: {name}: missing{fix}"
        for name in (
            "Date",
            "Message-ID",
            "List-Id",
            "List-Unsubscribe",
            "List-Unsubscribe-Post",
            "MIME-Version",
            "Content-Type",
        )
    ] + [f"digest.eml: body: expected a text/plain and a text/html part, found text/plain{fix}"]


def test_from_eml_refuses_a_header_that_decodes_to_a_line_break(sample_project: Project) -> None:
    data = _eml_with(
        sample_project,
        b"From: Gender Justice Digest <digest@example.org>",
        b"From: =?utf-8?q?Digest=0AX-Injected:_1?= <digest@example.org>",
    )
    with pytest.raises(UserError) as err:
        Letter.from_eml(data)
    assert err.value.lines() == [
        "digest.eml: From: contains a line break, U+000A (LINE FEED); keep it on one line; "
        "rebuild it with `aspdigest build`"
    ]


def test_a_value_with_a_line_break_is_never_written() -> None:
    letter = Letter(
        from_="d@example.org",
        subject="S\nBcc: x@example.org",
        html="<p>h</p>\n",
        text="t\n",
        list_id="L <l.example.org>",
        unsubscribe_url=f"https://example.org/u?t={TOKEN_PLACEHOLDER}",
    )
    with pytest.raises(UnsafeHeader) as err:
        letter.message(date=dt.datetime(2024, 12, 2, tzinfo=dt.UTC), message_id="<m@x>")
    assert (
        str(err.value) == "Subject: contains a line break, U+000A (LINE FEED); keep it on one line"
    )


# -- personalising the built message (issue 18: encoded once, joined per recipient) -------------

_TEXT_CHARS = st.sampled_from(["a", "Z", " ", "\t", "=", ".", "é", "€", "\n", "x" * 40, "  \n"])


@settings(max_examples=300, deadline=None)
@given(
    text=st.lists(
        st.one_of(_TEXT_CHARS, st.sampled_from([TOKEN_PLACEHOLDER, ADDRESS_PLACEHOLDER])),
        max_size=40,
    ).map("".join),
    local=st.text(alphabet="abc=.+_-", min_size=1, max_size=70),
)
def test_a_personalised_part_decodes_to_its_text_with_lines_of_at_most_76(
    text: str, local: str
) -> None:
    token = "tok_" + "A9-" * 20
    address = f"{local}@example.org"
    encoded = _personal_qp(_qp_pieces(text), token, address)
    decoded = binascii.a2b_qp(encoded.replace(b"\r\n", b"\n")).decode("utf-8")
    assert decoded == text.replace(TOKEN_PLACEHOLDER, token).replace(ADDRESS_PLACEHOLDER, address)
    assert all(len(line) <= 76 for line in encoded.split(b"\r\n"))
    if not _PLACEHOLDERS.search(text):  # nothing personal: exactly the whole text encoded
        assert encoded == _qp(text)


@settings(max_examples=500, deadline=None)
@given(
    name=st.text(alphabet=string.ascii_letters + string.digits + " .!#'=?-\"é", max_size=40),
    local=st.text(alphabet=string.ascii_letters + string.digits + ".!#'=?+-", min_size=1),
)
def test_the_quick_to_header_is_what_the_policy_writes(name: str, local: str) -> None:
    """Simple names skip parsing the header back; for every name they must say the same."""
    address = f"{local}@example.org"
    try:
        quick: bytes | str = recipient_header(address, name)
    except UnsafeHeader as exc:
        quick = str(exc)
    policy_only = re.compile(r"(?!)")  # matches nothing: every name takes the long way
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("aspdigest.render.message._SIMPLE_NAME", policy_only)
        try:
            slow: bytes | str = recipient_header(address, name)
        except UnsafeHeader as exc:
            slow = str(exc)
    assert quick == slow


@functools.cache
def _asp23_letter() -> Letter:
    return render_day(
        load_project(Path(__file__).resolve().parents[1], environ={}), DATES[1]
    ).letter


@settings(max_examples=300, deadline=None)
@given(
    name=st.text(alphabet=string.ascii_letters + " .,'\"=?-é\r\n\t", max_size=40),
    local=st.from_regex(r"[A-Za-z0-9!#'+_-]{1,20}(\.[A-Za-z0-9!#'+_-]{1,20}){0,3}", fullmatch=True),
    token=st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=1, max_size=90),
)
def test_every_personalised_message_has_crlf_lines_only(name: str, local: str, token: str) -> None:
    """The sender vouches for it (`SmtpSession.begin(crlf=True)`) instead of checking."""
    address = f"{local}@example.org"
    data = _asp23_letter().message(
        date=dt.datetime(2024, 12, 3, 18, 0, tzinfo=dt.UTC),
        message_id="<asp23.2024-12-03.x@asp-digest.example.org>",
        to=address,
        name=name,
        address=address,
        token=token,
    )
    assert data.count(b"\r\n") == data.count(b"\n") == data.count(b"\r")
    assert _wire_body(data, crlf=True) == _wire_body(data)
