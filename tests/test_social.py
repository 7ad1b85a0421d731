"""render/social.py, threadsections.py, threads.py, quoteposts.py: threads per platform, quote
posts, limits.

Real renders throughout: the ASP23 sample (golden JSON for every day and platform), the real
cards plan and layout check for attachments, and hypothesis over random text with URLs, emoji,
CJK, Arabic, combining marks and no-break spaces. Every post is measured again here with the
platform's own rule (`text.check`), independently of the packer's own measuring.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from aspdigest.build import build
from aspdigest.config import Project, load_project
from aspdigest.content import Content, load_content
from aspdigest.days import Day, plan_days
from aspdigest.errors import RenderError
from aspdigest.platforms import PLATFORMS as REGISTRY
from aspdigest.records import Event, Quote, Record, Speaker
from aspdigest.render import DAY_RENDERERS, RenderContext, Rendered, social, threadsections
from aspdigest.render import threads as threads_module
from aspdigest.render.quotemarks import marks
from aspdigest.render.quoteposts import alt_length
from aspdigest.render.templates import make_environment
from aspdigest.text import RULES, check, extract_urls, mastodon_rule
from aspdigest.text.split import sentence_gaps

REPO = Path(__file__).resolve().parents[1]
PLATFORMS = ("x", "bluesky", "mastodon", "threads", "linkedin")
LABEL = re.compile(r"\n\d+/\d+$")
NBSP, NNBSP = "\u00a0", "\u202f"


def context(project: Project, event: str = "asp23") -> tuple[RenderContext, Content]:
    content = load_content(project, event)
    return RenderContext(project, content, make_environment(project)), content


def render_days(project: Project) -> dict[str, Rendered]:
    ctx, content = context(project)
    return {day.key: social.render(day, ctx) for day in plan_days(content)}


def threads(rendered: Rendered) -> dict[str, dict[str, Any]]:
    return {
        a.path.split(".")[1]: json.loads(a.data)
        for a in rendered.artifacts
        if a.path.endswith(".json")
    }


def rule_for(platform: str, data: dict[str, Any]) -> Any:
    return mastodon_rule(data["limit"]) if platform == "mastodon" else RULES[platform]


def all_posts(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [*data["posts"], *(p for qp in data["quote_posts"] for p in qp["posts"])]


@pytest.fixture(scope="module")
def asp23(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, dict[str, Any]]]:
    import shutil

    root = tmp_path_factory.mktemp("asp23")
    shutil.copytree(REPO / "content", root / "content")
    shutil.copy(REPO / "aspdigest.toml", root / "aspdigest.toml")
    project = load_project(root, environ={})
    return {date: threads(r) for date, r in render_days(project).items()}


# -- ASP23 ---------------------------------------------------------------------------------------


def test_golden_threads_for_every_asp23_day_and_platform(
    asp23: dict[str, dict[str, dict[str, Any]]], golden: Callable[[str, str], None]
) -> None:
    assert sorted(asp23) == ["2024-12-02", "2024-12-03", "2024-12-04", "2024-12-05", "2024-12-06"]
    for date, platforms in asp23.items():
        assert sorted(platforms) == sorted(PLATFORMS)
        for platform, data in platforms.items():
            text = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
            golden(f"social/{date}/thread.{platform}.json", text)


def test_no_asp23_post_is_over_its_limit_by_the_platforms_own_rule(
    asp23: dict[str, dict[str, dict[str, Any]]],
) -> None:
    for platforms in asp23.values():
        for platform, data in platforms.items():
            rule = rule_for(platform, data)
            for post in all_posts(data):
                shown = post["api_text"] if platform == "bluesky" else post["text"]
                assert check(rule, shown) == [], (platform, shown)
                assert post["length"] == rule.count(shown) <= post["limit"] == rule.limit
                for media in post["media"]:
                    assert alt_length(media["alt"]) <= REGISTRY[platform].alt_limit


def test_a_carded_quote_is_one_post_a_verbatim_excerpt_with_its_card(
    asp23: dict[str, dict[str, dict[str, Any]]],
) -> None:
    # Issue 13: a quote with a card is one post in the thread: its leading whole sentences
    # verbatim, "…" where it continues, the attribution, the card (whose alt text has it whole).
    quote = load_content(load_project(REPO, environ={}), "asp23").records
    text = next(r for r in quote if r.id == "kit-general-debate").quotes[0].text
    posts = asp23["2024-12-03"]["x"]["posts"]
    ((post, q),) = [
        (post, q) for post in posts for q in post["quotes"] if q["record"] == "kit-general-debate"
    ]
    assert (q["start"], q["part"], q["parts"]) == (0, 1, 1) and q["end"] < len(text)
    body, attribution = post["text"].split("\n")[:2]
    assert body == "“\u2068" + text[: q["end"]] + " …\u2069”"
    assert text[q["end"] - 1] == "." and text[q["end"]] == " "  # ends at a sentence end
    assert attribution.startswith("— Khrystyna Kit, Head of the Ukrainian")
    assert [m["path"] for m in post["media"]] == ["cards/kit-general-debate-1.landscape.png"]
    assert post["media"][0]["alt"].startswith(f"“\u2068{text}\u2069”")


def test_long_quotes_split_keeps_a_carded_quote_whole_split_between_clauses(
    sample_root: Path,
) -> None:
    settings_file = sample_root / "aspdigest.toml"
    settings_file.write_text(
        settings_file.read_text() + '\n[social]\nlong_quotes = "split"\nmax_posts = 40\n'
    )
    ctx, content = context(load_project(sample_root, environ={}))
    text = next(r for r in content.records if r.id == "kit-general-debate").quotes[0].text
    second = text.split(". ")[1] + "."
    assert len(second) == 397
    posts = threads(social.render(plan_days(content)[1], ctx))["x"]["posts"]
    parts = [
        (post, q) for post in posts for q in post["quotes"] if q["record"] == "kit-general-debate"
    ]
    spans = [(q["start"], q["end"]) for _, q in parts]
    # Concatenating the parts, minus their marks and ellipses, gives the quote verbatim.
    rebuilt = ""
    for n, (post, q) in enumerate(parts):
        assert q["part"] == n + 1 and q["parts"] == len(parts)
        body = post["text"].split("\n")[0]
        # The quote is bidi-isolated (FSI … PDI) inside its marks.
        assert body.startswith("“\u2068") and body.endswith("\u2069”")
        inner = body[2:-2].removeprefix("… ").removesuffix(" …")
        assert inner == text[q["start"] : q["end"]]
        rebuilt += text[len(rebuilt) : q["start"]] + inner
    assert rebuilt == text
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    assert all(text[e:s] == " " for (_, e), (s, _) in itertools.pairwise(spans))
    # Cuts fall between sentences, except inside the 397-character second sentence, which is
    # cut only between clauses (after a comma).
    start2 = text.index(second)
    end2 = start2 + len(second)
    sentence_cuts = {cut for cut, _ in sentence_gaps(text, 0, len(text))}
    inner_cuts = [e for _, e in spans[:-1] if start2 < e < end2]
    assert inner_cuts and all(text[e - 1] == "," for e in inner_cuts)
    assert all(e in sentence_cuts for _, e in spans[:-1] if not start2 < e < end2)
    # The ellipsis marks every cut and the attribution rides on the last part only.
    first, *_, last = [post["text"] for post, _ in parts]
    assert first.split("\n")[0].endswith(" …\u2069”") and "Khrystyna Kit" not in first
    assert last.startswith("“\u2068… ") and "\n— Khrystyna Kit, Head of the Ukrainian" in last
    assert sum("— Khrystyna Kit" in post["text"] for post, _ in parts) == 1


def test_thread_shape_opener_items_in_order_closing(
    asp23: dict[str, dict[str, dict[str, Any]]],
) -> None:
    _ctx, content = context(load_project(REPO, environ={}))
    for day in plan_days(content):
        archive = f"https://example.org/digest/asp23/{day.key}/"
        for platform, data in asp23[day.key].items():
            posts = data["posts"]
            first = posts[0]["text"]
            # The opener: the day's news (hook, else title), no date label; hashtags as the
            # platform takes them (Threads one topic tag), LinkedIn's last.
            assert first.startswith((day.hook or day.title) + "\n")
            assert f"day {day.number} ·" not in first
            tags = "#ASP23" if platform == "threads" else "#ASP23 #GenderJustice"
            assert tags in first and ("#GenderJustice" in first) == (platform != "threads")
            if platform == "linkedin":
                assert len(posts) == 1 and first.endswith("\n\n" + tags)
                assert f"Read the day's digest: {archive}" in first
                continue
            assert len(posts) <= 12  # social.max_posts
            order = [r for post in posts for r in post["records"]]
            shown = list(dict.fromkeys(order))
            assert shown == [r.id for r in day.records if r.id in shown]
            # The digest link once, in the closing post, which says what the thread left out.
            assert [n for n, p in enumerate(posts) if archive in p["text"]] == [len(posts) - 1]
            more = len(day.records) - len(shown)
            closing = posts[-1]["text"]
            if more:
                assert closing.startswith(f"{more} more item")
            else:
                assert closing.startswith(f"Read the full ASP23 digest for day {day.number}: ")
            assert archive in posts[-1]["links"]
            for n, post in enumerate(posts, start=1):
                assert post["position"] == n
                assert post["text"].endswith(f"\n{n}/{len(posts)}")


def test_post_counts_are_in_the_manifest(sample_project: Project) -> None:
    result = build(sample_project, "asp23")
    manifest = json.loads((result.written.event_dir / "2024-12-03/manifest.json").read_text())
    entries = {e["path"]: e for e in manifest["artifacts"]}
    x = entries["thread.x.json"]["meta"]
    assert x["platform"] == "x" and x["posts"] >= 10 and x["quote_posts"] == 3
    assert x["limit"] == 280 and x["longest"] <= 280
    assert entries["thread.linkedin.json"]["meta"]["posts"] == 1
    text = (result.written.event_dir / "2024-12-03/thread.x.txt").read_text()
    assert text.startswith(f"ASP23 · 2024-12-03 · X: {x['posts']} posts, limit 280 weighted")
    assert "\n=== quote posts (3) ===\n" in text
    assert "aspdigest.render.social:render" in DAY_RENDERERS


def test_renders_are_byte_identical(sample_project: Project) -> None:
    ctx, content = context(sample_project)
    day = plan_days(content)[1]
    assert social.render(day, ctx) == social.render(day, ctx)


def test_bluesky_facets_point_at_the_shown_text_and_carry_full_urls(
    asp23: dict[str, dict[str, dict[str, Any]]],
) -> None:
    # `text` (what a person copies) keeps every URL whole; `api_text` is what the API takes:
    # long links shortened for display, the facets' byte offsets into it, each link facet the
    # whole URL as `text` has it.
    seen = 0
    for platforms in asp23.values():
        for post in all_posts(platforms["bluesky"]):
            raw = post["api_text"].encode("utf-8")
            assert post["bytes"] == len(raw)
            assert (
                [e.text for e in extract_urls(post["text"])]
                == [f["uri"] for f in post["facets"] if f["type"] == "link"]
                == post["links"]
            )
            for facet in post["facets"]:
                shown = raw[facet["byteStart"] : facet["byteEnd"]].decode("utf-8")
                if facet["type"] == "link":
                    assert facet["uri"].startswith("https://") and facet["uri"] in post["text"]
                    assert (
                        facet["uri"]
                        .removeprefix("https://")
                        .startswith(shown.rstrip("…").removeprefix("www.").split("/")[0])
                        or shown.rstrip("…") in facet["uri"]
                    )
                    seen += 1
                elif facet["type"] == "tag":
                    assert shown == "#" + facet["tag"]
    assert seen > 10


def test_linkedin_api_text_escapes_reserved_characters(
    asp23: dict[str, dict[str, dict[str, Any]]],
) -> None:
    post = asp23["2024-12-02"]["linkedin"]["posts"][0]
    assert "#ASP23 #GenderJustice" in post["api_text"]  # hashtags stay hashtags
    assert "(Office of the Prosecutor)" in post["text"]
    assert r"\(Office of the Prosecutor\)" in post["api_text"]


def test_linkedin_is_one_post_hook_digest_link_highlights_hashtags_last(
    sample_project: Project,
) -> None:
    ctx, content = context(sample_project)
    day = plan_days(content)[1]
    rendered = social.render(day, ctx)
    assert not [w for w in rendered.warnings if w.startswith("social: linkedin")]
    (post,) = threads(rendered)["linkedin"]["posts"]
    text = post["text"]
    assert text.startswith(day.title + "\n")
    assert "\n\nRead the day's digest: https://example.org/digest/asp23/2024-12-03/\n\n" in text
    highlights = [line[2:] for line in text.split("\n") if line.startswith("▸ ")]
    assert 3 <= len(highlights) <= 5
    titles = [r.title for r in day.records][: len(highlights)]
    assert [h.split(" (")[0] for h in highlights] == [t.split(" (")[0] for t in titles]
    assert post["records"] == [r.id for r in day.records][: len(highlights)]
    # Quotes go in the quote posts, not the day's post.
    assert "wanton acts" not in text and post["quotes"] == []
    assert text.endswith("\n\n#ASP23 #GenderJustice")


# -- handles ---------------------------------------------------------------------------------------


def test_organisers_and_speakers_are_handles_once_attributions_stay_names(
    sample_root: Path,
) -> None:
    event = sample_root / "content/asp23/event.toml"
    event.write_text(
        event.read_text()
        + (
            '\n[handles."Amnesty International"]\nx = "amnesty"\nmastodon = "@amnesty@mastodon.social"'
            '\nbluesky = "amnesty.org"\nthreads = "amnesty"\nlinkedin = "Amnesty International UK"\n'
            '\n[handles."Agnes Callamard"]\nx = "AgnesCallamard"\n'
        ).replace('[handles."Amnesty International"]\nx = "amnesty"\n', "", 1)
    )
    project = load_project(sample_root, environ={})
    ctx, content = context(project)
    data = threads(social.render(plan_days(content)[3], ctx))
    expected = {
        "x": "(@amnesty)",
        "mastodon": "(@amnesty@mastodon.social)",
        "bluesky": "(@amnesty.org)",
        "threads": "(@amnesty)",
        "linkedin": "(Amnesty International UK)",
    }
    for platform, shown in expected.items():
        texts = [p["text"] for p in all_posts(data[platform])]
        lines = [line.removeprefix("▸ ") for t in texts for line in t.split("\n")]
        title = next(x for x in lines if x.startswith("Amnesty International's Israel Genocide"))
        assert title.endswith(shown)
        # A speaker with a handle on this platform is mentioned once in the thread, on the
        # item's post; every attribution stays the name as written.
        thread = [p["text"] for p in data[platform]["posts"]]
        assert sum("@AgnesCallamard" in t for t in thread) == (platform == "x")
        if platform == "x":
            assert "\n\nWith @AgnesCallamard.\n" in next(t for t in thread if shown in t)
        assert all("@AgnesCallamard" not in t for t in texts if t not in thread)
        assert any("— Agnes Callamard, Secretary General" in t for t in texts)
    mention = [f for p in data["bluesky"]["posts"] for f in p["facets"] if f["type"] == "mention"]
    assert mention == [
        {
            "type": "mention",
            "byteStart": mention[0]["byteStart"],
            "byteEnd": mention[0]["byteStart"] + len("@amnesty.org"),
            "handle": "amnesty.org",
        }
    ]


# -- quote posts -----------------------------------------------------------------------------------


def test_quote_post_forms(asp23: dict[str, dict[str, dict[str, Any]]]) -> None:
    records = load_content(load_project(REPO, environ={}), "asp23").records
    amnesty_quote = next(r for r in records if r.id == "amnesty-genocide-report").quotes[0].text
    tail = (
        "— Agnes Callamard, Secretary General, Amnesty International, at “Amnesty "
        "International's Israel Genocide Report”\n\nhttps://example.org/digest/asp23/2024-12-05/"
    )
    # Fits: the quote whole in the text, then who said it, the session, the digest link, with
    # the card.
    whole = asp23["2024-12-05"]["mastodon"]["quote_posts"][0]
    assert whole["quote_in_text"] is True and len(whole["posts"]) == 1
    post = whole["posts"][0]
    assert post["text"].startswith(f"“\u2068{amnesty_quote}\u2069”\n{tail}\n\n#ASP23")
    assert post["quotes"][0]["start"] == 0 and post["quotes"][0]["end"] == len(amnesty_quote)
    assert post["media"] == [
        {
            "path": "cards/amnesty-genocide-report-1.square.png",
            "size": "square",
            "alt": post["media"][0]["alt"],
        }
    ]
    # Too long for X: a verbatim excerpt (whole leading sentences, "…" where it continues),
    # the same attribution and link, and the whole quote in the card's alt text.
    amnesty = asp23["2024-12-05"]["x"]["quote_posts"][0]
    assert amnesty["quote_in_text"] is False
    (only,) = amnesty["posts"]
    (span,) = only["quotes"]
    assert span["start"] == 0 and 0 < span["end"] < len(amnesty_quote)
    assert only["text"].startswith(
        f"“\u2068{amnesty_quote[: span['end']]} …\u2069”\n{tail}\n\n#ASP23 #GenderJustice"
    )
    assert only["media"][0]["alt"].startswith(f"“\u2068{amnesty_quote}\u2069” — Agnes")
    kit = asp23["2024-12-03"]["x"]["quote_posts"][0]
    assert kit["quote_in_text"] is False
    (only,) = kit["posts"]
    text = next(r for r in records if r.id == "kit-general-debate").quotes[0].text
    (span,) = only["quotes"]
    assert only["text"].startswith(f"“\u2068{text[: span['end']]} …\u2069”\n— Khrystyna Kit")
    assert only["media"][0]["alt"].startswith(f"“\u2068{text}\u2069” — Khrystyna Kit, Head of")
    # One card size per platform: X and Bluesky landscape, Threads portrait (4:5), LinkedIn
    # the 1.91:1 link-preview size, Mastodon square.
    day = asp23["2024-12-03"]
    sizes = {p: day[p]["quote_posts"][0]["posts"][0]["media"][0]["size"] for p in day}
    assert sizes == {
        "x": "landscape",
        "bluesky": "landscape",
        "threads": "portrait",
        "linkedin": "preview",
        "mastodon": "square",
    }
    # Fragments without a card get no quote post.
    assert [qp["record"] for qp in asp23["2024-12-02"]["x"]["quote_posts"]] == ["opening"]


def add_record(root: Path, date: str, name: str, front: str) -> Path:
    path = root / f"content/asp23/{date}/{name}.md"
    path.write_text(f"---\n{front}\n---\nBody.\n", encoding="utf-8")
    return path


def test_alt_text_drops_context_never_the_quote(sample_root: Path) -> None:
    # 880 characters of quote: with name, role, event and date it passes X's 1000.
    sentence = "Survivors must be heard and believed by the Court at every stage of proceedings. "
    quote = (sentence * 11).strip()
    role = "Special Representative of the Secretary-General on Sexual Violence in Conflict " * 2
    add_record(
        sample_root,
        "2024-12-04",
        "long-alt",
        (
            'title: "Long alt"\nkind: statement\nsummary: "A statement."\nspeakers:\n'
            f'  - name: "Ana Example"\n    role: "{role.strip()}"\nquotes:\n  - text: "{quote}"\n'
            '    by: "Ana Example"'
        ),
    )
    project = load_project(sample_root, environ={})
    ctx, content = context(project)
    data = threads(social.render(plan_days(content)[2], ctx))
    x = next(qp for qp in data["x"]["quote_posts"] if qp["record"] == "long-alt")
    alt = x["posts"][0]["media"][0]["alt"]
    assert alt == f"“\u2068{quote}\u2069” — Ana Example."
    bluesky = next(qp for qp in data["bluesky"]["quote_posts"] if qp["record"] == "long-alt")
    assert bluesky["posts"][0]["media"][0]["alt"].endswith(", December 4, 2024.")


def test_a_long_quote_gets_its_excerpt_card_where_the_alt_text_holds_it(
    sample_root: Path,
) -> None:
    long = " ".join(["Every survivor deserves to be heard, believed and given justice."] * 30)
    add_record(
        sample_root,
        "2024-12-04",
        "too-long",
        (
            'title: "Too long for a card"\nkind: statement\nsummary: "A statement."\nspeakers:\n'
            f'  - name: "Ana Example"\nquotes:\n  - text: "{long}"\n    by: "Ana Example"'
        ),
    )
    project = load_project(sample_root, environ={})
    ctx, content = context(project)
    day = plan_days(content)[2]
    rendered = social.render(day, ctx)
    data = threads(rendered)
    # LinkedIn's alt text holds the whole 1,949-character quote: the excerpt card goes out.
    qp = next(q for q in data["linkedin"]["quote_posts"] if q["record"] == "too-long")
    (media,) = qp["posts"][0]["media"]
    assert media["size"] == "preview" and f"\u2068{long}\u2069" in media["alt"]
    # X's 1000 characters cannot: no card, the quote in the text, whole.
    qp = next(q for q in data["x"]["quote_posts"] if q["record"] == "too-long")
    assert all(p["media"] == [] for p in qp["posts"]) and qp["quote_in_text"] is True
    spans = [q for p in qp["posts"] for q in p["quotes"]]
    assert spans[0]["start"] == 0 and spans[-1]["end"] == len(long)
    from aspdigest.render.cards import render as cards_render

    cards = [a for a in cards_render(day, ctx).artifacts if a.path.startswith("cards/too-long-")]
    assert len(cards) == 4 and all(a.meta["excerpt"] for a in cards)


# -- errors ------------------------------------------------------------------------------------------


def blocked(rendered: Rendered) -> dict[str, str | None]:
    return {p: d.get("blocked") for p, d in threads(rendered).items()}


def test_a_clause_too_long_for_a_platform_blocks_that_platforms_thread_naming_the_record(
    sample_root: Path,
) -> None:
    clause = "Accountability " + " ".join(["accountability"] * 24)
    add_record(
        sample_root,
        "2024-12-04",
        "endless",
        (
            'title: "Endless"\nkind: statement\nsummary: "A statement."\nspeakers:\n'
            f'  - name: "Ana Example"\nquotes:\n  - text: "Short first. {clause}."\n'
            '    by: "Ana Example"\n    card: false'
        ),
    )
    ctx, content = context(load_project(sample_root, environ={}))
    rendered = social.render(plan_days(content)[2], ctx)
    why = {
        "x": "content/asp23/2024-12-04/endless.md: quotes[0].text: cannot be posted on X: the "
        'clause "Accountability accountability accountability accountability…" is 398/280 '
        "weighted characters with its quotation marks and attribution, and has no sentence or "
        "clause break to split it at (a quote is never cut inside a clause)",
        "bluesky": "content/asp23/2024-12-04/endless.md: quotes[0].text: cannot be posted on "
        'Bluesky: the clause "Accountability accountability accountability accountability…" '
        "is 395/300 graphemes with its quotation marks and attribution, and has no sentence or "
        "clause break to split it at (a quote is never cut inside a clause)",
    }
    # Those two platforms' threads are blocked with the reason (files and warning); the
    # others, with room for the clause, are built.
    assert blocked(rendered) == {**dict.fromkeys(PLATFORMS), **why}
    assert rendered.warnings == tuple(f"social: {p}: blocked: {w}" for p, w in why.items())
    note = next(a for a in rendered.artifacts if a.path == "thread.x.txt").data.decode()
    assert note == f"ASP23 · 2024-12-04 · X: BLOCKED\n{why['x']}\n"
    meta = next(a for a in rendered.artifacts if a.path == "thread.x.json").meta
    assert meta == {"platform": "x", "posts": 0, "blocked": why["x"]}


def test_a_word_too_long_for_a_post_blocks_that_platform_naming_the_field(
    sample_root: Path,
) -> None:
    word = "正義" * 80
    add_record(
        sample_root,
        "2024-12-04",
        "wide",
        (f'title: "Wide"\nkind: statement\nsummary: "See {word} now."'),
    )
    ctx, content = context(load_project(sample_root, environ={}))
    rendered = social.render(plan_days(content)[2], ctx)
    why = (
        "content/asp23/2024-12-04/wide.md: summary: cannot be posted on X: "
        f'"{word[:59]}…" is 320/280 weighted characters and has no break point (space, '
        "sentence or clause end) to split it at"
    )
    assert blocked(rendered) == {**dict.fromkeys(PLATFORMS), "x": why}
    assert rendered.warnings == (f"social: x: blocked: {why}",)


def test_a_clause_over_threads_link_limit_blocks_threads(sample_root: Path) -> None:
    links = " ".join(f"https://example.org/{n}" for n in range(6))
    add_record(
        sample_root,
        "2024-12-04",
        "links",
        (
            'title: "Links"\nkind: statement\nsummary: "A statement."\nspeakers:\n'
            f'  - name: "Ana Example"\nquotes:\n  - text: "See {links}"\n'
            '    by: "Ana Example"\n    card: false'
        ),
    )
    ctx, content = context(load_project(sample_root, environ={}))
    with pytest.raises(social.Blocked) as caught:
        social.social_day(plan_days(content)[2], ctx, "threads")
    why = (
        "content/asp23/2024-12-04/links.md: quotes[0].text: cannot be posted on Threads: the "
        'clause "See https://example.org/0 https://example.org/1 https://exa…" breaks the '
        "platform's rules (6 links, at most 5) with its quotation marks and attribution, and "
        "has no sentence or clause break to split it at (a quote is never cut inside a clause)"
    )
    assert str(caught.value) == why
    rendered = social.render(plan_days(content)[2], ctx)
    assert blocked(rendered) == {**dict.fromkeys(PLATFORMS), "threads": why}


def test_a_linkedin_post_that_cannot_fit_its_hook_is_blocked(sample_root: Path) -> None:
    event = sample_root / "content/asp23/event.toml"
    hook = "Words and more words. " * 140
    event.write_text(
        event.read_text().replace(
            '[days."2024-12-06"]\n', f'[days."2024-12-06"]\nhook = "{hook.strip()}"\n'
        )
    )
    ctx, content = context(load_project(sample_root, environ={}))
    rendered = social.render(plan_days(content)[4], ctx)
    why = (
        'content/asp23/event.toml: days."2024-12-06".hook: the day\'s LinkedIn post is over '
        "3000 characters even with only its hook and 3 highlight titles; shorten the hook or "
        "the titles"
    )
    assert blocked(rendered) == {**dict.fromkeys(PLATFORMS), "linkedin": why}
    assert rendered.warnings == (f"social: linkedin: blocked: {why}",)


def test_a_linkedin_post_names_at_most_five_highlights_preferring_marked_ones(
    sample_root: Path,
) -> None:
    for n in range(12):
        add_record(
            sample_root,
            "2024-12-06",
            f"filler-{n:02d}",
            (
                f'title: "Filler {n}"\nkind: statement\norder: {10 + n}\n'
                f'summary: "{"Words and more words. " * 12}"'
                + ("\nhighlight: true" if n == 11 else "")
            ),
        )
    ctx, content = context(load_project(sample_root, environ={}))
    day = plan_days(content)[4]
    (post,) = threads(social.render(day, ctx))["linkedin"]["posts"]
    assert len(post["records"]) == 5 and "filler-11" in post["records"]
    assert post["records"] == [r.id for r in day.records if r.id in post["records"]]
    assert f"…and {len(day.records) - 5} more in the digest." in post["text"]


def test_a_quote_template_must_print_the_quote_once(sample_root: Path) -> None:
    folder = sample_root / "templates/social"
    folder.mkdir(parents=True)
    (folder / "quote.txt.j2").write_text("{{ text }} {{ text }}\n")
    ctx, content = context(load_project(sample_root, environ={}))
    with pytest.raises(RenderError) as caught:
        social.render(plan_days(content)[0], ctx)
    assert caught.value.lines() == [
        "social/quote.txt.j2: must print {{ text }} (the quote) exactly once"
    ]


def test_project_templates_override_the_defaults(sample_root: Path) -> None:
    folder = sample_root / "templates/social"
    folder.mkdir(parents=True)
    (folder / "closing.txt.j2").write_text("Subscribe: {{ signup_url }}\n")
    settings_file = sample_root / "aspdigest.toml"
    settings_file.write_text(
        settings_file.read_text()
        + (
            '\n[social]\nsignup_url = "https://example.org/join"\nmastodon_limit = 1000\n'
            'numbering = ["x"]\n'
        )
    )
    ctx, content = context(load_project(sample_root, environ={}))
    data = threads(social.render(plan_days(content)[0], ctx))
    assert data["x"]["posts"][-1]["text"].startswith("Subscribe: https://example.org/join\n")
    assert data["mastodon"]["limit"] == 1000 and not data["mastodon"]["numbered"]
    assert not LABEL.search(data["bluesky"]["posts"][0]["text"])


def test_a_day_without_records_renders_no_threads(sample_root: Path) -> None:
    for record in (sample_root / "content/asp23/2024-12-05").glob("*.md"):
        record.unlink()
    ctx, content = context(load_project(sample_root, environ={}))
    rendered = social.render(plan_days(content)[3], ctx)
    assert rendered == Rendered(warnings=("social: no records, so no threads",))


# -- numbering ---------------------------------------------------------------------------------------


def test_numbering_never_pushes_a_post_over_even_past_nine_posts(sample_root: Path) -> None:
    # Summaries whose posts fill X almost to the limit, and enough of them for two-digit labels
    # (a budget raised to let the thread have them).
    settings_file = sample_root / "aspdigest.toml"
    settings_file.write_text(
        settings_file.read_text() + '\n[social]\nplatforms = ["x"]\nmax_posts = 40\n'
    )
    for n in range(20):
        summary = ("Survivors demand accountability now " + "x" * 200)[: 240 - len(str(n))]
        add_record(
            sample_root,
            "2024-12-06",
            f"filler-{n:02d}",
            (f'title: "Filler {n}"\nkind: statement\norder: {10 + n}\nsummary: "{summary}"'),
        )
    ctx, content = context(load_project(sample_root, environ={}))
    data = threads(social.render(plan_days(content)[4], ctx))["x"]
    total = len(data["posts"])
    assert total >= 20
    for n, post in enumerate(data["posts"], start=1):
        assert post["text"].endswith(f"\n{n}/{total}")
        assert check("x", post["text"]) == []
    # The budget counts threads without composing them (threads.count): the same figure,
    # here where the label gains a digit, asked of a fresh platform and of one that has
    # counted and packed before (its memory must not mix up the two number reserves).
    day = plan_days(content)[4]
    for name in ("x", "bluesky", "mastodon", "threads"):
        platform = social.platform_for(name, ctx.project.settings.social)
        sections = threadsections.thread_sections(day, ctx, platform)
        fresh = social.platform_for(name, ctx.project.settings.social)
        composed = len(threads_module.compose(sections, fresh))
        assert threads_module.count(sections, fresh) == composed
        assert threads_module.count(sections, platform) == composed
        assert threads_module.count(sections[:3], platform) == len(
            threads_module.compose(
                sections[:3], social.platform_for(name, ctx.project.settings.social)
            )
        )
        if name == "x":
            assert composed >= 20  # two-digit labels: packed a second time


def test_a_day_over_the_thread_budget_keeps_highlights_and_counts_the_rest(
    sample_root: Path,
) -> None:
    settings_file = sample_root / "aspdigest.toml"
    settings_file.write_text(settings_file.read_text() + '\n[social]\nplatforms = ["x"]\n')
    for n in range(12):
        add_record(
            sample_root,
            "2024-12-06",
            f"filler-{n:02d}",
            (
                f'title: "Filler {n}"\nkind: statement\norder: {10 + n}\n'
                f'summary: "Survivors demand accountability now, item {n}."'
                + ("\nhighlight: true" if n == 11 else "")
            ),
        )
    ctx, content = context(load_project(sample_root, environ={}))
    day = plan_days(content)[4]
    posts = threads(social.render(day, ctx))["x"]["posts"]
    assert len(posts) == 12
    shown = list(dict.fromkeys(r for p in posts for r in p["records"]))
    assert "filler-11" in shown and "filler-10" not in shown
    more = len(day.records) - len(shown)
    assert posts[-1]["text"].startswith(
        f"{more} more items from day 5 of ASP23 are in the full digest: "
        "https://example.org/digest/asp23/2024-12-06/"
    )


# -- properties --------------------------------------------------------------------------------------

LATIN = st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=10)
WORD = st.one_of(
    LATIN,
    LATIN,
    LATIN,
    st.text("正義和平法院審判真相", min_size=1, max_size=5),
    st.text("العدالةللضحايا", min_size=1, max_size=7),
    st.builds(lambda w: "".join(c + "\u0301" for c in w), LATIN),
    st.sampled_from(["😀", "👩🏽‍⚖️", "🐦‍🔥", "✊🏽", "🇺🇦"]),
    st.builds(lambda p: f"https://example.org/{p}", st.text("abcxyz-_/", max_size=40)),
    st.sampled_from(["@ana_1", "#Justice", "#正義", "@ana@mastodon.social", "$ICC"]),
)
SPACE = st.sampled_from([" ", " ", " ", " ", NBSP, NNBSP])
CLAUSE = st.lists(st.tuples(WORD, SPACE), min_size=1, max_size=4).map(
    lambda ws: "".join(w + s for w, s in ws).rstrip(" " + NBSP + NNBSP) or "x"
)
JOINER = st.sampled_from([", ", ", ", "; ", ": ", " — ", "—", "、", "،"])
# A sentence starts with a capital, so that it is one (a stop before a small letter is not).
SENTENCE = st.tuples(
    st.sampled_from(["The", "Justice", "Survivors", "Now"]),
    SPACE,
    CLAUSE,
    st.lists(st.tuples(JOINER, CLAUSE), max_size=2),
).map(lambda s: s[0] + s[1] + s[2] + "".join(j + c for j, c in s[3]) + ".")
PASSAGE = st.lists(SENTENCE, min_size=1, max_size=10).map(" ".join)
RECORD = st.tuples(
    st.lists(SENTENCE, min_size=1, max_size=3).map(" ".join),
    st.lists(PASSAGE, max_size=2),
    st.sampled_from(["en", "fr", "ar", "de", "ja"]),
)


URL_OR_TAG = re.compile(r"(?:https?://|www\.)\S+|[@#$][\w.@-]+")
MARKS = "…“”«»„「」\u202f\u2068\u2069"  # with the bidi isolates inside the marks


def bare(words: list[str]) -> list[str]:
    return [b for b in (w.strip(MARKS) for w in words) if b]


def synthetic_day(
    project: Project, records: list[tuple[str, list[str], str]]
) -> tuple[Day, RenderContext]:
    date = dt.date(2025, 3, 10)
    event = Event(
        id="synth",
        name="Synthetic",
        short_name="SYN",
        publisher="P",
        timezone="Europe/Amsterdam",
        start=date,
        end=date,
        hashtags=["Justice"],
        path="content/synth/event.toml",
        sha256="0",
    )
    built = []
    for n, (summary, quotes, lang) in enumerate(records):
        built.append(
            Record(
                id=f"r{n}",
                date=date,
                path=f"content/synth/2025-03-10/r{n}.md",
                sha256="0",
                title=f"Item {n}",
                kind="statement",
                summary=summary,
                speakers=[Speaker(name="Ana Example", role="Witness")],
                quotes=[Quote(text=q, by="Ana Example", lang=lang, card=False) for q in quotes],
            )
        )
    content = Content(event, tuple(built))
    day = Day(event, date, 1, "A synthetic day", None, tuple(built))
    return day, RenderContext(project, content, make_environment(project))


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.lists(RECORD, min_size=1, max_size=3))
@example(  # found by Hypothesis: a quote cut at a dash right before a link ("a—…")
    records=[
        (
            "The a.",
            [
                "The https://example.org// https://example.org/__ a—https://example.org/a. "
                "The https://example.org/ https://example.org/_ https://example.org/-."
            ],
            "en",
        )
    ],
)
def test_thread_properties(records: list[tuple[str, list[str], str]]) -> None:
    project = load_project(REPO, environ={})
    day, ctx = synthetic_day(project, records)
    archive = "https://example.org/digest/synth/2025-03-10/"
    for platform in PLATFORMS:
        try:
            result = social.social_day(day, ctx, platform)
        except social.Blocked as exc:
            # A quote clause or word with no break that does not fit one post blocks that
            # platform's thread by design (test_a_clause_too_long_for_a_platform_blocks_...);
            # such generated input is outside what this property speaks of.
            assume("to split it at" not in str(exc))
            raise
        data = social.thread_data(day, result)
        rule = rule_for(platform, data)
        texts = [LABEL.sub("", p.text) for p in result.posts]
        # 1. every post within its limit by the platform's own rule (on Bluesky, the text
        # its API takes), and within the thread budget
        for post in all_posts(data):
            shown = post["api_text"] if platform == "bluesky" else post["text"]
            assert check(rule, shown) == [], (platform, shown)
        assert len(result.posts) <= project.settings.social.budget(platform)
        # 2. every post carries prose: words beyond its URLs, handles, hashtags and label
        for text in texts:
            rest = URL_OR_TAG.sub(" ", text)
            assert re.search(r"[^\W\d_]", rest), (platform, text)
        # 3. each link once in the thread: the digest link once, no other URL more often
        # than the shown records' own text has it
        shown_ids = {r for p in result.posts for r in p.records}
        shown_records = [r for r in day.records if r.id in shown_ids]
        found = [e.text for t in texts for e in extract_urls(t)]
        assert found.count(archive) == 1, platform
        source = [
            e.text
            for r in shown_records
            for t in (r.summary, *(q.text for q in r.quotes))
            for e in extract_urls(t)
        ]
        for url in set(found) - {archive}:
            assert found.count(url) <= source.count(url), (platform, url)
        stream = "".join("\n\n".join(texts).split())
        if platform == "linkedin":
            # One post: the hook, the digest link, highlight titles; summaries and quotes are
            # in the threads and quote posts.
            assert len(result.posts) == 1 and result.posts[0].quotes == ()
            continue
        assert shown_records, platform
        # the thread's words, in order, are the unsplit thread's (marks and the ellipses that
        # mark a cut aside)
        sections = threadsections.thread_sections(day, ctx, result.platform)
        whole = threads_module.single(sections, result.platform).text
        # 6. the budget's count of a thread is the number of posts composing it makes
        assert threads_module.count(sections, result.platform) == len(result.posts)
        words = "\n\n".join(texts).split()
        assert "".join(bare(words)) == "".join(bare(whole.split())), platform
        for record in shown_records:
            # 4. the summary's characters, in order and unbroken (a clause break may fall
            # inside a whitespace token, after an unspaced dash, so compare without white space)
            assert "".join(record.summary.split()) in stream, platform
            for token in re.findall(r"(?:[@#$]\S+)", record.summary):
                assert any(token.rstrip(".,") in t for t in texts)
            # 5. each quote the thread carries whole, in order, verbatim, "…" only where it
            # continues (the budget may leave a quote out, whole)
            for index, quote in enumerate(record.quotes):
                spans = [
                    (post, q)
                    for post in result.posts
                    for q in post.quotes
                    if (q.record, q.index) == (record.id, index)
                ]
                if not spans:
                    continue
                assert [q.part for _, q in spans] == list(range(1, len(spans) + 1))
                assert spans[0][1].start == 0 and spans[-1][1].end == len(quote.text)
                for (_, a), (_, b) in itertools.pairwise(spans):
                    assert quote.text[a.end : b.start].strip() == ""
                    assert NBSP not in quote.text[a.end : b.start]
                m = marks(quote.lang or "en")
                text = quote.text
                for carrier, q in spans:
                    # "…" spaced as the quote is at the cut: "a— …" would add a space the
                    # speaker's words do not have where a part ends at a dash before a link.
                    lead = "" if q.start == 0 else "…" + " " * text[q.start - 1].isspace()
                    trail = "" if q.end == len(text) else " " * text[q.end].isspace() + "…"
                    body = text[q.start : q.end]
                    assert m.open + "\u2068" + lead + body + trail + "\u2069" in carrier.text


def test_a_clause_of_only_links_joins_a_neighbour_instead_of_making_a_post_of_its_own() -> None:
    # Found by test_thread_properties: a quote clause made of URLs alone became a post with
    # no prose. The break before it is taken away and the words before it come along.
    from aspdigest.render.threads import has_prose, pack_with_prose
    from aspdigest.text.split import pack

    text = (
        "Alpha beta, gamma delta\u2014https://example.org/aaaa https://example.org/bbbb. "
        "Omega words end."
    )

    def fits(start: int, end: int) -> bool:
        return end - start <= 64

    plain = [text[s:e] for s, e in pack(text, fits, ("sentence", "clause"))]
    assert "https://example.org/aaaa https://example.org/bbbb." in plain  # the orphan
    parts = [text[s:e] for s, e in pack_with_prose(text, fits, ("sentence", "clause"))]
    assert parts == [
        "Alpha beta,",
        "gamma delta\u2014https://example.org/aaaa https://example.org/bbbb.",
        "Omega words end.",
    ]
    assert all(has_prose(p) for p in parts)
    assert not has_prose("https://example.org/a #tag @ana 3/7")
