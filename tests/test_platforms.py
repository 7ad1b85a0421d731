"""The platforms registry (`aspdigest.platforms`): the one place that knows a platform's rules.

Every platform id the project names (settings, schedules, event handles, templates) is in the
registry; the registry's figures are the ones the counters, renderers and publishers enforce;
no other module keeps its own display-name table or Mastodon mention pattern.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import tokenize
import tomllib
from pathlib import Path

import pytest
from pydantic import ValidationError

from aspdigest import config
from aspdigest.deliver.bluesky import MAX_IMAGES
from aspdigest.deliver.mastodon_answers import Instance
from aspdigest.platforms import MENTION_RE, PLATFORMS, display_name
from aspdigest.records import Handles
from aspdigest.render.reviewviews import segments
from aspdigest.render.social import platform_for
from aspdigest.text import RULES, check, mastodon_length
from aspdigest.text.extract import extract_mastodon_mentions
from aspdigest.text.length import COUNTERS

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "aspdigest"
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # 1 grapheme, 25 bytes


def test_registry_lists_the_five_platforms_in_the_projects_order() -> None:
    assert list(PLATFORMS) == ["x", "bluesky", "mastodon", "threads", "linkedin"]
    assert [p.name for p in PLATFORMS.values()] == [
        "X",
        "Bluesky",
        "Mastodon",
        "Threads",
        "LinkedIn",
    ]
    assert tuple(PLATFORMS) == config.PLATFORMS
    assert all(spec.id == key for key, spec in PLATFORMS.items())
    assert display_name("linkedin") == "LinkedIn"
    assert display_name("myspace") == "myspace"
    with pytest.raises(TypeError):
        PLATFORMS["x"] = PLATFORMS["bluesky"]  # type: ignore[index]


# -- every platform named anywhere is in the registry ----------------------------------------


def _named_in_toml_lists(text: str) -> set[str]:
    """Ids in `platforms = [...]` and `numbering = [...]` lines, commented-out examples too."""
    found: set[str] = set()
    for match in re.finditer(r"\b(?:platforms|numbering)\s*=\s*\[([^\]]*)\]", text):
        found |= set(re.findall(r'"([^"]*)"', match[1]))
    return found


def test_every_platform_named_in_settings_schedules_content_and_templates_is_known() -> None:
    named: dict[str, set[str]] = {}
    settings = tomllib.loads((REPO / "aspdigest.toml").read_text(encoding="utf-8"))
    social = settings.get("social", {})
    named["aspdigest.toml"] = set(social.get("platforms", [])) | set(social.get("numbering", []))
    named["aspdigest.toml"] |= set(settings.get("delivery", {}).get("publishers", {}))
    named["aspdigest.toml"] |= _named_in_toml_lists((REPO / "aspdigest.toml").read_text())
    for path in sorted((REPO / "schedules").glob("*.toml")):
        named[path.name] = _named_in_toml_lists(path.read_text(encoding="utf-8"))
    for path in sorted((REPO / "content").glob("*/event.toml")):
        event = tomllib.loads(path.read_text(encoding="utf-8"))
        named[str(path.relative_to(REPO))] = {
            key for handles in event.get("handles", {}).values() for key in handles
        }
    named["README.md"] = _named_in_toml_lists((REPO / "README.md").read_text(encoding="utf-8"))
    templates = [*SRC.glob("templates/**/*.j2"), *REPO.glob("templates/**/*.j2")]
    for path in templates:
        text = path.read_text(encoding="utf-8")
        named[path.name] = set(re.findall(r"platform\s*[!=]=\s*[\"'](\w+)[\"']", text))
        named[path.name] |= set(re.findall(r"thread\.(\w+)\.json", text)) - {"platform"}
    defaults = config.Settings()
    named["config defaults"] = set(defaults.social.platforms) | set(defaults.social.numbering)
    unknown = {where: ids - set(PLATFORMS) for where, ids in named.items() if ids - set(PLATFORMS)}
    assert unknown == {}
    # The scan finds names where they are: the defaults name every platform. (No default
    # template compares with a platform any more: item.txt.j2's LinkedIn case went with
    # LinkedIn's own template, linkedin.txt.j2.)
    assert named["config defaults"] == set(PLATFORMS)


def test_event_handles_have_one_field_per_platform_with_the_registrys_format() -> None:
    assert list(Handles.model_fields) == list(PLATFORMS)
    for platform, spec in PLATFORMS.items():
        patterns = [
            m.pattern for m in Handles.model_fields[platform].metadata if hasattr(m, "pattern")
        ]
        assert patterns == ([spec.handle_pattern] if spec.handle_pattern else [])
    Handles(x="IntlCrimCourt", bluesky="icc-cpi.bsky.social", mastodon="@icc@mastodon.social")
    with pytest.raises(ValidationError):
        Handles(x="@IntlCrimCourt")  # the @ is the registry's handle_prefix, not the handle's
    with pytest.raises(ValidationError):
        Handles(mastodon="icc@mastodon.social")


def test_an_unknown_platform_in_the_settings_names_the_registrys_platforms(tmp_path: Path) -> None:
    (tmp_path / "aspdigest.toml").write_text(
        '[social]\nplatforms = ["x", "myspace"]\n', encoding="utf-8"
    )
    with pytest.raises(config.ConfigError) as caught:
        config.load_settings(tmp_path, environ={})
    assert [str(p) for p in caught.value.problems] == [
        'aspdigest.toml: social.platforms: unknown platform "myspace"; '
        "known: x, bluesky, mastodon, threads, linkedin"
    ]


# -- the registry's figures are the ones enforced ----------------------------------------------


def test_registry_figures_are_the_counters_limits() -> None:
    assert {p: (r.limit, r.unit, r.thread) for p, r in RULES.items()} == {
        "x": (280, "weighted characters", True),
        "bluesky": (300, "graphemes", True),
        "mastodon": (500, "characters", True),
        "threads": (500, "characters", True),
        "linkedin": (3000, "characters", False),
    }
    for platform, spec in PLATFORMS.items():
        assert spec.rule is RULES[platform]
        assert (spec.rule.limit, spec.rule.unit, spec.rule.thread) == (
            spec.limit,
            spec.unit,
            spec.thread,
        )
        assert spec.counter in COUNTERS
    assert check("x", "a" * 280) == []
    assert check("x", "a" * 281) == ["281/280 weighted characters"]
    assert check("x", "https://example.org/" + "a" * 100) == []  # a URL counts 23
    assert check("bluesky", "a" * 301) == ["301/300 graphemes"]
    assert check("bluesky", FAMILY * 121) == ["3025/3000 bytes"]
    assert check("mastodon", "a" * 501) == ["501/500 characters"]
    assert mastodon_length("https://example.org/" + "a" * 100) == 23
    links = " ".join(f"https://example.org/{n}" for n in range(6))
    assert check("threads", links) == ["6 links, at most 5"]
    assert check("threads", "é" * 251) == ["502/500 bytes"]
    assert check("linkedin", "a" * 3001) == ["3001/3000 characters"]


def test_registry_figures_reach_settings_renderers_and_publishers() -> None:
    social = config.Social()
    assert social.mastodon_limit == 500
    assert social.numbering == ("x", "bluesky", "mastodon", "threads")
    assert {p: platform_for(p, social).max_media for p in PLATFORMS} == {
        "x": 4,
        "bluesky": 4,
        "mastodon": 4,
        "threads": 4,
        "linkedin": 0,
    }
    assert platform_for("mastodon", config.Social(mastodon_limit=1000)).rule.limit == 1000
    assert {p: s.alt_limit for p, s in PLATFORMS.items()} == {
        "x": 1000,
        "bluesky": 2000,
        "mastodon": 1500,
        "threads": 1000,
        "linkedin": 4086,
    }
    # A Mastodon server that does not report its own limits gets the registry's.
    assert Instance("example.social") == Instance("example.social", 500, 23, 4, 1500)
    assert MAX_IMAGES == PLATFORMS["bluesky"].max_media == 4


def test_each_platform_attaches_a_card_size_the_card_spec_defines() -> None:
    spec = tomllib.loads((SRC / "templates" / "cards" / "cards.toml").read_text("utf-8"))
    sizes = set(spec["sizes"])
    assert {p: s.card_size for p, s in PLATFORMS.items()} == {
        "x": "landscape",
        "bluesky": "landscape",
        "mastodon": "square",
        "threads": "portrait",  # 4:5, shown full height in the feed
        "linkedin": "preview",  # 1.91:1, as LinkedIn and link previews show it
    }
    for platform in PLATFORMS.values():
        assert set(platform.card_sizes) <= sizes, platform.id
        assert len(set(platform.card_sizes)) == len(platform.card_sizes)


# -- one Mastodon mention pattern ----------------------------------------------------------


def test_mastodon_mentions_are_found_as_the_server_finds_them() -> None:
    text = "By @jane.doe@example.social, @user@localhost, a=@no, @mück and @ok"
    assert [e.text for e in extract_mastodon_mentions(text)] == [
        "@jane.doe@example.social",
        "@user@localhost",
        "@ok",
    ]
    assert [m[0] for m in MENTION_RE.finditer("mail a@b.org or @x@münchen.social")] == [
        "@x@münchen.social"
    ]
    # The review page highlights what the server links and counts: the whole account.
    segs = segments("mastodon", "Thanks @jane.doe@example.social!")
    assert [(s.kind, s.text) for s in segs if s.kind != "text"] == [
        ("mention", "@jane.doe@example.social")
    ]
    assert mastodon_length("@jane.doe@example.social") == len("@jane.doe")


def _python_files() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if p.name != "platforms.py")


def _strings(path: Path) -> list[tuple[int, str]]:
    out = []
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline)
    for token in tokens:
        if token.type == tokenize.STRING:
            out.append((token.start[0], token.string))
    return out


def test_no_other_module_keeps_a_display_name_table() -> None:
    pair = re.compile(
        r"[\"'](x|bluesky|mastodon|threads|linkedin)[\"']\s*:\s*"
        r"[\"'](X|Bluesky|Mastodon|Threads|LinkedIn)[\"']"
        r"|\b(bluesky|mastodon|linkedin)\s*=\s*[\"'](Bluesky|Mastodon|LinkedIn)[\"']"
    )
    found = [
        f"{path.relative_to(REPO)}:{text[: m.start()].count(chr(10)) + 1}"
        for path in _python_files()
        for text in [path.read_text(encoding="utf-8")]
        for m in pair.finditer(text)
    ]
    assert found == []


# A Mastodon mention pattern is the one with a second @ for the server, followed by host
# characters: twitter-text's and Bluesky's mention patterns have none, an e-mail address
# pattern no "(?:@" group, Mastodon's URL pattern an f-string placeholder after it.
_SECOND_AT = re.compile(r"\(\?:@(?:\(\?P<\w+>)?(?:\\w|\[A-Za-z0-9|\[a-zA-Z0-9)")


def test_no_other_module_keeps_a_mastodon_mention_pattern() -> None:
    found = [
        f"{path.relative_to(REPO)}:{line}"
        for path in _python_files()
        for line, literal in _strings(path)
        if _SECOND_AT.search(literal)
    ]
    assert found == []
    # The three patterns there were before the registry, and the registry's own, are caught.
    before = [
        r"(?<![=/\w])@[a-zA-Z0-9_]+(?:[.\-]+[a-zA-Z0-9_]+)*(?:@\w+(?:[.\-]+\w+)*)?",
        r"(?<![\w@/])@[A-Za-z0-9_]+(?:@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)?",
    ]
    for pattern in [*before, MENTION_RE.pattern]:
        assert _SECOND_AT.search(pattern), pattern


def test_the_registry_is_cheap_to_import() -> None:
    code = (
        "import sys; before = set(sys.modules); import aspdigest.platforms; "
        "new = {m.split('.')[0] for m in set(sys.modules) - before}; "
        "print(sorted(new - set(sys.stdlib_module_names) - {'aspdigest'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
