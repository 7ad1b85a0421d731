"""Issue 20, item 6: `run --rehearse` rehearses the real queue. On a real SQLite store over a
really built sample: the rehearsal copies the real deliveries' approvals and the real
subscribers, and says per delivery what the real run would do; `--as-approved` rehearses the
whole day as if signed off."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aspdigest.cli import app
from aspdigest.errors import UserError
from aspdigest.queue import plan
from aspdigest.queue.approval import approve
from aspdigest.queue.joblog import log_to
from aspdigest.queue.rehearsal import rehearse
from aspdigest.store import open_project_store
from support.delivery_helpers import DAY, built_copy, environment, project

SPEED = 7200  # the day's 07:30 → 16:00 in about four seconds


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return built_copy(tmp_path)


def _plan_and_approve_digest(root: Path, subscribers: int) -> None:
    proj = project(root)
    with open_project_store(proj) as store:
        plan.plan(proj, "asp23", store)
        approve(proj, store, "asp23", DAY, channel="digest", by="ana")
        store.import_subscribers(
            (f"reader{i}@example.org", f"Reader {i}", "en") for i in range(subscribers)
        )


def _outcomes(root: Path, **options: bool) -> dict[tuple[str, str], str]:
    with log_to(io.StringIO()):
        result = rehearse(project(root), "asp23", DAY, SPEED, environ=environment(None), **options)
    return {(r.channel, r.platform or "email"): r.outcome for r in result.deliveries}


def test_only_the_digest_approved_rehearses_only_the_digest(root: Path) -> None:
    _plan_and_approve_digest(root, subscribers=2)
    outcomes = _outcomes(root)
    assert outcomes.pop(("digest", "email")) == "would send to 2 subscribers"
    assert len(outcomes) == 10  # five threads, five quote posts
    assert set(outcomes.values()) == {"would not send: not approved"}
    mail = root / "outbox/asp23/rehearsal/2024-12-02/mail"
    assert len(list(mail.glob("*.eml"))) == 2
    assert not (root / "outbox/asp23/rehearsal/2024-12-02/outbox").exists()


def test_no_subscribers_is_a_failure_foretold(root: Path) -> None:
    _plan_and_approve_digest(root, subscribers=0)
    with open_project_store(project(root)) as store:
        approve(project(root), store, "asp23", DAY, channel="thread", platform="bluesky", by="bo")
    outcomes = _outcomes(root)
    assert outcomes[("digest", "email")] == "would fail: no subscribers"
    assert outcomes[("thread", "bluesky")] == "would post 8 posts to Bluesky"
    assert outcomes[("thread", "x")] == "would not send: not approved"


def test_as_approved_rehearses_the_whole_day(root: Path) -> None:
    _plan_and_approve_digest(root, subscribers=2)
    outcomes = _outcomes(root, as_approved=True)
    assert outcomes[("digest", "email")] == "would send to 2 subscribers"
    assert outcomes[("thread", "x")].startswith("would post ")
    assert not [
        o
        for o in outcomes.values()
        if not o.startswith("would send") and not o.startswith("would post")
    ]


def test_nothing_planned_says_how_to_rehearse(root: Path) -> None:
    with pytest.raises(UserError) as caught:
        rehearse(project(root), "asp23", DAY, SPEED, environ=environment(None))
    assert caught.value.lines() == [
        "asp23: no state store yet; run `aspdigest schedule plan asp23` first, or rehearse "
        "everything as if approved with --as-approved"
    ]


def test_the_cli_prints_what_the_real_run_would_do(root: Path) -> None:
    _plan_and_approve_digest(root, subscribers=2)
    result = CliRunner().invoke(
        app,
        ["run", "--rehearse", "2024-12-02", "--speed", str(SPEED), "--project", str(root)],
        env=environment(None),
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[1].split("\t")[:4] == ["Tue 2024-12-03 07:30 CET", "digest", "email", "sent"]
    assert lines[1].split("\t")[5] == "would send to 2 subscribers"
    assert "\tskipped\t-\twould not send: not approved" in lines[2]
