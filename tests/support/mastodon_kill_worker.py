"""One publishing process for test_mastodon's kill test: post a day's Mastodon thread.

Run as `python tests/support/mastodon_kill_worker.py ROOT STORE_URL EVENT DATE CHANNEL`, with
ASPDIGEST_MASTODON_INSTANCE and ASPDIGEST_MASTODON_TOKEN in the environment. It does what
the runner does for a claimed thread delivery: opens the state store file, reads the
approved posts and calls `MastodonPublisher.publish` with the delivery's ledger, so a
process killed half way and started again resumes where the ledger says. Exit 0 when the
whole thread is up.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

from aspdigest.config import load_project
from aspdigest.deliver import Ledger, publication_for
from aspdigest.deliver.mastodon import MastodonPublisher
from aspdigest.store import open_store


def main(argv: list[str]) -> int:
    root, url, event, day, channel = argv
    project = load_project(Path(root), environ=os.environ)
    store = open_store(url)
    try:
        d = store.ensure_delivery(event, dt.date.fromisoformat(day), channel, "mastodon")
        MastodonPublisher(project, os.environ).publish(
            publication_for(project, d), Ledger(store, d.id)
        )
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
