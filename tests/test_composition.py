"""The composition rules of social threads, as properties over generated conferences and ASP23.

Conferences come from `benchmarks/generate.py` (every language it writes, as the event's
language and mixed in its records; with handles, organisers, shared links, hooks and
highlights), drawn by hypothesis; the ASP23 sample is checked day by day. Threads are composed
without rendering cards or email (`social.social_day`), so each example takes well under a
second. For every thread on every platform (`rules`):

- every post carries prose: none is only a URL, a heading, hashtags, handles or numbering;
- each URL at most once per thread, the digest link exactly once;
- at most `social.max_posts` posts (the budget);
- the opener leads with the day's hook, else its title, and carries no date label;
- a handle at most once per person per thread;
- Threads: at most one hashtag per post; LinkedIn: one post, hashtags last, within 3,000;
- every post (thread and quote posts) within its platform's limit by its own rule.

Also: a generated 30-item day builds, blocked on no platform; and a quote post whose first
sentence does not fit drops its hashtags before its excerpt is cut at a word.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from babel.dates import format_date
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aspdigest.build import build
from aspdigest.config import Project, load_project
from aspdigest.content import load_content
from aspdigest.days import Day, plan_days
from aspdigest.render import RenderContext, social
from aspdigest.render.mentions import handle
from aspdigest.render.templates import make_environment
from aspdigest.text import RULES, check, extract_urls, mastodon_rule

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from generate import SENTENCES, generate  # noqa: E402

PLATFORMS = ("x", "bluesky", "mastodon", "threads", "linkedin")
LABEL = re.compile(r"\n\d+/\d+$")
URL = re.compile(r"(?:https?://|www\.)\S+")
TAG = re.compile(r"(?<![\w#])#\w+")
HANDLE = re.compile(r"@[\w.@-]+")


def rule_for(platform: str, data: dict[str, Any]) -> Any:
    return mastodon_rule(data["limit"]) if platform == "mastodon" else RULES[platform]


def prose(text: str) -> str:
    """What a post says beyond its numbering, URLs, hashtags and handles."""
    rest = LABEL.sub("", text)
    for pattern in (URL, TAG, HANDLE):
        rest = pattern.sub(" ", rest)
    return " ".join(rest.split())


def rules(day: Day, project: Project, platform: str, data: dict[str, Any]) -> None:
    """Assert every composition rule on one platform's thread file of one day."""
    where = (day.key, platform)
    assert not data.get("blocked"), (where, data.get("blocked"))
    posts = data["posts"]
    texts = [p["text"] for p in posts]
    archive = project.settings.email.archive_url.format(event=day.event.id, date=day.key)
    rule = rule_for(platform, data)
    # Every post within its platform's limit by its own rule (Bluesky: the text its API takes).
    for post in [*posts, *(p for qp in data["quote_posts"] for p in qp["posts"])]:
        shown = post.get("api_text", post["text"]) if platform == "bluesky" else post["text"]
        assert check(rule, shown) == [], (where, shown)
        # Prose: words, not only a URL, a heading, hashtags, handles or numbering.
        said = prose(post["text"])
        assert re.search(r"[^\W\d_]{2}", said), (where, post["text"])
        assert said not in {r.title for r in day.records}, (where, post["text"])
    # The budget.
    assert 1 <= len(posts) <= project.settings.social.budget(platform), where
    # URLs: each at most once in the thread, the digest link exactly once.
    urls = [u.text for t in texts for u in extract_urls(t)]
    assert urls.count(archive) == 1, (where, urls)
    assert len(urls) == len(set(urls)), (where, urls)
    # The opener leads with the day's news, not a date.
    opener = LABEL.sub("", texts[0])
    assert opener.startswith(day.hook or day.title), (where, opener)
    locale = day.event.language.replace("-", "_")
    for label in (day.key, format_date(day.date, "long", locale=locale)):
        assert label not in URL.sub(" ", opener), (where, opener)
    # Handles: each person's at most once per thread.
    stream = "\n".join(texts)
    people = {n for r in day.records for n in (*r.organisers, *(s.name for s in r.speakers))}
    for name in people:
        written = handle(day.event, name, platform)
        if written is not None:
            found = re.findall(rf"(?<![\w@.]){re.escape(written)}(?![\w@-]|\.\w)", stream)
            assert len(found) <= 1, (where, name, found)
    if platform == "threads":
        for text in texts:
            assert len(TAG.findall(text)) <= 1, (where, text)
    if platform == "linkedin":
        (text,) = texts
        assert rule.count(text) <= 3000
        paragraphs = text.strip().split("\n\n")
        tags = [t for p in paragraphs[:-1] for t in TAG.findall(p)]
        assert tags == [], (where, tags)
        last = paragraphs[-1]
        assert TAG.findall(last) and TAG.sub("", last).strip() == "", (where, last)


def threads_of(project: Project, event: str) -> list[tuple[Day, str, dict[str, Any]]]:
    """Every day's thread on every platform, composed without cards or email."""
    content = load_content(project, event)
    ctx = RenderContext(project, content, make_environment(project))
    out = []
    for day in plan_days(content):
        if not day.records:
            continue
        for platform in PLATFORMS:
            result = social.social_day(day, ctx, platform)
            out.append((day, platform, social.thread_data(day, result)))
    return out


# -- the ASP23 sample --------------------------------------------------------------------------


def test_every_rule_holds_on_every_asp23_day_and_platform() -> None:
    project = load_project(REPO, environ={})
    made = threads_of(project, "asp23")
    assert len(made) == 5 * len(PLATFORMS)
    for day, platform, data in made:
        rules(day, project, platform, data)


# -- generated conferences ---------------------------------------------------------------------

CONFERENCES = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 10**6),
        "days": st.just(1),  # one day is where every rule acts; more days only repeat it
        "records": st.integers(1, 30),
        "quotes": st.integers(0, 12),
        "language": st.sampled_from(sorted(SENTENCES)),
        "rich": st.booleans(),
    }
)


# A day over its thread budget is composed many times over while items are chosen (a second or
# two for 30 items): a handful of examples, spread by hypothesis over sizes and languages.
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(CONFERENCES)
def test_every_rule_holds_on_generated_conferences(
    tmp_path_factory: pytest.TempPathFactory, conference: dict[str, Any]
) -> None:
    root = generate(tmp_path_factory.mktemp("synth") / "p", **conference)
    project = load_project(root, environ={})
    made = threads_of(project, "synth")
    assert {p for _, p, _ in made} == set(PLATFORMS)
    for day, platform, data in made:
        rules(day, project, platform, data)


@pytest.mark.parametrize("language", sorted(SENTENCES))
def test_every_language_the_generator_writes_composes_by_the_rules(
    tmp_path: Path, language: str
) -> None:
    # Each language as the event's own, with the others mixed in, handles and shared links.
    root = generate(
        tmp_path / "p", days=1, records=8, quotes=4, seed=7, language=language, rich=True
    )
    project = load_project(root, environ={})
    made = threads_of(project, "synth")
    assert len(made) == len(PLATFORMS)
    for day, platform, data in made:
        rules(day, project, platform, data)
    # The rules had something to act on: handles were used.
    x = next(data for _, p, data in made if p == "x")
    assert any("@person" in p["text"] for p in x["posts"])


def test_a_thirty_item_day_builds_on_all_five_platforms(tmp_path: Path) -> None:
    # Arabic weighs 2 per character on X: the heaviest day the generator can write.
    root = generate(tmp_path / "p", days=1, records=30, quotes=8, seed=30, language="ar", rich=True)
    project = load_project(root, environ={})
    result = build(project, "synth")
    assert result.blocked == ()
    (out,) = result.days
    assert len(out.day.records) == 30
    folder = result.written.event_dir / out.day.key
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert not [a for a in manifest["artifacts"] if a.get("meta", {}).get("blocked")]
    for platform in PLATFORMS:
        data = json.loads((folder / f"thread.{platform}.json").read_text(encoding="utf-8"))
        rules(out.day, project, platform, data)
        if platform != "linkedin":
            # Over budget: the closing post says how many more items the digest has.
            assert len(data["posts"]) == project.settings.social.budget(platform)
            shown = {r for p in data["posts"] for r in p["records"]}
            highlighted = {r.id for r in out.day.records if r.highlight}
            assert highlighted <= shown, platform
            assert f"{30 - len(shown)} more" in data["posts"][-1]["text"], platform


# -- quote posts: hashtags go before words -----------------------------------------------------

SHORT_FIRST = (
    "Justice for survivors of sexual and gender-based crimes requires states to fund the "
    "Court, to protect its independence, to cooperate fully with every request it makes, and "
    "to stand by every survivor."
)
LONG_FIRST = (
    "Justice for survivors of sexual and gender-based crimes requires states to fund the "
    "Court, to protect its independence, to cooperate fully with every request it makes, to "
    "arrest every suspect it names and to support every survivor who comes forward."
)
SECOND = "And then a second sentence."


def quote_post_on_x(root: Path, first: str) -> tuple[dict[str, Any], str]:
    quote = f"{first} {SECOND}"
    (root / "content/asp23/2024-12-04/long.md").write_text(
        '---\ntitle: "Long"\nkind: statement\nsummary: "A statement."\nspeakers:\n'
        f'  - name: "Ana Example"\nquotes:\n  - text: "{quote}"\n    by: "Ana Example"\n'
        "---\nBody.\n",
        encoding="utf-8",
    )
    project = load_project(root, environ={})
    content = load_content(project, "asp23")
    ctx = RenderContext(project, content, make_environment(project))
    rendered = social.render(plan_days(content)[2], ctx)
    data = next(json.loads(a.data) for a in rendered.artifacts if a.path == "thread.x.json")
    (qp,) = [q for q in data["quote_posts"] if q["record"] == "long"]
    (post,) = qp["posts"]
    return post, quote


TAIL = "\n— Ana Example, at “Long”\n\nhttps://example.org/digest/asp23/2024-12-04/"


def test_a_first_sentence_that_fits_only_without_hashtags_keeps_its_words(
    sample_root: Path,
) -> None:
    post, quote = quote_post_on_x(sample_root, SHORT_FIRST)
    # With the hashtags it would be 281 weighted characters: they go, the sentence stays whole.
    assert post["text"] == f"“\u2068{SHORT_FIRST} …\u2069”{TAIL}"
    assert RULES["x"].count(post["text"]) == 258 <= 280
    assert RULES["x"].count(post["text"] + "\n\n#ASP23 #GenderJustice") == 281
    assert post["quotes"][0]["start"] == 0 and post["quotes"][0]["end"] == len(SHORT_FIRST)
    assert len(post["media"]) == 1 and quote in post["media"][0]["alt"]


def test_a_first_sentence_too_long_even_without_hashtags_is_cut_at_a_word(
    sample_root: Path,
) -> None:
    post, quote = quote_post_on_x(sample_root, LONG_FIRST)
    (span,) = post["quotes"]
    end = span["end"]
    shown = quote[:end]
    # No hashtags; the excerpt is the quote's own leading words, cut between two words.
    assert "#" not in post["text"]
    assert post["text"] == f"“\u2068{shown} …\u2069”{TAIL}"
    assert span["start"] == 0 and quote[end] == " " and LONG_FIRST.startswith(shown)
    assert shown == "".join(LONG_FIRST.split(" every survivor")[0]) + " every"
    assert RULES["x"].count(post["text"]) == 280
    # The next word would not have fitted.
    longer = quote[: quote.index(" ", end + 1)]
    assert RULES["x"].count(f"“\u2068{longer} …\u2069”{TAIL}") > 280
    assert len(post["media"]) == 1 and quote in post["media"][0]["alt"]


def test_the_date_label_check_would_catch_a_date(tmp_path: Path) -> None:
    # The opener check is not vacuous: a hook that is a date label fails it.
    root = generate(tmp_path / "p", days=1, records=2, quotes=0, seed=1)
    event = root / "content/synth/event.toml"
    date = dt.date(2025, 3, 3)
    label = format_date(date, "long", locale="en")
    event.write_text(
        event.read_text().replace(
            f'[days."{date}"]\n', f'[days."{date}"]\nhook = "Day 1 · {label}"\n'
        )
    )
    project = load_project(root, environ={})
    ((day, platform, data), *_) = threads_of(project, "synth")
    with pytest.raises(AssertionError):
        rules(day, project, platform, data)
