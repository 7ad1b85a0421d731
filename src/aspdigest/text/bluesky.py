"""Bluesky post length and rich-text facets (app.bsky.richtext.facet).

text/ is used by the social renderer to measure and split posts. A Bluesky post's text is
limited to 300 graphemes and 3000 UTF-8 bytes (app.bsky.feed.post), and links, mentions and
hashtags only become clickable through facets whose ``byteStart``/``byteEnd`` are UTF-8 byte
offsets into the text, ``byteEnd`` exclusive. :func:`bluesky_facets` detects them the way the
reference client does (``detectFacets`` in @atproto/api's rich-text module); mentions carry
the handle, which the poster must resolve to a DID before publishing.
:func:`bluesky_shorten_links` shortens long link texts for display while each facet keeps the
full URI, as the Bluesky app does before posting.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import regex

from aspdigest.platforms import PLATFORMS
from aspdigest.text._tlds import TLDS

BLUESKY_MAX_GRAPHEMES = PLATFORMS["bluesky"].limit
BLUESKY_MAX_BYTES = PLATFORMS["bluesky"].max_bytes or 3000

FacetKind = Literal["link", "mention", "tag"]

_FEATURE_TYPE: dict[str, str] = {
    "link": "app.bsky.richtext.facet#link",
    "mention": "app.bsky.richtext.facet#mention",
    "tag": "app.bsky.richtext.facet#tag",
}


@dataclass(frozen=True, slots=True)
class Facet:
    """One facet: ``value`` is the URI (link), the handle (mention) or the tag without '#'."""

    kind: FacetKind
    byte_start: int
    byte_end: int
    value: str

    def to_record(self, did: str | None = None) -> dict[str, object]:
        """The facet as the lexicon's JSON; a mention needs the handle's resolved ``did``."""
        feature: dict[str, object] = {"$type": _FEATURE_TYPE[self.kind]}
        if self.kind == "link":
            feature["uri"] = self.value
        elif self.kind == "tag":
            feature["tag"] = self.value
        else:
            if not did:
                raise ValueError(f"mention of {self.value!r} needs the DID it resolves to")
            feature["did"] = did
        return {
            "$type": "app.bsky.richtext.facet",
            "index": {"byteStart": self.byte_start, "byteEnd": self.byte_end},
            "features": [feature],
        }


# Blocks of code points each of which is always a grapheme cluster of its own, whatever is
# next to it (UAX #29: none is a mark, joiner, prepended mark, regional indicator or Hangul
# jamo), CR LF being the one pair that is one cluster: Latin to U+02FF, Greek, Cyrillic but
# its combining marks, Arabic letters, digits and punctuation but its marks, general
# punctuation but ZWNJ and ZWJ (so the quotation marks, bidi isolates and narrow no-break
# space of a post), currency signs, CJK punctuation but its tone marks, CJK ideographs and
# full-width forms. tests/test_text_length.py checks every pair of them against `regex`'s \X.
SIMPLE_RANGES: tuple[tuple[str, str], ...] = (
    ("\u0000", "\u02ff"),
    ("\u0370", "\u0482"),
    ("\u048a", "\u052f"),
    ("\u0606", "\u060f"),
    ("\u061b", "\u064a"),
    ("\u0660", "\u066f"),
    ("\u0671", "\u06d5"),
    ("\u2000", "\u200b"),
    ("\u200e", "\u206f"),
    ("\u20a0", "\u20cf"),
    ("\u3000", "\u3029"),
    ("\u3030", "\u303f"),
    ("\u4e00", "\u9fff"),
    ("\uff01", "\uff9d"),
)
_NOT_SIMPLE = re.compile("[^" + "".join(f"{a}-{b}" for a, b in SIMPLE_RANGES) + "]")
_GRAPHEME = regex.compile(r"\X")


def grapheme_count(text: str) -> int:
    """The number of extended grapheme clusters in ``text`` (what ``regex``'s ``\\X`` finds).

    Finding them builds one string per cluster; a post made only of code points that are
    clusters of their own (most are) is counted without that.
    """
    if text.isascii() or _NOT_SIMPLE.search(text) is None:
        return len(text) - text.count("\r\n")
    return len(_GRAPHEME.findall(text))


def bluesky_length(text: str) -> int:
    """Length in extended grapheme clusters, the unit of the 300 limit."""
    return grapheme_count(text)


def bluesky_bytes(text: str) -> int:
    """Length in UTF-8 bytes, the unit of the 3000 limit."""
    return len(text.encode("utf-8"))


# JavaScript's \s, which the reference regexes use (Python's \s differs at the edges).
_JS_SPACE = r"\t\n\x0b\x0c\r \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_ASCII_WORD = "A-Za-z0-9_"
_MENTION = regex.compile(
    f"(?:^|[{_JS_SPACE}]|\\()@(?P<handle>[a-zA-Z0-9.\\-]+)"
    # JavaScript's \b is an ASCII word boundary
    f"(?:(?<=[{_ASCII_WORD}])(?![{_ASCII_WORD}])|(?<![{_ASCII_WORD}])(?=[{_ASCII_WORD}]))"
)
_LINK = regex.compile(
    f"(?:^|(?<=[\\n\\r\\u2028\\u2029])|[{_JS_SPACE}]|\\()"
    f"(?P<uri>(?P<scheme>(?i:https?)://[^{_JS_SPACE}]+)"
    f"|(?P<domain>[a-zA-Z][a-zA-Z0-9]*(?:\\.[a-zA-Z0-9]+)+)[^{_JS_SPACE}]*)"
)
_TAG_BREAK = r"\u00ad\u2060\u200a\u200b\u200c\u200d\u20e2"
_TAG = regex.compile(
    f"(?:^|[{_JS_SPACE}])(?P<hash>[#\uff03])"
    f"(?P<tag>(?!\ufe0f)[^{_JS_SPACE}{_TAG_BREAK}]*"
    f"[^0-9{_JS_SPACE}\\p{{P}}{_TAG_BREAK}]+[^{_JS_SPACE}{_TAG_BREAK}]*)?"
)
_TRAILING_PUNCTUATION = regex.compile(r"\p{P}+$")
_MAX_TAG_UTF16 = 64


def _is_valid_domain(name: str) -> bool:
    """True when ``name`` ends in ``.<tld>`` for a known TLD (case-sensitive, as the client)."""
    head, dot, tld = name.rpartition(".")
    return bool(dot and head and tld in TLDS)


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _code_point_facets(text: str) -> list[tuple[FacetKind, int, int, str]]:
    found: list[tuple[FacetKind, int, int, str]] = []
    for match in _MENTION.finditer(text):
        handle: str = match["handle"]
        if _is_valid_domain(handle) or handle.endswith(".test"):
            start = match.start("handle") - 1
            found.append(("mention", start, match.end("handle"), handle))
    for match in _LINK.finditer(text):
        start, end = match.span("uri")
        uri: str = match["uri"]
        if match["scheme"] is None:
            if not _is_valid_domain(match["domain"]):
                continue
            uri = f"https://{uri}"
        if uri[-1] in ".,;:!?":
            uri, end = uri[:-1], end - 1
        if uri.endswith(")") and "(" not in uri:
            uri, end = uri[:-1], end - 1
        found.append(("link", start, end, uri))
    for match in _TAG.finditer(text):
        raw: str | None = match["tag"]
        if not raw:
            continue
        tag = _TRAILING_PUNCTUATION.sub("", raw.strip())
        if not tag or _utf16_length(tag) > _MAX_TAG_UTF16:
            continue
        start = match.start("hash")
        found.append(("tag", start, start + 1 + len(tag), tag))
    found.sort(key=lambda f: f[1])
    return found


def _byte_offsets(text: str) -> list[int]:
    """``offsets[i]`` is the UTF-8 byte offset of code point ``i`` (and of the end)."""
    if text.isascii():
        return list(range(len(text) + 1))
    return [0, *itertools.accumulate(_utf8_size(char) for char in text)]


def _utf8_size(char: str) -> int:
    code = ord(char)
    return 1 if code < 0x80 else 2 if code < 0x800 else 3 if code < 0x10000 else 4


def bluesky_facets(text: str) -> list[Facet]:
    """Link, mention and tag facets of ``text`` in order, with UTF-8 byte offsets.

    Detection follows the reference client: a mention is ``@`` plus a handle ending in a known
    TLD (or ``.test``) after a space, '(' or the start; a link is an ``http(s)://`` URL or a bare
    ``domain.tld[/...]`` (made ``https://``) after a space, '(' or a line start, minus one
    trailing ``.,;:!?`` and an unbalanced ``)``; a tag is ``#`` after a space or the start,
    containing something that is neither a digit nor punctuation, trailing punctuation
    dropped, at most 64 UTF-16 units.
    """
    offsets = _byte_offsets(text)
    return [
        Facet(kind, offsets[start], offsets[end], value)
        for kind, start, end, value in _code_point_facets(text)
    ]


def shorten_display_url(uri: str, max_path: int = 15) -> str:
    """Display form of a link: no scheme, path cut to ``max_path`` code points with '…'.

    ``https://example.org/very/long/path/to/page`` becomes ``example.org/very/long/pat…``
    (the Bluesky app shows 13 characters and "..."). Non-HTTP URIs are returned unchanged.
    """
    parts = urlsplit(uri)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return uri
    host = parts.netloc.rpartition("@")[2]
    path = "" if parts.path == "/" else parts.path
    if parts.query:
        path += "?" + parts.query
    if parts.fragment:
        path += "#" + parts.fragment
    if len(path) > max_path:
        path = path[: max(max_path - 1, 0)] + "…"
    return host + path


def bluesky_shorten_links(text: str, max_path: int = 15) -> tuple[str, list[Facet]]:
    """Replace each detected link's text by :func:`shorten_display_url` of its URI.

    Returns the new text and its facets: link facets span the shortened text but carry the
    full URI, mention and tag facets are moved to their new byte offsets. Post exactly these
    facets; detecting facets again on the shortened text would not find the full URIs.
    """
    shortened, spans = _shortened(text, max_path)
    offsets = _byte_offsets(shortened)
    return shortened, [Facet(k, offsets[s], offsets[e], v) for k, s, e, v in spans]


def bluesky_display_text(text: str, max_path: int = 15) -> str:
    """The text of :func:`bluesky_shorten_links` alone (what is measured), without facets."""
    return _shortened(text, max_path)[0]


def _shortened(text: str, max_path: int) -> tuple[str, list[tuple[FacetKind, int, int, str]]]:
    """The text with each link shortened, and each facet's code point span in it."""
    pieces: list[str] = []
    spans: list[tuple[FacetKind, int, int, str]] = []
    cursor = 0
    length = 0  # code points emitted so far
    for kind, start, end, value in _code_point_facets(text):
        pieces.append(text[cursor:start])
        length += start - cursor
        shown = shorten_display_url(value, max_path) if kind == "link" else text[start:end]
        pieces.append(shown)
        spans.append((kind, length, length + len(shown), value))
        length += len(shown)
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces), spans
