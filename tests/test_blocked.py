"""One channel never blocks another: a blocked artifact through build, plan, approve and review.

On a copy of the built ASP23 sample, 2024-12-06 gets a hook too long for LinkedIn's one post,
so that day's LinkedIn artifact is `blocked` (render/social.py) while every other channel is
built. These tests follow it through `aspdigest build [--strict]`, `schedule plan` (refused,
named with the manifest's reason; a delivery planned before is skipped, and planned again once
the build no longer blocks it), `approve` (exit 1 with the reason) and the review page.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aspdigest.cli import app
from aspdigest.store import open_project_store
from support.delivery_helpers import built_copy, project

cli = CliRunner()
DAY = "2024-12-06"
WHY = (
    'content/asp23/event.toml: days."2024-12-06".hook: the day\'s LinkedIn post is over '
    "3000 characters even with only its hook and 3 highlight titles; shorten the hook or "
    "the titles"
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return built_copy(tmp_path)


def block_linkedin(root: Path) -> str:
    """Give 2024-12-06 a hook no LinkedIn post can hold; return event.toml as it was."""
    event = root / "content/asp23/event.toml"
    before = event.read_text(encoding="utf-8")
    hook = ("Words and more words. " * 140).strip()
    event.write_text(
        before.replace(f'[days."{DAY}"]\n', f'[days."{DAY}"]\nhook = "{hook}"\n'),
        encoding="utf-8",
    )
    return before


def run(root: Path, *args: str) -> tuple[int, str, str]:
    result = cli.invoke(
        app, [*args, "--project", str(root)], env={"ASPDIGEST_APPROVER": "Ana Example"}
    )
    return result.exit_code, result.stdout, result.stderr


def statuses(root: Path) -> dict[tuple[str, str], tuple[str, str | None]]:
    with open_project_store(project(root)) as store:
        return {
            (d.channel, d.platform): (d.status, d.last_error)
            for d in store.deliveries("asp23")
            if d.date.isoformat() == DAY
        }


def test_build_writes_every_other_channel_and_fails_only_when_strict(root: Path) -> None:
    block_linkedin(root)
    code, out, err = run(root, "build", "asp23", "--day", DAY)
    line = f"out/asp23/{DAY}/thread.linkedin.json: blocked: {WHY}"
    assert code == 0, err
    assert f"warning: {line}" in err.splitlines()
    # Said once: the renderer's own warning is not repeated beside it.
    assert err.count(WHY) == 1
    code, out, err = run(root, "build", "asp23", "--day", DAY, "--strict", "--force")
    assert code == 1
    assert f"error: {line}" in err.splitlines() and err.count(WHY) == 1
    # Everything else is written all the same: the digest, the four other threads, the cards.
    folder = root / "out/asp23" / DAY
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    paths = {a["path"]: a.get("meta", {}) for a in manifest["artifacts"]}
    assert {"digest.eml", "thread.x.json", "thread.bluesky.json"} <= set(paths)
    assert paths["thread.linkedin.json"]["blocked"] == WHY
    assert "blocked" not in paths["thread.x.json"]
    assert json.loads((folder / "thread.x.json").read_text())["posts"]
    # --json lists it too.
    code, out, err = run(root, "build", "asp23", "--day", DAY, "--json", "--strict")
    assert code == 1
    assert json.loads(out)["blocked"] == [
        {"date": DAY, "path": "thread.linkedin.json", "reason": WHY}
    ]


def test_content_errors_still_fail_the_whole_build(root: Path) -> None:
    record = root / "content/asp23" / DAY / "broken.md"
    record.write_text("---\ntitle: Broken\nkind: session\n---\nNo summary.\n", encoding="utf-8")
    before = (root / "out/asp23/manifest.json").read_bytes()
    code, _out, err = run(root, "build", "asp23")
    assert code == 1
    assert err.splitlines() == [f"content/asp23/{DAY}/broken.md: summary: required field missing"]
    assert (root / "out/asp23/manifest.json").read_bytes() == before


def test_plan_refuses_a_blocked_delivery_and_plans_the_others(root: Path) -> None:
    block_linkedin(root)
    assert run(root, "build", "asp23", "--day", DAY)[0] == 0
    code, out, err = run(root, "schedule", "plan", "asp23")
    assert code == 0, err
    # One line per refused delivery: the platform, the day, the manifest's reason.
    assert [line for line in err.splitlines() if line.startswith("refused:")] == [
        f"refused: linkedin {DAY} thread: not planned: blocked: {WHY}",
        f"refused: linkedin {DAY} quotes: not planned: blocked: {WHY}",
    ]
    assert out.splitlines()[0] == "asp23: 48 deliveries (48 created)"
    planned = statuses(root)
    assert ("thread", "linkedin") not in planned and ("quotes", "linkedin") not in planned
    assert planned[("thread", "x")] == ("planned", None)
    # Approving the blocked one: nothing planned for it; the day's others approve.
    code, out, err = run(root, "approve", "asp23", DAY, "--platform", "linkedin")
    assert code == 1
    code, out, err = run(root, "approve", "asp23", DAY)
    assert code == 0, err
    approved = out.splitlines()
    assert len(approved) == 9  # the digest, four threads, four platforms' quote posts
    assert not any("linkedin" in line for line in approved)
    # --json says the same.
    code, out, err = run(root, "schedule", "plan", "asp23", "--json")
    assert json.loads(out)["refused"] == [
        {"date": DAY, "channel": channel, "platform": "linkedin", "reason": WHY}
        for channel in ("thread", "quotes")
    ]


def test_a_delivery_planned_before_the_block_is_refused_skipped_then_planned_again(
    root: Path,
) -> None:
    assert run(root, "schedule", "plan", "asp23")[0] == 0
    before = block_linkedin(root)
    assert run(root, "build", "asp23", "--day", DAY)[0] == 0
    # Built blocked but not planned again yet: approve refuses it with the reason, and
    # approves nothing else of the day (a refused approval writes nothing).
    code, out, err = run(root, "approve", "asp23", DAY)
    assert code == 1
    with open_project_store(project(root)) as store:
        ids = {
            (d.channel, d.platform): d.id
            for d in store.deliveries("asp23")
            if d.date.isoformat() == DAY
        }
    assert err.splitlines() == [
        f"delivery {ids[(channel, 'linkedin')]} ({DAY} {channel} linkedin): blocked: {WHY}"
        for channel in ("quotes", "thread")
    ]
    assert {s for s, _ in statuses(root).values()} == {"planned"}
    # Plan: refused, and the delivery planned before is skipped with the reason.
    code, out, err = run(root, "schedule", "plan", "asp23")
    assert code == 0
    assert f"refused: linkedin {DAY} thread: not planned: blocked: {WHY}" in err.splitlines()
    thread = ids[("thread", "linkedin")]
    assert f"  delivery {thread} ({DAY} thread linkedin): removed: blocked: {WHY}" in (
        out.splitlines()
    )
    assert statuses(root)[("thread", "linkedin")] == ("skipped", f"blocked: {WHY}")
    # Planning again says it again (still blocked) and changes nothing.
    code, out, again = run(root, "schedule", "plan", "asp23")
    assert code == 0 and "removed" not in out
    assert [line for line in again.splitlines() if line.startswith("refused:")] == [
        f"refused: linkedin {DAY} {channel}: not planned: blocked: {WHY}"
        for channel in ("thread", "quotes")
    ]
    assert statuses(root)[("thread", "linkedin")] == ("skipped", f"blocked: {WHY}")
    code, out, err = run(root, "approve", "asp23", DAY, "--platform", "linkedin")
    assert code == 1
    assert err.splitlines() == [
        f"delivery {ids[(channel, 'linkedin')]} ({DAY} {channel} linkedin): blocked: {WHY}; "
        "fix it, then build and `schedule plan` again"
        for channel in ("quotes", "thread")
    ]
    # Fixed and built again: the next plan plans it again, nothing refused.
    (root / "content/asp23/event.toml").write_text(before, encoding="utf-8")
    assert run(root, "build", "asp23", "--day", DAY, "--strict")[0] == 0
    code, out, err = run(root, "schedule", "plan", "asp23")
    assert code == 0 and "refused" not in err
    assert statuses(root)[("thread", "linkedin")] == ("planned", None)
    assert run(root, "approve", "asp23", DAY, "--platform", "linkedin")[0] == 0


def test_the_review_page_shows_the_blocked_thread_with_its_reason(root: Path) -> None:
    block_linkedin(root)
    assert run(root, "build", "asp23", "--day", DAY)[0] == 0
    page = (root / "out/asp23" / DAY / "index.html").read_text(encoding="utf-8")
    escaped = WHY.replace('"', "&#34;").replace("'", "&#39;")
    assert '<h3 id="thread-linkedin-h">LinkedIn: blocked</h3>' in page
    assert f'<p class="blocked-reason">{escaped}</p>' in page
    assert '<li class="chip chip-over">LinkedIn: blocked</li>' in page
    index = (root / "out/asp23/index.html").read_text(encoding="utf-8")
    assert 'LinkedIn <strong class="problem-inline">blocked</strong>' in index


def test_a_no_change_build_says_the_blocked_artifact_again_and_strict_still_fails(
    root: Path,
) -> None:
    block_linkedin(root)
    line = f"out/asp23/{DAY}/thread.linkedin.json: blocked: {WHY}"
    assert run(root, "build", "asp23")[0] == 0
    # Nothing changed: the answer comes from the event manifest's quick entry.
    code, out, err = run(root, "build", "asp23", "--strict", "--json")
    assert code == 1
    report = json.loads(out)
    assert report["days"] and report["reused"] == report["days"]
    assert f"error: {line}" in err.splitlines()
    assert json.loads(out)["blocked"] == [
        {"date": DAY, "path": "thread.linkedin.json", "reason": WHY}
    ]
