"""Shared test fixtures: the sample project in a temporary folder, golden files, fixed clocks."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from aspdigest.config import Project, load_project
from support.pds_server import Pds, running_pds

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
GOLDEN = Path(__file__).resolve().parent / "golden"
ARTIFACTS = (
    Path(__file__).resolve().parent / "artifacts"
)  # screenshots and cards for people to look at
FIXED_NOW = dt.datetime(2024, 11, 30, 12, 0, tzinfo=dt.UTC)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="Rewrite golden files.")


@pytest.fixture(autouse=True)
def _fixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests never depend on the machine's zone, locale or stray ASPDIGEST_* settings.
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    for name in list(os.environ):
        if name.startswith("ASPDIGEST_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session", autouse=True)
def _cold_text_caches_under_mutmut() -> None:
    # `make mutate` (mutmut) forks each mutant's test run from a process that has already run
    # the tests once: text/'s result caches (URLs found, X lengths, compiled URL patterns)
    # would answer with the unmutated code's results, and a mutant of what they cache would
    # survive unseen. Emptied once per mutant's run; an ordinary run is not touched.
    if os.environ.get("MUTANT_UNDER_TEST", "").startswith("aspdigest."):
        from aspdigest.text import extract, length

        extract._url_patterns.cache_clear()
        extract._urls.cache_clear()
        length.x_weighted_length.cache_clear()


@pytest.fixture(scope="session")
def pds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pds]:
    """The reference Bluesky PDS (and its PLC directory) on 127.0.0.1, one per test session;
    each test creates its own accounts on it."""
    with running_pds(tmp_path_factory.mktemp("pds")) as server:
        print(f"\ntest PDS ready in {server.started_in:.2f} s")
        yield server


@pytest.fixture(scope="session")
def built_sample() -> Path:
    """The ASP23 sample (content, settings, schedule, subscribers) built once for the whole
    test session. Read-only: a test that changes it copies it first (`built_copy`)."""
    from support.delivery_helpers import built_template

    return built_template()


@pytest.fixture
def sample_root(tmp_path: Path) -> Path:
    """A copy of the repository's sample project (ASP23) that a test may change."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copytree(REPO / "content", root / "content")
    shutil.copy(REPO / "aspdigest.toml", root / "aspdigest.toml")
    if (REPO / "schedules").is_dir():
        shutil.copytree(REPO / "schedules", root / "schedules")
    if (REPO / "subscribers.csv").exists():
        shutil.copy(REPO / "subscribers.csv", root / "subscribers.csv")
    return root


@pytest.fixture
def sample_project(sample_root: Path) -> Project:
    return load_project(sample_root, environ={})


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Callable[[str, bytes | str], None]:
    """Compare output with tests/golden/<name>; `pytest --update-golden` rewrites it."""
    update = bool(request.config.getoption("--update-golden"))

    def check(name: str, data: bytes | str) -> None:
        raw = data.encode("utf-8") if isinstance(data, str) else data
        path = GOLDEN / name
        if update or not path.exists():
            if not update:
                pytest.fail(f"golden file {path} missing; run pytest --update-golden")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(raw)
            return
        expected = path.read_bytes()
        if raw != expected:
            import difflib

            diff = "\n".join(
                difflib.unified_diff(
                    expected.decode("utf-8", "replace").splitlines(),
                    raw.decode("utf-8", "replace").splitlines(),
                    "golden",
                    "actual",
                    lineterm="",
                    n=2,
                )
            )
            pytest.fail(
                f"{name} differs from golden (pytest --update-golden to accept):\n{diff[:4000]}"
            )

    return check


@pytest.fixture
def artifacts_dir(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A folder under tests/artifacts/ kept after the run, for screenshots and sample cards."""
    folder = ARTIFACTS / request.node.name.replace("/", "_").replace("[", "-").rstrip("]")
    folder.mkdir(parents=True, exist_ok=True)
    yield folder
