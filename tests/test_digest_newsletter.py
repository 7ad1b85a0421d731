"""Issue 16: the digest as a professional newsletter.

Folded headers, dark mode, inline link colours, header and footer, preheader, quotes in
proportion, sources that are not people, zoned times, and the quote-mark lint.
"""

from __future__ import annotations

import datetime as dt
import email.header
import email.policy
import re
from email.message import EmailMessage
from email.parser import BytesParser
from html.parser import HTMLParser
from pathlib import Path

import pytest

from aspdigest.config import ConfigError, load_project
from aspdigest.content import load_content
from aspdigest.days import plan_days
from aspdigest.errors import ContentError
from aspdigest.readiness import digest_ready
from aspdigest.render import RenderContext
from aspdigest.render.email import Digest, digest, render
from aspdigest.render.emailitems import sentences
from aspdigest.render.message import TOKEN_PLACEHOLDER, Letter, unstructured
from aspdigest.render.palette import contrast, dark
from aspdigest.render.templates import make_environment

SUBJECTS = {
    "fr": "Défense des droits : la Cour pénale internationale face aux sanctions | ASP23",
    "uk": "Україна: правосуддя для постраждалих від сексуального насильства | ASP23",
    "ar": "العدالة لا تنتظر: المحكمة الجنائية الدولية تحت الحصار | ASP23",
    "zh": "国际刑事法院：性别正义与问责，第二十三届缔约国大会闭幕 | ASP23",
    "emoji": "Justice 🇺🇦 for survivors 👩🏽‍⚖️ of conflict-related sexual violence 🎉 | ASP23",
    "long ascii": "If the ICC collapses, the rule of law collapses and the whole world "
    "loses its last court of resort for the gravest crimes | ASP23",
    "encoded-word lookalike": "Day one =?utf-8?q?=0D=0AList-Unsubscribe:_<https://evil.example/u>?=",
}
ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bqBQ]\?[^?\s]*\?=")


def _head(data: bytes) -> str:
    return data.split(b"\r\n\r\n", 1)[0].decode("ascii")


def _foldable(line: str) -> bool:
    """Whether a header line has white space to fold at; not counting the space after the
    header's colon (a first line left empty is legal, but several parsers mishandle it)."""
    if not line.startswith((" ", "\t")):
        line = line.split(":", 1)[1]
    return " " in line.strip()


def _letter(subject: str, from_: str = "Digest <d@example.org>") -> Letter:
    return Letter(
        from_=from_,
        subject=subject,
        html="<p>h</p>\n",
        text="t\n",
        list_id="L <l.example.org>",
        unsubscribe_url=f"https://example.org/u?t={TOKEN_PLACEHOLDER}",
    )


@pytest.mark.parametrize("subject", list(SUBJECTS.values()), ids=list(SUBJECTS))
def test_subject_is_folded_with_short_encoded_words_and_round_trips(subject: str) -> None:
    data = _letter(subject).message(
        date=dt.datetime(2024, 12, 2, tzinfo=dt.UTC), message_id="<m@x>"
    )
    head = _head(data)
    [folded] = re.findall(r"^Subject:.*?(?=\r\n[^ ])", head, re.M | re.S)
    for line in folded.split("\r\n"):
        # Folded at 78 where there is a space; only a single word longer than that may not be.
        assert len(line) <= 78 or not _foldable(line), line
    for word in ENCODED_WORD.findall(head):
        assert len(word) <= 75, word
    for policy in (email.policy.default, email.policy.SMTP, email.policy.compat32):
        msg = BytesParser(policy=policy).parsebytes(data)
        assert isinstance(msg, EmailMessage) or policy is email.policy.compat32
        shown = msg["Subject"]
        if policy is email.policy.compat32:
            unfolded = re.sub(r"\r?\n(?=[ \t])", "", str(shown))
            shown = str(email.header.make_header(email.header.decode_header(unfolded)))
        assert shown == subject
        assert msg.get_all("List-Unsubscribe") is not None
        assert len(msg.get_all("List-Unsubscribe") or []) == 1
    assert Letter.from_eml(data).subject == subject


def test_unstructured_keeps_ascii_words_and_encodes_only_runs_that_need_it() -> None:
    assert unstructured("Subject", "Défense des droits | ASP23") == (
        b"Subject: =?utf-8?Q?D=C3=A9fense?= des droits | ASP23\r\n"
    )
    folded = unstructured("Subject", "word " * 30)  # trailing space: encoded whole, as written
    parsed = BytesParser(policy=email.policy.default).parsebytes(folded + b"\r\n")
    assert parsed["Subject"] == "word " * 30


def test_a_non_ascii_sender_name_is_folded_into_short_encoded_words() -> None:
    name = "Résumé quotidien de la Coalition pour la Cour pénale internationale et ses partenaires"
    data = _letter("S", from_=f"{name} <d@example.org>").message(
        date=dt.datetime(2024, 12, 2, tzinfo=dt.UTC), message_id="<m@x>"
    )
    head = _head(data)
    assert all(len(w) <= 75 for w in ENCODED_WORD.findall(head))
    assert all(len(line) <= 78 for line in head.split("\r\n"))
    msg = BytesParser(policy=email.policy.default).parsebytes(data)
    assert msg["From"].addresses[0].display_name == name


# The subscriber service's sign-up page, linked in the footer for forwarded copies.
SIGNUP = {"ASPDIGEST_EMAIL_SIGNUP_URL": "https://example.org/subscribe"}


def context(root: Path) -> tuple[RenderContext, list]:  # type: ignore[type-arg]
    project = load_project(root, environ=SIGNUP)
    content = load_content(project, "asp23")
    return RenderContext(project, content, make_environment(project)), plan_days(content)


def day_digest(root: Path, date: str) -> Digest:
    ctx, days = context(root)
    return digest(next(d for d in days if d.key == date), ctx)


class Tags(HTMLParser):
    def __init__(self, source: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(source)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_every_sample_digest_has_dark_mode_inline_link_colours_and_the_footer(
    sample_root: Path,
) -> None:
    ctx, days = context(sample_root)
    brand = ctx.project.settings.brand
    for day in days:
        result = digest(day, ctx)
        for page in (result.html, result.archive_html):
            assert '<meta name="color-scheme" content="light dark" />' in page
            assert '<meta name="supported-color-schemes" content="light dark" />' in page
            assert "@media (prefers-color-scheme: dark)" in page
            tags = Tags(page).tags
            for tag, attrs in tags:
                if tag == "a":
                    assert "color:" in (attrs.get("style") or ""), attrs
                if tag in ("h1", "h2", "p"):
                    assert "margin:" in (attrs.get("style") or ""), (tag, attrs)
            assert brand.postal_address and brand.postal_address.replace("'", "&#39;") in page
            # "In this issue": every item's heading is linked from the list at the top.
            anchors = [a["id"] for t, a in tags if t == "h2"]
            assert len(anchors) == len(day.records) >= 3
            assert [a["href"] for t, a in tags if t == "a" and (a["href"] or "")[:1] == "#"] == [
                f"#{anchor}" for anchor in anchors
            ]
        assert "https://example.org/preferences?token=" + TOKEN_PLACEHOLDER in result.html
        assert "Was this forwarded to you?" in result.html
        assert 'href="https://example.org/subscribe"' in result.html
        assert "View this email in your browser" in result.html
        assert "View this email in your browser" not in result.archive_html
        assert TOKEN_PLACEHOLDER not in result.archive_html
        assert len(result.html.encode()) < 40 * 1024


def test_dark_brand_colours_keep_4_5_to_1(sample_root: Path) -> None:
    ctx, _ = context(sample_root)
    palette = dark(ctx.project.settings.brand)
    for name in ("text", "meta", "primary", "accent"):
        assert contrast(palette[name], palette["background"]) >= 4.5, name
    # A brand colour that is far too dark on a dark card is lightened until it reads.
    deep = ctx.project.settings.brand.model_copy(update={"primary": "#1a0a33"})
    assert contrast(dark(deep)["primary"], dark(deep)["background"]) >= 4.5


def test_preheader_is_the_days_own_or_a_teaser_of_the_items(sample_root: Path) -> None:
    result = day_digest(sample_root, "2024-12-04")
    assert result.preheader == (
        "Gender Persecution Principles · Gender Justice in Afghanistan and 2 more"
    )
    intro = "With the general debate over"
    assert not result.preheader.startswith(intro)
    event = sample_root / "content/asp23/event.toml"
    event.write_text(
        event.read_text().replace(
            '[days."2024-12-04"]\n', '[days."2024-12-04"]\npreheader = "Four side events"\n'
        )
    )
    assert day_digest(sample_root, "2024-12-04").preheader == "Four side events"


def test_long_subject_is_a_warning_naming_the_days_title(sample_root: Path) -> None:
    event = sample_root / "content/asp23/event.toml"
    long_title = "Gender persecution, gender apartheid and the abuse of the veto power"
    event.write_text(
        event.read_text().replace("Gender persecution, gender apartheid and veto abuse", long_title)
    )
    ctx, days = context(sample_root)
    rendered = render(days[2], ctx)
    subject = f"{long_title} | ASP23"
    assert rendered.warnings == (
        f"days.2024-12-04.title: the digest's subject is {len(subject)} characters "
        f'("{subject}"); inboxes show about 60, so shorten the day\'s title (or email.subject)',
    )


def test_fragments_are_inline_long_quotes_are_whole_in_paragraphs(sample_root: Path) -> None:
    result = day_digest(sample_root, "2024-12-02")
    # The two phrases: one line, inline, attributed once, no blockquote and no role.
    assert (
        '<span lang="en" dir="ltr" style="font-style:italic;">“\u2068existential threats\u2069”'
        "</span> · "
        '<span lang="en" dir="ltr" style="font-style:italic;">“\u2068draconian economic '
        "sanctions\u2069”</span>"
    ) in result.html
    assert (
        "“\u2068existential threats\u2069” · “\u2068draconian economic sanctions\u2069” — Judge\nTomoko Akane\n"
        in (result.text)
    )
    assert result.html.count("<blockquote") == 1
    # The 130-word quote of day 2: first sentence as the pull line, the rest at body size.
    day2 = day_digest(sample_root, "2024-12-03")
    [kit] = re.findall(r'<blockquote lang="en"[^>]*>(.*?)</blockquote>', day2.html)[:1]
    paragraphs = re.findall(r"<p[^>]*>(.*?)</p>", kit)
    assert len(paragraphs) >= 3
    assert paragraphs[0].startswith("“\u2068Justice at the national level is insufficient")
    assert paragraphs[0].endswith("guarantees of non-recurrence.")
    assert "font-size:16px" in re.findall(r"<p[^>]*>", kit)[1]
    kit = next(r for r in ctx_records(sample_root) if r.id == "kit-general-debate")
    assert " ".join(paragraphs) == f"“\u2068{kit.quotes[0].text}\u2069”"


def ctx_records(root: Path) -> list:  # type: ignore[type-arg]
    return list(load_content(load_project(root, environ={}), "asp23").records)


def test_sentences_are_cut_only_at_sentence_ends() -> None:
    text = "The U.S. imposed sanctions. Dr. Smith spoke! Was it enough? “Yes.” Then silence"
    assert sentences(text) == [
        "The U.S. imposed sanctions.",
        "Dr. Smith spoke!",
        "Was it enough?",
        "“Yes.”",
        "Then silence",
    ]
    assert " ".join(sentences(text)) == text


def test_a_quoted_document_is_a_source_not_a_speaker(sample_root: Path) -> None:
    result = day_digest(sample_root, "2024-12-03")
    assert "With Working draft definition" not in result.text
    assert "— from <cite" in result.html and "Working draft definition of ecocide</cite>" in (
        result.html
    )
    assert "— from Working\ndraft definition of ecocide" in result.text


RECORD = """---
title: Sources
kind: side-event
summary: A record quoting a document.
speakers:
  - name: Amina
sources:
  - title: Draft articles on crimes against humanity
    url: https://legal.un.org/ilc/texts/7_7.shtml
quotes:
{quotes}
---
"""


@pytest.mark.parametrize(
    ("quotes", "message"),
    [
        (
            "  - text: Words of the draft.\n    by: Amina\n"
            "    from: Draft articles on crimes against humanity",
            "quotes[0]: give by (a speaker) or from (a source), not both",
        ),
        (
            "  - text: Words of the draft.",
            "quotes[0]: needs by (a speaker of this record) or from (a source of this record)",
        ),
        (
            "  - text: Words of the draft.\n    from: Draft articles on crimes",
            'quotes[0].from: "Draft articles on crimes" is not a source of this record; '
            'did you mean "Draft articles on crimes against humanity"?',
        ),
        (
            "  - text: Words of the draft.\n    by: Draft articles on crimes against humanity",
            'quotes[0].by: "Draft articles on crimes against humanity" is not a speaker of '
            "this record; speakers: Amina",
        ),
    ],
)
def test_each_quote_names_one_speaker_or_one_source(
    sample_root: Path, quotes: str, message: str
) -> None:
    path = "content/asp23/2024-12-04/sources.md"
    (sample_root / path).write_text(RECORD.format(quotes=quotes), encoding="utf-8")
    with pytest.raises(ContentError) as err:
        load_content(load_project(sample_root, environ={}), "asp23")
    assert err.value.lines() == [f"{path}: {message}"]


def test_mismatched_quote_marks_are_a_warning_and_the_quote_stays(sample_root: Path) -> None:
    content = load_content(load_project(sample_root, environ={}), "asp23")
    assert [str(w) for w in content.warnings] == [
        "content/asp23/2024-12-03/asian-womens-leadership.md: quotes[0].text: quotation "
        "marks do not pair up: “ at character 66 is closed by ’ at character 103; the quote is "
        "published as written, so check it against the source"
    ]
    result = day_digest(sample_root, "2024-12-03")
    assert "“Don’t blow your own horn, be modest.’" in result.text


def test_times_carry_the_venues_zone(sample_root: Path) -> None:
    record = sample_root / "content/asp23/2024-12-02/slavery-policy.md"
    record.write_text(record.read_text().replace("kind: launch\n", 'kind: launch\ntime: "09:30"\n'))
    result = day_digest(sample_root, "2024-12-02")
    assert "LAUNCH · 9:30\u202fAM CET\n" in result.text
    assert "Launch · 9:30\u202fAM CET</p>" in result.html
    assert "Launch · 9:30\u202fAM CET</p>" in result.archive_html
    event = sample_root / "content/asp23/event.toml"
    event.write_text(event.read_text().replace('language = "en"', 'language = "de"'))
    assert "09:30 MEZ" in day_digest(sample_root, "2024-12-02").text


def test_approve_refuses_a_digest_without_a_postal_address(sample_root: Path) -> None:
    settings = load_project(sample_root, environ={}).settings
    assert digest_ready(settings) == []
    toml = sample_root / "aspdigest.toml"
    toml.write_text(re.sub(r"postal_address = .*\n", "", toml.read_text()))
    [problem] = digest_ready(load_project(sample_root, environ={}).settings)
    assert str(problem) == (
        "aspdigest.toml: brand.postal_address: required to approve a digest: the publisher's "
        "postal address, printed in every digest's footer (anti-spam laws such as CAN-SPAM "
        'require one); set it under [brand], e.g. postal_address = "Publisher name, street and '
        'number, postcode city, country"'
    )


def test_a_logo_needs_its_height(sample_root: Path) -> None:
    toml = sample_root / "aspdigest.toml"
    toml.write_text(
        toml.read_text().replace("[brand]\n", '[brand]\nlogo_url = "https://e.org/l.png"\n', 1)
    )
    with pytest.raises(ConfigError) as err:
        load_project(sample_root, environ={})
    assert err.value.lines() == [
        "aspdigest.toml: brand.logo_height: required with brand.logo_url: the logo's height in "
        "pixels when shown 180 px wide (brand.logo_width), so mail programs keep its space "
        "while images are blocked"
    ]


# -- dark mode in a real browser ----------------------------------------------------------------

ARTIFACTS = Path(__file__).parent / "artifacts"


def _pixel(png: bytes, x: int, y: int) -> tuple[int, int, int]:
    from io import BytesIO

    from PIL import Image

    with Image.open(BytesIO(png)) as image:
        r, g, b = image.convert("RGB").getpixel((x, y))  # type: ignore[misc]
        return int(r), int(g), int(b)


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#" + "".join(f"{c:02x}" for c in rgb)


@pytest.mark.parametrize("width", [375, 600])
def test_dark_mode_screenshots_differ_and_stay_readable(sample_root: Path, width: int) -> None:
    from playwright.sync_api import sync_playwright

    page_html = day_digest(sample_root, "2024-12-02").html
    ARTIFACTS.mkdir(exist_ok=True)
    shots: dict[str, bytes] = {}
    colours: dict[str, dict[str, str]] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"]
        )
        try:
            for scheme in ("light", "dark"):
                page = browser.new_page(
                    viewport={"width": width, "height": 900}, color_scheme=scheme
                )
                page.set_content(page_html, wait_until="load")
                shots[scheme] = page.screenshot(full_page=True)
                (ARTIFACTS / f"digest-2024-12-02-{scheme}-{width}.png").write_bytes(shots[scheme])
                colours[scheme] = page.evaluate(
                    """() => {
                        const style = (el) => getComputedStyle(el);
                        const h2 = document.querySelector('h2');
                        const card = h2.closest('.card');
                        const body = h2.closest('td').querySelector('div');
                        const link = document.querySelector('.card a[href^="https://www.icc"]');
                        return {
                            card: style(card).backgroundColor,
                            h2: style(h2).color,
                            body: style(document.querySelector('.card p')).color,
                            link: style(link).color,
                            h1: style(document.querySelector('h1')).color,
                        };
                    }"""
                )
                page.close()
        finally:
            browser.close()
    assert shots["light"] != shots["dark"]

    def rgb(css: str) -> str:
        r, g, b = (int(v) for v in re.findall(r"\d+", css)[:3])
        return _hex((r, g, b))

    light, darkc = colours["light"], colours["dark"]
    assert rgb(light["card"]) == "#ffffff"
    assert rgb(darkc["card"]) == "#1e1b24"
    for name in ("h2", "body", "link", "h1"):
        assert contrast(rgb(darkc[name]), rgb(darkc["card"])) >= 4.5, (name, darkc)
        assert contrast(rgb(light[name]), rgb(light["card"])) >= 4.5, (name, light)
    # The page behind the cards turns dark too (pixel at the left edge, below the header).
    assert sum(_pixel(shots["dark"], 2, 400)) < 120
    assert sum(_pixel(shots["light"], 2, 400)) > 600


# -- a generated conference: 30 items a day, mixed scripts --------------------------------------


def _generated(tmp_path: Path) -> Path:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "generate", Path(__file__).parents[1] / "benchmarks/generate.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    root: Path = module.generate(tmp_path / "synth", days=2, records=60, quotes=40)
    event = root / "content/synth/event.toml"
    event.write_text(
        event.read_text().replace(
            'title = "Day 2 of the Synthetic Assembly"',
            'title = "Правосуддя для постраждалих: день другий"',
        ),
        encoding="utf-8",
    )
    return root


def test_a_generated_30_item_day_passes_every_digest_check(tmp_path: Path) -> None:
    root = _generated(tmp_path)
    project = load_project(root, environ={})
    content = load_content(project, "synth")
    ctx = RenderContext(project, content, make_environment(project))
    for day in plan_days(content):
        assert len(day.records) == 30
        rendered = render(day, ctx)
        html = next(a for a in rendered.artifacts if a.path == "digest.html").data.decode()
        eml = next(a for a in rendered.artifacts if a.path == "digest.eml").data
        assert len(html.encode()) < 102 * 1024
        assert not [w for w in rendered.warnings if "KB" in w]
        head = _head(eml)
        assert all(len(w) <= 75 for w in ENCODED_WORD.findall(head))
        for line in head.split("\r\n"):
            assert len(line) <= 78 or not _foldable(line), line
        msg = BytesParser(policy=email.policy.default).parsebytes(eml)
        assert msg["Subject"] == f"{day.title} | SAGJ"
        assert '<meta name="color-scheme" content="light dark" />' in html
        assert "@media (prefers-color-scheme: dark)" in html
        tags = Tags(html).tags
        assert all("color:" in (a.get("style") or "") for t, a in tags if t == "a")
        assert sum(1 for t, a in tags if t == "a" and (a["href"] or "").startswith("#")) == 30
        assert "Example Street 1" in html


def test_approve_names_the_missing_postal_address_and_approves_nothing(tmp_path: Path) -> None:
    from aspdigest.errors import UserError
    from aspdigest.queue import plan
    from aspdigest.queue.approval import approve
    from aspdigest.store import open_project_store
    from support.delivery_helpers import built_copy

    root = built_copy(tmp_path)
    toml = root / "aspdigest.toml"
    # Removing a setting that only reaches the footer: the built digest is still current.
    toml.write_text(re.sub(r"postal_address = .*\n", "", toml.read_text()))
    proj = load_project(root, environ={})
    with open_project_store(proj) as store:
        plan.plan(proj, "asp23", store)
    with pytest.raises(UserError) as err, open_project_store(proj) as store:
        approve(proj, store, "asp23", dt.date(2024, 12, 2), channel="digest", by="ana")
    assert err.value.lines() == [str(digest_ready(proj.settings)[0])]
    with open_project_store(proj) as store:
        assert all(
            d.status == "planned" for d in store.deliveries("asp23") if d.channel == "digest"
        )
    # Other channels do not need it.
    with open_project_store(proj) as store:
        assert approve(
            proj, store, "asp23", dt.date(2024, 12, 2), channel="thread", platform="x", by="ana"
        )
