"""A pure build: nothing under out/ depends on the state store, and the same inputs give the
same bytes (DESIGN.md, "A pure build").

The real CLI on a copy of the sample project, real SQLite stores; approvals change the store,
never the output.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from aspdigest.build import build
from aspdigest.cli import app
from aspdigest.config import load_project

runner = CliRunner()
EPOCH = "1733011200"  # 2024-12-01T00:00:00Z: the event manifest's build time, fixed


def _snapshot(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}


def _cli(root: Path, *args: str, state: str) -> str:
    env = {"SOURCE_DATE_EPOCH": EPOCH, "ASPDIGEST_STATE_URL": state, "ASPDIGEST_APPROVER": "Ana"}
    result = runner.invoke(app, [*args, "--project", str(root)], env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_approvals_and_another_store_leave_out_byte_identical(
    sample_root: Path, tmp_path: Path
) -> None:
    one = f"sqlite:///{tmp_path / 'one.db'}"
    two = f"sqlite:///{tmp_path / 'two.db'}"
    out = sample_root / "out"
    _cli(sample_root, "build", "asp23", state=one)
    first = _snapshot(out)
    assert "asp23/2024-12-02/index.html" in first and "asp23/index.html" in first

    _cli(sample_root, "schedule", "plan", "asp23", state=one)
    approved = _cli(sample_root, "approve", "asp23", "2024-12-02", state=one)
    assert "approved by Ana" in approved
    _cli(sample_root, "build", "asp23", "--force", state=one)
    assert _snapshot(out) == first

    # Another store with other approvals: still the same bytes.
    _cli(sample_root, "schedule", "plan", "asp23", state=two)
    _cli(sample_root, "approve", "asp23", "2024-12-04", "--channel", "digest", state=two)
    _cli(sample_root, "build", "asp23", "--force", state=two)
    assert _snapshot(out) == first
    # ... and with no store at all.
    _cli(sample_root, "build", "asp23", "--force", state=f"sqlite:///{tmp_path / 'none.db'}")
    assert _snapshot(out) == first
    assert not (tmp_path / "none.db").exists()


def test_two_builds_in_a_row_are_byte_identical(sample_root: Path, tmp_path: Path) -> None:
    # The second build reuses every day from disk, where artifacts come back in path order
    # rather than render order: the card groups on a day page must not follow that order.
    state = f"sqlite:///{tmp_path / 'state.db'}"
    out = sample_root / "out"
    _cli(sample_root, "build", "asp23", state=state)
    first = _snapshot(out)
    _cli(sample_root, "build", "asp23", state=state)
    assert _snapshot(out) == first
    page = first["asp23/2024-12-03/index.html"].decode()
    keys = [
        part.split(")", 1)[0] for part in page.split('<span class="card-key">(')[1:]
    ]  # in the order of the day's records
    assert keys == ["kit-general-debate-1", "asian-womens-leadership-1", "ecocide-1"]


def test_a_no_change_rebuild_reuses_the_review_site(sample_root: Path) -> None:
    project = load_project(sample_root, environ={})
    first = build(project, "asp23")
    assert not first.event_reused
    out = project.output_dir / "asp23"
    pages = _snapshot(out)
    again = build(project, "asp23")
    assert again.event_reused and len(again.reused) == 5
    assert _snapshot(out).keys() == pages.keys()
    assert {k: v for k, v in _snapshot(out).items() if k != "manifest.json"} == {
        k: v for k, v in pages.items() if k != "manifest.json"
    }
    # An edit to one day renders the review site again, and the page shows the edit.
    record = sample_root / "content/asp23/2024-12-04/the-veto.md"
    record.write_text(record.read_text().replace("over lunch", "at lunchtime"))
    edited = build(project, "asp23")
    assert not edited.event_reused and "2024-12-04" not in edited.reused
    assert (out / "2024-12-04/index.html").read_bytes() != pages["2024-12-04/index.html"]
    # A damaged review page is not reused: it is rendered again, as it was.
    (out / "2024-12-02/index.html").write_text("damaged")
    repaired = build(project, "asp23")
    assert not repaired.event_reused and len(repaired.reused) == 5
    assert (out / "2024-12-02/index.html").read_bytes() == pages["2024-12-02/index.html"]


@pytest.mark.parametrize("page", ["index.html", "2024-12-02/index.html"])
def test_static_pages_say_where_approval_status_is(sample_root: Path, page: str) -> None:
    project = load_project(sample_root, environ={})
    build(project, "asp23")
    html = (project.output_dir / "asp23" / page).read_text()
    assert (
        "Approval status is live in <code>aspdigest preview asp23</code> and "
        "<code>aspdigest status asp23</code>." in html
    )
    assert "data-status=" not in html and "badge" not in html
