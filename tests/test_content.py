"""content.py: every problem in every file as one exact line; valid input as typed values."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from aspdigest.cli import app
from aspdigest.config import load_project
from aspdigest.content import load_content
from aspdigest.errors import ContentError
from aspdigest.records import DayInfo, Event, Link, Quote, Record, RecordMeta, describe

FIXTURES = Path(__file__).resolve().parent / "fixtures"
INVALID = FIXTURES / "invalid"
DAY = "content/demo/2025-03-10"

# fixture file → (where it goes in the tiny project, the exact lines `aspdigest check` prints)
CASES: dict[str, tuple[str, list[str]]] = {
    "missing-title.md": (
        DAY,
        [
            f"{DAY}/missing-title.md: title: required field missing",
        ],
    ),
    "unknown-key.md": (
        DAY,
        [
            f'{DAY}/unknown-key.md: speaker: unknown field; did you mean "speakers"?',
        ],
    ),
    "wrong-type.md": (
        DAY,
        [
            f'{DAY}/wrong-type.md: order: expected a whole number, got the text "two"',
        ],
    ),
    "tags-not-list.md": (
        DAY,
        [
            f'{DAY}/tags-not-list.md: tags: expected a list, got the text "asp" '
            '(write [asp] or one "- item" line per item)',
        ],
    ),
    "unquoted-time.md": (
        DAY,
        [
            f'{DAY}/unquoted-time.md: time: expected "HH:MM" in quotes, got the number 795',
        ],
    ),
    "bad-time.md": (
        DAY,
        [
            f'{DAY}/bad-time.md: time: expected "HH:MM" (24-hour clock), got "25:00"',
        ],
    ),
    "bad-kind.md": (
        DAY,
        [
            f"{DAY}/bad-kind.md: kind: expected one of session, side-event, statement, launch, "
            'report, screening, plea, closing; got the text "panel"',
        ],
    ),
    "outside-dates.md": (
        "content/demo/2025-03-20",
        [
            "content/demo/2025-03-20/outside-dates.md: date: 2025-03-20 is outside the event's "
            "dates (2025-03-10 to 2025-03-12)",
        ],
    ),
    "not-a-date.md": (
        "content/demo/day-one",
        [
            'content/demo/day-one/not-a-date.md: date: folder "day-one" is not a date; '
            "name day folders YYYY-MM-DD",
        ],
    ),
    "quote-by.md": (
        DAY,
        [
            f'{DAY}/quote-by.md: quotes[0].by: "Akane" is not a speaker of this record; '
            'did you mean "Tomoko Akane"?',
        ],
    ),
    "keynote.md": (
        "content/demo/2025-03-11",
        [
            'content/demo/2025-03-11/keynote.md: id: duplicate id "keynote", also used by '
            f"{DAY}/keynote.md; rename one of the files",
        ],
    ),
    "non-http-link.md": (
        DAY,
        [
            f"{DAY}/non-http-link.md: links[0].url: expected an http(s) URL, got "
            '"ftp://example.org/report.pdf"',
            f'{DAY}/non-http-link.md: links[1].url: expected an http(s) URL, got "javascript:alert(1)"',
        ],
    ),
    "empty.md": (
        DAY,
        [
            f"{DAY}/empty.md: file is empty; a record starts with front matter between two --- "
            "lines (title, kind, summary)",
        ],
    ),
    "invalid-yaml.md": (
        DAY,
        [
            f"{DAY}/invalid-yaml.md: front matter: invalid YAML at line 4: "
            "found unexpected end of stream while scanning a quoted scalar",
        ],
    ),
    "invalid-utf8.md": (
        DAY,
        [
            f"{DAY}/invalid-utf8.md: encoding: not valid UTF-8 (byte 0xe9 on line 2); "
            "save the file as UTF-8",
        ],
    ),
    "no-front-matter.md": (
        DAY,
        [
            f'{DAY}/no-front-matter.md: front matter: missing; start the file with a line "---", '
            'then title, kind and summary, then "---"',
        ],
    ),
    "Keynote Talk.md": (
        DAY,
        [
            f'{DAY}/Keynote Talk.md: id: file name "Keynote Talk.md" is not a slug '
            "(lowercase letters, digits, hyphens)",
        ],
    ),
    "event-bad-timezone.toml": (
        "content/demo/event.toml",
        [
            'content/demo/event.toml: timezone: unknown time zone "Europe/Amsterdan"; '
            'did you mean "Europe/Amsterdam"?',
        ],
    ),
    "event-id-and-dates.toml": (
        "content/demo/event.toml",
        [
            'content/demo/event.toml: id: "demo2" does not match the folder name "demo"',
            "content/demo/event.toml: end: 2025-03-01 is before start 2025-03-10",
        ],
    ),
    "event-fields.toml": (
        "content/demo/event.toml",
        [
            "content/demo/event.toml: name: required field missing",
            'content/demo/event.toml: hashtags: expected a list, got the text "DemoConf" '
            '(write [DemoConf] or one "- item" line per item)',
            "content/demo/event.toml: website: unknown field; allowed: id, name, short_name, "
            "publisher, venue, timezone, language, start, end, max_days, hashtags, days, handles",
            # Issue 20: the days are checked even when another field is wrong.
            "content/demo/event.toml: days.2025-04-01: outside the event's dates "
            "(2025-03-10 to 2025-03-12)",
        ],
    ),
    "event-day-outside.toml": (
        "content/demo/event.toml",
        [
            "content/demo/event.toml: days.2025-04-01: outside the event's dates "
            "(2025-03-10 to 2025-03-12)",
            'content/demo/event.toml: days.monday: not a date; write [days."YYYY-MM-DD"]',
        ],
    ),
    # Issue 19: text that reaches a mail header is checked as a mail program decodes it.
    "event-header-injection.toml": (
        "content/demo/event.toml",
        [
            "content/demo/event.toml: short_name: contains a line break, U+2028 (LINE SEPARATOR); "
            "keep it on one line",
            'content/demo/event.toml: publisher: contains the encoded word "=?utf-8?q?Coalition='
            '0AX-Injected:_1?=", which decodes to U+000A (LINE FEED); write the text itself',
            "content/demo/event.toml: days.2025-03-10.title: contains the encoded word "
            '"=?utf-8?q?=0D=0AList-Unsubscribe:_<https://evil.example/u>?=", which decodes to '
            "U+000D (CARRIAGE RETURN); write the text itself",
        ],
    ),
    # Issue 20: every problem of event.toml at once; a hashtag's own problem named.
    "event-hashtags.toml": (
        "content/demo/event.toml",
        [
            'content/demo/event.toml: hashtags[0]: "Women Peace" has a space; a hashtag is one '
            'word, e.g. "WomenPeace"',
            "content/demo/event.toml: hashtags[1]: expected a hashtag without the #, got the "
            'text "#DemoConf"',
            'content/demo/event.toml: hashtags[2]: "ICC-ASP" has "-"; a hashtag is one word of '
            'letters, digits and _, e.g. "ICCASP"',
            "content/demo/event.toml: days.2025-04-01: outside the event's dates "
            "(2025-03-10 to 2025-03-12)",
        ],
    ),
    "short-time.md": (
        DAY,
        [
            f'{DAY}/short-time.md: time: expected "HH:MM" (24-hour clock), got "7:30"; '
            'did you mean "07:30"?',
        ],
    ),
    "quote-by-other.md": (
        DAY,
        [
            f'{DAY}/quote-by-other.md: quotes[0].by: "Tomoko Akane" is a speaker of '
            f"{DAY}/keynote.md, not of this one; add them to this record's speakers",
        ],
    ),
    # Marks of any script around the whole quote; not two quoted phrases, not a word in marks.
    "quote-wrapped.md": (
        DAY,
        [
            f"{DAY}/quote-wrapped.md: quotes[{i}].text: wrapped in its own quotation marks "
            f"({marks}); remove them: aspdigest adds the marks of the quote's language wherever "
            "it is shown"
            for i, marks in enumerate(["“…”", "«…»", "„…“", "「…」", '"…"', "‘…’"])
        ],
    ),
    "schedule-fields.toml": (
        "schedules/demo.toml",
        [
            'schedules/demo.toml: digest.time: expected "HH:MM" (24-hour clock), got "7:30"; '
            'did you mean "07:30"?',
            'schedules/demo.toml: digest.day_ofset: unknown field; did you mean "day_offset"?',
            'schedules/demo.toml: thread.platforms: unknown platform "instagram"; known: x, '
            "bluesky, mastodon, threads, linkedin",
            "schedules/demo.toml: days.2025-04-01: outside demo's dates (2025-03-10 to 2025-03-12)",
        ],
    ),
    "schedule-unquoted-time.toml": (
        "schedules/demo.toml",
        [
            "schedules/demo.toml: line 4: time = 07:30 is not valid TOML; write times in quotes, "
            'e.g. time = "07:30"',
        ],
    ),
    "config-fields.toml": (
        "aspdigest.toml",
        [
            'aspdigest.toml: brand.primary: expected a colour like "#4b2c83", got "purple"',
            'aspdigest.toml: social.platforms: unknown platform "instagram"; known: x, bluesky, '
            "mastodon, threads, linkedin",
            "aspdigest.toml: brand.logo_height: required with brand.logo_url: the logo's height "
            "in pixels when shown 180 px wide (brand.logo_width), so mail programs keep its "
            "space while images are blocked",
        ],
    ),
    "event-invalid-toml.toml": (
        "content/demo/event.toml",
        [
            "content/demo/event.toml: invalid TOML at line 2, column 10: line ends inside a value "
            "(an unclosed quote?)",
        ],
    ),
}


def _project_with(tmp_path: Path, fixture: str, where: str) -> Path:
    root = tmp_path / "project"
    shutil.copytree(FIXTURES / "project", root)
    source = INVALID / fixture
    target = root / where if where.endswith(".toml") else root / where / fixture
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, target)
    return root


def test_valid_fixture_loads_as_typed_values(tmp_path: Path) -> None:
    root = tmp_path / "p"
    shutil.copytree(FIXTURES / "project", root)
    content = load_content(load_project(root, environ={}), "demo")
    assert content.event.timezone == "Europe/Amsterdam"
    assert [r.id for r in content.records] == ["keynote", "panel"]
    keynote = content.records[0]
    assert keynote.date == dt.date(2025, 3, 10)
    assert keynote.time == dt.time(9, 30)
    assert keynote.quotes[0].card is True
    assert keynote.speaker("Tomoko Akane") is not None
    assert keynote.body == "The President opened the conference with a **warning**.\n"
    assert keynote.path == "content/demo/2025-03-10/keynote.md"
    assert len(keynote.sha256) == 64


@pytest.mark.parametrize("fixture", sorted(CASES))
def test_each_invalid_fixture_prints_exactly_its_lines(tmp_path: Path, fixture: str) -> None:
    where, expected = CASES[fixture]
    root = _project_with(tmp_path, fixture, where)
    result = CliRunner().invoke(app, ["check", "demo", "--project", str(root)])
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr.splitlines() == expected
    assert "Traceback" not in result.stderr
    assert not (root / "out").exists()


def test_every_invalid_fixture_is_covered() -> None:
    on_disk = {p.name for p in INVALID.iterdir()} - {"bom.md"}
    assert on_disk == set(CASES)


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    root = _project_with(tmp_path, "bom.md", DAY)
    content = load_content(load_project(root, environ={}), "demo")
    assert any(r.title == "With a byte order mark" for r in content.records)


def test_every_problem_in_every_file_is_reported_at_once(tmp_path: Path) -> None:
    root = tmp_path / "project"
    shutil.copytree(FIXTURES / "project", root)
    for name in ("missing-title.md", "unquoted-time.md", "quote-by.md"):
        shutil.copy(INVALID / name, root / DAY / name)
    shutil.copy(INVALID / "event-bad-timezone.toml", root / "content/demo/event.toml")
    with pytest.raises(ContentError) as info:
        load_content(load_project(root, environ={}), "demo")
    paths = [p.path for p in info.value.problems]
    assert paths == sorted(paths)
    assert len(paths) == 4
    assert {p.split("/")[-1] for p in paths} == {
        "event.toml",
        "missing-title.md",
        "quote-by.md",
        "unquoted-time.md",
    }


def test_records_sort_by_order_then_time_then_name(tmp_path: Path) -> None:
    root = tmp_path / "project"
    shutil.copytree(FIXTURES / "project", root)
    day = root / DAY
    (day / "b-late.md").write_text(
        '---\ntitle: B\nkind: session\ntime: "18:00"\nsummary: S.\n---\n'
    )
    (day / "c-first.md").write_text("---\ntitle: C\nkind: session\norder: 1\nsummary: S.\n---\n")
    (day / "a-untimed.md").write_text("---\ntitle: A\nkind: session\nsummary: S.\n---\n")
    content = load_content(load_project(root, environ={}), "demo")
    first_day = [r.id for r in content.records if r.date == dt.date(2025, 3, 10)]
    assert first_day == ["c-first", "keynote", "b-late", "a-untimed"]


def test_drafts_and_editor_files_are_ignored(tmp_path: Path) -> None:
    root = tmp_path / "project"
    shutil.copytree(FIXTURES / "project", root)
    (root / DAY / "_draft.md").write_text("not even front matter")
    (root / DAY / ".#keynote.md").write_text("lock file")
    content = load_content(load_project(root, environ={}), "demo")
    assert len(content.records) == 2


def test_unknown_event_names_the_ones_there_are(tmp_path: Path) -> None:
    root = tmp_path / "project"
    shutil.copytree(FIXTURES / "project", root)
    result = CliRunner().invoke(app, ["check", "asp99", "--project", str(root)])
    assert result.exit_code == 1
    assert result.stderr == "content/asp99: no such event (no event.toml); events here: demo\n"


def test_asp23_sample_is_valid_and_complete(sample_project) -> None:  # type: ignore[no-untyped-def]
    content = load_content(sample_project, "asp23")
    assert content.event.start == dt.date(2024, 12, 2)
    assert len({r.date for r in content.records}) == 5
    assert 15 <= len(content.records) <= 25


# -- hostile sizes and special files -------------------------------------------------------------


def _demo(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(FIXTURES / "project", root)
    return root


def _check(root: Path) -> subprocess.CompletedProcess[str]:
    """`aspdigest check demo` as a subprocess: a FIFO that blocked it would hit the timeout."""
    return subprocess.run(
        [sys.executable, "-m", "aspdigest", "check", "demo", "-C", str(root)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _set_dates(root: Path, end: str, extra: str = "") -> None:
    event = root / "content/demo/event.toml"
    text = event.read_text().replace("end = 2025-03-12", f"end = {end}{extra}")
    event.write_text(text)


def test_an_event_of_ten_years_is_refused_naming_the_likely_typo(tmp_path: Path) -> None:
    root = _demo(tmp_path)
    _set_dates(root, "2035-03-12")
    result = _check(root)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "content/demo/event.toml: end: the event runs 3,655 days (2025-03-10 to 2035-03-12), "
        "more than max_days (31); is the year of end a typo for 2025-03-12? If the event really "
        "is this long, set max_days = 3655 in event.toml"
    ]


def test_an_event_too_long_without_a_likely_year_typo(tmp_path: Path) -> None:
    root = _demo(tmp_path)
    _set_dates(root, "2025-06-30")
    with pytest.raises(ContentError) as info:
        load_content(load_project(root, environ={}), "demo")
    assert info.value.lines() == [
        "content/demo/event.toml: end: the event runs 113 days (2025-03-10 to 2025-06-30), "
        "more than max_days (31); is start or end a typo? If the event really is this long, "
        "set max_days = 113 in event.toml"
    ]


def test_max_days_allows_a_longer_event(tmp_path: Path) -> None:
    root = _demo(tmp_path)
    _set_dates(root, "2025-05-08", "\nmax_days = 60")  # 60 days, start and end included
    content = load_content(load_project(root, environ={}), "demo")
    assert content.event.max_days == 60 and len(content.event.dates()) == 60
    (root / "content/demo/event.toml").write_text(
        (root / "content/demo/event.toml")
        .read_text()
        .replace("end = 2025-05-08", "end = 2025-05-09")
    )
    with pytest.raises(ContentError) as info:
        load_content(load_project(root, environ={}), "demo")
    assert info.value.lines()[0].startswith(
        "content/demo/event.toml: end: the event runs 61 days (2025-03-10 to 2025-05-09), "
        "more than max_days (60)"
    )
    event = root / "content/demo/event.toml"
    event.write_text(event.read_text().replace("max_days = 60", "max_days = 0"))
    with pytest.raises(ContentError) as info:
        load_content(load_project(root, environ={}), "demo")
    assert info.value.lines() == [
        "content/demo/event.toml: max_days: expected a whole number of at least 1, got the number 0"
    ]


def test_max_days_is_in_the_event_schema() -> None:
    result = CliRunner().invoke(app, ["schema", "event"])
    schema = json.loads(result.stdout)
    assert schema["properties"]["max_days"]["default"] == 31
    assert schema["properties"]["max_days"]["minimum"] == 1


def test_only_regular_files_inside_the_project_of_at_most_256_kb_are_read(tmp_path: Path) -> None:
    root = _demo(tmp_path)
    day = root / DAY
    (day / "zero.md").symlink_to("/dev/zero")  # was a MemoryError at 2.7 GB
    os.mkfifo(day / "x.md")  # was a hang
    header = "---\ntitle: Big\nkind: session\nsummary: S.\n---\n"
    (day / "big.md").write_text(header + "a" * (300 * 1024 - len(header)))
    (day / "limit.md").write_text(header + "a" * (256 * 1024 - len(header)))  # just fits
    secret = tmp_path / "secret.md"  # outside the project
    secret.write_text(header)
    (day / "leak.md").symlink_to(secret)
    (day / "alias.md").symlink_to("keynote.md")  # inside the project: read like any record
    (day / "gone.md").symlink_to("nowhere.md")
    (day / "folder.md").mkdir()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (root / "content/demo/2025-03-12").symlink_to(outside)
    result = _check(root)
    assert result.returncode == 1 and result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f"{DAY}/big.md: 300 KB; a record may be at most 256 KB",
        f"{DAY}/folder.md: not a regular file (a folder); remove it",
        f"{DAY}/gone.md: symlink to {DAY}/nowhere.md, which does not exist",
        f"{DAY}/leak.md: symlink to {secret}, outside the project; "
        "records must be files inside the project",
        f"{DAY}/x.md: not a regular file (a FIFO); remove it",
        f"{DAY}/zero.md: symlink to /dev/zero, outside the project; "
        "records must be files inside the project",
        f"content/demo/2025-03-12: symlink to {outside}, outside the project; "
        "records must be files inside the project",
    ]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda event: event.symlink_to("/dev/zero"),
            "symlink to /dev/zero, outside the project; records must be files inside the project",
        ),
        (lambda event: os.mkfifo(event), "not a regular file (a FIFO); remove it"),
        (
            lambda event: event.write_text("# padding\n" * 30_000),
            "293 KB; event.toml may be at most 256 KB",
        ),
    ],
    ids=["dev-zero", "fifo", "huge"],
)
def test_event_toml_must_be_a_small_regular_file(
    tmp_path: Path, make: Callable[[Path], object], message: str
) -> None:
    root = _demo(tmp_path)
    event = root / "content/demo/event.toml"
    event.unlink()
    make(event)
    result = _check(root)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines()[0] == f"content/demo/event.toml: {message}"


# -- quotes[].excerpt and bidi controls in a quote (issue 14) ----------------------------------


def _keynote_with(tmp_path: Path, quote_lines: str) -> Path:
    root = tmp_path / "p"
    shutil.copytree(FIXTURES / "project", root)
    path = root / DAY / "keynote.md"
    text = path.read_text(encoding="utf-8")
    start = text.index("quotes:\n")
    end = text.index("links:\n")
    path.write_text(text[:start] + "quotes:\n" + quote_lines + text[end:], encoding="utf-8")
    return root


def test_a_verbatim_excerpt_loads(tmp_path: Path) -> None:
    root = _keynote_with(
        tmp_path,
        '  - text: "If the Court collapses, the rule of law collapses. We will not let it."\n'
        "    by: Tomoko Akane\n"
        '    excerpt: "the rule of law collapses."\n',
    )
    content = load_content(load_project(root, environ={}), "demo")
    assert content.records[0].quotes[0].excerpt == "the rule of law collapses."


@pytest.mark.parametrize(
    ("excerpt", "nearest"),
    [
        ("the rule of law collapse", "the rule of law collapses."),  # cuts a word
        ("the rule of the law collapses.", "the rule of law collapses."),  # a word added
        ("If the court collapses,", "If the Court collapses,"),  # a letter's case changed
    ],
)
def test_an_excerpt_that_is_not_a_verbatim_span_names_the_nearest(
    tmp_path: Path, excerpt: str, nearest: str
) -> None:
    root = _keynote_with(
        tmp_path,
        '  - text: "If the Court collapses, the rule of law collapses."\n'
        "    by: Tomoko Akane\n"
        f'    excerpt: "{excerpt}"\n',
    )
    result = CliRunner().invoke(app, ["check", "demo", "--project", str(root)])
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines() == [
        f"{DAY}/keynote.md: quotes[0].excerpt: not a contiguous span of quotes[0].text in "
        f'whole words, copied exactly; nearest in the quote: "{nearest}"'
    ]


def test_an_override_inside_a_quote_is_refused_naming_the_field(tmp_path: Path) -> None:
    root = _keynote_with(
        tmp_path, '  - text: "Read this \\u202Etxt.exe carefully"\n    by: Tomoko Akane\n'
    )
    result = CliRunner().invoke(app, ["check", "demo", "--project", str(root)])
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines() == [
        f"{DAY}/keynote.md: quotes[0].text: contains U+202E (RIGHT-TO-LEFT OVERRIDE) that is "
        "never closed; close it with U+202C (POP DIRECTIONAL FORMATTING) or remove it"
    ]
    assert not (root / "out").exists()


# -- the content model on its own (records.py) ----------------------------------------------------
# The tests above load whole projects; these call the models directly, so that each rule is
# pinned where a mutation run (`make mutate`, issue 22) sees it: the words of each message, the
# edges of each value.


def _errors(model: type[Any], data: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in caught.value.errors()]


def _record(**fields: Any) -> dict[str, Any]:
    return {"title": "T", "kind": "session", "summary": "S", **fields}


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (None, "nothing (null)"),
        (True, "the boolean true"),
        (False, "the boolean false"),
        (795, "the number 795"),
        (2.5, "the number 2.5"),
        ("13:15", 'the text "13:15"'),
        ([1, 2], "a list"),
        ({"a": 1}, "a table of keys"),
        (dt.datetime(2024, 12, 2, 9, 30), "the date-time 2024-12-02T09:30:00"),
        (dt.date(2024, 12, 2), "the date 2024-12-02"),
        (b"x", "a bytes"),
    ],
)
def test_describe_says_what_yaml_made_of_a_value(value: Any, words: str) -> None:
    assert describe(value) == words


@pytest.mark.parametrize(
    ("text", "time"),
    [
        ("00:00", dt.time(0, 0)),
        ("09:05", dt.time(9, 5)),
        ("23:59", dt.time(23, 59)),
        ("12:00", dt.time(12, 0)),
    ],
)
def test_times_at_the_edges_of_the_clock_are_accepted(text: str, time: dt.time) -> None:
    assert RecordMeta.model_validate(_record(time=text)).time == time


def test_a_time_already_parsed_is_kept() -> None:
    assert RecordMeta.model_validate(_record(time=dt.time(9, 5))).time == dt.time(9, 5)
    assert RecordMeta.model_validate(_record()).time is None


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("24:00", ""),
        ("12:60", ""),
        ("23:60", ""),
        ("7:30", '; did you mean "07:30"?'),
        ("13:15 ", '; did you mean "13:15"?'),
        ("1315", ""),
        ("aa:bb", ""),
    ],
)
def test_times_off_the_clock_are_refused_with_the_format(text: str, hint: str) -> None:
    assert _errors(RecordMeta, _record(time=text)) == [
        f'time: expected "HH:MM" (24-hour clock), got "{text}"{hint}'
    ]


@pytest.mark.parametrize(
    ("value", "got"), [(795, "the number 795"), (True, "the boolean true"), (None, None)]
)
def test_an_unquoted_time_says_what_yaml_read(value: Any, got: str | None) -> None:
    if got is None:  # null is "no time"
        assert RecordMeta.model_validate(_record(time=value)).time is None
        return
    assert _errors(RecordMeta, _record(time=value)) == [
        f'time: expected "HH:MM" in quotes, got {got}'
    ]


def test_each_handle_field_takes_the_registrys_pattern_and_help() -> None:
    from aspdigest.platforms import PLATFORMS
    from aspdigest.records import _handle

    for platform, spec in PLATFORMS.items():
        field = _handle(platform)  # called at import to build `Handles`: checked here
        assert field.default is None
        assert field.description == spec.handle_help
        patterns = [m.pattern for m in field.metadata if hasattr(m, "pattern")]
        assert patterns == ([spec.handle_pattern] if spec.handle_pattern else [])


def test_a_record_finds_its_speakers_and_sources_by_name() -> None:
    record = Record.model_validate(
        _record(
            id="r",
            date=dt.date(2024, 12, 2),
            path="content/x/r.md",
            sha256="0" * 64,
            speakers=[{"name": "Ana"}, {"name": "Bo"}],
            sources=[{"title": "Report A"}, {"title": "Report B"}],
        )
    )
    assert record.speaker("Bo") is record.speakers[1]
    assert record.speaker("Cy") is None and record.speaker(None) is None
    assert record.source("Report B") is record.sources[1]
    assert record.source("Report C") is None and record.source(None) is None


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://example.org:80/a?b=c#d", None),
        ("https://example.org:1/", None),
        ("https://example.org:65535/", None),
        ("https://example.xn--p1ai/", None),
        ("https://example.xn--abcd/", None),  # an IDN top-level domain newer than the list
        ("https://example.org", None),  # no path at all
        ("https://EXAMPLE.ORG/", None),  # upper case, the X of EXAMPLE included
        ("https://example.org/?u=http://u@b.org/", None),  # the host is the first one
        (
            "https://ex%zz.org/",
            'URL host "ex%zz.org" is not a domain name such as example.org',
        ),  # a "%" in the host is the host's problem
        ("https://example.org/" + "a" * 4076, None),  # 4096 characters
        (
            "https://example.org/" + "a" * 4077,
            "URL is 4097 characters long; at most 4096 are linked",
        ),
        (
            'https://example.org/a"b',
            "URL contains U+0022 (QUOTATION MARK) at character 22; encode it as %22",
        ),
        (
            "https://example.org/#a#b",
            "URL contains U+0023 (NUMBER SIGN) at character 23; encode it as %23",
        ),
        (
            "https://example.org/%zz",
            'URL has a "%" not followed by two hex digits at character 21; write %25 for a '
            "percent sign",
        ),
        ("https://u@example.org/", "URL has a user name before its host (…@); remove it"),
        (
            "https://example.org:0/",
            'URL has the port "0"; expected a number from 1 to 65535 (or none)',
        ),
        (
            "https://example.org:65536/",
            'URL has the port "65536"; expected a number from 1 to 65535 (or none)',
        ),
        (
            "https://exämple.org/",
            'URL host "exämple.org" is not ASCII; write it as "xn--exmple-cua.org"',
        ),
        ("https://localhost/", 'URL host "localhost" is not a domain name such as example.org'),
        ("https://-bad.org/", 'URL host "-bad.org" is not a domain name such as example.org'),
        (
            "https://example.notatld/",
            'URL host "example.notatld" does not end in a known top-level domain',
        ),
    ],
)
def test_url_problems_known_answers(url: str, problem: str | None) -> None:
    from aspdigest.records import url_problem

    assert url_problem(url) == problem


def test_words_fragments_and_cards_of_a_quote() -> None:
    from aspdigest.records import Quote, known_language, word_count

    assert word_count("正义必") == 1  # two characters a word, rounded down
    assert [word_count(t) for t in ("one two three", "正义必须实现", "正义abc", "正", "")] == [
        3,
        3,
        2,
        1,
        0,
    ]

    def quote(**fields: Any) -> Quote:
        return Quote.model_validate({"text": "t", **fields})

    eight = "One two three four five six seven eight"
    assert [quote(text=t).fragment for t in (eight + ".", eight[:-6] + ".", eight)] == [
        False,
        True,
        True,
    ]
    assert not quote(text=eight + " 🙏").fragment and not quote(text=eight + " ❤️").fragment
    assert [quote(text="Short.").makes_card, quote(text="Short.", card=True).makes_card] == [
        False,
        True,
    ]
    assert not quote(text=eight + ".", card=False).makes_card
    assert quote(text=eight + ".").makes_card and quote(text="a b c").words == 3
    assert quote(by="Ana").attribution == "Ana" and quote(**{"from": "Doc"}).attribution == "Doc"
    assert quote().attribution == ""
    assert [known_language(t) for t in ("en", "fr-CA", "xx-notreal", "zz")] == [
        True,
        True,
        False,
        False,
    ]


def _kinds(model: type[Any], data: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Each error as (field, pydantic kind, message): the kind is what a program reading
    ValidationError.errors() (an editor plugin, the JSON output) tells the rules apart by."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return [(".".join(map(str, e["loc"])), e["type"], e["msg"]) for e in caught.value.errors()]


@pytest.mark.parametrize(
    ("url", "kind", "message"),
    [
        ("ftp://example.org/", "url_scheme", 'expected an http(s) URL, got "ftp://example.org/"'),
        ("http://a.i", "url_scheme", 'expected an http(s) URL, got "http://a.i"'),  # 10 long
        (
            "https://example.org/a b",
            "url_space",
            'URL contains a space: "https://example.org/a b"; encode it as %20',
        ),
        (
            "https://example.org/\u202e",
            "unsafe_text",
            "URL contains U+202E (RIGHT-TO-LEFT OVERRIDE) that is never closed; close it with "
            "U+202C (POP DIRECTIONAL FORMATTING) or remove it",
        ),
        (
            'https://example.org/a"b',
            "url_syntax",
            "URL contains U+0022 (QUOTATION MARK) at character 22; encode it as %22",
        ),
    ],
)
def test_each_url_rule_has_its_kind_and_words(url: str, kind: str, message: str) -> None:
    assert _kinds(Link, {"title": "t", "url": url}) == [("url", kind, message)]


@pytest.mark.parametrize("url", ["http://a.io", "HTTP://EXAMPLE.ORG/", "https://a.io"])
def test_the_shortest_http_urls_and_upper_case_schemes_are_accepted(url: str) -> None:
    assert Link.model_validate({"title": "t", "url": url}).url == url


def test_the_other_rules_have_their_kinds_and_words() -> None:
    assert _kinds(Quote, {"text": "t", "lang": "english"}) == [
        (
            "lang",
            "lang_tag",
            'expected a BCP 47 language tag such as "en" or "fr-CA", got "english"',
        )
    ]
    assert _kinds(DayInfo, {"title": "a =?utf-8?q?b=0Ac?= d"}) == [
        (
            "title",
            "header_text",
            'contains the encoded word "=?utf-8?q?b=0Ac?=", which decodes to U+000A '
            "(LINE FEED); write the text itself",
        )
    ]
    assert _kinds(RecordMeta, _record(title="  ")) == [("title", "empty", "must not be empty")]
    assert _kinds(RecordMeta, _record(title="a\u202e")) == [
        (
            "title",
            "unsafe_text",
            "contains U+202E (RIGHT-TO-LEFT OVERRIDE) that is never closed; close it with "
            "U+202C (POP DIRECTIONAL FORMATTING) or remove it",
        )
    ]
    assert _kinds(RecordMeta, _record(time="7:3")) == [
        ("time", "time_format", 'expected "HH:MM" (24-hour clock), got "7:3"')
    ]
    assert _kinds(RecordMeta, _record(time=795)) == [
        ("time", "time_format", 'expected "HH:MM" in quotes, got the number 795')
    ]


def test_an_event_lists_its_dates_and_each_days_info() -> None:
    event = Event.model_validate(
        {
            "id": "e",
            "name": "E",
            "short_name": "E",
            "publisher": "P",
            "timezone": "UTC",
            "start": dt.date(2024, 12, 2),
            "end": dt.date(2024, 12, 4),
            "days": {"2024-12-03": {"title": "Day two"}},
            "path": "content/e/event.toml",
            "sha256": "0" * 64,
        }
    )
    assert event.dates() == [dt.date(2024, 12, 2), dt.date(2024, 12, 3), dt.date(2024, 12, 4)]
    assert event.day_info(dt.date(2024, 12, 3)).title == "Day two"
    assert event.day_info(dt.date(2024, 12, 2)) == DayInfo()


def test_an_unknown_time_zone_names_the_nearest_or_an_example() -> None:
    from aspdigest.records import zone_problem

    assert zone_problem("Europe/Amsterdam") is None
    assert zone_problem("Europe/Amsterdm") == (
        'unknown time zone "Europe/Amsterdm"; did you mean "Europe/Amsterdam"?'
    )
    assert zone_problem("Qqqqqq") == (
        'unknown time zone "Qqqqqq" (an IANA name such as "Europe/Amsterdam")'
    )


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("23h59", '; did you mean "23:59"?'),
        ("7h59", '; did you mean "07:59"?'),
        ("24h00", ""),  # off the clock: no time to suggest
        ("7h60", ""),
    ],
)
def test_a_clock_time_written_otherwise_gets_its_did_you_mean_at_the_edges(
    text: str, hint: str
) -> None:
    assert _kinds(RecordMeta, _record(time=text)) == [
        ("time", "time_format", f'expected "HH:MM" (24-hour clock), got "{text}"{hint}')
    ]
