"""Helpers shared by the benchmark scripts: a scratch copy of the sample, timing, a table row.

Every timing is taken two ways: wall-clock time and CPU time (user + system, of this process
and of the child processes it waited for). On a shared or busy machine wall time swings with
the load while CPU time stays close to the work done, so both are printed; the goals of issue
18 are wall-clock medians on an idle machine. `--quick` (or BENCH_QUICK=1, which `run.py`
passes on) makes every script run fewer rounds and smaller sizes, for a smoke test.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# The benchmarks measure the source tree they sit in, whatever the venv has installed, or
# BENCH_SRC's (another checkout's src/, for a before/after comparison on one machine).
SRC = os.environ.get("BENCH_SRC") or str(REPO / "src")
if SRC not in sys.path:
    sys.path.insert(0, SRC)
QUICK = "--quick" in sys.argv[1:] or os.environ.get("BENCH_QUICK") == "1"


def rounds(full: int, quick: int = 1) -> int:
    """How many timed runs: `full`, or `quick` under --quick."""
    return quick if QUICK else full


def environment(**extra: str) -> dict[str, str]:
    """The environment for a CLI run: this tree's sources first, no stray ASPDIGEST_ setting,
    and Python's bytecode cache on. An installed aspdigest runs from compiled .pyc files;
    under PYTHONDONTWRITEBYTECODE (set in some shells and CI images) a source tree never gets
    them, and every run would compile each module it imports again (~15 ms of
    `aspdigest --help`, up to ~70 ms of a build), which is not what a user waits for."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ASPDIGEST_") and k != "PYTHONDONTWRITEBYTECODE"
    }
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def scratch_project() -> Path:
    """A temporary copy of the repository's sample project."""
    root = Path(tempfile.mkdtemp(prefix="aspdigest-bench-"))
    shutil.copytree(REPO / "content", root / "content")
    shutil.copy(REPO / "aspdigest.toml", root / "aspdigest.toml")
    for extra in ("subscribers.csv",):
        if (REPO / extra).exists():
            shutil.copy(REPO / extra, root / extra)
    return root


def cpu_seconds() -> float:
    """User + system CPU of this process and of every child it has waited for."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@dataclass(frozen=True)
class Timing:
    wall: float  # median seconds
    cpu: float  # median CPU seconds
    walls: tuple[float, ...]
    runs: int


def measure(action: Callable[[], object], runs: int) -> Timing:
    walls, cpus = [], []
    for _ in range(runs):
        cpu = cpu_seconds()
        started = time.perf_counter()
        action()
        walls.append(time.perf_counter() - started)
        cpus.append(cpu_seconds() - cpu)
    return Timing(statistics.median(walls), statistics.median(cpus), tuple(walls), runs)


def median_seconds(action: Callable[[], object], runs: int) -> tuple[float, list[float]]:
    timing = measure(action, runs)
    return timing.wall, list(timing.walls)


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> None:
    subprocess.run(
        [str(BIN / "aspdigest"), *args],
        cwd=cwd,
        env=env or environment(),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def python_startup(runs: int) -> Timing:
    """`python -c pass`: the machine's speed and load right now, a reference for the rest."""
    return measure(
        lambda: subprocess.run([sys.executable, "-c", "pass"], check=True, env=environment()),
        runs,
    )


def row(
    name: str,
    value: float,
    unit: str,
    runs: int | str,
    goal: str = "",
    met: bool | None = None,
    cpu: str = "",
) -> None:
    """One line of `make bench`'s table: what, goal, measured median, met?, CPU, runs."""
    verdict = "" if met is None else ("yes" if met else "NO")
    shown = f"{value:,.1f} {unit}" if unit else f"{value:,.2f}"
    runs_text = f"median of {runs}" if isinstance(runs, int) else runs
    print(f"| {name} | {goal} | {shown} | {verdict} | {cpu} | {runs_text} |", flush=True)


def timed_row(name: str, timing: Timing, goal_seconds: float | None, unit: str = "ms") -> None:
    """A row for a wall-clock goal, with the CPU time beside it."""
    scale = 1000.0 if unit == "ms" else 1.0
    goal = "" if goal_seconds is None else f"≤ {goal_seconds * scale:,.0f} {unit}"
    met = None if goal_seconds is None else timing.wall <= goal_seconds
    row(
        name,
        timing.wall * scale,
        unit,
        timing.runs,
        goal,
        met,
        f"{timing.cpu * scale:,.{0 if unit == 'ms' else 2}f} {unit} CPU",
    )
