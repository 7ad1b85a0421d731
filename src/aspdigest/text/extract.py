"""Entity extraction (URLs, @mentions, #hashtags, $cashtags) by twitter-text's rules.

text/ is used by the social renderer to measure and split posts. This module finds the spans
that count specially (a URL costs 23 on X and Mastodon) and that a splitter must never cut
through. It follows the extraction rules of twitter-text v3 as pinned by the official
conformance file ``extract.yml``: URLs with or without ``http(s)://`` whose host ends in a real
top-level domain (each DNS label at most 63 characters once punycoded), t.co links trimmed to
their slug, mentions and lists (``@user``, ``@user/list``), Unicode hashtags that contain a
letter, and ``$CASHTAG`` symbols. Offsets are code-point offsets into the text as given
(Python string indices), ``end`` exclusive.

Mastodon reuses the same URL machinery with its own, more permissive path characters and
with a scheme required; see :func:`extract_mastodon_urls`. Its mentions name the server too
(``@user@instance``): :func:`extract_mastodon_mentions`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal, NamedTuple

import regex

from aspdigest import platforms
from aspdigest.text import regexcache
from aspdigest.text._tlds import TLDS

EntityKind = Literal["url", "mention", "hashtag", "cashtag"]


@dataclass(frozen=True, slots=True)
class Entity:
    """A span of special meaning: ``text`` is ``source[start:end]`` (code points)."""

    kind: EntityKind
    start: int
    end: int
    text: str


# --------------------------------------------------------------------------- character sets
# Written as regex character-class fragments.  ASCII punctuation, controls and spaces are never
# part of a host name; neither are the byte-order mark, the non-characters U+FFFE/U+FFFF and the
# bidirectional controls that RTL text is often wrapped in.
_SPACES = r"\t-\r \x85\xa0\u1680\u180e\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_INVALID = r"\ufffe\ufeff\uffff"
_DIRECTIONAL = r"\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_ASCII_NON_ALNUM = r"\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f"
_LATIN_ACCENTS = (
    r"\xc0-\xd6\xd8-\xf6\xf8-\xff\u0100-\u024f\u0253\u0254\u0256\u0257\u0259\u025b\u0263"
    r"\u0268\u026f\u0272\u0289\u028b\u02bb\u0300-\u036f\u1e00-\u1eff"
)
_CYRILLIC = r"\u0400-\u04ff"
_PUNCT = r"""!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~"""

_DOMAIN_CHAR = f"[^{_ASCII_NON_ALNUM}{_SPACES}{_INVALID}{_DIRECTIONAL}]"


_Trie = dict[str, "_Trie"]


def _alternation(words: Iterable[str]) -> str:
    """A regex matching exactly ``words``, factored as a trie (longest alternative first)."""
    root: _Trie = {}
    for word in words:
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}  # end of a word

    def build(node: _Trie) -> str:
        branches = [
            regex.escape(char) + build(child) for char, child in sorted(node.items()) if char
        ]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return build(root)


# A top-level domain must not run on into letters, digits, '@', '+' or '-' ("foo.comm",
# "john.doe.gov@mail.com", "domain.com-that-...", "tar.bz2").
_PUNYCODE_TLD = r"(?i:xn--[0-9a-z\-]+)"
_SUBDOMAIN = f"{_DOMAIN_CHAR}(?:[_\\-]*{_DOMAIN_CHAR})*\\."
_DOMAIN_NAME = f"{_DOMAIN_CHAR}(?:-*{_DOMAIN_CHAR})*\\."


def _url_source(
    domain: str,
    protocol: str,
    path_char: str,
    path_end_char: str,
    query_char: str,
    query_end_char: str,
) -> str:
    parens = f"\\((?:{path_char}+|(?:{path_char}*\\({path_char}+\\){path_char}*))\\)"
    path_segment = (
        f"(?:(?:{path_char}*(?:{parens}{path_char}*)*(?:{path_end_char}|{parens}))"
        f"|(?:@{path_char}+/))"
    )
    return (
        f"(?P<before>[^A-Za-z0-9@\uff20$#\uff03{_INVALID}]|^)"
        "(?P<url>"
        f"(?P<protocol>{protocol})?"
        f"(?P<domain>{domain})"
        "(?::(?P<port>[0-9]+))?"
        f"(?P<path>/{path_segment}*)?"
        f"(?P<query>\\?{query_char}*{query_end_char})?"
        ")"
    )


# Mastodon (config/initializers/twitter_regex.rb) widens the path and query characters and
# accepts a few more schemes; it only links URLs that carry a scheme.
_UCHARS = (
    r"\xa0-\ud7ff\uf900-\ufdcf\ufdf0-\uffef\U00010000-\U0001fffd\U00020000-\U0002fffd"
    r"\U00030000-\U0003fffd\U00040000-\U0004fffd\U00050000-\U0005fffd\U00060000-\U0006fffd"
    r"\U00070000-\U0007fffd\U00080000-\U0008fffd\U00090000-\U0009fffd\U000a0000-\U000afffd"
    r"\U000b0000-\U000bfffd\U000c0000-\U000cfffd\U000d0000-\U000dfffd\U000e1000-\U000efffd"
    r"\ue000-\uf8ff\U000f0000-\U000ffffd\U00100000-\U0010fffd"
)


class _UrlPatterns(NamedTuple):
    x: regex.Pattern[str]
    mastodon: regex.Pattern[str]
    ascii_domain: regex.Pattern[str]


@functools.cache
def _url_patterns() -> _UrlPatterns:
    """The three patterns that hold the top-level domain alternation, compiled on first use.

    Compiling them costs `regex` about half a second, so they are neither built at import
    (`aspdigest --help` and a no-change rebuild never need them) nor, after the first run,
    compiled at all: :func:`regexcache.compile_cached` keeps them on disk.
    """
    tld = f"(?i:{_alternation(TLDS)})(?=[^0-9a-zA-Z@+\\-]|$)"
    domain = f"(?:{_SUBDOMAIN})*{_DOMAIN_NAME}(?:{tld}|{_PUNYCODE_TLD})"
    sources = {
        "x": _url_source(
            domain,
            protocol="(?i:https?://)",
            path_char=f"[a-zA-Z{_CYRILLIC}0-9!*';:=+,.$/%#\\[\\]\\-\u2013_~@|&{_LATIN_ACCENTS}]",
            path_end_char=f"[+\\-a-zA-Z{_CYRILLIC}0-9=_#/{_LATIN_ACCENTS}]",
            query_char=r"[a-zA-Z0-9!?*'@();:&=+$/%#\[\]\-_.,~|]",
            query_end_char=r"[a-zA-Z0-9\-_&=#/]",
        ),
        "mastodon": _url_source(
            domain,
            protocol="(?i:(?:https?|dat|dweb|ipfs|ipns|ssb|gopher|gemini)://)",
            path_char=r"[^\p{White_Space}<>()?]",
            path_end_char=r"""[^\p{White_Space}()?!*"'「」<>;:=,.$%\[\]~&|@]""",
            query_char=f"[a-zA-Z0-9!?*'();:&=+$/%#\\[\\]\\-_.,~|@^{_UCHARS}]",
            query_end_char=f"[a-zA-Z0-9_&=#/\\-{_UCHARS}]",
        ),
        "ascii_domain": f"(?:[a-zA-Z0-9_\\-{_LATIN_ACCENTS}]+\\.)+(?:{tld}|{_PUNYCODE_TLD})",
    }
    return _UrlPatterns(**regexcache.compile_cached("extract-urls", sources))


_TCO_URL = regex.compile(
    r"(?i:https?://t\.co/)(?P<slug>[a-zA-Z0-9]+)"
    r"(?:\?[a-zA-Z0-9!?*'@();:&=+$/%#\[\]\-_.,~|]*[a-zA-Z0-9\-_&=#/])?"
)
_MAX_TCO_SLUG = 40
_MAX_URL_LENGTH = 4096
_MAX_LABEL_LENGTH = 63
_DEFAULT_PROTOCOL_LENGTH = len("https://")
# A scheme-less URL right after one of these is part of something else ("/x.com" is a path).
_NO_URL_BEFORE = frozenset("-_./")


def _ascii_host_length(domain: str) -> int | None:
    """Length of ``domain`` once each label is punycoded, or None if a label is not valid DNS."""
    total = 0
    for label in domain.split("."):
        if label.isascii():
            encoded_length = len(label)
        elif label[:4].lower() == "xn--":
            return None  # an A-label cannot also carry raw Unicode
        else:
            encoded_length = 4 + len(label.encode("punycode"))
        if not 1 <= encoded_length <= _MAX_LABEL_LENGTH:
            return None
        total += encoded_length
    return total + domain.count(".")


def _valid_host(url_length: int, domain: str, has_protocol: bool) -> bool:
    ascii_length = _ascii_host_length(domain)
    if ascii_length is None:
        return False
    url_length += max(0, ascii_length - len(domain))
    if not has_protocol:
        url_length += _DEFAULT_PROTOCOL_LENGTH
    return url_length <= _MAX_URL_LENGTH


# No URL contains ASCII white space, so scanning each white-space separated window (with the
# space before it, a possible preceding character) finds exactly what one scan of the whole text
# finds; a window without a dot followed by a top-level domain cannot hold a URL and is skipped.
# This keeps long texts cheap: a failed match attempt can cost as much as the rest of its window.
_WINDOW_BREAK = regex.compile(r"[\t\n\x0b\x0c\r \x85]+")


def _matches(text: str, pattern: regex.Pattern[str]) -> Iterator[regex.Match[str]]:
    start = 0
    bounds: list[tuple[int, int]] = []
    for gap in _WINDOW_BREAK.finditer(text):
        bounds.append((start, gap.start()))
        start = gap.end() - 1
    bounds.append((start, len(text)))
    for pos, endpos in bounds:
        # Every URL match holds a "." before its TLD, so a window without one is skipped; a
        # fourth copy of the TLD alternation as the filter cost ~70 ms to compile per process.
        if text.find(".", pos, endpos) != -1:
            yield from pattern.finditer(text, pos, endpos)


def _scan_urls(text: str, pattern: regex.Pattern[str], *, protocol_required: bool) -> list[Entity]:
    if "." not in text or (protocol_required and ":" not in text):
        return []
    found: list[Entity] = []
    for match in _matches(text, pattern):
        url: str = match["url"]
        domain: str = match["domain"]
        start, end = match.span("url")
        if match["protocol"] is None:
            before: str = match["before"]
            if protocol_required or (before != "" and before in _NO_URL_BEFORE):
                continue
            # A scheme-less "URL" may have swallowed neighbouring CJK or other text into its
            # first label: keep only the ASCII (and Latin) host names inside it.
            domain_start = start
            last: int | None = None
            for host in _url_patterns().ascii_domain.finditer(domain):
                if not _valid_host(len(url), host[0], False):
                    continue
                found.append(
                    Entity("url", domain_start + host.start(), domain_start + host.end(), host[0])
                )
                last = len(found) - 1
            if last is not None and match["path"] is not None:
                tail = found[last]
                found[last] = Entity("url", tail.start, end, text[tail.start : end])
            continue
        tco = _TCO_URL.match(url)
        if tco is not None:
            if len(tco["slug"]) > _MAX_TCO_SLUG:
                continue
            url = tco[0]
            end = start + len(url)
        if not _valid_host(len(url), domain, True):
            continue
        found.append(Entity("url", start, end, url))
    return found


# Packing a thread measures the same texts again and again (every platform's length, the
# hashtags, the protected spans, the final check, the review site): the URLs of a text are
# found once. Entities are frozen, so the cached tuples are safe to share.
@functools.lru_cache(maxsize=8192)
def _urls(text: str, mastodon: bool) -> tuple[Entity, ...]:
    if mastodon:
        return tuple(_scan_urls(text, _url_patterns().mastodon, protocol_required=True))
    return tuple(_scan_urls(text, _url_patterns().x, protocol_required=False))


def extract_urls(text: str) -> list[Entity]:
    """URLs as X counts them (twitter-text v3), with or without scheme, in text order."""
    return list(_urls(text, False))


def extract_mastodon_urls(text: str) -> list[Entity]:
    """URLs as a Mastodon server counts them: a scheme is required."""
    return list(_urls(text, True))


# --------------------------------------------------------------------------- mentions
_MENTION = regex.compile(
    r"(?P<before>^|[^a-zA-Z0-9_!#$%&*@\uff20]|(?:^|[^a-zA-Z0-9_+~.\-])[rR][tT]:?)"
    r"[@\uff20](?P<name>[a-zA-Z0-9_]{1,20})(?P<slug>/[a-zA-Z][a-zA-Z0-9_\-]{0,24})?"
)
_END_MENTION = regex.compile(f"[@\uff20{_LATIN_ACCENTS}]|://")


def extract_mentions(text: str) -> list[Entity]:
    """``@user`` and ``@user/list`` mentions (the span starts at the at sign)."""
    if "@" not in text and "\uff20" not in text:
        return []
    found: list[Entity] = []
    for match in _MENTION.finditer(text):
        if _END_MENTION.match(text, match.end()):
            continue
        start = match.start("name") - 1
        end = match.end()
        found.append(Entity("mention", start, end, text[start:end]))
    return found


_MASTODON_MAX_DOMAIN = 253


def extract_mastodon_mentions(text: str) -> list[Entity]:
    """``@user`` and ``@user@domain`` as a Mastodon server finds them (Extractor#
    extract_mentions_or_lists_with_indices): `aspdigest.platforms.MENTION_RE`, except where
    the match runs on into an at sign, an accented letter or "://", or the domain is longer
    than a DNS name can be."""
    if "@" not in text:
        return []
    found: list[Entity] = []
    for match in platforms.MENTION_RE.finditer(text):
        if _END_MENTION.match(text, match.end()):
            continue
        domain = match["domain"]
        if domain is not None and len(domain) > _MASTODON_MAX_DOMAIN:
            continue
        found.append(Entity("mention", match.start(), match.end(), match[0]))
    return found


# --------------------------------------------------------------------------- hashtags
_HASHTAG_ALNUM = (
    r"\p{L}\p{M}\p{Nd}_\u200c\u200d\ua67e\u05be\u05f3\u05f4\uff5e\u301c\u309b\u309c\u30a0"
    r"\u30fb\u3003\u0f0b\u0f0c\u00b7"
)
_HASHTAG = regex.compile(
    f"(?:^|\ufe0e|\ufe0f|[^&{_HASHTAG_ALNUM}])"
    "(?P<hash>[#\uff03])(?!\ufe0f|\u20e3)"
    f"(?P<tag>[{_HASHTAG_ALNUM}]*[\\p{{L}}\\p{{M}}][{_HASHTAG_ALNUM}]*)"
)
_END_HASHTAG = regex.compile("[#\uff03]|://")


def _drop_overlaps(found: list[Entity]) -> list[Entity]:
    """Sort by start (stable) and drop every entity that starts inside an earlier one."""
    kept: list[Entity] = []
    for entity in sorted(found, key=lambda e: e.start):
        if kept and entity.start < kept[-1].end:
            continue
        kept.append(entity)
    return kept


def extract_hashtags(text: str) -> list[Entity]:
    """``#tag`` hashtags (span includes the hash sign), not those inside URLs."""
    if "#" not in text and "\uff03" not in text:
        return []
    found: list[Entity] = []
    for match in _HASHTAG.finditer(text):
        if _END_HASHTAG.match(text, match.end()):
            continue
        start, end = match.start("hash"), match.end("tag")
        found.append(Entity("hashtag", start, end, text[start:end]))
    urls = extract_urls(text)
    if not urls or not found:
        return found
    return [e for e in _drop_overlaps([*found, *urls]) if e.kind == "hashtag"]


# --------------------------------------------------------------------------- cashtags
_CASHTAG = regex.compile(
    f"(?:^|[{_SPACES}])(?P<dollar>\\$)(?P<symbol>[a-zA-Z]{{1,6}}(?:[._][a-zA-Z]{{1,2}})?)"
    f"(?=$|\\s|[{_PUNCT}])"
)


def extract_cashtags(text: str) -> list[Entity]:
    """``$SYMBOL`` cashtags (letters only, at most six, optional ``.XX`` suffix)."""
    if "$" not in text:
        return []
    return [
        Entity("cashtag", m.start("dollar"), m.end(), text[m.start("dollar") : m.end()])
        for m in _CASHTAG.finditer(text)
    ]


def entities(text: str) -> list[Entity]:
    """Every URL, mention, hashtag and cashtag, in text order, never overlapping.

    Where two candidates overlap the one starting first wins (twitter-text's rule), so a
    splitter can treat each returned span as indivisible.
    """
    found = [
        *extract_urls(text),
        *extract_mentions(text),
        *extract_hashtags(text),
        *extract_cashtags(text),
    ]
    return _drop_overlaps(found)
