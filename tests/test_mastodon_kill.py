"""Kill -9 while the `mastodon` publisher posts a thread: never a duplicate, never a gap.

A publishing process (tests/support/mastodon_kill_worker.py, what the runner does for a claimed
thread delivery) posts ASP23 day 2's 10-post Mastodon thread to the local server of
tests/support/mastodon_server.py, which holds each status post 50-300 ms. The test SIGKILLs it at
random moments (after 1-3 more posts reach the server and 0-300 ms more, so sometimes with a
request in flight, or at any moment from start-up), starts it again, and repeats until it
exits 0; then the server must hold every post exactly once, in order, each replying to the
one before, with its alt text, and the store must say every post is `posted` under the ids
the server gave. It runs against each behaviour profile of the fake (4.3 and 4.5: a resend
can race past the Idempotency-Key check; 4.6: a replay answers 500): the full run on 4.3, a
shorter one on the others. Figures per run go to tests/artifacts/<test>/kill-test.json;
`-s` prints the summary line.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from aspdigest.config import load_project
from aspdigest.deliver import publication_for
from aspdigest.store import open_store
from support.delivery_helpers import built_copy, environment, wait_for
from support.mastodon_server import FakeMastodon, running_mastodon

DAY = dt.date(2024, 12, 3)  # ASP23 day 2: a 10-post thread with 3 cards
WORKER = Path(__file__).resolve().parent / "support" / "mastodon_kill_worker.py"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return built_copy(tmp_path)


# (profile, kills at least over all runs, runs at least (two at a time), seconds in which to
# kill; the runs then finish). Figures: kill-test.json
# The budget is a cap, not a target: runs stop as soon as the kills and runs are reached
# (about 40 s for 4.3 on an idle machine), and a loaded one gets the time it needs.
PLANS = [("4.3", 20, 4, 150.0), ("4.5", 4, 2, 60.0), ("4.6", 4, 2, 60.0)]


def _reached(server: FakeMastodon, proc: subprocess.Popen[bytes], posts: int) -> bool:
    return len(server.status_posts()) >= posts or proc.poll() is not None


def _kill_run(
    root: Path, tmp_path: Path, run: int, seed: int, stop_at: float, profile: str
) -> dict[str, Any]:
    """Publish one thread from a process killed at random moments until it finishes."""
    rng = random.Random(seed)
    url = f"sqlite:///{tmp_path}/kill-{run}.sqlite"
    log = tmp_path / f"kill-{run}.log"
    started = time.monotonic()
    kills = mid_request = spawns = 0
    with running_mastodon(profile=profile) as server:
        server.delay_status_posts(0.05, 0.3, rng)
        env = environment(
            ASPDIGEST_MASTODON_INSTANCE=server.url, ASPDIGEST_MASTODON_TOKEN=server.token
        )
        while True:
            spawns += 1
            with log.open("ab") as err:
                proc = subprocess.Popen(
                    [
                        sys.executable,
                        str(WORKER),
                        str(root),
                        url,
                        "asp23",
                        DAY.isoformat(),
                        "thread",
                    ],
                    env=env,
                    stdout=err,
                    stderr=err,
                )
            if time.monotonic() < stop_at and kills < 7:
                if rng.random() < 0.2:  # any moment: starting up, reading, uploading, posting
                    time.sleep(rng.uniform(0.3, 2.5))
                else:  # after 1-3 more posts reach the server, then 0-300 ms later
                    target = len(server.status_posts()) + rng.randint(1, 3)
                    wait_for(partial(_reached, server, proc, target), 60, "the kill point")
                    time.sleep(rng.uniform(0.0, 0.3))
                if proc.poll() is None:
                    busy = server.in_flight > 0
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(10)
                    kills += 1
                    mid_request += busy
                    continue
            assert proc.wait(60) == 0, log.read_text(encoding="utf-8")[-2000:]
            break
        wait_for(lambda: server.in_flight == 0, 5, "the server to finish")
        made = server.posts()
        media = dict(server.media)
        requests = len(server.status_posts())
        replays = server.replays
        deleted = len(server.deleted)
    project = load_project(root, environ={})
    with open_store(url) as store:
        d = store.ensure_delivery("asp23", DAY, "thread", "mastodon")
        pub = publication_for(project, d)
        ledger = store.social_posts(d.id)
    want = [p.text for p in pub.groups[0]]
    got = [s.text for s in made]
    counts = Counter(got)
    return {
        "run": run,
        "seed": seed,
        "kills": kills,
        "kills_mid_request": mid_request,
        "spawns": spawns,
        "posts": len(got),
        "expected": len(want),
        "duplicates": sum(n - 1 for n in counts.values() if n > 1),
        "gaps": sum(1 for t in want if t not in counts),
        "in_order": got == want,
        "replies_chained": [s.in_reply_to_id for s in made] == [None] + [s.id for s in made[:-1]],
        "alt_text_kept": [[media[m].description for m in s.media_ids] for s in made]
        == [[m.alt for m in p.media] for p in pub.groups[0]],
        "ledger_posted": sum(1 for r in ledger.values() if r.status == "posted"),
        "ledger_matches_server": [ledger[(0, i)].remote_id for i in range(len(ledger))]
        == [s.id for s in made],
        "status_requests": requests,
        "resends_recognised": replays,
        "copies_deleted": deleted,
        "unattached_media": sum(1 for m in media.values() if m.status_id is None),
        "seconds": round(time.monotonic() - started, 1),
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    ("profile", "min_kills", "min_runs", "budget"), PLANS, ids=[p[0] for p in PLANS]
)
def test_kill_9_while_posting_a_thread_never_duplicates_or_skips_a_post(
    root: Path,
    tmp_path: Path,
    artifacts_dir: Path,
    profile: str,
    min_kills: int,
    min_runs: int,
    budget: float,
) -> None:
    started = time.monotonic()
    stop_at = started + budget
    seed = 20241203
    results: list[dict[str, Any]] = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        while len(results) < min_runs or sum(r["kills"] for r in results) < min_kills:
            if time.monotonic() > stop_at:
                break
            batch = [
                pool.submit(
                    _kill_run,
                    root,
                    tmp_path,
                    len(results) + k,
                    seed + len(results) + k,
                    stop_at,
                    profile,
                )
                for k in range(2)
            ]
            results.extend(f.result() for f in batch)
    summary = {
        "profile": profile,
        "runs": len(results),
        "kills": sum(r["kills"] for r in results),
        "kills_mid_request": sum(r["kills_mid_request"] for r in results),
        "posts": sum(r["posts"] for r in results),
        "duplicates": sum(r["duplicates"] for r in results),
        "gaps": sum(r["gaps"] for r in results),
        "resends_recognised": sum(r["resends_recognised"] for r in results),
        "copies_deleted": sum(r["copies_deleted"] for r in results),
        "seconds": round(time.monotonic() - started, 1),
        "trials": results,
    }
    (artifacts_dir / "kill-test.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "trials"}))
    assert summary["kills"] >= min_kills, summary
    assert summary["duplicates"] == 0 and summary["gaps"] == 0
    for r in results:
        assert r["posts"] == r["expected"] == r["ledger_posted"] == 10, r
        assert r["in_order"] and r["replies_chained"] and r["alt_text_kept"], r
        assert r["ledger_matches_server"], r
