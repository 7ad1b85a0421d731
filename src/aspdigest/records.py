"""The content model: what `event.toml` and each record's front matter may contain.

First stage of the flow. `content.py` feeds these pydantic models the raw TOML/YAML
mappings; they return typed, frozen `Event` and `RecordMeta` values (or validation errors
that `content.py` turns into one-line problems). The models are also the source of the
JSON Schema that `aspdigest schema` prints for editors.

Strict mode on purpose: `summary: yes` (a YAML boolean) or `title: 2024` (a number) are
typos, not values to coerce.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import unicodedata
import zoneinfo
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from aspdigest.platforms import PLATFORMS
from aspdigest.safetext import codepoint, text_problem
from aspdigest.text._tlds import TLDS

KINDS = ("session", "side-event", "statement", "launch", "report", "screening", "plea", "closing")
Kind = Literal[
    "session", "side-event", "statement", "launch", "report", "screening", "plea", "closing"
]

SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_HHMM_RE = re.compile(r"^(\d{2}):(\d{2})$")
_H_MM_RE = re.compile(r"^\s*(\d{1,2})[:.h](\d{2})\s*$")
_LANG_RE = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$")


def describe(value: Any) -> str:
    """Say what YAML or TOML turned a value into, in the words the messages use."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f'the text "{value}"'
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table of keys"
    if isinstance(value, dt.datetime):
        return f"the date-time {value.isoformat()}"
    if isinstance(value, dt.date):
        return f"the date {value.isoformat()}"
    return f"a {type(value).__name__}"


def _parse_time(value: Any) -> Any:
    # YAML 1.1 reads 13:15 unquoted as the base-60 number 795; say so rather than guess.
    if isinstance(value, bool) or not isinstance(value, str):
        if isinstance(value, dt.time):
            return value
        raise PydanticCustomError(
            "time_format", 'expected "HH:MM" in quotes, got {got}', {"got": describe(value)}
        )
    m = _HHMM_RE.match(value)
    short = _H_MM_RE.match(value)
    if short and not m and int(short.group(1)) <= 23 and int(short.group(2)) <= 59:
        # 7:30 is a clock time as people write it; the files want the two-digit hour.
        raise PydanticCustomError(
            "time_format",
            'expected "HH:MM" (24-hour clock), got "{value}"; did you mean "{fixed}"?',
            {"value": value, "fixed": f"{int(short.group(1)):02d}:{short.group(2)}"},
        )
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise PydanticCustomError(
            "time_format", 'expected "HH:MM" (24-hour clock), got "{value}"', {"value": value}
        )
    return dt.time(int(m.group(1)), int(m.group(2)))


def _check_url(value: str) -> str:
    lowered = value.lower()
    if not (lowered.startswith("https://") or lowered.startswith("http://")) or len(value) < 11:
        raise PydanticCustomError(
            "url_scheme", 'expected an http(s) URL, got "{value}"', {"value": value}
        )
    problem = text_problem(value)
    if problem is not None:
        raise PydanticCustomError("unsafe_text", "URL {problem}", {"problem": problem})
    if any(c.isspace() for c in value):
        raise PydanticCustomError(
            "url_space", 'URL contains a space: "{value}"; encode it as %20', {"value": value}
        )
    problem = url_problem(value)
    if problem is not None:
        raise PydanticCustomError("url_syntax", "{problem}", {"problem": problem})
    return value


# RFC 3986: what a URL may hold unencoded (unreserved, sub-delims, ":", "@", "/", "?", the
# "%" of a percent-escape); "#" once, before the fragment; "[" and "]" only around an IP
# literal host, which no platform links anyway.
_URL_SAFE = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/?%"
)
_LABEL_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_PERCENT_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_MAX_URL = 4096  # twitter-text links nothing longer


def percent_encoded(char: str) -> str:
    """`%22` for `"`: the UTF-8 bytes of `char` as RFC 3986 percent-escapes."""
    return "".join(f"%{byte:02X}" for byte in char.encode("utf-8"))


def url_problem(url: str) -> str | None:
    """Why `url` (an http(s) URL free of controls and spaces) is not a strict RFC 3986 URL
    with a domain name that every platform links, or None.

    One rule for every link a record carries: a quote or an angle bracket ends a URL early on
    some platforms and in HTML attributes, so each is refused with the escape to write instead.
    """
    if len(url) > _MAX_URL:
        return f"URL is {len(url)} characters long; at most {_MAX_URL} are linked"
    start = url.index("://") + 3
    cut = min((i for i in (url.find(c, start) for c in "/?#") if i >= 0), default=len(url))
    authority = url[start:cut]
    fragment = url.find("#", cut)
    for index in range(cut, len(url)):
        char = url[index]
        if char in _URL_SAFE or index == fragment:
            continue
        return f"URL contains {codepoint(char)} at character {index + 1}; encode it as " + (
            percent_encoded(char)
        )
    bad_escape = _PERCENT_RE.search(url, cut)
    if bad_escape is not None:
        return (
            f'URL has a "%" not followed by two hex digits at character {bad_escape.start() + 1}; '
            "write %25 for a percent sign"
        )
    if "@" in authority:
        return "URL has a user name before its host (…@); remove it"
    host, colon, port = authority.partition(":")
    if colon and not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        return f'URL has the port "{port}"; expected a number from 1 to 65535 (or none)'
    if not host.isascii():
        try:
            ascii_host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return f'URL host "{host}" is not a valid domain name'
        return f'URL host "{host}" is not ASCII; write it as "{ascii_host}"'
    labels = host.split(".")
    if len(labels) < 2 or not all(_LABEL_RE.match(label) for label in labels):
        return f'URL host "{host}" is not a domain name such as example.org'
    tld = labels[-1].lower()
    if tld not in TLDS and not tld.startswith("xn--"):
        return f'URL host "{host}" does not end in a known top-level domain'
    return None


def _check_lang(value: str) -> str:
    if not _LANG_RE.match(value):
        raise PydanticCustomError(
            "lang_tag",
            'expected a BCP 47 language tag such as "en" or "fr-CA", got "{value}"',
            {"value": value},
        )
    return value


def _nonempty(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("empty", "must not be empty", {})
    return value


def _one_header_line(value: str) -> str:
    # Checked as a mail program would read it: after decoding RFC 2047 encoded words.
    problem = text_problem(value, single_line=True)
    if problem:
        raise PydanticCustomError("header_text", "{problem}", {"problem": problem})
    return value


def _publishable(value: str) -> str:
    # Every text field reaches a page, a post, a card or a terminal: refuse what would act
    # there instead of being read (controls, noncharacters, an unclosed bidi override).
    problem = text_problem(value)
    if problem is not None:
        raise PydanticCustomError("unsafe_text", "{problem}", {"problem": problem})
    return value


Text = Annotated[str, AfterValidator(_publishable), AfterValidator(_nonempty)]
PlainText = Annotated[str, AfterValidator(_publishable)]
# Text that can reach a mail header (the digest's Subject, From or List-Id via a setting
# template): one line, with no encoded word that decodes to a line break or control.
HeaderText = Annotated[Text, AfterValidator(_one_header_line)]
LocalTime = Annotated[
    dt.time,
    BeforeValidator(_parse_time),
    WithJsonSchema({"type": "string", "pattern": r"^([01]\d|2[0-3]):[0-5]\d$"}),
]
HttpUrl = Annotated[str, AfterValidator(_check_url)]
LangTag = Annotated[str, AfterValidator(_check_lang)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Speaker(_Strict):
    """A person (or, for a quoted text, its source) speaking at the item."""

    name: Text = Field(description="Full name as it should be printed and attributed.")
    role: Text | None = Field(None, description="Title and organisation, printed after the name.")


class Source(_Strict):
    """A document, report or draft text that a record quotes: not a person."""

    title: Text = Field(description="The document's title as it should be printed.")
    url: HttpUrl | None = Field(None, description="Where to read it; http(s) only.")


# A quote shorter than this, or without a sentence end, is a phrase within the item's text
# (set inline in the digest, no card unless asked for), not a statement of its own.
FRAGMENT_WORDS = 8
_SENTENCE_END = re.compile(r"[.!?…։۔。！？]['\"’”»›」』)\]]*$")


def word_count(text: str) -> int:
    """Words in `text`; in scripts written without spaces (Chinese, Japanese, Thai) two
    characters count as about one word."""
    count = 0
    for token in text.split():
        dense = sum(1 for c in token if _DENSE_SCRIPT.match(c))
        count += max(1, dense // 2 + (1 if len(token) > dense else 0)) if dense else 1
    return count


_DENSE_SCRIPT = re.compile(r"[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


class Quote(_Strict):
    """A verbatim quote; never shortened or altered by any renderer."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)

    text: Text = Field(
        description="The words exactly as spoken, without surrounding quotation marks."
    )
    by: Text | None = Field(
        None, description="A speaker of this record (the name as in speakers); or give from."
    )
    from_: Text | None = Field(
        None,
        alias="from",
        description="A source of this record (the title as in sources), for a quoted document.",
    )
    lang: LangTag | None = Field(None, description="BCP 47 tag; defaults to the event language.")
    card: bool = Field(
        True, description="Make quote cards (share images); a short phrase needs card: true."
    )
    excerpt: Text | None = Field(
        None,
        description="A contiguous verbatim span of text, in whole words, shown on cards and "
        "posts where the whole quote does not fit (with … where the quote continues).",
    )

    @property
    def attribution(self) -> str:
        """Who or what is quoted: the speaker's name or the source's title."""
        return self.by or self.from_ or ""

    @property
    def words(self) -> int:
        return word_count(self.text)

    @property
    def fragment(self) -> bool:
        """A phrase rather than a statement: under 8 words, or no sentence end (a final
        emoji counts as one, as social text often ends so)."""
        end = self.text.rstrip().rstrip("\ufe0f\u200d")
        ends = bool(_SENTENCE_END.search(end)) or (
            bool(end) and unicodedata.category(end[-1]) == "So"
        )
        return self.words < FRAGMENT_WORDS or not ends

    @property
    def makes_card(self) -> bool:
        """Whether the quote gets cards: a phrase only when `card: true` is written out."""
        return self.card and (not self.fragment or "card" in self.model_fields_set)


class Link(_Strict):
    title: Text = Field(description="Link text shown to readers.")
    url: HttpUrl = Field(description="http:// or https:// only.")


class RecordMeta(_Strict):
    """The YAML front matter of one record file."""

    title: Text = Field(description="Headline of the item.")
    kind: Kind = Field(description="What sort of item this is.")
    time: LocalTime | None = Field(None, description='Local start time, "HH:MM" in quotes.')
    order: int | None = Field(
        None, description="Position within the day; otherwise time, then file name."
    )
    highlight: bool = Field(
        False,
        description="Preferred when a day's thread has more items than its budget "
        "(social.max_posts) and in LinkedIn's highlights.",
    )
    summary: Text = Field(
        description="One or two sentences for social posts and the digest teaser."
    )
    organisers: list[Text] = Field(
        default_factory=list, description="Organisations hosting the item."
    )
    speakers: list[Speaker] = Field(default_factory=list)
    sources: list[Source] = Field(
        default_factory=list, description="Documents, reports, draft texts this item quotes."
    )
    quotes: list[Quote] = Field(default_factory=list)
    links: list[Link] = Field(default_factory=list)
    tags: list[Text] = Field(default_factory=list, description="Free-form topic tags.")


class DayInfo(_Strict):
    title: HeaderText | None = Field(
        None, description="Headline of the day (digest subject, thread opener)."
    )
    intro: Text | None = Field(None, description="A short paragraph opening the day's digest.")
    hook: Text | None = Field(
        None,
        description="The day's news in a line: the first line of each thread's opener and of "
        "the LinkedIn post; default: the day's title.",
    )
    preheader: HeaderText | None = Field(
        None,
        description="The inbox preview line of the day's digest; default: a teaser of the items.",
    )


def _handle(platform: str) -> Any:
    spec = PLATFORMS[platform]
    return Field(None, pattern=spec.handle_pattern, description=spec.handle_help)


class Handles(_Strict):
    """A name's account on each platform; used when the name appears in a post.

    One field per platform of `aspdigest.platforms`, its format the registry's `handle_pattern`.
    """

    x: str | None = _handle("x")
    bluesky: str | None = _handle("bluesky")
    mastodon: str | None = _handle("mastodon")
    threads: str | None = _handle("threads")
    linkedin: PlainText | None = _handle("linkedin")


class EventMeta(_Strict):
    """The contents of content/<event>/event.toml."""

    id: str = Field(pattern=SLUG_RE.pattern, description="Slug; must match the folder name.")
    name: HeaderText = Field(description="Full name of the conference.")
    short_name: HeaderText = Field(description="Short name used in subjects, cards and posts.")
    publisher: HeaderText = Field(description="Who sends the newsletter and posts.")
    venue: Text | None = Field(None, description="Where the conference takes place.")
    timezone: str = Field(description="IANA time zone of the venue, e.g. Europe/Amsterdam.")
    language: LangTag = Field("en", description="BCP 47 tag of the content; quotes may override.")
    start: dt.date = Field(description="First conference day.")
    end: dt.date = Field(description="Last conference day.")
    max_days: int = Field(
        31,
        ge=1,
        description="Longest the event may run, in days, start and end included; a longer "
        "event is refused as a likely typo in a date.",
    )
    hashtags: list[Annotated[str, Field(pattern=r"^\w+$")]] = Field(
        default_factory=list, description="Without the #; added to thread openers."
    )
    days: dict[str, DayInfo] = Field(
        default_factory=dict,
        description='Per-day title and intro, keyed by date: [days."2024-12-02"].',
    )
    handles: dict[Text, Handles] = Field(
        default_factory=dict, description="Name → platform handles."
    )


class Record(RecordMeta):
    """A validated record with what its place on disk tells: id (file name) and date (folder)."""

    id: str
    date: dt.date
    path: str = Field(description="Project-relative path of the source file.")
    sha256: str = Field(description="sha256 of the source file's bytes.")
    body: str = Field("", description="Markdown body: the digest paragraph.")

    def speaker(self, name: str | None) -> Speaker | None:
        return next((s for s in self.speakers if s.name == name), None)

    def source(self, title: str | None) -> Source | None:
        return next((s for s in self.sources if s.title == title), None)


class Event(EventMeta):
    """A validated event.toml with its source hash."""

    path: str
    sha256: str

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def dates(self) -> list[dt.date]:
        n = (self.end - self.start).days + 1
        return [self.start + dt.timedelta(days=i) for i in range(n)]

    def day_info(self, date: dt.date) -> DayInfo:
        return self.days.get(date.isoformat(), DayInfo())


def zone_problem(name: str) -> str | None:
    """Why `name` is not an IANA time zone this machine knows, with the nearest name; or None."""
    try:
        ZoneInfo(name)
        return None
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        pass
    close = difflib.get_close_matches(name, sorted(zoneinfo.available_timezones()), n=1)
    fix = f'; did you mean "{close[0]}"?' if close else ' (an IANA name such as "Europe/Amsterdam")'
    return f'unknown time zone "{name}"{fix}'


def known_language(tag: str) -> bool:
    """Whether Babel (CLDR) knows a BCP 47 tag such as "en", "fr-CA" or "uk"."""
    from babel import Locale, UnknownLocaleError

    try:
        Locale.parse(tag, sep="-")
    except (UnknownLocaleError, ValueError):
        return False
    return True
