"""Three `aspdigest run` processes on one PostgreSQL store: one active, two standbys.

Each trial gets a fresh PostgreSQL schema, a day's digest to 300 subscribers and a real
aiosmtpd sink on 127.0.0.1. The active runner is killed with SIGKILL at random points of
the send (inside the server's DATA handler, or from the test once the sink holds a random
number of messages), a new standby is started in its place, and the test measures the
takeover: from the kill to the new active runner's `ready` line. At the end every
subscriber has exactly one copy, or none/one with the recipient and delivery `unknown`.
PostgreSQL must be reachable: the tests fail, never skip, without it.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import random
import signal
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from aspdigest.config import Project
from aspdigest.queue import actions as queue
from aspdigest.queue import plan
from aspdigest.queue.approval import approve
from aspdigest.store import open_project_store, open_store
from aspdigest.store.lock import RunnerLock
from aspdigest.subscribers import import_csv
from support.delivery_helpers import (
    DAY,
    Sink,
    built_copy,
    environment,
    log_lines,
    postgres_schema,
    project,
    smtp_sink,
    start_runner,
    wait_for,
    write_subscribers,
)

SUBSCRIBERS = 300
TRIALS = 6
KILLS = 3  # per trial
RATE = "200"  # messages per second, so that a send lasts long enough to be killed in


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return built_copy(tmp_path)


@pytest.fixture
def fresh_url() -> Iterator[Callable[[], str]]:
    """Makes fresh PostgreSQL schemas (returned as store URLs), dropped after the test."""
    with ExitStack() as stack:
        yield lambda: stack.enter_context(postgres_schema("failover"))


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:  # only the processes this test started, by their own handle
        if p.poll() is None:
            p.kill()
            p.wait()


def _queue_digest(proj: Project, root: Path) -> int:
    with open_project_store(proj) as store:
        import_csv(store, root / "many.csv")
        plan.plan(proj, "asp23", store)
        approve(proj, store, "asp23", DAY, channel="digest", by="ana")
        digest = next(
            d for d in store.deliveries("asp23") if d.date == DAY and d.channel == "digest"
        )
        queue.send_now(proj, store, digest.id, by="ana")
        return digest.id


def _at(line: dict[str, Any]) -> float:
    return dt.datetime.fromisoformat(str(line["ts"]).replace("Z", "+00:00")).timestamp()


def _active(
    runners: list[tuple[subprocess.Popen[bytes], Path]],
) -> tuple[subprocess.Popen[bytes], Path] | None:
    for proc, log in runners:
        if proc.poll() is None and any(line["msg"] == "ready" for line in log_lines(log)):
            return proc, log
    return None


def _settled(proj: Project, delivery_id: int) -> bool:
    with open_project_store(proj) as store:
        d = store.delivery(delivery_id)
    return d is not None and d.status in ("sent", "unknown", "failed")


def _kill_active(
    runners: list[tuple[subprocess.Popen[bytes], Path]],
    sink: Sink,
    proj: Project,
    delivery_id: int,
    rng: random.Random,
    n: int,
    span: int,
) -> float:
    """Kill -9 the active runner a random number of messages from now; returns the seconds
    until another one logged `ready`. The killed one is taken out of `runners`."""
    wait_for(lambda: _active(runners) is not None, 30, "an active runner")
    active = _active(runners)
    assert active is not None
    victim = active[0]
    target = sink.count() + rng.randint(1, max(1, span))
    killed_at: list[float] = []

    def on_message(count: int) -> None:
        if count == target and not killed_at:
            os.kill(victim.pid, signal.SIGKILL)
            killed_at.append(time.time())

    if n % 2 == 0:  # inside DATA, before the server's 250 goes out
        sink.on_message = on_message
    wait_for(lambda: sink.count() >= target or _settled(proj, delivery_id), 60, "the kill point")
    if not killed_at:  # racing the client, from here
        victim.kill()
        killed_at.append(time.time())
    sink.on_message = None
    victim.wait(30)
    runners[:] = [(p, log) for p, log in runners if p is not victim]

    def ready_lines() -> list[float]:
        return [
            _at(line)
            for p, log in runners
            if p.poll() is None
            for line in log_lines(log)
            if line["msg"] == "ready" and _at(line) >= killed_at[0] - 0.01
        ]

    wait_for(ready_lines, 20, "a standby to take over")
    return max(0.0, min(ready_lines()) - killed_at[0])


def _trial(
    root: Path,
    tmp_path: Path,
    url: str,
    run: int,
    rng: random.Random,
    procs: list[subprocess.Popen[bytes]],
) -> dict[str, Any]:
    proj = project(root, ASPDIGEST_STATE_URL=url)
    delivery_id = _queue_digest(proj, root)
    takeovers: list[float] = []
    with smtp_sink() as (sink, port):
        env = environment(port, ASPDIGEST_STATE_URL=url, ASPDIGEST_EMAIL_RATE_PER_SECOND=RATE)
        runners: list[tuple[subprocess.Popen[bytes], Path]] = []
        numbers = itertools.count()

        def spawn() -> None:
            log = tmp_path / f"run{run}-{next(numbers)}.log"
            proc = start_runner(root, env, log)
            procs.append(proc)
            runners.append((proc, log))

        for _ in range(3):
            spawn()
        for kill in range(KILLS):
            takeovers.append(
                _kill_active(
                    runners,
                    sink,
                    proj,
                    delivery_id,
                    rng,
                    run + kill,
                    SUBSCRIBERS // (KILLS - kill + 1),
                )
            )
            spawn()  # keep three processes: the killed one's place is taken by a new standby
        wait_for(lambda: _settled(proj, delivery_id), 90, "the digest to settle")
        # A process signalled before it is up would die of the default SIGTERM action.
        wait_for(lambda: all(log_lines(log) for _, log in runners), 30, "every runner to be up")
        for proc, _ in runners:
            proc.send_signal(signal.SIGTERM)
        for proc, _ in runners:
            assert proc.wait(30) == 0
        copies = sink.copies()
    with open_project_store(proj) as store:
        final = store.delivery(delivery_id)
        recipients = {r.address: r.status for r in store.recipients(delivery_id)}
    assert final is not None
    duplicates = sum(n - 1 for n in copies.values() if n > 1)
    losses = sum(
        1
        for a, s in recipients.items()
        if copies[a] == 0 and not (final.status == "unknown" and s == "unknown")
    )
    sent_not_received = sum(1 for a, s in recipients.items() if s == "sent" and copies[a] != 1)
    return {
        "run": run,
        "status": final.status,
        "recipients": len(recipients),
        "received": sum(copies.values()),
        "unknown": sum(1 for s in recipients.values() if s == "unknown"),
        "duplicates": duplicates,
        "losses": losses,
        "sent_not_received": sent_not_received,
        "takeover_s": [round(t, 3) for t in takeovers],
    }


@pytest.mark.slow
def test_kill_9_the_active_runner_and_a_standby_takes_over(
    root: Path,
    tmp_path: Path,
    fresh_url: Callable[[], str],
    artifacts_dir: Path,
    procs: list[subprocess.Popen[bytes]],
) -> None:
    write_subscribers(root / "many.csv", SUBSCRIBERS)
    rng = random.Random(20261126)
    started = time.monotonic()
    results = [_trial(root, tmp_path, fresh_url(), run, rng, procs) for run in range(TRIALS)]
    takeovers = [t for r in results for t in r["takeover_s"]]
    summary = {
        "trials": TRIALS,
        "kills": len(takeovers),
        "takeover_median_s": round(statistics.median(takeovers), 3),
        "takeover_worst_s": round(max(takeovers), 3),
        "duplicates": sum(r["duplicates"] for r in results),
        "losses": sum(r["losses"] for r in results),
        "sent_not_received": sum(r["sent_not_received"] for r in results),
        "recipients_unknown": sum(r["unknown"] for r in results),
        "seconds": round(time.monotonic() - started, 1),
        "runs": results,
    }
    (artifacts_dir / "failover.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}))
    assert all(r["recipients"] == SUBSCRIBERS for r in results)
    assert all(r["status"] in ("sent", "unknown") for r in results)
    assert summary["duplicates"] == 0
    assert summary["losses"] == 0
    assert summary["sent_not_received"] == 0
    assert max(takeovers) < 5.0


def test_losing_the_lock_connection_hands_over_to_the_standby(
    root: Path, tmp_path: Path, fresh_url: Callable[[], str], procs: list[subprocess.Popen[bytes]]
) -> None:
    url = fresh_url()
    proj = project(root, ASPDIGEST_STATE_URL=url)
    with open_project_store(proj) as store:
        plan.plan(proj, "asp23", store)
    env = environment(None, ASPDIGEST_STATE_URL=url)
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    procs.append(first := start_runner(root, env, first_log))
    wait_for(
        lambda: any(line["msg"] == "ready" for line in log_lines(first_log)),
        30,
        "the active runner",
    )
    procs.append(second := start_runner(root, env, second_log))
    wait_for(
        lambda: any(line["msg"] == "standby" for line in log_lines(second_log)), 30, "the standby"
    )
    # End the active runner's lock session from the server side, as a network cut would.
    with open_store(url) as store:
        key = RunnerLock(store, "store").key & 0xFFFFFFFFFFFFFFFF
        with store.engine.begin() as c:
            ended = (
                c.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                        "AND classid = :hi AND objid = :lo AND granted"
                    ),
                    {"hi": key >> 32, "lo": key & 0xFFFFFFFF},
                )
                .scalars()
                .all()
            )
    assert ended == [True]
    wait_for(
        lambda: any(line["msg"] == "lost the runner lock" for line in log_lines(first_log)),
        20,
        "the active runner to notice",
    )
    wait_for(
        lambda: any(line["msg"] == "ready" for line in log_lines(second_log)),
        20,
        "the standby to take over",
    )
    # The first one went back to waiting; it does not serve the store any more.
    wait_for(lambda: log_lines(first_log)[-1]["msg"] == "standby", 20, "the first to stand by")
    assert first.poll() is None
    for proc in (second, first):
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
