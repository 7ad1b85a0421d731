"""text/split.py: sentence, clause and word breaks, packing, and entities that are never cut."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aspdigest.text import RULES, bluesky_length, mastodon_length, threads_length
from aspdigest.text.split import (
    Unsplittable,
    clause_gaps,
    pack,
    pieces,
    protected_spans,
    sentence_gaps,
    word_gaps,
)

NBSP, NNBSP = "\u00a0", "\u202f"


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in pieces(text, (0, len(text)), "sentence", protected_spans(text))]


def clauses(text: str) -> list[str]:
    return [text[s:e] for s, e in pieces(text, (0, len(text)), "clause", protected_spans(text))]


def words(text: str) -> list[str]:
    return [text[s:e] for s, e in pieces(text, (0, len(text)), "word", protected_spans(text))]


# -- sentences -----------------------------------------------------------------------------------


def test_sentences_end_at_stops_followed_by_a_space() -> None:
    assert sentences("One. Two! Three? Four… Five") == ["One.", "Two!", "Three?", "Four…", "Five"]


def test_closing_quotation_marks_stay_with_their_sentence() -> None:
    text = "I was taught humility. “Don’t blow your own horn, be modest.’ But I continue."
    assert sentences(text) == [
        "I was taught humility.",
        "“Don’t blow your own horn, be modest.’",
        "But I continue.",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "Dr. Smith spoke.",
        "Prof. Akane spoke.",
        "See e.g. the report.",
        "The U.S. delegation.",
        "J. Smith spoke.",
        "It rose 3.5 per cent.",
        "Visit example.org today.",
        "It was late… and dark.",
        "Art. 7 applies.",
    ],
)
def test_no_sentence_break_inside_abbreviations_numbers_domains(text: str) -> None:
    assert sentences(text) == [text]


def test_cjk_and_arabic_sentence_stops() -> None:
    assert sentences("正义必须实现。受害者需要真相！为什么？") == [
        "正义必须实现。",
        "受害者需要真相！",
        "为什么？",
    ]
    assert sentences("هل هذا عدل؟ نعم.") == ["هل هذا عدل؟", "نعم."]


def test_gaps_are_the_white_space_between() -> None:
    assert sentence_gaps("One.  Two.", 0, 10) == [(4, 6)]


# -- clauses -------------------------------------------------------------------------------------


def test_clauses_at_comma_semicolon_colon_and_dashes() -> None:
    text = "First, second; third: fourth — fifth—sixth"
    assert clauses(text) == ["First,", "second;", "third:", "fourth —", "fifth—", "sixth"]


@pytest.mark.parametrize(
    "text",
    [
        "1,000 people",
        "at 14:30 today",
        "conflict-related violence",
        "pages 2–6 only",
        "a large-scale attack",
    ],
)
def test_no_clause_break_inside_numbers_times_or_hyphenated_words(text: str) -> None:
    assert clauses(text) == [text]


def test_cjk_and_arabic_clause_marks_need_no_space() -> None:
    assert clauses("正义，真相、赔偿") == ["正义，", "真相、", "赔偿"]
    assert clauses("العدالة، الحقيقة؛ الإنصاف") == ["العدالة،", "الحقيقة؛", "الإنصاف"]


def test_clause_gap_after_a_comma_inside_quotation_marks() -> None:
    assert clause_gaps("“Yes,” she said", 0, 15) == [(6, 7)]


# -- words and entities ----------------------------------------------------------------------------


def test_words_never_break_at_no_break_spaces() -> None:
    text = f"La{NBSP}Haye «{NNBSP}oui{NNBSP}» now"
    assert words(text) == [f"La{NBSP}Haye", f"«{NNBSP}oui{NNBSP}»", "now"]
    assert word_gaps(text, 0, len(text)) == [(7, 8), (15, 16)]


def test_no_break_inside_a_url_mention_or_hashtag() -> None:
    text = "Read https://example.org/a—b,c;d: now—@ana@mastodon.social—#Justice—@bsky.bsky.social"
    protected = protected_spans(text)
    for start, end in pieces(text, (0, len(text)), "clause", protected):
        for p_start, p_end in protected:
            assert p_end <= start or p_start >= end or (start <= p_start and p_end <= end)
    assert "https://example.org/a—b,c;d:" in clauses(text)[0]


def test_protected_spans_cover_every_platforms_entities() -> None:
    text = "x https://ex.org/é—y @u@m.social #tag @a.bsky.social example.com $ICC"
    spans = [text[s:e] for s, e in protected_spans(text)]
    assert spans == [
        "https://ex.org/é—y",
        "@u@m.social",
        "#tag",
        "@a.bsky.social",
        "example.com",
        "$ICC",
    ]


# -- packing ---------------------------------------------------------------------------------------


def fits_within(limit: int) -> object:
    return lambda text: lambda s, e: len(text[s:e]) <= limit


def test_pack_keeps_sentences_that_fit_whole() -> None:
    text = "Aaaa aaaa. Bbbb bbbb. Cccc cccc."
    assert [text[s:e] for s, e in pack(text, lambda s, e: e - s <= 21)] == [
        "Aaaa aaaa. Bbbb bbbb.",
        "Cccc cccc.",
    ]


def test_a_long_sentence_is_cut_between_clauses_and_never_merged_with_its_neighbours() -> None:
    text = "Short one. A long sentence, with clauses, that goes on and on. Next."
    parts = [text[s:e] for s, e in pack(text, lambda s, e: e - s <= 30, ("sentence", "clause"))]
    assert parts == [
        "Short one.",
        "A long sentence, with clauses,",
        "that goes on and on.",
        "Next.",
    ]


def test_unsplittable_names_the_piece() -> None:
    text = "Fine. Averyveryverylongclausewithoutanybreak at all"
    with pytest.raises(Unsplittable) as caught:
        pack(text, lambda s, e: e - s <= 20, ("sentence", "clause"))
    assert text[caught.value.start : caught.value.end] == (
        "Averyveryverylongclausewithoutanybreak at all"
    )


def test_pack_strips_surrounding_white_space() -> None:
    assert pack("  Hello.  ", lambda s, e: True) == [(2, 8)]


# -- properties ------------------------------------------------------------------------------------

LATIN = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJ", min_size=1, max_size=10)
CJK = st.text("正義和平法院審判真相受害者", min_size=1, max_size=6)
ARABIC = st.text("العدالةللضحاياالمحكمة", min_size=1, max_size=8)
COMBINING = st.builds(lambda w: "".join(c + "\u0301\u0323" for c in w), LATIN)
EMOJI = st.sampled_from(["😀", "👩🏽‍⚖️", "🐦‍🔥", "✊🏽", "🇺🇦", "❤️", "1️⃣"])
URL = st.builds(lambda p: f"https://example.org/{p}", st.text("abcxyz-_/", max_size=30))
ENTITY = st.sampled_from(
    [
        "@ana_1",
        "#Justice",
        "#正義",
        "@ana@mastodon.social",
        "@icc.bsky.social",
        "$ICC",
        "example.com/path",
        # entities holding break characters, so that "no entity is cut" can fail: an em dash
        # (a clause break between words), CJK stops and commas (breaks with no space after),
        # and a tag only Bluesky sees whole
        "https://example.org/a—b—c",
        "https://example.org/正义。真相、赔偿",
        "https://example.org/a.B,c;d:e—f",
        "#foo—bar",
        "#正義。真相",
    ]
)
WORD = st.one_of(LATIN, LATIN, CJK, ARABIC, COMBINING, EMOJI, URL, ENTITY)
PUNCT = st.sampled_from(
    ["", "", "", ".", ",", ";", ":", "!", "?", "—", "。", "、", "،", "؟", "…", ".”", ",’"]
)
SPACE = st.sampled_from([" ", " ", " ", " ", "\n", NBSP, NNBSP, "  "])
TEXT = st.lists(st.tuples(WORD, PUNCT, SPACE), min_size=1, max_size=50).map(
    lambda parts: "".join(w + p + s for w, p, s in parts)
)
COUNTERS = {
    "x": RULES["x"].count,
    "bluesky": bluesky_length,
    "mastodon": mastodon_length,
    "threads": threads_length,
}
TIGHT = set("—―、，；：،؛。！？")


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXT, st.integers(min_value=10, max_value=120), st.sampled_from(sorted(COUNTERS)))
def test_packing_properties(text: str, limit: int, platform: str) -> None:
    count = COUNTERS[platform]
    stripped = text.strip()
    if not stripped:
        return
    offset = text.find(stripped)

    def fits(start: int, end: int) -> bool:
        return count(text[start:end]) <= limit

    protected = protected_spans(text)
    try:
        spans = pack(text, fits)
    except Unsplittable as exc:
        piece = (exc.start, exc.end)
        assert not fits(*piece)
        for level in ("sentence", "clause", "word"):
            assert pieces(text, piece, level, protected) == [piece]  # truly no break point
        # and by an independent account: no breaking space outside an entity
        assert _breaks_outside_entities(text, piece, protected) == []
        return
    # every part within the limit by the platform's own count
    assert all(fits(s, e) for s, e in spans)
    # in order, nothing lost, only breaking white space (or nothing after a tight mark) between
    rebuilt = "".join(
        text[s:e] + text[e:nxt]
        for (s, e), (nxt, _) in zip(spans, [*spans[1:], (spans[-1][1], 0)], strict=True)
    )
    assert rebuilt == stripped and spans[0][0] == offset
    for (_, end), (start, _) in itertools.pairwise(spans):
        gap = text[end:start]
        if gap:
            assert gap.strip() == "" and NBSP not in gap and NNBSP not in gap
        else:
            assert text[end - 1] in TIGHT or text[:end].rstrip("”’\"')»").endswith(tuple(TIGHT))
    # no entity is cut (Mastodon lets a URL's query run on into no-break spaces, which the
    # stripping of the text's ends may take off)
    for p_start, p_end in protected:
        p_end = min(p_end, offset + len(stripped))
        assert any(s <= p_start and p_end <= e for s, e in spans), text[p_start:p_end]


# -- cost ------------------------------------------------------------------------------------------


def _old_sentence_gaps(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """sentence_gaps as it was, looking for the word before each period from ``start`` on:
    the reference the linear version must agree with."""
    import regex

    from aspdigest.text import split

    word_before = regex.compile(r"[\p{L}.]+$")
    gaps = []
    for match in split._SENTENCE_END.finditer(text, start, end):
        cut = match.end()
        resume = split._space_after(text, cut, end)
        if resume >= end:
            continue
        stop = match["stop"]
        if resume == cut:
            if stop[-1] not in split._NO_SPACE_STOPS:
                continue
        elif text[resume].islower():
            continue
        if stop == ".":
            word = word_before.search(text, start, match.start())
            if word is not None:
                before = word[0].strip(".")
                if before.lower() in split.ABBREVIATIONS or (len(before) == 1 and before.isalpha()):
                    continue
        gaps.append((cut, resume))
    return gaps


ABBREVIATED = st.sampled_from(["Dr.", "e.g.", "U.S.", "J.", "etc.", "No.", "Ä.", "x.y.", "\n."])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.one_of(WORD, ABBREVIATED), PUNCT, SPACE), min_size=1, max_size=40).map(
        lambda parts: "".join(w + p + s for w, p, s in parts)
    ),
    st.data(),
)
def test_sentence_gaps_are_the_same_as_the_quadratic_search(text: str, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    assert sentence_gaps(text, start, end) == _old_sentence_gaps(text, start, end)


def _seconds_to_pack(sentences: int) -> float:
    import time

    text = " ".join(
        f"Dr. Smith said item {i} of the U.S. draft matters, as Art. 7 shows."
        + (f" See https://example.org/{i} and @icc." if i % 20 == 0 else "")
        for i in range(sentences)
    )
    best = float("inf")
    for _ in range(2):
        started = time.perf_counter()
        spans = pack(text, lambda start, end: end - start <= 280)
        best = min(best, time.perf_counter() - started)
    assert len(spans) >= sentences // 4
    return best


def test_splitting_is_linear_in_the_length_of_the_text() -> None:
    # Each period used to search for the word before it from the start of the text: a summary
    # of 3,000 sentences took minutes to split. Timed generously (2 cores, shared): ten times
    # the text may take at most forty times as long (quadratic work takes a hundred).
    small, large = _seconds_to_pack(300), _seconds_to_pack(3000)
    assert large < 2.0, f"3,000 sentences took {large:.2f}s"
    assert large < 40 * max(small, 0.005), f"300: {small:.3f}s, 3,000: {large:.3f}s"


# -- what happens beside what must not (issue 22: mutation testing) -------------------------------
# Each test above that checks a break does NOT happen ("3.5", "e.g.", an entity) is paired here
# with the break that must still happen next to it, so that losing every later break fails.


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("It rose 3.5 per cent. Then it fell.", ["It rose 3.5 per cent.", "Then it fell."]),
        ("See e.g. the report. It is long.", ["See e.g. the report.", "It is long."]),
        ("Dr. Smith spoke. Then Ana did.", ["Dr. Smith spoke.", "Then Ana did."]),
        ("J. Smith spoke. Then Ana did.", ["J. Smith spoke.", "Then Ana did."]),
        ("It was late… and dark. Then dawn.", ["It was late… and dark.", "Then dawn."]),
        ("Visit example.org today. Or not.", ["Visit example.org today.", "Or not."]),
        ("One. Two. Three.", ["One.", "Two.", "Three."]),
        ("Ends with Dr.\nNext line. Here.", ["Ends with Dr.\nNext line.", "Here."]),
        ("正义。真相！", ["正义。", "真相！"]),
    ],
)
def test_sentence_breaks_after_a_non_break_are_still_found(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


def test_sentence_gaps_within_a_span_and_at_its_end() -> None:
    text = "Aa. Bb. Cc."
    assert sentence_gaps(text, 0, len(text)) == [(3, 4), (7, 8)]
    assert sentence_gaps(text, 4, len(text)) == [(7, 8)]
    # a stop at the very end of the span, or followed only by space, is no gap
    assert sentence_gaps(text, 0, 8) == [(3, 4)]
    assert sentence_gaps("Aa.   ", 0, 6) == []
    # the word before the period is looked for inside the span only: "Dr" outside it
    assert sentence_gaps("Dr. Aa. Bb", 3, 10) == [(7, 8)]


def test_clause_breaks_after_a_refused_one_are_still_found() -> None:
    # the em dash inside the URL is refused, the one after "now" is not
    text = "Read https://example.org/a—b now—then, later"
    assert clauses(text) == ["Read https://example.org/a—b now—", "then,", "later"]
    assert clause_gaps("a, b", 0, 4) == [(2, 3)]
    assert clause_gaps("a, b", 2, 4) == []  # the comma is outside the span
    assert clause_gaps("a,", 0, 2) == []  # nothing after it


def test_a_break_right_before_and_right_after_an_entity_is_allowed() -> None:
    text = "Read https://example.org/x now #Justice today @ana_1 and $ICC too"
    assert words(text) == [
        "Read",
        "https://example.org/x",
        "now",
        "#Justice",
        "today",
        "@ana_1",
        "and",
        "$ICC",
        "too",
    ]
    assert clauses("See https://example.org/a—b, then") == ["See https://example.org/a—b,", "then"]
    assert clauses("Note—#Justice—now") == ["Note—", "#Justice—", "now"]


def test_bluesky_only_entities_are_protected() -> None:
    # Bluesky's tag runs on to the next space; twitter-text's hashtag stops at the em dash.
    text = "Say #foo—bar now"
    assert [text[s:e] for s, e in protected_spans(text)] == ["#foo—bar"]
    assert clauses(text) == [text]
    # a Bluesky link's facet starts at a line start where no other extractor sees a URL
    text = "Go\nexample.org/a—b—c now"
    assert [text[s:e] for s, e in protected_spans(text)] == ["example.org/a—b—c"]
    assert clauses(text) == [text]
    # byte offsets after multi-byte text map back to code points
    text = "Ça va 😀 #正義—真相 now"
    assert [text[s:e] for s, e in protected_spans(text)] == ["#正義—真相"]


def test_default_packing_goes_through_the_clause_level() -> None:
    # by clause: "A," then "bb cc dd." cut into words; by words alone "A, bb cc" would come first
    text = "A, bb cc dd."
    parts = [text[s:e] for s, e in pack(text, lambda s, e: e - s <= 8)]
    assert parts == ["A,", "bb cc", "dd."]
    with pytest.raises(Unsplittable) as caught:
        pack("Aaaaaa, bbbbbb", lambda s, e: e - s <= 5, ("sentence", "clause"))
    assert (caught.value.start, caught.value.end) == (0, 7)


def test_pack_runs_of_fitting_pieces_and_pieces_cut_further() -> None:
    text = "Aa bb. Cc dd ee ff gg. Hh. Ii."
    parts = [text[s:e] for s, e in pack(text, lambda s, e: e - s <= 9)]
    assert parts == ["Aa bb.", "Cc dd ee", "ff gg.", "Hh. Ii."]
    # an explicit span and protected spans are used as given
    assert pack(text, lambda s, e: e - s <= 9, span=(7, 22)) == [(7, 15), (16, 22)]
    assert pack("aa bb cc", lambda s, e: e - s <= 5, protected=[(0, 5)]) == [(0, 5), (6, 8)]
    assert pack("  ", lambda s, e: True) == [(0, 0)]


def test_unsplittable_message_and_span() -> None:
    error = Unsplittable(3, 9)
    assert (error.start, error.end, str(error)) == (3, 9, "no break point in [3, 9)")
    with pytest.raises(Unsplittable) as caught:
        pack("Averyverylongword", lambda s, e: e - s <= 5)
    assert (caught.value.start, caught.value.end) == (0, 17)


def _breaks_outside_entities(text: str, span: tuple[int, int], protected: list) -> list:
    """Breaking white space inside ``span`` that no protected span covers: an independent
    account of where a word break is allowed, to check `Unsplittable` against."""
    import regex

    from aspdigest.text.split import _SPACE

    start, end = span
    return [
        m.span()
        for m in regex.finditer(f"[{_SPACE}]+", text[:end])
        if start < m.start()
        and not any(p_start < m.end() and p_end > m.start() for p_start, p_end in protected)
    ]


def test_merging_and_allowing_spans_known_answers() -> None:
    from aspdigest.text.split import _allowed, merge_spans

    # nested spans merge into the outer one, touching spans stay apart, overlapping ones join
    assert merge_spans([(5, 9), (0, 10), (12, 14), (14, 16), (15, 20)]) == [
        (0, 10),
        (12, 14),
        (14, 20),
    ]
    # a gap right after or right before a protected span is allowed; one inside it is not
    assert _allowed((3, 4), [(0, 3)]) and _allowed((3, 4), [(4, 6)]) and _allowed((3, 4), [])
    assert not _allowed((3, 4), [(3, 4)]) and not _allowed((3, 4), [(2, 5)])
    assert _allowed((3, 4), [(0, 1), (4, 6)]) and not _allowed((5, 6), [(0, 1), (4, 7)])
    # word gaps: white space inside the span, not at its start
    assert word_gaps(" a b ", 0, 5) == [(2, 3), (4, 5)]
    assert word_gaps("a  b", 0, 4) == [(1, 3)]
    assert word_gaps("a b c", 2, 5) == [(3, 4)]
    assert word_gaps("a  b", 0, 2) == [(1, 2)]  # cut at the span's end


def test_a_sentence_too_long_falls_to_its_clauses_before_its_words() -> None:
    text = "Aa. B, cc dd ee."
    parts = [text[s:e] for s, e in pack(text, lambda s, e: e - s <= 9)]
    assert parts == ["Aa.", "B,", "cc dd ee."]  # by words alone: "B, cc dd", "ee."


def test_an_abbreviation_at_a_line_end_and_spans_at_the_texts_end() -> None:
    # "Dr" then a line break then the period: still the abbreviation, as "$" allowed
    assert sentences("Ask Dr\n. Smith. Next.") == ["Ask Dr\n. Smith.", "Next."]
    # a Bluesky facet that ends where the text ends
    assert protected_spans("Read #tag") == [(5, 9)]
    # a clause mark before the span does not give a gap inside it
    assert clause_gaps("a,” b", 2, 5) == [] and clause_gaps("a,” b", 0, 5) == [(3, 4)]


def test_an_abbreviation_at_a_line_end_after_a_text_opening_with_no_letter() -> None:
    # The word before the period is found up to the line break, wherever the text starts
    # ("- " first: no one-letter word at offset 0 to mistake for an initial), and whole.
    assert sentences("- Ask Prof\n. Smith. Next.") == ["- Ask Prof\n. Smith.", "Next."]


def test_an_initial_after_a_number_and_a_dot_is_not_a_sentence_end() -> None:
    # The word before the last period is ".X" (letters and dots): its dots are stripped, so
    # "X" is an initial, as in "3.X. Smith".
    assert sentences("Item 3.X. Smith wrote it.") == ["Item 3.X. Smith wrote it."]


def test_a_clause_mark_at_the_spans_end_gives_no_gap() -> None:
    # A CJK comma needs no space after it, but at the very end nothing follows to resume at.
    assert clause_gaps("好，", 0, 2) == []
    assert clauses("好，") == ["好，"]
    assert clause_gaps("好，他", 0, 3) == [(2, 2)]
