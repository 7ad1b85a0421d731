"""Hypothesis over every text field a team writes: records' front matter and body, event.toml,
the subscriber CSV. Whatever the text, `aspdigest check` / `subscribers import` either answer
with `path: field: message` lines and exit 1, or accept it, and then the build succeeds and
nothing it writes (or the CLI prints) holds a control character. Never a traceback.

In-process CLI (typer's CliRunner) and in-process builds of one day of the tiny fixture
project keep each example well under a second; `deadline=None` because a build on a busy
2-core machine can take longer than Hypothesis's default 200 ms.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from aspdigest.build import build
from aspdigest.cli import app
from aspdigest.config import load_project
from aspdigest.errors import UserError

FIXTURES = Path(__file__).resolve().parent / "fixtures"
DAY = dt.date(2025, 3, 10)
KEYNOTE = "content/demo/2025-03-10/keynote.md"
EVENT = "content/demo/event.toml"
runner = CliRunner()

# What a terminal, a mail header or a spreadsheet would act on, mixed with ordinary text.
HOSTILE = [
    *"\x00\x01\x07\x08\x0b\x0c\x0d\x1b\x1f\x7f\x85\x9b\u061c\u200e\u202a\u202c\u202e",
    *"\u2066\u2069\u2028\ufeff\ufffe\uffff\ufdd0\t\n \"'<>=+-@`{}|^\\#%&;()[]!*~:/.",
    *("\U0001fffe", "\U0010ffff", "=?utf-8?q?a=0Db?=", "https://example.org/", "=HYPERLINK("),
]
TEXT = st.lists(
    st.one_of(
        st.sampled_from(HOSTILE),
        st.characters(exclude_categories=("Cs",)),
        st.text(alphabet="abcdefghij XYZ", min_size=1, max_size=6),
    ),
    max_size=12,
).map("".join)
# Control characters a written file may never hold (tab, LF and, in mail, CR are fine).
UNSAFE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufdd0-\ufdef\ufffe\uffff\U0001fffe\U0010ffff]"
)
TERMINAL_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

RECORD: dict[str, Any] = {
    "title": "Opening keynote",
    "kind": "session",
    "time": "09:30",
    "summary": "The President opened the conference.",
    "organisers": ["Demo Coalition"],
    "speakers": [{"name": "Tomoko Akane", "role": "President of the Court"}],
    "quotes": [
        {"text": "If the Court collapses, the rule of law collapses.", "by": "Tomoko Akane"}
    ],
    "links": [{"title": "The Court", "url": "https://www.icc-cpi.int/"}],
    "tags": ["opening"],
}
RECORD_FIELDS = (
    ("title",),
    ("summary",),
    ("organisers", 0),
    ("speakers", 0, "name"),
    ("speakers", 0, "role"),
    ("quotes", 0, "text"),
    ("quotes", 0, "by"),
    ("quotes", 0, "lang"),
    ("links", 0, "title"),
    ("links", 0, "url"),
    ("tags", 0),
    ("body",),
)
EVENT_FIELDS = (
    "name",
    "short_name",
    "publisher",
    "venue",
    "day title",
    "day intro",
    "hashtag",
    "handle name",
    "handle x",
    "handle bluesky",
    "handle mastodon",
    "handle threads",
    "handle linkedin",
)


def _loc(where: tuple[str | int, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in where).lstrip(".")


EVENT_LOCS = {
    "day title": "days.2025-03-10.title",
    "day intro": "days.2025-03-10.intro",
    "hashtag": "hashtags[0]",
    "handle name": "handles",
    **{f"handle {p}": f'handles."Demo Coalition".{p}' for p in ("x", "bluesky", "mastodon")},
    **{f"handle {p}": f'handles."Demo Coalition".{p}' for p in ("threads", "linkedin")},
}


@st.composite
def url_or_text(draw: st.DrawFn) -> str:
    tail = draw(TEXT)
    return draw(st.sampled_from([tail, "https://example.org/" + tail, "https://" + tail]))


@contextmanager
def _project() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "project"
        shutil.copytree(FIXTURES / "project", root)
        yield root


def _toml(value: str) -> str:
    """A TOML basic string holding exactly `value` (every non-ASCII character escaped)."""
    out = []
    for char in value:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif 0x20 <= code < 0x7F:
            out.append(char)
        else:
            out.append(f"\\u{code:04X}" if code < 0x10000 else f"\\U{code:08X}")
    return '"' + "".join(out) + '"'


def _walk(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def _unsafe_outputs(out: Path) -> list[str]:
    """Every written file that holds a control character or noncharacter, with the match."""
    found = []
    for file in sorted(out.rglob("*")):
        if not file.is_file() or file.suffix in (".png", ".jpg", ".woff2", ".ttf"):
            continue
        text = file.read_bytes().decode("utf-8", errors="replace")
        texts = list(_walk(json.loads(text))) if file.suffix == ".json" else [text]
        for piece in texts:
            match = UNSAFE.search(piece)
            if match and not (match.group() == "\r" and file.suffix in (".eml", ".ics")):
                found.append(f"{file.relative_to(out)}: {match.group()!r}")
                break
    return found


def _answer(root: Path, path: str, field: str) -> None:
    """`check` exits 1 with one well-formed line per problem, one naming `path` and `field`,
    or exits 0 and a build of the day succeeds with safe outputs."""
    result = runner.invoke(app, ["check", "demo", "--project", str(root)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    assert not TERMINAL_UNSAFE.search(result.output), result.output
    if result.exit_code == 1:
        lines = result.stderr.splitlines()
        assert lines, result.output
        assert all(re.match(r"^content/demo/\S+: .+", line) for line in lines), lines
        assert any(line.startswith(f"{path}: {field}") for line in lines), lines
        event("refused")
        return
    event("accepted and built")
    assert result.exit_code == 0, result.output
    try:
        build(load_project(root, environ={}), "demo", only=DAY)
    except UserError as exc:  # accepted by check, so the build must not refuse it
        raise AssertionError(f"build refused what check accepted: {exc.lines()}") from None
    assert _unsafe_outputs(root / "out") == []


def _set(data: dict[str, Any], where: tuple[str | int, ...], value: str) -> None:
    target: Any = data
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value


FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ
@given(field=st.sampled_from(RECORD_FIELDS), value=TEXT, url=url_or_text())
def test_any_text_in_any_record_field_is_answered_or_safe(
    field: tuple[str | int, ...], value: str, url: str
) -> None:
    with _project() as root:
        data = json.loads(json.dumps(RECORD))
        body = "The President opened the conference with a **warning**.\n"
        if field == ("body",):
            body = value
        else:
            _set(data, field, url if field == ("links", 0, "url") else value)
            if field == ("speakers", 0, "name"):
                data["quotes"][0]["by"] = value  # keep the quote attributed
        front = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
        (root / KEYNOTE).write_text(f"---\n{front}---\n{body}", encoding="utf-8")
        _answer(root, KEYNOTE, _loc(field))


@FUZZ
@given(field=st.sampled_from(EVENT_FIELDS), value=TEXT)
def test_any_text_in_any_event_field_is_answered_or_safe(field: str, value: str) -> None:
    with _project() as root:
        event = (root / EVENT).read_text(encoding="utf-8")
        quoted = _toml(value)
        simple = {"name", "short_name", "publisher", "venue"}
        if field in simple:
            event = re.sub(f"(?m)^{field} = .*$", lambda _: f"{field} = {quoted}", event)
        elif field == "day title":
            event = event.replace('title = "Opening day"', f"title = {quoted}")
        elif field == "day intro":
            event = re.sub("(?m)^intro = .*$", lambda _: f"intro = {quoted}", event)
        elif field == "hashtag":
            event = event.replace('hashtags = ["DemoConf"]', f"hashtags = [{quoted}]")
        elif field == "handle name":
            event = event.replace('[handles."Tomoko Akane"]', f"[handles.{quoted}]")
        else:
            platform = field.split()[1]
            event += f'\n[handles."Demo Coalition"]\n{platform} = {quoted}\n'
        (root / EVENT).write_text(event, encoding="utf-8")
        _answer(root, EVENT, EVENT_LOCS.get(field, field))


EMAIL = st.one_of(
    st.sampled_from(["ana@example.org", "bo@example.org", "cy@example.org"]),
    TEXT.map(lambda t: f"x{t}@example.org"),
)
LANGUAGE = st.one_of(st.sampled_from(["", "en", "fr-CA"]), TEXT.map(lambda t: "en" + t))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(
        st.tuples(EMAIL, st.one_of(TEXT, st.text(max_size=10)), LANGUAGE), min_size=1, max_size=2
    ),
    raw=st.booleans(),
)
def test_any_subscriber_csv_is_answered_or_listed_safely(
    rows: list[tuple[str, str, str]], raw: bool
) -> None:
    import csv
    import io

    with _project() as root:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["email", "name", "language"])
        writer.writerows(rows)
        data = buffer.getvalue()
        if raw:  # cells as a careless script writes them: no quoting at all
            data = "email,name,language\n" + "".join(",".join(r) + "\n" for r in rows)
        (root / "people.csv").write_text(data, encoding="utf-8")
        result = runner.invoke(app, ["subscribers", "import", "people.csv", "--project", str(root)])
        assert result.exception is None or isinstance(result.exception, SystemExit), result.output
        assert "Traceback" not in result.output
        assert not TERMINAL_UNSAFE.search(result.output), result.output
        if result.exit_code == 1:
            lines = result.stderr.splitlines()
            assert lines and all(
                re.match(r"^people\.csv: (line \d+: )?.+", line) for line in lines
            ), lines
            event("refused")
            return
        event("imported")
        assert result.exit_code == 0, result.output
        listing = runner.invoke(app, ["subscribers", "list", "--project", str(root)])
        assert listing.exit_code == 0, listing.output
        assert not TERMINAL_UNSAFE.search(listing.stdout), listing.stdout
        assert len(listing.stdout.splitlines()) <= len(rows) + 1  # the header line
