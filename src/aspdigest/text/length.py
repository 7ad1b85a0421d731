"""Post length rules of X, Bluesky, Mastodon, Threads and LinkedIn.

text/ is used by the social renderer to measure and split posts. Each counter here measures a
post the way the platform itself does, so that a post the renderer accepts is not refused; the
figures (limits, URL lengths, byte and link caps) come from `aspdigest.platforms`, which names
the counter of each platform, and :data:`RULES` joins the two:

* X: twitter-text v3 weighted length (config-v3.json), 280 at most.
* Bluesky: 300 graphemes and 3000 UTF-8 bytes (see :mod:`aspdigest.text.bluesky`).
* Mastodon: the server's StatusLengthValidator, 500 by default.
* Threads: 500 characters with emoji counted in UTF-8 bytes, at most 5 links.
* LinkedIn: 3000 characters of commentary, one post, reserved characters escaped.

:func:`check` turns a platform's rule into human-readable problems.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from aspdigest.platforms import PLATFORMS, Platform
from aspdigest.text.bluesky import bluesky_bytes, bluesky_length, grapheme_count
from aspdigest.text.emojichars import emoji_chars
from aspdigest.text.extract import (
    extract_hashtags,
    extract_mastodon_mentions,
    extract_mastodon_urls,
    extract_urls,
)

Check = Callable[[str], str | None]

_X = PLATFORMS["x"]
_MASTODON = PLATFORMS["mastodon"]
_THREADS = PLATFORMS["threads"]

# --------------------------------------------------------------------------- X
# twitter-text config/v3.json
X_MAX_WEIGHTED_LENGTH = _X.limit
X_SCALE = 100
X_DEFAULT_WEIGHT = 200
X_TRANSFORMED_URL_LENGTH = _X.url_length or 23
X_RANGES: tuple[tuple[int, int, int], ...] = (
    (0x0000, 0x10FF, 100),
    (0x2000, 0x200D, 100),
    (0x2010, 0x201F, 100),
    (0x2032, 0x2037, 100),
)
X_INVALID_CHARACTERS = frozenset("\ufffe\ufeff\uffff")


def _x_weight(char: str) -> int:
    code = ord(char)
    for first, last, weight in X_RANGES:
        if first <= code <= last:
            return weight
    return X_DEFAULT_WEIGHT


def emoji_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each of ``emoji.emoji_list(text)``, in order; quick when there is none.

    Every emoji sequence the ``emoji`` package knows holds at least one code point outside
    ASCII of `emojichars.emoji_chars` (even without its VS16), so a text with none of them has
    no emoji: the common case, answered without importing ``emoji`` or running its tokenizer,
    which costs ~1 ms per post-sized text and was most of the time spent measuring posts.
    """
    if text.isascii() or emoji_chars().isdisjoint(text):
        return []
    import emoji

    return [(found["match_start"], found["match_end"]) for found in emoji.emoji_list(text)]


def _emoji_spans(text: str) -> dict[int, int]:
    """Start -> end (code points) of each emoji sequence, per the ``emoji`` package's data.

    A bare U+00A9 or U+00AE (text presentation, no VS16) is left to count as the letter-weight
    character it is: twitter-text's emoji pattern does not treat it as an emoji either.
    """
    spans: dict[int, int] = {}
    for start, end in emoji_spans(text):
        if end - start == 1 and _x_weight(text[start]) != X_DEFAULT_WEIGHT:
            continue
        spans[start] = end
    return spans


# Pure, and asked again for the same texts while a thread is packed and reviewed.
@functools.lru_cache(maxsize=8192)
def x_weighted_length(text: str, *, emoji_parsing: bool = True) -> int:
    """twitter-text v3 weighted length of ``text`` (the number X compares with 280).

    The text is NFC-normalised; each URL (with or without scheme) counts 23; each emoji
    sequence counts 2 (``emoji_parsing=False`` gives the v2 count, where every code point of
    it is weighted); any other code point counts 1 in U+0000-U+10FF, U+2000-U+200D,
    U+2010-U+201F and U+2032-U+2037, else 2.
    """
    normalized = unicodedata.normalize("NFC", text)
    urls = {e.start: e.end for e in extract_urls(normalized)}
    emojis = _emoji_spans(normalized) if emoji_parsing else {}
    total = 0
    index = 0
    while index < len(normalized):
        if index in urls:
            total += X_TRANSFORMED_URL_LENGTH * X_SCALE
            index = urls[index]
        elif index in emojis:
            total += X_DEFAULT_WEIGHT
            index = emojis[index]
        else:
            total += _x_weight(normalized[index])
            index += 1
    return total // X_SCALE


def _x_invalid_characters(text: str) -> str | None:
    # NFC leaves these three as they are and makes none of them from other characters, so a
    # text without them has none after normalising either.
    if X_INVALID_CHARACTERS.isdisjoint(text):
        return None
    bad = sorted({c for c in unicodedata.normalize("NFC", text) if c in X_INVALID_CHARACTERS})
    if not bad:
        return None
    return "contains characters X refuses: " + ", ".join(f"U+{ord(c):04X}" for c in bad)


# --------------------------------------------------------------------------- Bluesky


def _byte_limit(limit: int) -> Check:
    """A cap on the UTF-8 size: Bluesky's 3000 bytes, and the 500 we hold Threads posts to."""

    def check(text: str) -> str | None:
        size = bluesky_bytes(text)
        if size > limit:
            return f"{size}/{limit} bytes"
        return None

    return check


# --------------------------------------------------------------------------- Mastodon
MASTODON_MAX_CHARS = _MASTODON.limit
MASTODON_URL_LENGTH = _MASTODON.url_length or 23


def _graphemes(text: str) -> int:
    return grapheme_count(text)


def mastodon_length(
    text: str, url_length: int = MASTODON_URL_LENGTH, *, spoiler_text: str = ""
) -> int:
    """Length as a Mastodon server counts it (StatusLengthValidator).

    Every URL with a scheme counts ``url_length`` (23, Mastodon's placeholder); a mention
    ``@user@domain`` counts as ``@user``; everything else is counted in grapheme clusters
    (``each_grapheme_cluster``), so an emoji sequence or a letter with combining accents
    counts 1. The content warning ``spoiler_text`` shares the same budget and is counted
    as is.
    """
    if not text.strip():
        return _graphemes(spoiler_text)
    spans: list[tuple[int, int, str]] = [
        (e.start, e.end, "x" * url_length) for e in extract_mastodon_urls(text)
    ]
    for mention in extract_mastodon_mentions(text):
        user = mention.text[1:].partition("@")[0]
        spans.append((mention.start, mention.end, "@" + user))
    pieces: list[str] = []
    cursor = 0
    for start, end, replacement in sorted(spans, key=lambda s: s[0]):
        if start < cursor:
            continue  # overlaps an earlier entity (e.g. a mention inside a URL)
        pieces.append(text[cursor:start])
        pieces.append(replacement)
        cursor = end
    pieces.append(text[cursor:])
    return _graphemes(spoiler_text + "".join(pieces))


# --------------------------------------------------------------------------- Threads
THREADS_MAX_CHARS = _THREADS.limit
THREADS_MAX_LINKS = _THREADS.max_links or 5


def threads_length(text: str) -> int:
    """Length as the Threads API counts it against its 500 limit.

    Meta documents "Text posts are limited to 500 characters. Emojis are counted as the
    number of UTF-8 bytes": every emoji sequence counts its UTF-8 size (4 for 😀, 25 for
    👨‍👩‍👧‍👦), every other code point counts 1 (so Japanese or Arabic text is not penalised).
    """
    total = 0
    cursor = 0
    for start, end in emoji_spans(text):
        total += start - cursor + len(text[start:end].encode("utf-8"))
        cursor = end
    return total + len(text) - cursor


def threads_link_count(text: str) -> int:
    """Number of distinct URLs in ``text`` (with or without scheme), the unit of the 5 limit."""
    return len({e.text for e in extract_urls(text)})


# Meta documents 500 characters (emoji by their UTF-8 bytes); we also hold every post to 500
# UTF-8 bytes, as our own rule asks: stricter, so a post can only be shorter, never refused
# for a counting rule Meta applies but does not document.
THREADS_MAX_BYTES = _THREADS.max_bytes or THREADS_MAX_CHARS


def _link_limit(limit: int) -> Check:
    def check(text: str) -> str | None:
        links = threads_link_count(text)
        if links > limit:
            return f"{links} links, at most {limit}"
        return None

    return check


# --------------------------------------------------------------------------- LinkedIn
LINKEDIN_MAX_CHARS = PLATFORMS["linkedin"].limit
LINKEDIN_RESERVED = frozenset("|{}@[]()<>#\\*_~")


def linkedin_length(text: str) -> int:
    """Length of the (unescaped) commentary in UTF-16 code units.

    LinkedIn states its 3000 limit in characters without defining them; counting UTF-16 units
    (as LinkedIn's own Java services and the Buffer API do) never undercounts: an emoji or a
    "bold" mathematical letter counts 2.
    """
    return len(text.encode("utf-16-le")) // 2


def linkedin_escape(text: str, *, keep_hashtags: bool = False) -> str:
    """Escape LinkedIn "little text" reserved characters with a backslash.

    The Posts API ``commentary`` field is parsed as little text, where ``| { } @ [ ] ( ) < >
    # \\ * _ ~`` are markup; unescaped, LinkedIn may cut the post at the first one. With
    ``keep_hashtags`` the '#' that starts a hashtag (twitter-text rules) stays unescaped so the
    hashtag remains a LinkedIn hashtag.
    """
    keep: set[int] = set()
    if keep_hashtags:
        keep = {e.start for e in extract_hashtags(text) if text[e.start] == "#"}
    return "".join(
        "\\" + char if char in LINKEDIN_RESERVED and index not in keep else char
        for index, char in enumerate(text)
    )


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True, slots=True)
class PlatformRule:
    """How one platform measures a post.

    ``count`` measures the text in the platform's unit (``unit`` names it in messages) and
    must stay within ``limit``; ``thread`` tells whether long text may be split into a reply
    thread (else it must fit one post); ``checks`` are further rules, each returning a problem
    or None.
    """

    name: str
    limit: int
    count: Callable[[str], int]
    thread: bool
    unit: str = "characters"
    checks: tuple[Check, ...] = ()

    def problems(self, text: str) -> list[str]:
        """Human-readable problems of ``text`` under this rule; empty when it can be posted."""
        if not text.strip():
            return ["empty post"]
        found: list[str] = []
        size = self.count(text)
        if size > self.limit:
            found.append(f"{size}/{self.limit} {self.unit}")
        for rule in self.checks:
            problem = rule(text)
            if problem is not None:
                found.append(problem)
        return found


# The counter each platform's spec names (`Platform.counter`), and the checks that go with a
# counter rather than with a figure of the spec.
COUNTERS: dict[str, Callable[[str], int]] = {
    "x_weighted_length": x_weighted_length,
    "bluesky_length": bluesky_length,
    "mastodon_length": mastodon_length,
    "threads_length": threads_length,
    "linkedin_length": linkedin_length,
}
_COUNTER_CHECKS: dict[str, tuple[Check, ...]] = {"x_weighted_length": (_x_invalid_characters,)}


def platform_rule(spec: Platform, limit: int | None = None) -> PlatformRule:
    """The rule of a platform of the registry, with a server's own ``limit`` if it has one."""
    size = spec.limit if limit is None else limit
    if spec.counter == "mastodon_length":
        return mastodon_rule(size, spec.url_length or MASTODON_URL_LENGTH)
    checks = _COUNTER_CHECKS.get(spec.counter, ())
    if spec.max_bytes is not None:
        checks += (_byte_limit(spec.max_bytes),)
    if spec.max_links is not None:
        checks += (_link_limit(spec.max_links),)
    return PlatformRule(
        spec.id, size, COUNTERS[spec.counter], thread=spec.thread, unit=spec.unit, checks=checks
    )


def mastodon_rule(
    limit: int = MASTODON_MAX_CHARS, url_length: int = MASTODON_URL_LENGTH
) -> PlatformRule:
    """The Mastodon rule for a server with a different character limit or URL length."""

    def count(text: str) -> int:
        return mastodon_length(text, url_length)

    return PlatformRule("mastodon", limit, count, thread=True, unit=_MASTODON.unit)


RULES: dict[str, PlatformRule] = {spec.id: platform_rule(spec) for spec in PLATFORMS.values()}


def check(platform: str | PlatformRule, text: str) -> list[str]:
    """Problems of posting ``text`` on ``platform`` ("x", "bluesky", ...); [] when fine.

    For example ``["312/280 weighted characters"]`` or ``["6 links, at most 5"]``.
    """
    if isinstance(platform, PlatformRule):
        return platform.problems(text)
    try:
        rule = RULES[platform]
    except KeyError:
        known = ", ".join(sorted(RULES))
        raise ValueError(f"unknown platform {platform!r} (known: {known})") from None
    return rule.problems(text)


__all__ = [
    "COUNTERS",
    "RULES",
    "PlatformRule",
    "check",
    "linkedin_escape",
    "linkedin_length",
    "mastodon_length",
    "mastodon_rule",
    "platform_rule",
    "threads_length",
    "threads_link_count",
    "x_weighted_length",
]
