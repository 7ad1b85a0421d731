"""A Bluesky publisher killed at random moments posts every post exactly once, in order.

The interruption test of the `bluesky` publisher, against the real PDS (support/pds_server.py) behind
a `FaultProxy` that holds each createRecord a random while. A process opens the state store
and publishes ASP23's thread of 3 December; the test SIGKILLs it when a post
arrives at the proxy (still to be carried out) or just after one is answered, starts it
again, and so on until a process finishes. Then the PDS must hold every post once, in
order, each replying to the one before under the right root, and the store must have every
post `posted`. Figures per run go to tests/artifacts/<test>/kill-test.json; `pytest -s`
prints a summary line. KILL_TEST_SEED replays a run's choices (not its timing).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from aspdigest.config import load_project
from aspdigest.deliver import publication_for
from aspdigest.store import open_store
from conftest import FIXED_NOW
from support.delivery_helpers import built_template
from support.pds_server import FaultProxy, Pds, check_thread, fault_proxy

DAY3 = FIXED_NOW.date().replace(month=12, day=3)


@pytest.fixture(scope="module")
def root() -> Path:
    """The ASP23 sample, built once (thread.bluesky.json and the cards)."""
    return built_template()


# The killed processes: each life is a fresh process that opens the store, logs in and
# publishes. They are forked from this small parent, which has imported aspdigest and the
# atproto SDK once (2-3 s) and does nothing else (no store, no network, one thread), so a
# restart costs a fork instead of a new interpreter. The test SIGKILLs the child itself.
ZYGOTE = r"""
import json, os, sys, traceback
from pathlib import Path
from aspdigest.config import load_project
from aspdigest.deliver import Ledger, publication_for
from aspdigest.deliver.bluesky import BlueskyApi, BlueskyPublisher
from aspdigest.store import open_store

def publish(job):
    log = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    code = 1
    try:
        os.environ.update(job["env"])
        project = load_project(Path(job["root"]), environ=os.environ)
        store = open_store(job["store"])
        delivery = store.delivery(job["delivery"])
        receipt = BlueskyPublisher(project, os.environ).publish(
            publication_for(project, delivery), Ledger(store, delivery.id))
        print(len(receipt["posts"]), "posts")
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

print("ready", flush=True)
for line in sys.stdin:
    pid = os.fork()
    if pid == 0:
        publish(json.loads(line))
    print("started", pid, flush=True)
    print("ended", pid, os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
"""
KILLS_PER_RUN = 8  # then the run is let through to the end


class Lives:
    """The parent that forks publishing processes, and what it says about them."""

    def __init__(self) -> None:
        self.parent = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._line(60.0) == ["ready"], "the forking parent did not start"

    def _line(self, timeout: float) -> list[str]:
        assert self.parent.stdout is not None
        ready, _, _ = select.select([self.parent.stdout], [], [], timeout)
        assert ready, "the forking parent stopped answering"
        return self.parent.stdout.readline().split()

    def start(self, job: dict[str, Any]) -> int:
        assert self.parent.stdin is not None
        self.parent.stdin.write(json.dumps(job) + "\n")
        self.parent.stdin.flush()
        started = self._line(10.0)
        assert started[0] == "started", started
        return int(started[1])

    def ended(self, timeout: float = 0.0) -> int | None:
        """The exit code of the running life, if it ended within `timeout` seconds."""
        assert self.parent.stdout is not None
        if not select.select([self.parent.stdout], [], [], timeout)[0]:
            return None
        ended = self._line(1.0)
        assert ended[0] == "ended", ended
        return int(ended[2])

    def close(self) -> None:
        assert self.parent.stdin is not None
        self.parent.stdin.close()
        self.parent.wait(timeout=10)


def kill_run(
    pds: Pds,
    proxy: FaultProxy,
    lives: Lives,
    root: Path,
    tmp: Path,
    rng: random.Random,
    number: int,
) -> dict[str, Any]:
    """Publish the thread of Dec 3 in a process killed again and again."""
    who, password = pds.new_account(f"kill{number}-")
    store_url = f"sqlite:///{tmp}/kill-{number}.sqlite"
    store = open_store(store_url)
    delivery = store.ensure_delivery("asp23", DAY3, "thread", "bluesky")
    job = {
        "root": str(root),
        "store": store_url,
        "delivery": delivery.id,
        "env": {
            "ASPDIGEST_BLUESKY_SERVICE": proxy.url,
            "ASPDIGEST_BLUESKY_HANDLE": who.handle,
            "ASPDIGEST_BLUESKY_PASSWORD": password,
        },
    }
    started, first_call = time.monotonic(), len(proxy.calls)
    kills = in_flight = lives_ = 0
    while True:
        log = tmp / f"life-{number}-{lives_}.log"
        lives_ += 1
        arrived, answered = len(proxy.calls), proxy.answered()
        pid = lives.start({**job, "log": str(log)})
        deadline = time.monotonic() + 60
        code = None
        if kills < KILLS_PER_RUN:
            # Kill as a post arrives (it is still carried out: the proxy holds it a while)
            # or just after one was answered; after 0-2 earlier posts of this process.
            mid_request, after = rng.random() < 0.5, rng.randint(0, 2)
            while (code := lives.ended()) is None and time.monotonic() < deadline:
                if mid_request and len(proxy.calls) > arrived + after:
                    break
                if not mid_request and proxy.answered() > answered + after:
                    time.sleep(rng.uniform(0, 0.05))
                    break
                time.sleep(0.003)
            if code is None:
                busy = proxy.in_flight() > 0
                # The process may finish between the check above and the kill (a short thread):
                # then it is simply done, and its own exit code counts.
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                code = lives.ended(10.0)
                if code == -signal.SIGKILL:
                    kills += 1
                    in_flight += busy
                    continue
        if code is None:
            code = lives.ended(max(1.0, deadline - time.monotonic()))
        assert code == 0, f"run {number}: the publisher failed ({code}):\n{log.read_text()}"
        break
    project = load_project(root, environ={})
    posts = publication_for(project, delivery).groups[0]
    records = pds.records(who.did)
    texts = [r["value"]["text"] for r in records]
    expected = [p.api_text or p.text for p in posts]  # what the API takes (links shortened)
    stored = store.social_posts(delivery.id)
    store.close()
    calls = proxy.calls[first_call:]
    try:  # the figures are written before anything is asserted
        check_thread(
            pds, who, posts, records, root / "out" / "asp23" / DAY3.isoformat(), created=None
        )
        assert [(s.status, s.remote_id) for _, s in sorted(stored.items())] == [
            ("posted", r["uri"]) for r in records
        ], "the store does not match the PDS"
        problem = None
    except AssertionError as exc:
        problem = str(exc)[:3000]
    return {
        "run": number,
        "account": who.handle,
        "kills": kills,
        "kills_with_a_post_in_flight": in_flight,
        "processes": lives_,
        "posts_expected": len(expected),
        "posts_on_pds": len(records),
        "duplicates": len(texts) - len(set(texts)),
        "gaps": len(set(expected) - set(texts)),
        "in_order": texts == expected,
        "store_posted": sum(1 for s in stored.values() if s.status == "posted"),
        "create_record_calls": len(calls),
        "resent_under_the_same_key": len(calls) - len({c.rkey for c in calls}),
        "seconds": round(time.monotonic() - started, 2),
        "problem": problem,
    }


def test_killed_publisher_posts_every_post_exactly_once(
    pds: Pds, root: Path, tmp_path: Path, artifacts_dir: Path
) -> None:
    seed = int(os.environ.get("KILL_TEST_SEED") or random.SystemRandom().randrange(2**32))
    rng = random.Random(seed)
    runs: list[dict[str, Any]] = []
    started = time.monotonic()
    lives = Lives()
    try:
        with fault_proxy(pds.url) as proxy:
            # Most posts are held 50-300 ms; one in four long enough (0.5-1.2 s) that the
            # next process may look for it before it is made, and send it again.
            held = random.Random(seed + 1)
            proxy.delay = lambda: (
                held.uniform(0.5, 1.2) if held.random() < 0.25 else held.uniform(0.05, 0.3)
            )
            while len(runs) < 3 or sum(r["kills"] for r in runs) < 20:
                assert len(runs) < 6, f"too few kills landed: {runs}"
                runs.append(kill_run(pds, proxy, lives, root, tmp_path, rng, len(runs) + 1))
    finally:
        lives.close()
        totals = {
            k: sum(r[k] for r in runs)
            for k in (
                "kills",
                "kills_with_a_post_in_flight",
                "processes",
                "posts_expected",
                "posts_on_pds",
                "duplicates",
                "gaps",
                "store_posted",
                "resent_under_the_same_key",
            )
        }
        report = {
            "seed": seed,
            "pds_start_seconds": round(pds.started_in, 2),
            "seconds": round(time.monotonic() - started, 1),
            "totals": totals,
            "runs": runs,
        }
        (artifacts_dir / "kill-test.json").write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"\nkill test: {len(runs)} runs, {totals['kills']} kills "
        f"({totals['kills_with_a_post_in_flight']} with a post in flight), "
        f"{totals['posts_on_pds']}/{totals['posts_expected']} posts, "
        f"{totals['duplicates']} duplicates, {totals['gaps']} gaps, "
        f"{totals['resent_under_the_same_key']} resent under their key, "
        f"{report['seconds']} s, seed {seed} (KILL_TEST_SEED)"
    )
    assert [r["problem"] for r in runs] == [None] * len(runs)
    assert totals["kills"] >= 20
    assert totals["duplicates"] == 0 and totals["gaps"] == 0
    assert totals["posts_on_pds"] == totals["posts_expected"] == totals["store_posted"]
    # every run publishes the whole thread of Dec 3 (10 posts within the thread budget)
    built = json.loads((root / "out/asp23" / DAY3.isoformat() / "thread.bluesky.json").read_text())
    assert {r["posts_expected"] for r in runs} == {len(built["posts"])}
