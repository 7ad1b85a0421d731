"""The no-change rebuild (aspdigest.inputs): `aspdigest build` with nothing changed since the
last full build answers from the event manifest, without loading content or rendering, and
anything changed, damaged or doubtful goes through the full build as before."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aspdigest import inputs
from aspdigest.cli import app
from aspdigest.config import load_project
from aspdigest.inputs import quick_key, unchanged

runner = CliRunner()


def _build(root: Path, *args: str) -> dict[str, object]:
    result = runner.invoke(app, ["build", "--json", *args, "--project", str(root)])
    assert result.exit_code == 0, result.output
    data: dict[str, object] = json.loads(result.stdout)
    return data


def _tree(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}


def test_a_rebuild_with_nothing_changed_reports_the_last_build_and_writes_nothing(
    sample_root: Path,
) -> None:
    first = _build(sample_root)
    out = sample_root / "out" / "asp23"
    before = _tree(out)
    assert unchanged(load_project(sample_root, environ={}), "asp23") is not None
    again = _build(sample_root)
    assert again["reused"] == again["days"] == first["days"]
    assert again["artifacts"] == first["artifacts"] == 104
    # The sample's settings are placeholders (example.org): those warnings are said again too.
    warnings = first["warnings"]
    assert isinstance(warnings, list) and again["warnings"] == warnings
    assert len([w for w in warnings if not w.startswith("aspdigest.toml: ")]) == 1
    assert any(w.startswith("aspdigest.toml: email.from: ") for w in warnings)
    assert _tree(out) == before  # not even the build time is rewritten


def test_the_no_change_path_imports_no_content_model_and_no_renderer(sample_root: Path) -> None:
    _build(sample_root)
    # main() leaves by os._exit after the exit handlers (see cli._leave): the probe is one.
    probe = (
        "import atexit, sys\n"
        "def report():\n"
        "    heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('jinja2', 'PIL', 'mjml', 'sqlalchemy', 'emoji', 'frontmatter', 'rich') "
        "or m in ('aspdigest.content', 'aspdigest.records', 'aspdigest.build'))\n"
        "    print('HEAVY', heavy)\n"
        "atexit.register(report)\n"
        "from aspdigest.cli import main; sys.argv = ['aspdigest', 'build']; main()\n"
    )
    env = {**os.environ, "ASPDIGEST_PROJECT": str(sample_root)}
    env.pop("ASPDIGEST_STATE_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    assert "5 unchanged" in done.stdout
    assert "HEAVY []" in done.stdout


def test_an_edit_rebuilds_its_day_and_records_the_new_key(sample_root: Path) -> None:
    _build(sample_root)
    record = sample_root / "content/asp23/2024-12-04/the-veto.md"
    record.write_text(record.read_text().replace("A lunchtime screening", "A late screening"))
    edited = _build(sample_root)
    assert "2024-12-04" not in edited["reused"] and len(edited["reused"]) == 4  # type: ignore[arg-type]
    assert b"A late screening" in (sample_root / "out/asp23/2024-12-04/day.json").read_bytes()
    assert _build(sample_root)["reused"] == edited["days"]


def test_a_damaged_output_file_is_rendered_again(sample_root: Path) -> None:
    _build(sample_root)
    digest = sample_root / "out/asp23/2024-12-03/digest.txt"
    good = digest.read_bytes()
    digest.write_bytes(b"tampered")
    assert unchanged(load_project(sample_root, environ={}), "asp23") is None
    repaired = _build(sample_root)
    assert "2024-12-03" not in repaired["reused"]  # type: ignore[operator]
    assert digest.read_bytes() == good


def test_a_schedule_edit_or_a_day_build_is_not_taken_for_no_change(sample_root: Path) -> None:
    _build(sample_root)
    project = load_project(sample_root, environ={})
    key = quick_key(project, "asp23")
    schedule = sample_root / "schedules/asp23.toml"
    schedule.write_text(schedule.read_text() + "\n# a comment\n")
    assert quick_key(project, "asp23") != key
    assert unchanged(project, "asp23") is None
    _build(sample_root)
    _build(sample_root, "--day", "2024-12-03")  # a --day build stores no key: the next is full
    assert unchanged(project, "asp23") is None


def test_a_symlink_in_the_content_folder_means_the_full_build(sample_root: Path) -> None:
    extra = sample_root / "content/asp23/notes.txt"
    os.symlink(sample_root / "aspdigest.toml", extra)
    assert quick_key(load_project(sample_root, environ={}), "asp23") is None


def test_the_code_digest_is_cached_under_every_files_size_and_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "package"
    (package / "__pycache__").mkdir(parents=True)
    (package / "a.py").write_text("A = 1\n")
    (package / "__pycache__" / "a.pyc").write_bytes(b"not an input")
    monkeypatch.setattr(inputs, "PACKAGE", package)
    monkeypatch.setenv("ASPDIGEST_CACHE_DIR", str(tmp_path / "cache"))
    first = _fresh_digest()
    assert first == inputs._hash_code()
    [entry] = (tmp_path / "cache" / "code").iterdir()
    assert entry.read_text() == first
    # Read back from the cache, not hashed again: a planted value proves it.
    entry.write_text("f" * 64)
    assert _fresh_digest() == "f" * 64
    # Any change of a file's size or time is a new key, hashed again.
    (package / "a.py").write_text("A = 22\n")
    second = _fresh_digest()
    assert second == inputs._hash_code() != first
    os.utime(package / "a.py", ns=(1, 1))
    assert _fresh_digest() == second  # same bytes, new key: the same hash, computed again
    assert len(list((tmp_path / "cache" / "code").iterdir())) == 3


def _fresh_digest() -> str:
    inputs.code_digest.cache_clear()
    try:
        return inputs.code_digest()
    finally:
        inputs.code_digest.cache_clear()
