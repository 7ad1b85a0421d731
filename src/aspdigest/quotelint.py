"""Quotation marks inside a quote that do not pair up: a warning, never a change.

A helper of the content stage. `quote_mark_warnings(record)` reads each quote's text and
returns one `Problem` per opening mark that is closed by the wrong kind (“ … ’), never
closed, or per closing mark with nothing open. Quotes are published verbatim, so the text
is never touched: a person checks it against the source and decides.

Apostrophes are told apart from closing single quotes by what is around them: ’ between
letters (don’t) or after a letter (States’ obligations) is an apostrophe, unless a ‘ is
open; ’ after punctuation (modest.’) closes a quote.
"""

from __future__ import annotations

from aspdigest.errors import Problem
from aspdigest.records import Record

# Opening mark → the closing marks that pair with it (CLDR's conventions across languages).
_PAIRS: dict[str, str] = {
    "“": "”",
    "”": "”“",  # Swedish ”…”, Arabic ”…“
    "‘": "’",
    "«": "»",
    "‹": "›",
    "„": "“”",
    "‚": "‘’",
    "「": "」",
    "『": "』",
}
_CLOSERS = frozenset("”’»›」』")
_PUNCTUATION = frozenset(".,;:!?…)")


def _unpaired(text: str) -> str | None:
    """Why the marks in `text` do not pair up (the first problem, with positions), or None."""
    stack: list[tuple[str, int]] = []
    straight: int | None = None  # position of an open ASCII double quote
    for index, char in enumerate(text):
        at = index + 1
        before = text[index - 1] if index else " "
        after = text[index + 1] if index + 1 < len(text) else " "
        if char == '"':
            straight = None if straight is not None else at
            continue
        if char == "’":
            open_single = bool(stack) and stack[-1][0] in "‘‚"
            if before.isalnum() and (after.isalnum() or not open_single):
                continue  # an apostrophe: don’t, States’
            if not (before in _PUNCTUATION or open_single or not stack):
                continue
        if stack and char in _PAIRS[stack[-1][0]]:
            stack.pop()
            continue
        if char in _PAIRS and (char != "”" or after.isalnum()):
            stack.append((char, at))
            continue
        if char in _CLOSERS:
            if stack:
                mark, where = stack[-1]
                return f"{mark} at character {where} is closed by {char} at character {at}"
            return f"{char} at character {at} closes no opening mark"
    if stack:
        mark, where = stack[-1]
        return f"{mark} at character {where} is never closed"
    if straight is not None:
        return f'" at character {straight} is never closed'
    return None


def quote_mark_warnings(record: Record) -> list[Problem]:
    out = []
    for i, quote in enumerate(record.quotes):
        problem = _unpaired(quote.text)
        if problem:
            out.append(
                Problem(
                    record.path,
                    f"quotes[{i}].text",
                    f"quotation marks do not pair up: {problem}; the quote is published as "
                    "written, so check it against the source",
                )
            )
    return out
