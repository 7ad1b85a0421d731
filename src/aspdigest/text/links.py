"""A record's link as written into a post, so that the platform links all of it.

text/ is used by the social renderer to measure and split posts. A URL that `check` accepts
(strict RFC 3986, see `records.url_problem`) may still end in a character where a platform's
link detection stops: X and Threads (twitter-text) end a path only on a letter, digit or one
of `+-=_#/`, Mastodon stops at `(` and before a trailing `=`, `.` or `~`, Bluesky drops one
trailing `.,;:!?` and an unmatched `)`. Posted as it is, such a URL would be linked short on
some platforms and whole on others. :func:`linkable` percent-encodes, one at a time, the
characters where the platform's own detector stops, until it takes the whole URL; a URL it
already takes whole is returned unchanged.
"""

from __future__ import annotations

from aspdigest.text.bluesky import bluesky_facets
from aspdigest.text.extract import extract_mastodon_urls, extract_urls

# Where a link sits in a post: at the start of a paragraph, followed by another (the item
# template, and the "3/7" numbering line after it).
_BEFORE = "Read more:\n\n"
_AFTER = "\n\n3/7"


def linked_span(url: str, platform: str, before: str = _BEFORE, after: str = _AFTER) -> str:
    """The part of `url` that `platform` links when it stands between `before` and `after`
    in a post ("" when none of it is)."""
    text = before + url + after
    start = len(before)
    if platform == "bluesky":
        offset = len(before.encode("utf-8"))
        for facet in bluesky_facets(text):
            if facet.kind == "link" and facet.byte_start == offset:
                return text.encode("utf-8")[facet.byte_start : facet.byte_end].decode("utf-8")
        return ""
    found = extract_mastodon_urls(text) if platform == "mastodon" else extract_urls(text)
    for entity in found:
        if entity.start == start:
            return entity.text[: len(url)]
    return ""


def _encoded(char: str) -> str:
    return "".join(f"%{byte:02X}" for byte in char.encode("utf-8"))


def linkable(url: str, platform: str) -> str:
    """`url` as it is written in a post on `platform` so that the platform links all of it.

    Only the characters where the platform's detector stops are percent-encoded (`%29` for a
    closing parenthesis, `%2E` for a final full stop): a server reads the same resource.
    An empty query or fragment at the very end (`?`, `#`) is dropped, since encoding it would
    change the path.
    """
    start = url.find("://") + 3
    authority_end = min((i for i in map(url.find, "/?#", [start] * 3) if i >= 0), default=-1)
    for _ in range(len(url)):
        end = len(linked_span(url, platform))
        if end >= len(url) or authority_end < 0 or end <= authority_end:
            return url  # whole, or no path to change (the host itself is never encoded)
        cut = end
        if url[cut] in "?#%":
            # The delimiter is not the culprit: the detector refused how the URL ends.
            cut = len(url) - 1
            if url[cut] in "?#" and url.count(url[cut]) == 1:
                url = url[:cut]
                continue
        if url[cut].isalnum() or url[cut] == "%":
            return url  # nothing left that encoding would help
        url = url[:cut] + _encoded(url[cut]) + url[cut + 1 :]
    return url
