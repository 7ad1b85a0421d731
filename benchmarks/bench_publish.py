"""Posting ASP23's 3 December thread through the API publishers, to the local test servers.

Run: .venv/bin/python benchmarks/bench_publish.py [--quick]  (or `make bench`; needs
`make test`'s node_modules for the PDS)

Times `publish()` of the Bluesky thread (16 posts) to the reference PDS on 127.0.0.1 and of
the Mastodon thread (10 posts) to the local Mastodon API server of the tests, each a fresh
delivery in a SQLite store: login, the per-post ledger writes before and after each request,
and the requests themselves. Reported per post (median of 5 threads), and the ledger's own
share: the same thread's store writes alone. The servers are local, so this is aspdigest's
and the SDKs' cost; a real server adds its network round trips. The Mastodon thread carries
three cards (posts 3, 5 and 9), and the local server answers "still processing" once for
each, as Mastodon does: the publisher looks again after 25 ms, then 50 ms. Issue 18: those
waits, one card after the other, were most of the thread's time (82 ms per post with 0.1 s,
0.2 s pauses; 36 ms with 25 ms, 50 ms); the cards are now uploaded in the background while
the posts before them go out (deliver/mastodon_ahead.py), 13-15 ms per post on a loaded
2-core machine where a Bluesky post took 13-40 ms.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, rounds, row, run_cli, scratch_project

sys.path.insert(0, str(REPO / "tests"))

from aspdigest.config import load_project
from aspdigest.deliver import Ledger, make_publisher, publication_for
from aspdigest.store import open_store
from support.mastodon_server import running_mastodon
from support.pds_server import running_pds

RUNS = rounds(5, 1)
DAY = dt.date(2024, 12, 3)


def per_post(root: Path, env: dict[str, str], platform: str) -> tuple[float, float, int]:
    """Median seconds per post over RUNS threads, and the ledger's seconds per post."""
    project = load_project(root, environ=env)
    publisher = make_publisher(platform, project, env)
    times, ledger_times, posts = [], [], 0
    with open_store(f"sqlite:///{root / 'bench.sqlite'}") as store:
        built = publication_for(project, store.ensure_delivery("asp23", DAY, "thread", platform))
        for run in range(RUNS):
            # Each run a new delivery (its own ledger) of the same posts.
            d = store.ensure_delivery(
                "asp23", DAY + dt.timedelta(days=100 + run), "thread", platform
            )
            pub = dataclasses.replace(built, delivery_id=d.id)
            posts = sum(len(g) for g in pub.groups)
            started = time.perf_counter()
            publisher.publish(pub, Ledger(store, d.id))
            times.append((time.perf_counter() - started) / posts)
            writes = store.ensure_delivery(
                "asp23", DAY + dt.timedelta(days=200 + run), "thread", platform
            )
            started = time.perf_counter()
            for i in range(posts):
                store.post_sending(writes.id, 0, i, f"k{i}")
                store.post_posted(writes.id, 0, i, remote_id=str(i))
            ledger_times.append((time.perf_counter() - started) / posts)
    return statistics.median(times), statistics.median(ledger_times), posts


def main() -> None:
    root = scratch_project()
    run_cli("build", "asp23", "--day", str(DAY), cwd=root)
    with tempfile.TemporaryDirectory() as folder, running_pds(Path(folder)) as pds:
        account = pds.create_account("bench")
        env = {
            "ASPDIGEST_BLUESKY_SERVICE": pds.url,
            "ASPDIGEST_BLUESKY_HANDLE": account.handle,
            "ASPDIGEST_BLUESKY_PASSWORD": pds.app_password(account),
        }
        post, ledger, n = per_post(root, env, "bluesky")
        bluesky = post
        row(f"Bluesky thread to the local PDS, per post ({n} posts)", post * 1000, "ms", RUNS)
        row("  of which the store's per-post ledger (SQLite)", ledger * 1000, "ms", RUNS)
        row("test PDS start-up", pds.started_in, "s", 1)
    with running_mastodon() as masto:
        env = {"ASPDIGEST_MASTODON_INSTANCE": masto.url, "ASPDIGEST_MASTODON_TOKEN": masto.token}
        post, ledger, n = per_post(root, env, "mastodon")
        row(
            f"Mastodon thread to the local test server, per post ({n} posts)",
            post * 1000,
            "ms",
            RUNS,
            "within 2× of a Bluesky post",
            post <= 2 * bluesky,
            f"{post / bluesky:.1f}× Bluesky's",
        )


if __name__ == "__main__":
    main()
