"""Split text into posts at sentence, clause and word boundaries, never inside an entity.

text/ is used by the social renderer (render stage) to cut a paragraph or a quote that no
single post can hold. Everything works on spans, ``(start, end)`` code-point offsets into the
text as given, so a caller can always say exactly which source characters a post carries:
consecutive spans are in order, never overlap, and only breaking white space (or nothing, at a
break that needs no space: after an unspaced em dash or CJK punctuation) lies between them.

:func:`pack` takes a ``fits(start, end)`` predicate (the caller measures the span as it will be
posted, with its quotation marks, ellipses and attribution) and a list of levels to fall back
through: ``sentence`` then ``clause`` then ``word``. A piece that fits is never cut; only a
piece that does not fit is split at the next level, and its parts are packed among themselves
(so a long sentence's clauses never merge with the neighbouring sentences). A piece that does
not fit and has no break point left raises :class:`Unsplittable`.

Break points are never inside a URL, mention, hashtag or cashtag as any of the platforms
detects them (twitter-text, Mastodon, Bluesky), nor at a no-break space.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Sequence
from typing import Literal

import regex

from aspdigest import platforms
from aspdigest.text.bluesky import bluesky_facets
from aspdigest.text.extract import entities, extract_mastodon_urls

Span = tuple[int, int]
Gap = tuple[int, int]  # (end of the piece before, start of the piece after)
Level = Literal["sentence", "clause", "word"]
Fits = Callable[[int, int], bool]

# Breaking white space: every Unicode space except the no-break ones (U+00A0, U+2007 figure
# space, U+202F narrow no-break space), which typography uses precisely to forbid a break.
_SPACE = "\t\n\x0b\x0c\r \x85\u1680\u2000-\u2006\u2008-\u200a\u2028\u2029\u205f\u3000"
_SPACES = regex.compile(f"[{_SPACE}]+")
_CLOSERS = "\"'\u2019\u201d\u00bb\u203a)\\]\u300d\u300f\u3009\u300b\uff09"

_SENTENCE_END = regex.compile(
    f"(?P<stop>[.!?\u203d\u2026]+|[\u3002\uff01\uff1f]+|[\u061f\u06d4\u0964\u0965]+)"
    f"(?P<close>[{_CLOSERS}]*)"
)
# Full-width (CJK) stops end a sentence with no space after them.
_NO_SPACE_STOPS = frozenset("\u3002\uff01\uff1f")
# A period after one of these (lower-cased, inner dots kept) does not end a sentence.
ABBREVIATIONS = frozenset(
    {
        "mr",
        "mrs",
        "ms",
        "mx",
        "dr",
        "prof",
        "st",
        "jr",
        "sr",
        "rev",
        "hon",
        "gen",
        "col",
        "lt",
        "sgt",
        "capt",
        "gov",
        "sen",
        "rep",
        "amb",
        "pres",
        "vs",
        "etc",
        "e.g",
        "i.e",
        "cf",
        "viz",
        "al",
        "approx",
        "no",
        "nos",
        "art",
        "arts",
        "para",
        "paras",
        "sec",
        "fig",
        "vol",
        "ed",
        "eds",
        "pp",
        "ch",
        "dept",
        "inc",
        "ltd",
        "co",
        "corp",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "u.s",
        "u.k",
        "u.n",
        "e.u",
    }
)
# The word before a period, matched backwards from the period (the (?r) flag), so finding it
# costs its own length, not the length of the text before it.
_WORD_BEFORE = regex.compile(r"(?r)[\p{L}.]+")

_CLAUSE = regex.compile(
    # comma, semicolon or colon, then any closing marks, then a space
    f"(?P<spaced>[,;:][{_CLOSERS}]*)(?=[{_SPACE}])"
    # CJK and Arabic comma, enumeration comma, semicolon and colon need no space
    f"|(?P<tight>[\u3001\uff0c\uff1b\uff1a\u060c\u061b][{_CLOSERS}]*)"
    # a dash between spaces (the dash stays with the words before it)
    f"|(?<=[{_SPACE}])(?P<dash>[\u2014\u2013\u2015-])(?=[{_SPACE}])"
    # an em dash joining two words, as in "victims—for those"
    f"|(?<=[^{_SPACE}])(?P<em>[\u2014\u2015])(?=[^{_SPACE}\u2014\u2015])"
)


class Unsplittable(Exception):
    """A piece that does not fit and has no break point left at any level."""

    def __init__(self, start: int, end: int) -> None:
        super().__init__(f"no break point in [{start}, {end})")
        self.start = start
        self.end = end


def protected_spans(text: str) -> list[Span]:
    """Spans no break may fall inside: every entity any of the platforms would detect."""
    spans = [(e.start, e.end) for e in entities(text)]
    spans += [(e.start, e.end) for e in extract_mastodon_urls(text)]
    # The bare pattern, without the extractor's look-ahead: protecting a near-mention too
    # costs a break point at most.
    spans += [m.span() for m in platforms.MENTION_RE.finditer(text)]
    facets = bluesky_facets(text)
    if facets:
        code_point = {}
        offset = 0
        for index, char in enumerate(text):
            code_point[offset] = index
            offset += len(char.encode("utf-8"))
        code_point[offset] = len(text)
        spans += [(code_point[f.byte_start], code_point[f.byte_end]) for f in facets]
    return merge_spans(spans)


def merge_spans(spans: Iterable[Span]) -> list[Span]:
    """Spans sorted, overlapping ones joined: the form `pack` takes as protected."""
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _allowed(gap: Gap, protected: Sequence[Span]) -> bool:
    cut, resume = gap
    # protected is sorted and non-overlapping (see merge_spans), so the ends are sorted too: only the
    # first span ending after the cut can reach back over the gap.
    index = bisect.bisect_right(protected, cut, key=lambda span: span[1])
    return index == len(protected) or protected[index][0] >= resume


def _space_after(text: str, index: int, end: int) -> int:
    match = _SPACES.match(text, index, end)
    return match.end() if match else index


def _word_before(text: str, start: int, end: int) -> regex.Match[str] | None:
    """The run of letters and dots that ends at ``end`` (or just before a newline there)."""
    if end > start and text[end - 1] == "\n":
        end -= 1  # as "$" allows, so an abbreviation at a line end still counts
    return _WORD_BEFORE.match(text, start, end)


def sentence_gaps(text: str, start: int, end: int) -> list[Gap]:
    """Where ``text[start:end]`` may be cut between sentences."""
    gaps: list[Gap] = []
    for match in _SENTENCE_END.finditer(text, start, end):
        cut = match.end()
        resume = _space_after(text, cut, end)
        if resume >= end:
            continue
        stop = match["stop"]
        if resume == cut:
            if stop[-1] not in _NO_SPACE_STOPS:
                continue  # "3.5", "example.org", "end.Next" are not sentence ends
        elif text[resume].islower():
            continue  # "e.g. this", "and so… we"
        if stop == ".":
            word = _word_before(text, start, match.start())
            if word is not None:
                before = word[0].strip(".")
                if before.lower() in ABBREVIATIONS or (len(before) == 1 and before.isalpha()):
                    continue
        gaps.append((cut, resume))
    return gaps


def clause_gaps(text: str, start: int, end: int) -> list[Gap]:
    """Where ``text[start:end]`` may be cut between clauses: after a comma, semicolon or
    colon followed by a space, after CJK or Arabic clause punctuation, after a spaced dash,
    and after an em dash between two words."""
    gaps: list[Gap] = []
    for match in _CLAUSE.finditer(text, start, end):
        cut = match.end()
        resume = _space_after(text, cut, end)  # CJK and Arabic marks may have no space after
        if start < cut and resume < end:
            gaps.append((cut, resume))
    return gaps


def word_gaps(text: str, start: int, end: int) -> list[Gap]:
    """Where ``text[start:end]`` may be cut between words (at breaking white space)."""
    return [m.span() for m in _SPACES.finditer(text, start, end) if start < m.start() < end]


_GAPS: dict[str, Callable[[str, int, int], list[Gap]]] = {
    "sentence": sentence_gaps,
    "clause": clause_gaps,
    "word": word_gaps,
}


def pieces(text: str, span: Span, level: Level, protected: Sequence[Span] = ()) -> list[Span]:
    """``span`` cut at every allowed break of ``level`` (one piece when there is none).

    ``protected`` is as :func:`protected_spans` returns it: sorted and non-overlapping.
    """
    start, end = span
    out: list[Span] = []
    for cut, resume in _GAPS[level](text, start, end):
        if cut <= start or not _allowed((cut, resume), protected):
            continue
        out.append((start, cut))
        start = resume
    out.append((start, end))
    return out


def pack(
    text: str,
    fits: Fits,
    levels: Sequence[Level] = ("sentence", "clause", "word"),
    span: Span | None = None,
    protected: Sequence[Span] | None = None,
) -> list[Span]:
    """The fewest spans, level by level, that each satisfy ``fits``.

    ``span`` defaults to the whole text without its surrounding white space. Raises
    :class:`Unsplittable` with the offending piece when a piece that does not fit has no
    break point at any of ``levels``.
    """
    if span is None:
        stripped = text.strip()
        offset = text.find(stripped) if stripped else 0
        span = (offset, offset + len(stripped))
    if protected is None:
        protected = protected_spans(text)
    return _pack(text, fits, tuple(levels), span, protected)


def _pack(
    text: str, fits: Fits, levels: tuple[Level, ...], span: Span, protected: Sequence[Span]
) -> list[Span]:
    if fits(*span):
        return [span]
    for depth, level in enumerate(levels):
        parts = pieces(text, span, level, protected)
        if len(parts) < 2:
            continue
        rest = levels[depth + 1 :]
        out: list[Span] = []
        run: Span | None = None
        for part in parts:
            if fits(*part):
                if run is not None and fits(run[0], part[1]):
                    run = (run[0], part[1])
                    continue
                if run is not None:
                    out.append(run)
                run = part
                continue
            if run is not None:
                out.append(run)
                run = None
            if not rest:
                raise Unsplittable(*part)
            out.extend(_pack(text, fits, rest, part, protected))
        if run is not None:
            out.append(run)
        return out
    raise Unsplittable(*span)


__all__ = [
    "ABBREVIATIONS",
    "Level",
    "Span",
    "Unsplittable",
    "clause_gaps",
    "merge_spans",
    "pack",
    "pieces",
    "protected_spans",
    "sentence_gaps",
    "word_gaps",
]
