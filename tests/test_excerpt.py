"""Excerpts (text/excerpt.py): always a contiguous verbatim span, never a cut word."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from aspdigest.text.excerpt import (
    ELLIPSIS,
    Excerpt,
    excerpt,
    find_span,
    mark,
    sentence_ends,
    word_ends,
)

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
    assert mark("xa b", 1, 2) == Excerpt("… a …", 1, 2, False)


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


# -- known answers and the longest candidate (issue 22: mutation testing) -------------------------


def test_sentence_and_word_ends_inside_a_span() -> None:
    text = "One two. Three four! Five six? Seven… Eight nine. Ten"
    assert sentence_ends(text) == [8, 20, 30, 37, 49]
    assert sentence_ends(text, 9, 30) == [20]  # an end at the span's end is not "inside"
    assert sentence_ends("A. B", 0, 2) == []
    assert word_ends(text, 0, 12) == [3, 8]
    assert word_ends("ab cd", 0, 2) == []
    assert word_ends("ab cd") == [2]
    assert word_ends("a bc") == [1] and sentence_ends(". A") == [1]  # from the very start


def test_a_chosen_span_must_be_whole_words() -> None:
    assert find_span("a bc d", "bc") == 2
    assert find_span("abc bc", "bc") == 4  # not inside "abc"
    assert find_span("a bc d", "b") is None
    assert find_span("a bc d", " bc") is None and find_span("a bc d", "bc ") is None
    assert find_span("a bc d", "") is None and find_span("a bc d", "  ") is None
    assert find_span("a  b", "") is None  # not the empty "word" between two spaces
    assert find_span("a bc d", "x") is None


def test_a_chosen_span_too_long_gives_its_own_leading_sentences_then_words() -> None:
    text = "Aa bb. Cc dd. Ee ff gg hh."
    chosen = "Cc dd. Ee ff gg hh."
    assert excerpt(text, lambda s: len(s) <= 12, chosen) == Excerpt("… Cc dd. …", 7, 13, False)
    assert excerpt(text, lambda s: len(s) <= 9, chosen) == Excerpt("… Cc …", 7, 9, False)
    # whole sentences first, although a word more would fit
    assert excerpt(text, lambda s: len(s) <= 13, chosen) == Excerpt("… Cc dd. …", 7, 13, False)
    # a chosen span that is not in the quote: the quote's own leading sentences
    assert excerpt(text, lambda s: len(s) <= 9, "Cc dx") == Excerpt("Aa bb. …", 0, 6, False)
    assert excerpt(text, lambda s: len(s) <= 40, chosen) == Excerpt(text, 0, len(text), True)


@settings(max_examples=200, deadline=None)
@given(quotes, st.integers(min_value=1, max_value=120))
def test_property_the_excerpt_is_the_longest_that_fits(text: str, room: int) -> None:
    def fits(shown: str) -> bool:
        return len(shown) <= room

    result = excerpt(text, fits)
    if fits(mark(text, 0, len(text)).shown):
        assert result == mark(text, 0, len(text))
        return
    # the longest leading whole sentences that fit, else the longest leading whole words
    for ends in (sentence_ends(text), word_ends(text)):
        fitting = [e for e in ends if fits(mark(text, 0, e).shown)]
        if fitting:
            assert result == mark(text, 0, max(fitting))
            return
    assert result is None
