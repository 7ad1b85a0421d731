"""build.py + artifacts.py: the pipeline writes all or nothing, deterministically, with manifests."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from aspdigest.build import build
from aspdigest.config import Project
from aspdigest.days import Day
from aspdigest.errors import ContentError, UserError
from aspdigest.render import RenderContext, Rendered, Started

NOW = dt.datetime(2024, 11, 30, 12, 0, tzinfo=dt.UTC)


def _tree(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_build_writes_every_day_with_a_manifest(sample_project: Project) -> None:
    result = build(sample_project, "asp23", now=NOW)
    out = sample_project.output_dir / "asp23"
    assert [d.day.key for d in result.days] == [
        "2024-12-02",
        "2024-12-03",
        "2024-12-04",
        "2024-12-05",
        "2024-12-06",
    ]
    manifest = json.loads((out / "2024-12-03" / "manifest.json").read_text())
    assert manifest["event"] == "asp23" and manifest["date"] == "2024-12-03"
    assert "content/asp23/2024-12-03/kit-general-debate.md" in manifest["sources"]
    assert "content/asp23/event.toml" in manifest["sources"]
    for entry in manifest["artifacts"]:
        data = (out / "2024-12-03" / entry["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert entry["bytes"] == len(data)
    top = json.loads((out / "manifest.json").read_text())
    assert top["built_at"] == "2024-11-30T12:00:00Z"
    assert set(top["days"]) == {d.day.key for d in result.days}


def test_same_inputs_give_byte_identical_outputs(sample_project: Project, tmp_path: Path) -> None:
    build(sample_project, "asp23", now=NOW)
    first = _tree(sample_project.output_dir / "asp23")
    build(sample_project, "asp23", now=NOW, force=True)
    assert _tree(sample_project.output_dir / "asp23") == first
    later = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    build(sample_project, "asp23", now=later, force=True)
    changed = {
        k for k, v in _tree(sample_project.output_dir / "asp23").items() if first.get(k) != v
    }
    assert changed == {"manifest.json"}  # only the build time differs


_BUILD_ALONE = """
import datetime as dt, sys
from pathlib import Path
from aspdigest.build import build
from aspdigest.config import load_project
from aspdigest.render import carddraw
project = load_project(Path(sys.argv[1]), environ={})
build(project, "asp23", now=dt.datetime(2024, 11, 30, 12, 0, tzinfo=dt.UTC), force=True)
print(carddraw._POOL is not None)
"""


def test_cards_drawn_ahead_in_worker_processes_give_the_same_build(
    sample_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("aspdigest.render.carddraw.AHEAD_ABOVE", 10_000)
    build(sample_project, "asp23", now=NOW)  # here, each day's cards drawn as it is collected
    first = _tree(sample_project.output_dir / "asp23")
    # Alone in a fresh process (no other thread), the build forks the card workers first
    # and draws every day's cards in them while it renders the rest.
    child = subprocess.run(
        [sys.executable, "-c", _BUILD_ALONE, str(sample_project.root)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert child.stdout.strip() == "True"
    assert _tree(sample_project.output_dir / "asp23") == first


def test_unchanged_days_are_reused_and_an_edit_rebuilds_only_its_day(
    sample_project: Project,
) -> None:
    build(sample_project, "asp23", now=NOW)
    again = build(sample_project, "asp23", now=NOW)
    assert len(again.reused) == 5
    record = sample_project.content_dir / "asp23" / "2024-12-04" / "the-veto.md"
    record.write_text(record.read_text().replace("over lunch", "at lunchtime"))
    edited = build(sample_project, "asp23", now=NOW)
    assert "2024-12-04" not in edited.reused
    assert len(edited.reused) == 4
    day = json.loads((sample_project.output_dir / "asp23/2024-12-04/day.json").read_text())
    assert "at lunchtime" in json.dumps(day)


def test_a_reused_day_keeps_its_bytes_and_takes_no_file_from_outside_out(
    sample_project: Project, tmp_path: Path
) -> None:
    # Files of a reused day come from the output being replaced (linked, not rewritten):
    # the bytes stay those of its manifest, and a file that is not a plain file of out/
    # (here a symlink to a same-content copy elsewhere) is written anew, never linked to.
    build(sample_project, "asp23", now=NOW)
    out = sample_project.output_dir / "asp23"
    before = _tree(out)
    card = (
        out
        / "2024-12-02"
        / next(p for p in sorted(_tree(out / "2024-12-02")) if p.startswith("cards/"))
    )
    outside = tmp_path / "card-copy.png"
    outside.write_bytes(card.read_bytes())
    card.unlink()
    card.symlink_to(outside)
    record = sample_project.content_dir / "asp23" / "2024-12-04" / "the-veto.md"
    record.write_text(record.read_text().replace("over lunch", "at lunchtime"))
    edited = build(sample_project, "asp23", now=NOW)
    assert "2024-12-02" in edited.reused and "2024-12-04" not in edited.reused
    after = _tree(out)
    for kept in ("2024-12-02", "2024-12-03", "2024-12-05", "2024-12-06"):
        assert {k: v for k, v in after.items() if k.startswith(kept)} == {
            k: v for k, v in before.items() if k.startswith(kept)
        }
    assert not card.is_symlink() and card.read_bytes() == outside.read_bytes()
    assert outside.stat().st_nlink == 1
    # The next build, nothing changed, finds every day intact and reuses it.
    assert len(build(sample_project, "asp23", now=NOW).reused) == 5


def test_a_failed_build_leaves_the_previous_output_untouched(
    sample_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(sample_project, "asp23", now=NOW)
    before = _tree(sample_project.output_dir / "asp23")

    from aspdigest.render import summary

    calls = []

    def explode(day: Day, ctx: RenderContext) -> Rendered:
        calls.append(day.key)
        if len(calls) == 3:
            raise RuntimeError("renderer crashed on the third day")
        return summary.render(day, ctx)

    monkeypatch.setattr(
        "aspdigest.build.start_day_renderers", lambda days, ctx: [Started(explode, late=False)]
    )
    with pytest.raises(RuntimeError):
        build(sample_project, "asp23", now=NOW, force=True)
    assert _tree(sample_project.output_dir / "asp23") == before
    leftovers = [p.name for p in sample_project.output_dir.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_invalid_content_writes_nothing(sample_project: Project) -> None:
    bad = sample_project.content_dir / "asp23" / "2024-12-02" / "typo.md"
    bad.write_text("---\ntitle: T\nkind: session\nsumary: S.\n---\n")
    with pytest.raises(ContentError) as info:
        build(sample_project, "asp23", now=NOW)
    assert [str(p) for p in info.value.problems] == [
        "content/asp23/2024-12-02/typo.md: summary: required field missing",
        'content/asp23/2024-12-02/typo.md: sumary: unknown field; did you mean "summary"?',
    ]
    assert not sample_project.output_dir.exists()


def test_day_option_rebuilds_one_day_and_keeps_the_others(sample_project: Project) -> None:
    build(sample_project, "asp23", now=NOW)
    other = _tree(sample_project.output_dir / "asp23" / "2024-12-02")
    result = build(sample_project, "asp23", only=dt.date(2024, 12, 5), now=NOW, force=True)
    assert [d.day.key for d in result.days] == ["2024-12-05"]
    assert _tree(sample_project.output_dir / "asp23" / "2024-12-02") == other
    index = (sample_project.output_dir / "asp23" / "index.html").read_text()
    assert all(f"2024-12-0{n}" in index for n in range(2, 7))  # the review index lists all days
    feed = (sample_project.output_dir / "asp23" / "feed.atom").read_text()
    assert feed.count("<entry>") == 5
    with pytest.raises(UserError, match=r"--day 2024-12-09: outside asp23's dates"):
        build(sample_project, "asp23", only=dt.date(2024, 12, 9), now=NOW)


def test_progress_is_reported_for_every_day(sample_project: Project) -> None:
    steps: list[tuple[int, int, str]] = []
    build(sample_project, "asp23", now=NOW, progress=lambda d, t, w: steps.append((d, t, w)))
    assert [s[0] for s in steps][:5] == [1, 2, 3, 4, 5]
    assert steps[0][2] == "2024-12-02"
