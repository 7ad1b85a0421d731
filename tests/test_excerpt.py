"""Excerpts (text/excerpt.py): always a contiguous verbatim span, never a cut word."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from aspdigest.text.excerpt import ELLIPSIS, Excerpt, excerpt, mark

KIT = (
    "Justice at the national level is insufficient to ensure satisfaction for victims. "
    "For each victim, it is important to see real steps. After all, only justice at the "
    "international level can indicate guarantees of non-repetition."
)


def _check(text: str, result: Excerpt) -> None:
    span = text[result.start : result.end]
    assert result.shown == (
        (f"{ELLIPSIS} " if result.start > 0 else "")
        + span
        + (f" {ELLIPSIS}" if result.end < len(text) else "")
    )
    # Never cuts a word: the span starts and ends at a word boundary of the quote.
    assert result.start == 0 or text[result.start - 1].isspace()
    assert result.end == len(text) or text[result.end].isspace()
    assert span.strip()


def test_whole_quote_when_it_fits() -> None:
    assert excerpt(KIT, lambda s: True) == Excerpt(KIT, 0, len(KIT), True)


def test_leading_whole_sentences_that_fit() -> None:
    result = excerpt(KIT, lambda s: len(s) <= 160)
    assert result is not None
    assert result.shown == (
        "Justice at the national level is insufficient to ensure satisfaction for victims. "
        "For each victim, it is important to see real steps. …"
    )
    assert not result.whole


def test_chosen_excerpt_is_used_with_ellipses_on_both_sides() -> None:
    chosen = "For each victim, it is important to see real steps."
    result = excerpt(KIT, lambda s: len(s) <= 100, chosen)
    assert result is not None
    assert result.shown == "… For each victim, it is important to see real steps. …"
    assert KIT[result.start : result.end] == chosen


def test_one_long_sentence_falls_back_to_whole_words() -> None:
    result = excerpt(KIT, lambda s: len(s) <= 30)
    assert result is not None
    assert result.shown == "Justice at the national …"


def test_nothing_fits() -> None:
    assert excerpt(KIT, lambda s: False) is None
    assert excerpt("   ", lambda s: True) is None


def test_mark_at_the_start_and_end() -> None:
    assert mark("a b c", 2, 5).shown == "… b c"
    assert mark("a b c", 0, 1).shown == "a …"


words = st.text(alphabet="abcйكم🇺🇦.,!?'»", min_size=1, max_size=8)
quotes = st.lists(words, min_size=1, max_size=40).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(quotes, st.integers(min_value=1, max_value=200), st.data())
def test_property_excerpt_is_verbatim_and_whole_words(
    text: str, room: int, data: st.DataObject
) -> None:
    chosen = None
    if data.draw(st.booleans()):
        parts = text.split(" ")
        i = data.draw(st.integers(0, len(parts) - 1))
        j = data.draw(st.integers(i + 1, len(parts)))
        chosen = " ".join(parts[i:j])
    result = excerpt(text, lambda s: len(s) <= room, chosen)
    if result is None:
        first = text.split(" ")[0]
        assert len(first) + 2 > room or len(text) > room
        return
    _check(text, result)
    assert len(result.shown) <= room
