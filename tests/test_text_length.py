"""Tests of aspdigest.text: platform length rules, entity extraction and Bluesky facets.

The X rules are checked against twitter-text's own conformance files (validate.yml, extract.yml)
in tests/data/twitter-text (a copy of shared/data/twitter-text, Apache-2.0); a missing copy is an error, not a skip.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from pathlib import Path
from typing import Any

import emoji
import pytest
import regex
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from aspdigest.text import (
    RULES,
    Entity,
    Facet,
    PlatformRule,
    bluesky_bytes,
    bluesky_facets,
    bluesky_length,
    bluesky_shorten_links,
    check,
    entities,
    extract_cashtags,
    extract_hashtags,
    extract_mastodon_urls,
    extract_mentions,
    extract_urls,
    linkedin_escape,
    linkedin_length,
    mastodon_length,
    mastodon_rule,
    shorten_display_url,
    threads_length,
    threads_link_count,
    x_weighted_length,
)
from aspdigest.text import length as length_module
from aspdigest.text.bluesky import (
    SIMPLE_RANGES,
    _byte_offsets,
    bluesky_display_text,
    grapheme_count,
)

DATA = Path(__file__).parent / "data" / "twitter-text"


def _load(name: str) -> dict[str, list[dict[str, Any]]]:
    path = DATA / name
    if not path.is_file():
        raise FileNotFoundError(
            f"twitter-text conformance data missing: {path} (copied from shared/data/twitter-text)"
        )
    tests: dict[str, list[dict[str, Any]]] = yaml.safe_load(path.read_text("utf-8"))["tests"]
    return tests


VALIDATE = _load("validate.yml")
EXTRACT = _load("extract.yml")

# Every section of the conformance files is either run here or skipped for a stated reason.
VALIDATE_RUN = {
    # weighted length, section -> emoji parsing (v2 config counts emoji code point by code point)
    "WeightedTweetsCounterTest": False,
    "WeightedTweetsWithDiscountedEmojiCounterTest": True,
    "UnicodeDirectionalMarkerCounterTest": True,
}
VALIDATE_WHOLE_ENTITY = ("usernames", "lists", "hashtags", "urls_without_protocol")
VALIDATE_SKIPPED = {
    "tweets": "twitter-text v1 (140-character) validity: '141 characters' is invalid there "
    "but fits v3's 280",
    "urls": "isValidUrl, an RFC 3986 syntax validator of a bare URL (IPv4/IPv6 hosts, userinfo, "
    "ftp://), not the extraction of URLs from post text that the length rules use",
}
EXTRACT_RUN = (
    "urls",
    "urls_with_indices",
    "urls_with_directional_markers",
    "tco_urls_with_params",
    "mentions",
    "mentions_with_indices",
    "mentions_or_lists_with_indices",
    "hashtags",
    "hashtags_from_astral",
    "hashtags_with_indices",
    "cashtags",
    "cashtags_with_indices",
)
EXTRACT_SKIPPED = {
    "replies": "extract_reply_screen_name (who a leading @mention replies to) is not an entity: "
    "threads are chained by reply ids, not by text",
}


def _cases(tests: dict[str, list[dict[str, Any]]], *sections: str) -> list[Any]:
    return [
        pytest.param(section, case, id=f"{section}: {case['description']}")
        for section in sections
        for case in tests[section]
    ]


def test_every_conformance_section_is_run_or_skipped_for_a_reason() -> None:
    assert set(VALIDATE) == set(VALIDATE_RUN) | set(VALIDATE_WHOLE_ENTITY) | set(VALIDATE_SKIPPED)
    assert set(EXTRACT) == set(EXTRACT_RUN) | set(EXTRACT_SKIPPED)


# --------------------------------------------------------------------------- X weighted length


def test_x_constants_match_config_v3() -> None:
    path = DATA / "config-v3.json"
    if not path.is_file():
        raise FileNotFoundError(f"twitter-text config missing: {path}")
    config = json.loads(path.read_text("utf-8"))
    assert config["version"] == 3
    assert config["emojiParsingEnabled"] is True
    assert config["maxWeightedTweetLength"] == length_module.X_MAX_WEIGHTED_LENGTH
    assert config["scale"] == length_module.X_SCALE
    assert config["defaultWeight"] == length_module.X_DEFAULT_WEIGHT
    assert config["transformedURLLength"] == length_module.X_TRANSFORMED_URL_LENGTH
    ranges = [(r["start"], r["end"], r["weight"]) for r in config["ranges"]]
    assert ranges == list(length_module.X_RANGES)


@pytest.mark.parametrize(("section", "case"), _cases(VALIDATE, *VALIDATE_RUN))
def test_x_weighted_length_conformance(section: str, case: dict[str, Any]) -> None:
    text: str = case["text"]
    expected = case["expected"]
    weighted = x_weighted_length(text, emoji_parsing=VALIDATE_RUN[section])
    assert weighted == expected["weightedLength"]
    assert math.floor(weighted / 280 * 1000) == expected["permillage"]
    has_invalid = any(c in "\ufffe\ufeff\uffff" for c in unicodedata.normalize("NFC", text))
    assert (0 < weighted <= 280 and not has_invalid) == expected["valid"]
    if VALIDATE_RUN[section]:  # the registry uses the v3 rule
        assert (check("x", text) == []) == expected["valid"]


@pytest.mark.parametrize(("section", "case"), _cases(VALIDATE, *VALIDATE_WHOLE_ENTITY))
def test_validate_whole_text_is_one_entity(section: str, case: dict[str, Any]) -> None:
    text: str = case["text"]
    found: list[Entity]
    if section == "usernames":
        found = [e for e in extract_mentions(text) if "/" not in e.text]
    elif section == "lists":
        found = [e for e in extract_mentions(text) if "/" in e.text]
    elif section == "hashtags":
        found = extract_hashtags(text)
    else:
        found = extract_urls(text)
    whole = len(found) == 1 and (found[0].start, found[0].end) == (0, len(text))
    assert whole == case["expected"]


def test_newer_emoji_count_two() -> None:
    assert x_weighted_length("🐦‍🔥") == 2  # phoenix, Unicode 15.1 ZWJ sequence
    assert x_weighted_length("🙂‍↔️") == 2  # head shaking horizontally, 15.1
    assert x_weighted_length("🧑‍🧑‍🧒‍🧒") == 2  # family: adult, adult, child, child (15.1)
    assert x_weighted_length("🫩") == 2  # face with bags under eyes, 16.0
    assert x_weighted_length("👩🏽‍🤝‍👩🏻") == 2  # skin tones inside a ZWJ sequence
    assert x_weighted_length("🏳️‍⚧️🇺🇦🏴󠁧󠁢󠁳󠁣󠁴󠁿") == 6  # flag ZWJ sequence, flag pair, tag sequence
    assert x_weighted_length("#️⃣1️⃣*⃣") == 6  # keycaps, with and without VS16
    assert x_weighted_length("Phoenix 🐦‍🔥 rises") == 16
    assert x_weighted_length("🐦‍🔥" * 140) == 280
    assert check("x", "🐦‍🔥" * 141) == ["282/280 weighted characters"]


def test_x_letter_weight_symbols_stay_text() -> None:
    # A bare © or ® is a letter-weight character to twitter-text; with VS16 it is an emoji.
    assert x_weighted_length("©") == 1
    assert x_weighted_length("®") == 1
    assert x_weighted_length("©️") == 2
    assert x_weighted_length("☺") == 2
    assert x_weighted_length("\u2018quote\u2019 \u2014 ok") == 12


def test_x_nfc_and_urls() -> None:
    assert x_weighted_length("e\u0301") == 1  # NFC makes one é
    assert x_weighted_length("see example.com/path and https://t.co/abc") == 4 + 23 + 5 + 23
    assert x_weighted_length("example.cm") == 23
    assert x_weighted_length("not.aurl") == 8


# --------------------------------------------------------------------------- extraction


def _urls(text: str) -> list[str]:
    return [e.text for e in extract_urls(text)]


def _with_indices(found: list[Entity], strip: int = 0) -> list[tuple[str, list[int]]]:
    return [(e.text[strip:], [e.start, e.end]) for e in found]


@pytest.mark.parametrize(("section", "case"), _cases(EXTRACT, *EXTRACT_RUN))
def test_extract_conformance(section: str, case: dict[str, Any]) -> None:
    text: str = case["text"]
    expected = case["expected"]
    if section in ("urls", "tco_urls_with_params"):
        assert _urls(text) == expected
    elif section in ("urls_with_indices", "urls_with_directional_markers"):
        want = [(u["url"], u["indices"]) for u in expected]
        assert _with_indices(extract_urls(text)) == want
    elif section == "mentions":
        assert [e.text[1:] for e in extract_mentions(text) if "/" not in e.text] == expected
    elif section == "mentions_with_indices":
        got = [e for e in extract_mentions(text) if "/" not in e.text]
        assert _with_indices(got, 1) == [(m["screen_name"], m["indices"]) for m in expected]
    elif section == "mentions_or_lists_with_indices":
        lists: list[tuple[str, str, list[int]]] = []
        for e in extract_mentions(text):
            name, slash, slug = e.text[1:].partition("/")
            lists.append((name, slash + slug, [e.start, e.end]))
        assert lists == [(m["screen_name"], m["list_slug"], m["indices"]) for m in expected]
    elif section in ("hashtags", "hashtags_from_astral"):
        assert [e.text[1:] for e in extract_hashtags(text)] == expected
    elif section == "hashtags_with_indices":
        want = [(h["hashtag"], h["indices"]) for h in expected]
        assert _with_indices(extract_hashtags(text), 1) == want
    elif section == "cashtags":
        assert [e.text[1:] for e in extract_cashtags(text)] == expected
    else:
        assert section == "cashtags_with_indices"
        want = [(c["cashtag"], c["indices"]) for c in expected]
        assert _with_indices(extract_cashtags(text), 1) == want
    _assert_well_formed(text, entities(text))


def _assert_well_formed(text: str, found: list[Entity]) -> None:
    end = 0
    for entity in found:
        assert end <= entity.start < entity.end <= len(text)
        assert text[entity.start : entity.end] == entity.text
        end = entity.end


def test_entities_merge_without_overlap() -> None:
    text = "RT @user: see https://x.com/#tag #real $TSLA @team/list-1 café.fr!"
    got = [(e.kind, e.text) for e in entities(text)]
    assert got == [
        ("mention", "@user"),
        ("url", "https://x.com/#tag"),
        ("hashtag", "#real"),
        ("cashtag", "$TSLA"),
        ("mention", "@team/list-1"),
        ("url", "café.fr"),
    ]
    assert entities("") == []


def test_mastodon_urls_need_a_scheme() -> None:
    text = "example.com and https://example.com/wiki/Ω_(x) or gemini://geminiprotocol.net/"
    assert [e.text for e in extract_mastodon_urls(text)] == [
        "https://example.com/wiki/Ω_(x)",
        "gemini://geminiprotocol.net/",
    ]


# --------------------------------------------------------------------------- Bluesky


def _slice(text: str, facet: Facet) -> str:
    return text.encode("utf-8")[facet.byte_start : facet.byte_end].decode("utf-8")


def test_bluesky_facet_byte_offsets_after_multibyte_text() -> None:
    text = "Café 🎉 مرحبا https://example.org/a?b=c. @alice.bsky.social #ASP2026!"
    facets = bluesky_facets(text)
    # "Café " is 6 bytes, "🎉 " 5, "مرحبا " 11 (2 per letter): the link starts at byte 22;
    # its trailing "." is not part of it
    assert facets == [
        Facet("link", 22, 47, "https://example.org/a?b=c"),
        Facet("mention", 49, 67, "alice.bsky.social"),
        Facet("tag", 68, 76, "ASP2026"),
    ]
    assert [_slice(text, f) for f in facets] == [
        "https://example.org/a?b=c",
        "@alice.bsky.social",
        "#ASP2026",
    ]
    assert facets[0].to_record() == {
        "$type": "app.bsky.richtext.facet",
        "index": {"byteStart": 22, "byteEnd": 47},
        "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://example.org/a?b=c"}],
    }
    assert facets[1].to_record(did="did:plc:abc")["features"] == [
        {"$type": "app.bsky.richtext.facet#mention", "did": "did:plc:abc"}
    ]
    assert facets[2].to_record()["features"] == [
        {"$type": "app.bsky.richtext.facet#tag", "tag": "ASP2026"}
    ]
    with pytest.raises(ValueError, match="DID"):
        facets[1].to_record()


def test_bluesky_facet_detection_rules() -> None:
    def kinds(text: str) -> list[tuple[str, str, str]]:
        return [(f.kind, _slice(text, f), f.value) for f in bluesky_facets(text)]

    assert kinds("(see example.com/x)") == [("link", "example.com/x", "https://example.com/x")]
    assert kinds("go to wiki.org/A_(b) now") == [
        ("link", "wiki.org/A_(b)", "https://wiki.org/A_(b)")
    ]
    assert kinds("file.notatld and a.b") == []
    assert kinds("mail a@b.com or @nobody") == []
    assert kinds("hi @bob.test, #123 #a1 #tag… #x!?") == [
        ("mention", "@bob.test", "bob.test"),
        ("tag", "#a1", "a1"),
        ("tag", "#tag", "tag"),
        ("tag", "#x", "x"),
    ]
    assert kinds("#" + "a" * 64 + " #" + "b" * 65) == [("tag", "#" + "a" * 64, "a" * 64)]
    assert kinds("line\nexample.com") == [("link", "example.com", "https://example.com")]


def test_bluesky_lengths() -> None:
    assert bluesky_length("👨‍👩‍👧‍👦") == 1
    assert bluesky_bytes("👨‍👩‍👧‍👦") == 25
    assert bluesky_length("e\u0301") == 1
    assert bluesky_bytes("e\u0301") == 3
    assert check("bluesky", "a" * 300) == []
    assert check("bluesky", "a" * 301) == ["301/300 graphemes"]
    assert check("bluesky", "👨‍👩‍👧‍👦" * 121) == ["3025/3000 bytes"]


def test_bluesky_shortened_links_keep_full_uri() -> None:
    long = "https://example.org/very/long/path/to/a/page?with=query"
    assert shorten_display_url(long) == "example.org/very/long/pat…"
    assert shorten_display_url("https://example.org/") == "example.org"
    assert shorten_display_url("https://user@example.org:8080/a") == "example.org:8080/a"
    assert shorten_display_url("mailto:x@example.org") == "mailto:x@example.org"
    text = f"ünï {long} by @alice.bsky.social #tag"
    shown, facets = bluesky_shorten_links(text)
    assert shown == "ünï example.org/very/long/pat… by @alice.bsky.social #tag"
    assert [(f.kind, _slice(shown, f), f.value) for f in facets] == [
        ("link", "example.org/very/long/pat…", long),
        ("mention", "@alice.bsky.social", "alice.bsky.social"),
        ("tag", "#tag", "tag"),
    ]
    assert bluesky_length(shown) < bluesky_length(text)


# --------------------------------------------------------------------------- Mastodon


def test_mastodon_mention_counts_only_local_part() -> None:
    assert mastodon_length("hi @alice@mastodon.social!") == len("hi @alice!")
    assert mastodon_length("@bob") == 4
    assert mastodon_length("mail a@b.com") == len("mail a@b.com")  # not a mention
    assert mastodon_length("@alice@example.social@") == len("@alice@example.social@")


def test_mastodon_urls_and_graphemes() -> None:
    url = "https://example.com/a/very/long/path/that/goes/on"
    assert mastodon_length(f"see {url}") == 4 + 23
    assert mastodon_length(f"see {url}", url_length=30) == 4 + 30
    assert mastodon_length("see example.com/a/very/long/path") == 32  # no scheme: plain text
    assert mastodon_length("https://x.com/@alice@example.social") == 23  # mention inside URL
    assert mastodon_length("👨‍👩‍👧‍👦 e\u0301") == 3  # grapheme clusters
    assert mastodon_length("body", spoiler_text="CW: spoiler") == 15
    assert mastodon_length("   ") == 0
    assert check("mastodon", "x" * 500) == []


def test_a_mention_inside_a_url_counts_once_and_later_mentions_still_shrink() -> None:
    # The mention @alice@example.social (16-37) lies inside the URL (0-39) and ends first: the
    # URL counts as 23, the mention not at all, and the later remote mention as "@bob".
    text = "https://x.com/a,@alice@example.social,b z @bob@example.org"
    assert mastodon_length(text) == 23 + len(" z ") + len("@bob")

    assert check("mastodon", "x" * 501) == ["501/500 characters"]
    assert check(mastodon_rule(limit=1000), "x" * 501) == []


# --------------------------------------------------------------------------- Threads


def test_threads_counts_emoji_in_utf8_bytes() -> None:
    assert threads_length("😀") == 4
    assert threads_length("👨‍👩‍👧‍👦") == 25
    assert threads_length("a😀b") == 6
    assert threads_length("é日本語مرحبا") == 9  # other multibyte text counts per character
    # 500 characters by Meta's count, but we also hold posts to 500 UTF-8 bytes.
    assert threads_length("日本語" * 166 + "ab") == 500
    assert check("threads", "日本語" * 166 + "ab") == ["1496/500 bytes"]
    assert check("threads", "日本語" * 55 + "ab") == []  # 497 bytes
    assert check("threads", "a" * 496 + "😀") == []
    assert check("threads", "a" * 497 + "😀") == ["501/500 characters", "501/500 bytes"]
    assert check("threads", "é" * 501) == ["501/500 characters", "1002/500 bytes"]


def test_threads_link_limit() -> None:
    six = " ".join(f"https://site{i}.example.com" for i in range(6))
    assert threads_link_count(six) == 6
    assert check("threads", six) == ["6 links, at most 5"]
    assert check("threads", " ".join(["www.facebook.com"] * 6)) == []


# --------------------------------------------------------------------------- LinkedIn


def _linkedin_unescape(text: str) -> str:
    out: list[str] = []
    chars = iter(text)
    for char in chars:
        out.append(next(chars) if char == "\\" else char)
    return "".join(out)


def test_linkedin_escape() -> None:
    assert linkedin_escape("|{}@[]()<>#\\*_~") == "\\|\\{\\}\\@\\[\\]\\(\\)\\<\\>\\#\\\\\\*\\_\\~"
    assert linkedin_escape("Talk (day 2) by @ana_b: 50% off! #AI") == (
        "Talk \\(day 2\\) by \\@ana\\_b: 50% off! \\#AI"
    )
    assert linkedin_escape("#AI and #ML_ops", keep_hashtags=True) == "#AI and #ML\\_ops"
    assert linkedin_escape("café, naïve — ok") == "café, naïve — ok"


def test_linkedin_length_and_rule() -> None:
    assert linkedin_length("😀") == 2
    assert check("linkedin", "a" * 3000) == []
    assert check("linkedin", "a" * 3001) == ["3001/3000 characters"]
    assert RULES["linkedin"].thread is False


# --------------------------------------------------------------------------- registry


def test_registry() -> None:
    assert set(RULES) == {"x", "bluesky", "mastodon", "threads", "linkedin"}
    assert all(isinstance(rule, PlatformRule) for rule in RULES.values())
    assert [RULES[p].limit for p in ("x", "bluesky", "mastodon", "threads", "linkedin")] == [
        280,
        300,
        500,
        500,
        3000,
    ]
    assert check("x", "A" * 312) == ["312/280 weighted characters"]
    assert check("x", "fine") == []
    assert check("x", "bad\uffff") == ["contains characters X refuses: U+FFFF"]
    assert check("bluesky", "") == ["empty post"]
    with pytest.raises(ValueError, match="unknown platform"):
        check("myspace", "hi")
    with pytest.raises(AttributeError):
        RULES["x"].limit = 1  # type: ignore[misc]


# --------------------------------------------------------------------------- properties

LATIN = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", max_size=300)
URLS = st.builds(
    lambda host, tld, path: f"https://{host}.{tld}/{path}",
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=20),
    st.sampled_from(["com", "org", "de", "social", "co.uk"]),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789/", max_size=200),
)


@given(LATIN)
def test_prop_latin_letters_weigh_one(text: str) -> None:
    assert x_weighted_length(text) == len(text)


@given(st.text(alphabet="漢字かなカナ한글", max_size=200))
def test_prop_cjk_weighs_two(text: str) -> None:
    assert x_weighted_length(text) == 2 * len(text)


@given(LATIN, URLS)
def test_prop_url_adds_23_and_separator(text: str, url: str) -> None:
    assert x_weighted_length(f"{text} {url}") == x_weighted_length(text) + 1 + 23
    assert mastodon_length(f"{text} {url}") == mastodon_length(text) + 1 + 23


@given(st.text(max_size=300))
def test_prop_entities_and_facets_are_well_formed(text: str) -> None:
    _assert_well_formed(text, entities(text))
    raw = text.encode("utf-8")
    assert bluesky_bytes(text) == len(raw)
    end = 0
    for facet in bluesky_facets(text):
        assert end <= facet.byte_start < facet.byte_end <= len(raw)
        raw[facet.byte_start : facet.byte_end].decode("utf-8")  # on character boundaries
        end = facet.byte_end
    assert x_weighted_length(text) >= 0


@given(st.text(max_size=300))
def test_prop_counts_are_bounded(text: str) -> None:
    assert bluesky_length(text) <= len(text)
    assert threads_length(text) >= len(text)
    assert linkedin_length(text) >= len(text)
    if not extract_mastodon_urls(text):
        assert mastodon_length(text) <= len(text)


@given(st.text(max_size=300))
def test_prop_linkedin_escape_round_trips(text: str) -> None:
    escaped = linkedin_escape(text)
    assert _linkedin_unescape(escaped) == text
    assert len(escaped) == len(text) + sum(c in "|{}@[]()<>#\\*_~" for c in text)


@given(LATIN, URLS, LATIN)
def test_prop_shortened_link_facet_carries_full_uri(before: str, url: str, after: str) -> None:
    text = f"é{before} {url} {after}"
    shown, facets = bluesky_shorten_links(text)
    links = [f for f in facets if f.kind == "link"]
    assert len(links) == 1
    assert links[0].value == url
    assert _slice(shown, links[0]) == shorten_display_url(url)


# --------------------------------------------------------------------------- emoji fast path
_EMOJI_SAMPLES = ["😀", "👨‍👩‍👧‍👦", "🇫🇷", "©", "©️", "#️⃣", "1⃣", "🏴󠁧󠁢󠁥󠁮󠁧󠁿", "✊🏽", "\ufe0f", "\u200d"]


@settings(deadline=None)  # emoji.emoji_list is slow on a busy machine; equality is the point
@given(
    st.lists(
        st.one_of(
            st.sampled_from(_EMOJI_SAMPLES),
            st.text(alphabet=st.characters(max_codepoint=0x2FFFF), max_size=6),
        ),
        max_size=12,
    )
)
def test_emoji_spans_equal_the_emoji_packages_list(parts: list[str]) -> None:
    text = "".join(parts)
    want = [(m["match_start"], m["match_end"]) for m in emoji.emoji_list(text)]
    assert length_module.emoji_spans(text) == want


# --------------------------------------------------------------------------- known answers
# Issue 22 (mutation testing): each rule's count pinned on texts where a changed operator or
# offset gives another number, and each limit at exactly its value and one past it.


def test_threads_counts_several_emoji_in_one_post() -> None:
    assert threads_length("a😀b😀c") == 1 + 4 + 1 + 4 + 1
    assert threads_length("😀😀") == 8
    assert threads_length("👨‍👩‍👧‍👦 hi 🇺🇦") == 25 + 4 + 8


def test_mastodon_mentions_before_and_inside_urls() -> None:
    # a mention before a URL counts as @user, the URL as 23
    assert mastodon_length("@ana@mastodon.social https://example.org/long/path/here") == 4 + 1 + 23
    # a mention inside a URL is part of the URL; one after it still counts as @user
    assert mastodon_length("https://example.org/@bob@example.social and @ana@x.org") == 23 + 5 + 4
    assert mastodon_length("@ana@x.org @bob https://example.org/@c@d.org") == 4 + 1 + 4 + 1 + 23


def test_mastodon_mention_domains_up_to_253_characters() -> None:
    domain = ".".join(["a" * 63] * 4)[: 253 - 4] + ".org"
    assert len(domain) == 253
    assert mastodon_length("@u@" + domain) == 2  # a mention: counts as "@u"
    assert mastodon_length("@u@a" + domain) == len("@u@a" + domain)  # 254: not a mention
    # a mention that runs on into an at sign or "://" is no mention
    assert mastodon_length("@u@x.org@") == len("@u@x.org@")
    assert mastodon_length("@u@x.org://") == len("@u@x.org://")


def test_mastodon_rule_with_a_servers_own_url_length() -> None:
    rule = mastodon_rule(100, url_length=10)
    assert (rule.name, rule.limit, rule.unit, rule.thread) == ("mastodon", 100, "characters", True)
    assert rule.count("see https://example.org/a/long/path") == 4 + 10
    assert check(rule, "x" * 90 + " https://example.org/a/long/path") == ["101/100 characters"]
    assert check(mastodon_rule(url_length=50), "https://example.org") == []
    assert mastodon_rule(url_length=50).count("https://example.org") == 50
    assert mastodon_rule().limit == 500


def test_threads_link_limit_is_exactly_five() -> None:
    five = " ".join(f"https://e{i}.org" for i in range(5))
    assert check("threads", five) == []
    assert check("threads", five + " https://e5.org") == ["6 links, at most 5"]
    assert threads_link_count(five + " " + five) == 5  # the same link twice is one link


def test_bluesky_byte_limit_is_exactly_3000() -> None:
    family = "👨‍👩‍👧‍👦"  # 25 bytes, one grapheme
    assert check("bluesky", family * 120) == []
    assert check("bluesky", family * 120 + "a") == ["3001/3000 bytes"]
    assert check("bluesky", "a" * 300) == []
    assert check("bluesky", "a" * 301) == ["301/300 graphemes"]


def test_x_known_answers() -> None:
    family = "👨‍👩‍👧‍👦"
    assert x_weighted_length(family) == 2
    assert x_weighted_length(family, emoji_parsing=False) == 4 * 2 + 3  # ZWJ weighs 1
    assert x_weighted_length("日本 https://example.org ok") == 2 + 2 + 1 + 23 + 3
    assert x_weighted_length("a\u2010b\u2032c\u2038") == 5 + 2  # U+2038 is outside the ranges
    assert check("x", "a\ufeffb\ufffe") == ["contains characters X refuses: U+FEFF, U+FFFE"]
    assert check("x", "a" * 280) == []
    assert check("x", "日" * 141) == ["282/280 weighted characters"]


def test_empty_posts_and_unknown_platforms() -> None:
    assert check("x", " \n") == ["empty post"]
    with pytest.raises(ValueError, match=r"^unknown platform 'myspace' \(known: bluesky, "):
        check("myspace", "hi")


# --------------------------------------------------------------------------- built at import
# These functions run once, when their module is imported, to build the module's rules and
# patterns; each is called again here so that what it builds is checked where it is built.


def test_every_platform_rule_built_from_its_spec() -> None:
    from aspdigest.platforms import PLATFORMS
    from aspdigest.text.length import platform_rule

    built = {spec.id: platform_rule(spec) for spec in PLATFORMS.values()}
    assert {p: (r.name, r.limit, r.unit, r.thread) for p, r in built.items()} == {
        "x": ("x", 280, "weighted characters", True),
        "bluesky": ("bluesky", 300, "graphemes", True),
        "mastodon": ("mastodon", 500, "characters", True),
        "threads": ("threads", 500, "characters", True),
        "linkedin": ("linkedin", 3000, "characters", False),
    }
    family = "👨‍👩‍👧‍👦"
    assert built["x"].problems("a\ufeff" + "日" * 140) == [
        "283/280 weighted characters",  # U+FEFF weighs 2
        "contains characters X refuses: U+FEFF",
    ]
    assert built["bluesky"].problems(family * 120) == []
    assert built["bluesky"].problems(family * 120 + "a") == ["3001/3000 bytes"]
    assert built["threads"].problems("é" * 250) == []
    assert built["threads"].problems("é" * 251) == ["502/500 bytes"]
    five = " ".join(f"https://e{i}.org" for i in range(5))
    assert built["threads"].problems(five) == []
    assert built["threads"].problems(five + " https://e5.org") == ["6 links, at most 5"]
    assert built["mastodon"].count("https://example.org/long/path") == 23
    assert built["linkedin"].problems("😀" * 1501) == ["3002/3000 characters"]
    # a server's own limit
    assert platform_rule(PLATFORMS["mastodon"], 1000).limit == 1000
    assert platform_rule(PLATFORMS["bluesky"], 10).problems("a" * 11) == ["11/10 graphemes"]
    assert platform_rule(PLATFORMS["x"]).checks[0]("ok") is None


def test_the_top_level_domain_alternation() -> None:
    from aspdigest.text.extract import _alternation

    assert _alternation(["com", "co", "org", "c"]) == "(?:c(?:o(?:m)?)?|org)"
    assert _alternation(["a.b", "a"]) == r"a(?:\.b)?"
    assert _alternation(["a"]) == "a"
    assert _alternation([]) == ""


def test_the_url_pattern_builder() -> None:
    import regex

    from aspdigest.text.extract import _url_source

    source = _url_source(r"[a-z]+\.org", "(?i:https?://)", "[a-z/]", "[a-z/]", "[a-z=&]", "[a-z]")
    pattern = regex.compile(source)
    names = ("before", "url", "protocol", "domain", "port", "path", "query")
    found = pattern.search(" HTTPS://example.org:8080/a/b?x=y")
    assert found is not None
    assert [found[n] for n in names] == [
        " ",
        "HTTPS://example.org:8080/a/b?x=y",
        "HTTPS://",
        "example.org",
        "8080",
        "/a/b",
        "?x=y",
    ]
    found = pattern.search("see example.org/a(b)/c and")
    assert found is not None and (found["url"], found["path"]) == ("example.org/a(b)/c", "/a(b)/c")
    found = pattern.search("go example.org/a/@b/ x")
    assert found is not None and found["url"] == "example.org/a/@b/"
    found = pattern.search("example.org")
    assert found is not None and (found["before"], found["url"]) == ("", "example.org")
    for text in ("u@example.org/x", "$example.org", "#example.org"):
        assert pattern.search(text) is None, text


# ------------------------------------------------------------------ URL hosts and lengths (extract)
def _found(text: str) -> list[str]:
    return [e.text for e in extract_urls(text)]


@pytest.mark.parametrize(
    ("prefix", "longest"),
    [
        ("https://ex.fr/", 4096),  # the limit as written
        ("ex.fr/", 4088),  # a URL without a scheme is counted with "https://"
        ("https://a.b.c.d.ex.fr/", 4096),  # dots count once each
        ("https://café.fr/", 4089),  # café is sent as xn--caf-dma: 7 characters more
        ("café.fr/", 4081),
        ("https://é.é.fr/", 4084),  # each é label is sent as xn--9ca: 6 more each
    ],
)
def test_a_url_is_linked_up_to_4096_characters_as_sent(prefix: str, longest: int) -> None:
    n = longest - len(prefix)
    assert _found(f"see {prefix}{'a' * n} x") == [prefix + "a" * n]
    assert _found(f"see {prefix}{'a' * (n + 1)} x") == []


def test_each_host_label_is_at_most_63_characters_once_punycoded() -> None:
    assert _found(f"see {'a' * 63}.com x") == [f"{'a' * 63}.com"]
    assert _found(f"see {'a' * 64}.com x") == []
    # "é" and 55 letters are sent as xn-- and 59 characters: 63
    assert _found(f"see https://é{'a' * 55}.com x") == [f"https://é{'a' * 55}.com"]
    assert _found(f"see https://é{'a' * 56}.com x") == []
    # an A-label (xn--, in any case) cannot also hold raw Unicode
    assert _found("see xn--bé.com, https://xn--bé.com or https://XN--bé.com x") == []


def test_mention_entities_of_both_finders() -> None:
    from aspdigest.text.extract import extract_mastodon_mentions, extract_mentions

    assert [(e.kind, e.text) for e in extract_mentions("hi ＠alice")] == [("mention", "＠alice")]
    long = "@u@" + "a" * 250 + ".org"  # a domain of 254: no mention; the next one still is
    assert [(e.kind, e.text) for e in extract_mastodon_mentions(f"{long} @v@x.org")] == [
        ("mention", "@v@x.org")
    ]


def test_display_urls_keep_query_and_fragment_and_cut_only_what_is_too_long() -> None:
    assert shorten_display_url("http://ex.org/a?b=c#d", 40) == "ex.org/a?b=c#d"
    assert shorten_display_url("HTTPS://ex.org/a#top", 40) == "ex.org/a#top"
    assert shorten_display_url("https://ex.org/abcd", 5) == "ex.org/abcd"  # exactly 5: whole
    assert shorten_display_url("https://ex.org/abcde", 5) == "ex.org/abc…"
    assert shorten_display_url("https://ex.org/abcde", 0) == "ex.org…"
    # other schemes, and http without a host, are shown as written
    assert shorten_display_url("ftp://ex.org/a") == "ftp://ex.org/a"
    assert shorten_display_url("https:ex.org/a") == "https:ex.org/a"


def test_bluesky_links_are_shortened_to_the_path_length_asked_for() -> None:
    shown, _ = bluesky_shorten_links("see https://example.org/abcdefghij x", max_path=5)
    assert shown == "see example.org/abc… x"


def test_a_url_at_the_very_start_and_a_hashtag_after_a_refused_one() -> None:
    from aspdigest.text.extract import extract_hashtags

    assert _found("a.io/x at the start") == ["a.io/x"]  # its dot at offset 1
    assert [e.text for e in extract_hashtags("#tag# #ok")] == ["#ok"]


def test_entities_that_only_touch_are_both_kept() -> None:
    from aspdigest.text.extract import Entity, _drop_overlaps

    first, touching = Entity("url", 0, 5, "x.com"), Entity("hashtag", 5, 9, "#tag")
    inside = Entity("mention", 4, 8, "@bob")
    assert _drop_overlaps([touching, inside, first]) == [first, touching]


def test_bluesky_facets_in_text_order_after_refused_candidates() -> None:
    facets = bluesky_facets("@alice.bsky.social see foo.zzzz and example.com/aX")
    assert [(f.kind, f.value) for f in facets] == [
        ("mention", "alice.bsky.social"),
        ("link", "https://example.com/aX"),  # a final X is no punctuation to drop
    ]
    assert [f.value for f in bluesky_facets("# #" + "a" * 65 + " #ok")] == ["ok"]


def test_url_kinds_tco_slugs_and_one_point_emoji_of_text_weight() -> None:
    assert [(e.kind, e.text) for e in extract_urls("see example.com/path x")] == [
        ("url", "example.com/path")
    ]
    slug = "a" * 40  # the longest t.co slug X links
    assert _found(f"https://t.co/{slug} x") == [f"https://t.co/{slug}"]
    assert _found(f"https://t.co/{slug}a and example.com") == ["example.com"]
    # "©" is an emoji of one code point that X weighs 1, as text, wherever it stands; an
    # emoji sequence after it still counts 2
    assert x_weighted_length("a©") == 2
    assert x_weighted_length("©👍🏽") == 3


# -- grapheme clusters without \X (text/bluesky.py's grapheme_count) ----------------------------

_CJK = range(0x4E00, 0xA000)
_SIMPLE = [
    chr(c)
    for first, last in SIMPLE_RANGES
    for c in range(ord(first), ord(last) + 1)
    if c not in _CJK
]


def test_every_simple_code_point_is_a_cluster_of_its_own_beside_every_other() -> None:
    # grapheme_count counts a text of these code points by its length (CR LF aside): true only
    # if regex's \X breaks between any two of them. Each string holds every pair (a, b) and
    # (b, a) for one a.
    grapheme = regex.compile(r"\X")
    for a in _SIMPLE:
        text = "".join(a + b for b in _SIMPLE)
        assert len(grapheme.findall(text)) == len(text) - text.count("\r\n"), hex(ord(a))
    # Ideographs are all alike (letters of no joining class): beside a sample of the others.
    mixed = "\r\n\x00\u2068" + "".join(_SIMPLE[::11])
    for c in _CJK:
        text = chr(c).join(mixed)
        assert len(grapheme.findall(text)) == len(text) - text.count("\r\n"), hex(c)


_CLUSTER_PARTS = st.sampled_from(
    [
        *"ab \r\n\t“”…«»é中ёع",
        "\u0301",  # combining acute
        "\u200d",  # ZWJ
        "\u200c",  # ZWNJ
        "\ufe0f",  # VS16
        "\U0001f1fa",  # regional indicators
        "\U0001f1e6",
        "\u1100\u1161\u11a8",  # Hangul L V T
        "\uac00",  # Hangul LV
        "\u0915\u094d",  # Devanagari consonant + virama
        "\u0600",  # Arabic prepended mark
        "\u064e",  # Arabic mark
        "\u0483",  # Cyrillic combining mark
        "\u0903",  # spacing mark
        "👩",
        "🏽",
        "⚖",
        "\u2068",
        "\u2069",
        "\u202f",
        "\x00",
        "\u1cf5",  # joins a following consonant in regex's \X
        "\U00011a3a",
        "\u302a",
        "\uff9e",
    ]
)


@settings(max_examples=500)
@given(st.lists(_CLUSTER_PARTS, max_size=16).map("".join))
def test_grapheme_count_equals_regex_clusters(text: str) -> None:
    assert grapheme_count(text) == len(regex.findall(r"\X", text))
    assert bluesky_length(text) == len(regex.findall(r"\X", text))
    assert _byte_offsets(text) == [len(text[:n].encode("utf-8")) for n in range(len(text) + 1)]


# -- the emoji code points kept on disk (text/emojichars.py) -----------------------------------


def test_the_emoji_code_points_come_from_the_cache_or_the_package_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aspdigest.text import emojichars

    monkeypatch.setenv("ASPDIGEST_CACHE_DIR", str(tmp_path))
    want = frozenset(c for key in emoji.EMOJI_DATA for c in key if not c.isascii())
    assert emojichars.emoji_chars() == want  # the process's own, whatever made it
    assert emojichars.emoji_chars.__wrapped__() == want  # computed, then written
    (cached,) = tmp_path.glob("emoji-chars-*.json")
    assert emojichars.emoji_chars.__wrapped__() == want  # read back
    # A damaged or foreign file is never trusted: the set is computed (and written) again.
    for damaged in ("[1, 2", '{"a": 1}', "[-5]", '["x"]', ""):
        cached.write_text(damaged)
        assert emojichars.emoji_chars.__wrapped__() == want
        assert json.loads(cached.read_text()) == sorted(ord(c) for c in want)


def test_the_emoji_cache_file_is_read_back_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is named by a 20-character key of the package's files, and what it holds is
    what a later run uses (so a file of one emoji gives a set of one)."""
    from aspdigest.text import emojichars

    monkeypatch.setenv("ASPDIGEST_CACHE_DIR", str(tmp_path))
    emojichars.emoji_chars.__wrapped__()
    (cached,) = tmp_path.glob("emoji-chars-*.json")
    assert re.fullmatch(r"emoji-chars-[0-9a-f]{20}\.json", cached.name)
    cached.write_text(json.dumps([0x1F600]), encoding="utf-8")
    assert emojichars.emoji_chars.__wrapped__() == {"\U0001f600"}


def test_without_the_emoji_package_on_the_path_there_is_no_cache_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aspdigest.text import emojichars

    monkeypatch.setattr(emojichars.importlib.util, "find_spec", lambda name: None)
    assert emojichars._key() is None


@pytest.mark.parametrize("code", [0x7F, 0x80, 0x7FF, 0x800, 0xFFFF, 0x10000, 0x10FFFF])
def test_a_code_point_takes_as_many_utf8_bytes_as_python_encodes(code: int) -> None:
    from aspdigest.text.bluesky import _utf8_size

    assert _utf8_size(chr(code)) == len(chr(code).encode("utf-8"))


def test_bluesky_measures_links_shortened_as_they_are_posted() -> None:
    """The display text measured is the text posted: a path of 16 characters is cut."""
    text = "Read https://example.org/abcdefghijklmnop now"
    assert bluesky_display_text(text) == bluesky_shorten_links(text)[0]
    assert bluesky_display_text(text) != text


@pytest.mark.parametrize(("text", "clusters"), [("a\r\nb", 3), ("é\r\n", 2), ("\r\n\r\n", 2)])
def test_a_crlf_is_one_grapheme_cluster(text: str, clusters: int) -> None:
    assert grapheme_count(text) == clusters == len(regex.findall(r"\X", text))
