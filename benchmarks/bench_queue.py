"""Queue benchmarks: how late fired jobs are in a rehearsal, and restart time with 10,000
approved deliveries.

- lateness: `aspdigest run --rehearse 2024-12-02 --speed 3600` (in process, three times):
  each fired job's start minus its (compressed) send time, in real milliseconds; the median
  and the worst over every job of every run.
- restart: a store holding 10,000 approved future deliveries; the time from starting
  `aspdigest run` until it logs "ready" (store read, every job rebuilt), median of 3.
"""

from __future__ import annotations

import datetime as dt
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import common
from common import BIN, REPO, rounds, row, run_cli, scratch_project

SPEED = 3600.0
REHEARSALS = rounds(3, 1)
DELIVERIES = rounds(10_000, 1_000)
RESTARTS = rounds(3, 1)
CHANNELS = [("digest", "")] + [
    (c, p)
    for c in ("thread", "quotes")
    for p in ("x", "bluesky", "mastodon", "threads", "linkedin")
]


def environment(root: Path) -> dict[str, str]:
    return common.environment(TZ="UTC", ASPDIGEST_PROJECT=str(root))


def lateness(root: Path) -> list[float]:
    from aspdigest.config import load_project
    from aspdigest.queue.rehearsal import rehearse

    project = load_project(root, environ={})
    late: list[float] = []
    for _ in range(REHEARSALS):
        result = rehearse(
            project,
            "asp23",
            dt.date(2024, 12, 2),
            SPEED,
            environ={"TZ": "UTC"},
            as_approved=True,  # every delivery of the day, as if approved: the scratch copy has no queue
        )
        late += result.lateness
    return late


def fill_store(root: Path) -> None:
    import sqlalchemy as sa

    from aspdigest.config import load_project
    from aspdigest.store import open_project_store
    from aspdigest.store.schema import deliveries

    project = load_project(root, environ={})
    now = dt.datetime.now(dt.UTC)
    with open_project_store(project) as store:
        store.set_queue("asp23", timezone="Europe/Amsterdam", planned_at=now)
        rows = []
        for i in range(DELIVERIES):
            channel, platform = CHANNELS[i % len(CHANNELS)]
            when = now + dt.timedelta(days=1, minutes=i)
            rows.append(
                {
                    "event": "asp23",
                    "date": dt.date(2030, 1, 1) + dt.timedelta(days=i // 11),
                    "channel": channel,
                    "platform": platform,
                    "send_at": when,
                    "schedule_at": when,
                    "status": "approved",
                    "attempts": 0,
                    "artifacts": {},
                    "approved": {},
                    "approved_by": "bench",
                    "approved_at": now,
                    "grace_seconds": 3600,
                    "missed": "hold",
                    "created_at": now,
                    "updated_at": now,
                }
            )
        with store.engine.begin() as c:
            c.execute(sa.insert(deliveries), rows)


def restart_seconds(root: Path) -> list[float]:
    times = []
    for _ in range(RESTARTS):
        started = time.perf_counter()
        proc = subprocess.Popen(
            [str(BIN / "aspdigest"), "run", "asp23"],
            cwd=root,
            env=environment(root),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stderr is not None
        for line in proc.stderr:
            if '"msg": "ready"' in line:
                times.append(time.perf_counter() - started)
                break
        else:
            raise SystemExit(f"aspdigest run exited without getting ready ({proc.wait()})")
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            rest = proc.communicate()[1]
            raise SystemExit(f"aspdigest run did not stop on SIGTERM:\n{rest[-3000:]}") from None
    return times


def main() -> None:
    root = scratch_project()
    try:
        shutil.copytree(REPO / "schedules", root / "schedules")
        run_cli("build", "asp23", cwd=root)
        late = lateness(root)
        row(
            "queue: rehearsal lateness of fired jobs, median",
            statistics.median(late) * 1000,
            "ms",
            len(late),
        )
        row(
            "queue: rehearsal lateness of fired jobs, worst",
            max(late) * 1000,
            "ms",
            f"worst of {len(late)}",
        )
        fill_store(root)
        times = restart_seconds(root)
        row(
            f"queue: restart with {DELIVERIES:,} approved deliveries",
            statistics.median(times),
            "s",
            len(times),
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
