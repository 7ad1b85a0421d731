"""Messages per second sending 5,000 personalised digests to a local aiosmtpd server.

Run: .venv/bin/python benchmarks/bench_smtp.py  (or `make bench` for every benchmark)

Each run: a fresh SQLite state store with 5,000 synthetic subscribers, one claimed email
delivery, and `send_digest` with no rate limit over one SMTP connection to an aiosmtpd
server in a separate process (so it does not share our interpreter). Every message is
personalised (To, signed unsubscribe token in the HTML, text and List-Unsubscribe,
Message-ID) and every recipient's progress is written to the store as it goes, exactly
as a real send. Prints the median of 3 runs.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import row, scratch_project

MESSAGES = int(os.environ.get("BENCH_MESSAGES", "5000"))
RUNS = 3
SINK = """
import asyncio, sys
from aiosmtpd.controller import Controller

class Count:
    count = 0
    async def handle_DATA(self, server, session, envelope):
        Count.count += 1
        return "250 OK"

controller = Controller(Count(), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
print("ready", flush=True)
sys.stdin.read()
controller.stop()
print(Count.count, flush=True)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def send_rate(root: Path, run: int, *, messages: int = MESSAGES, connections: int = 1) -> float:
    """Messages per second of one send of `messages` digests over `connections` connections."""
    from aspdigest.artifacts import BuiltDay
    from aspdigest.config import load_project
    from aspdigest.content import load_content
    from aspdigest.days import plan_days
    from aspdigest.deliver.email import send_digest
    from aspdigest.render import RenderContext
    from aspdigest.render.email import digest
    from aspdigest.render.templates import make_environment
    from aspdigest.store import open_store

    project = load_project(
        root,
        environ={
            "ASPDIGEST_EMAIL_RATE_PER_SECOND": "0",
            "ASPDIGEST_EMAIL_CONNECTIONS": str(connections),
        },
    )
    content = load_content(project, "asp23")
    day = plan_days(content)[0]
    path = BuiltDay(project, "asp23", day.date).eml
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(digest(day, RenderContext(project, content, make_environment(project))).eml)

    port = free_port()
    sink = subprocess.Popen(
        [sys.executable, "-c", SINK, str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
    environ = {
        "ASPDIGEST_SMTP_URL": f"smtp://127.0.0.1:{port}",
        "ASPDIGEST_UNSUBSCRIBE_KEY": "benchmark-signing-key-0123456789",
    }
    try:
        with open_store(f"sqlite:///{root / f'state-{connections}-{run}.sqlite'}") as store:
            store.import_subscribers(
                (f"reader{i:05d}@example.org", f"Reader {i}", "en") for i in range(messages)
            )
            delivery = store.ensure_delivery("asp23", day.date, "email")
            store.approve(delivery.id, {}, "benchmark")
            store.claim(delivery.id)
            started = time.perf_counter()
            report = send_digest(store, delivery.id, project, environ=environ)
            elapsed = time.perf_counter() - started
    finally:
        out, _ = sink.communicate("", timeout=60)
    received = int(out.strip() or 0)
    if report.status != "sent" or report.counts["sent"] != messages or received != messages:
        raise SystemExit(
            f"{connections} connection(s), run {run}: {report.status}, "
            f"{dict(report.counts)}, server received {received}"
        )
    return messages / elapsed


def main() -> None:
    root = scratch_project()
    try:
        rates = [send_rate(root, run) for run in range(RUNS)]
        print(
            f"runs: {', '.join(f'{r:.0f}' for r in rates)} msgs/s "
            f"({dt.date.today()}, {os.cpu_count()} CPUs)",
            file=sys.stderr,
        )
        row(
            f"SMTP send, {MESSAGES:,} personalised messages to local aiosmtpd",
            statistics.median(rates),
            "msgs/s",
            RUNS,
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
