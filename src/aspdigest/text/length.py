"""Post length rules of X, Bluesky, Mastodon, Threads and LinkedIn, and a registry of them.

text/ is used by the social renderer to measure and split posts. Each counter here measures a
post the way the platform itself does, so that a post the renderer accepts is not refused:

* X: twitter-text v3 weighted length (config-v3.json), 280 at most.
* Bluesky: 300 graphemes and 3000 UTF-8 bytes (see :mod:`aspdigest.text.bluesky`).
* Mastodon: the server's StatusLengthValidator, 500 by default.
* Threads: 500 characters with emoji counted in UTF-8 bytes, at most 5 links.
* LinkedIn: 3000 characters of commentary, one post, reserved characters escaped.

:func:`check` turns a platform's rule into human-readable problems.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

import emoji
import regex

from aspdigest.text.bluesky import (
    BLUESKY_MAX_BYTES,
    BLUESKY_MAX_GRAPHEMES,
    bluesky_bytes,
    bluesky_length,
)
from aspdigest.text.extract import (
    extract_hashtags,
    extract_mastodon_urls,
    extract_urls,
)

# --------------------------------------------------------------------------- X
# twitter-text config/v3.json
X_MAX_WEIGHTED_LENGTH = 280
X_SCALE = 100
X_DEFAULT_WEIGHT = 200
X_TRANSFORMED_URL_LENGTH = 23
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


def _emoji_spans(text: str) -> dict[int, int]:
    """Start -> end (code points) of each emoji sequence, per the ``emoji`` package's data.

    A bare U+00A9 or U+00AE (text presentation, no VS16) is left to count as the letter-weight
    character it is: twitter-text's emoji pattern does not treat it as an emoji either.
    """
    spans: dict[int, int] = {}
    for found in emoji.emoji_list(text):
        start, end = int(found["match_start"]), int(found["match_end"])
        if end - start == 1 and _x_weight(text[start]) != X_DEFAULT_WEIGHT:
            continue
        spans[start] = end
    return spans


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
    bad = sorted({c for c in unicodedata.normalize("NFC", text) if c in X_INVALID_CHARACTERS})
    if not bad:
        return None
    return "contains characters X refuses: " + ", ".join(f"U+{ord(c):04X}" for c in bad)


# --------------------------------------------------------------------------- Bluesky


def _bluesky_byte_limit(text: str) -> str | None:
    size = bluesky_bytes(text)
    if size > BLUESKY_MAX_BYTES:
        return f"{size}/{BLUESKY_MAX_BYTES} bytes"
    return None


# --------------------------------------------------------------------------- Mastodon
MASTODON_MAX_CHARS = 500
MASTODON_URL_LENGTH = 23
_MASTODON_MAX_DOMAIN = 253
# app/models/account.rb MENTION_RE: @user or @user@domain, not after '=', '/' or a word char.
_MASTODON_MENTION = regex.compile(
    r"(?<![=/\w])@(?P<acct>(?P<user>[a-zA-Z0-9_]+(?:[.\-]+[a-zA-Z0-9_]+)*)"
    r"(?:@(?P<domain>\w+(?:[.\-]+\w+)*))?)"
)
_END_MENTION = regex.compile(
    "[@\uff20\xc0-\xd6\xd8-\xf6\xf8-\xff\u0100-\u024f\u0253\u0254\u0256\u0257\u0259\u025b"
    "\u0263\u0268\u026f\u0272\u0289\u028b\u02bb\u0300-\u036f\u1e00-\u1eff]|://"
)


def _graphemes(text: str) -> int:
    return len(regex.findall(r"\X", text))


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
    if "@" in text:
        for match in _MASTODON_MENTION.finditer(text):
            if _END_MENTION.match(text, match.end()):
                continue
            domain = match["domain"]
            if domain is not None and len(domain) > _MASTODON_MAX_DOMAIN:
                continue
            spans.append((match.start(), match.end(), "@" + match["user"]))
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
THREADS_MAX_CHARS = 500
THREADS_MAX_LINKS = 5


def threads_length(text: str) -> int:
    """Length as the Threads API counts it against its 500 limit.

    Meta documents "Text posts are limited to 500 characters. Emojis are counted as the
    number of UTF-8 bytes": every emoji sequence counts its UTF-8 size (4 for 😀, 25 for
    👨‍👩‍👧‍👦), every other code point counts 1 (so Japanese or Arabic text is not penalised).
    """
    total = 0
    cursor = 0
    for found in emoji.emoji_list(text):
        start, end = int(found["match_start"]), int(found["match_end"])
        total += start - cursor + len(text[start:end].encode("utf-8"))
        cursor = end
    return total + len(text) - cursor


def threads_link_count(text: str) -> int:
    """Number of distinct URLs in ``text`` (with or without scheme), the unit of the 5 limit."""
    return len({e.text for e in extract_urls(text)})


THREADS_MAX_BYTES = 500


def _threads_bytes(text: str) -> str | None:
    # Meta documents 500 characters (emoji by their UTF-8 bytes); we also hold every post to
    # 500 UTF-8 bytes, as our own rule asks: stricter, so a post can only be shorter, never
    # refused for a counting rule Meta applies but does not document.
    size = len(text.encode("utf-8"))
    if size > THREADS_MAX_BYTES:
        return f"{size}/{THREADS_MAX_BYTES} bytes"
    return None


def _threads_links(text: str) -> str | None:
    links = threads_link_count(text)
    if links > THREADS_MAX_LINKS:
        return f"{links} links, at most {THREADS_MAX_LINKS}"
    return None


# --------------------------------------------------------------------------- LinkedIn
LINKEDIN_MAX_CHARS = 3000
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


# --------------------------------------------------------------------------- registry
Check = Callable[[str], str | None]


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


def mastodon_rule(
    limit: int = MASTODON_MAX_CHARS, url_length: int = MASTODON_URL_LENGTH
) -> PlatformRule:
    """The Mastodon rule for a server with a different character limit or URL length."""

    def count(text: str) -> int:
        return mastodon_length(text, url_length)

    return PlatformRule("mastodon", limit, count, thread=True)


RULES: dict[str, PlatformRule] = {
    "x": PlatformRule(
        "x",
        X_MAX_WEIGHTED_LENGTH,
        x_weighted_length,
        thread=True,
        unit="weighted characters",
        checks=(_x_invalid_characters,),
    ),
    "bluesky": PlatformRule(
        "bluesky",
        BLUESKY_MAX_GRAPHEMES,
        bluesky_length,
        thread=True,
        unit="graphemes",
        checks=(_bluesky_byte_limit,),
    ),
    "mastodon": mastodon_rule(),
    "threads": PlatformRule(
        "threads",
        THREADS_MAX_CHARS,
        threads_length,
        thread=True,
        checks=(_threads_bytes, _threads_links),
    ),
    "linkedin": PlatformRule("linkedin", LINKEDIN_MAX_CHARS, linkedin_length, thread=False),
}


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
    "RULES",
    "PlatformRule",
    "check",
    "linkedin_escape",
    "linkedin_length",
    "mastodon_length",
    "mastodon_rule",
    "threads_length",
    "threads_link_count",
    "x_weighted_length",
]
