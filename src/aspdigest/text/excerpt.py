"""Excerpts of a quote: the longest verbatim span that fits a space, marked with "…".

A pure helper of the render stage. Quote cards use it when a whole quote cannot be set at
the legibility floor; social threads may use it for the same reason. `excerpt(text, fits,
chosen)` returns an `Excerpt`: the whole quote when `fits` accepts it; else the record's own
`quotes[].excerpt` (a contiguous span of the quote) when given and it fits; else the leading
whole sentences that fit; else, as a last resort for one enormous sentence, the leading
whole words. Whatever is shown is `text[start:end]` exactly, with "…" on each side where the
quote continues: a word is never changed, dropped, reordered or cut inside the span.

`fits` is the caller's notion of room (a card's box at its minimum size, a post's length);
it is assumed monotone (a longer prefix never fits where a shorter one does not), so
candidates are found by binary search, a few calls to `fits` whatever the quote's length.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

ELLIPSIS = "…"

# A sentence ends at . ! ? … (and the Arabic ؟ and CJK 。) followed, after any closing
# quotation marks or brackets, by white space; the span ends after the closers.
_SENTENCE_END = re.compile(r"[.!?…؟。][\"'”’»)\]]*(?=\s)")
_WORD_END = re.compile(r"\S(?=\s)")


@dataclass(frozen=True)
class Excerpt:
    """What to show of a quote: `shown` is `text[start:end]` with "…" where it continues."""

    shown: str
    start: int
    end: int
    whole: bool


def mark(text: str, start: int, end: int) -> Excerpt:
    """The span `text[start:end]` with "…" before and after wherever the quote continues."""
    span = text[start:end]
    before = f"{ELLIPSIS} " if start > 0 else ""
    after = f" {ELLIPSIS}" if end < len(text) else ""
    return Excerpt(before + span + after, start, end, start == 0 and end == len(text))


def sentence_ends(text: str, start: int = 0, end: int | None = None) -> list[int]:
    """Offsets just after each sentence of `text[start:end]` but the last (which ends at end)."""
    stop = len(text) if end is None else end
    return [m.end() for m in _SENTENCE_END.finditer(text, start, stop) if m.end() < stop]


def word_ends(text: str, start: int = 0, end: int | None = None) -> list[int]:
    stop = len(text) if end is None else end
    return [m.end() for m in _WORD_END.finditer(text, start, stop) if m.end() < stop]


def _longest(text: str, start: int, ends: list[int], fits: Callable[[str], bool]) -> Excerpt | None:
    """The longest `text[start:e]` (e in ends, ascending) that fits, by binary search."""
    low, high = 0, len(ends) - 1
    best: Excerpt | None = None
    while low <= high:
        middle = (low + high) // 2
        candidate = mark(text, start, ends[middle])
        if fits(candidate.shown):
            best = candidate
            low = middle + 1
        else:
            high = middle - 1
    return best


def find_span(text: str, span: str) -> int | None:
    """Where `span` first occurs in `text` as whole words (white space or the quote's ends on
    either side), or None: an excerpt never starts or ends inside a word."""
    if not span.strip() or span != span.strip():
        return None
    found = re.search(r"(?<!\S)" + re.escape(span) + r"(?!\S)", text)
    return None if found is None else found.start()


def excerpt(
    text: str, fits: Callable[[str], bool], chosen: str | None = None, *, words: bool = True
) -> Excerpt | None:
    """The whole quote, the chosen excerpt, or the leading sentences (then words) that fit.

    None only when not even the first word fits (or the quote is blank); with `words=False`,
    None already when not even the first sentence does (the caller makes room first).
    """
    if not text.strip():
        return None
    whole = mark(text, 0, len(text))
    if fits(whole.shown):
        return whole
    if chosen is not None:
        start = find_span(text, chosen)
        if start is not None:
            end = start + len(chosen)
            candidate = mark(text, start, end)
            if fits(candidate.shown):
                return candidate
            # The chosen span is itself too long: its leading sentences, then words.
            found = _longest(text, start, sentence_ends(text, start, end), fits)
            if found is not None or not words:
                return found
            return _longest(text, start, word_ends(text, start, end), fits)
    found = _longest(text, 0, sentence_ends(text), fits)
    if found is not None or not words:
        return found
    return _longest(text, 0, word_ends(text), fits)
