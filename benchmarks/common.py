"""Helpers shared by the benchmark scripts: a scratch copy of the sample, timing, a table row."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def scratch_project() -> Path:
    """A temporary copy of the repository's sample project."""
    root = Path(tempfile.mkdtemp(prefix="aspdigest-bench-"))
    shutil.copytree(REPO / "content", root / "content")
    shutil.copy(REPO / "aspdigest.toml", root / "aspdigest.toml")
    for extra in ("subscribers.csv",):
        if (REPO / extra).exists():
            shutil.copy(REPO / extra, root / extra)
    return root


def median_seconds(action: Callable[[], object], runs: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times), times


def run_cli(*args: str, cwd: Path) -> None:
    subprocess.run(
        [str(BIN / "aspdigest"), *args],
        cwd=cwd,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def row(name: str, value: float, unit: str, runs: int) -> None:
    print(f"| {name} | {value:.1f} {unit} | median of {runs} |", flush=True)
