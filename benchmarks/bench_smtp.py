"""Messages per second sending personalised digests, against Postfix's smtp-source.

Run: .venv/bin/python benchmarks/bench_smtp.py [--quick]  (or `make bench`)

Each run: a fresh SQLite state store with BENCH_MESSAGES (default 3,000; 300 with --quick)
synthetic subscribers, one claimed email delivery, and `send_digest` with no rate limit
over 1 and over 4 SMTP connections (4 without a rate limit share the list with a helper
process per extra core, deliver.emailprocs: their CPU is not in the CPU column, which
counts this process and its own children only). Every message is personalised (To, signed unsubscribe
token in the HTML, text and List-Unsubscribe, Message-ID) and every recipient's progress is
written to the store as it goes, exactly as a real send.

The reference (issue 18): Postfix's `smtp-source` sending as many messages of the same size
over 1 (`-s 1`) and 4 (`-s 4`) connections into the same `smtp-sink`, in the same run; the
goal is at least half its rate. Both tools come with Debian's `postfix` package (the MTA
itself is never started); without them the reference rows say so and only our figures are
printed. Without Postfix, an aiosmtpd server in a separate process is the sink.
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

from common import QUICK, cpu_seconds, rounds, row, scratch_project

MESSAGES = int(os.environ.get("BENCH_MESSAGES", "300" if QUICK else "3000"))
RUNS = rounds(3, 1)
SMTP_SOURCE = Path("/usr/sbin/smtp-source")
SMTP_SINK = Path("/usr/sbin/smtp-sink")
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


def send_rate(
    root: Path,
    run: int,
    *,
    messages: int = MESSAGES,
    connections: int = 1,
    port: int | None = None,
    cpu: list[float] | None = None,
) -> float:
    """Messages per second of one send of `messages` digests over `connections` connections,
    to the server on `port` (default: a fresh aiosmtpd sink); appends the CPU seconds to
    `cpu` when given."""
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

    sink: subprocess.Popen[str] | None = None
    if port is None:
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
            used, started = cpu_seconds(), time.perf_counter()
            report = send_digest(store, delivery.id, project, environ=environ)
            elapsed = time.perf_counter() - started
            if cpu is not None:
                cpu.append(cpu_seconds() - used)
    finally:
        out = sink.communicate("", timeout=60)[0] if sink is not None else ""
    received = int(out.strip() or 0) if sink is not None else messages
    if report.status != "sent" or report.counts["sent"] != messages or received != messages:
        raise SystemExit(
            f"{connections} connection(s), run {run}: {report.status}, "
            f"{dict(report.counts)}, server received {received}"
        )
    return messages / elapsed


def eml_size(root: Path) -> int:
    """Bytes of the digest each recipient gets (before personalisation)."""
    from aspdigest.artifacts import BuiltDay
    from aspdigest.config import load_project

    return (
        BuiltDay(load_project(root, environ={}), "asp23", dt.date(2024, 12, 2)).eml.stat().st_size
    )


def postfix_rate(port: int, sessions: int, size: int, cpu: list[float]) -> float:
    """smtp-source's messages per second: MESSAGES messages of `size` bytes, `sessions`
    connections in parallel, each connection reused for its share of the messages."""
    used, started = cpu_seconds(), time.perf_counter()
    subprocess.run(
        [
            str(SMTP_SOURCE),
            "-s",
            str(sessions),
            "-m",
            str(MESSAGES),
            "-l",
            str(size),
            "-f",
            "digest@example.org",
            "-t",
            "reader@example.org",
            f"127.0.0.1:{port}",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    elapsed = time.perf_counter() - started
    cpu.append(cpu_seconds() - used)
    return MESSAGES / elapsed


def main() -> None:
    root = scratch_project()
    postfix = SMTP_SOURCE.exists() and SMTP_SINK.exists()
    sink: subprocess.Popen[bytes] | None = None
    port: int | None = None
    try:
        if postfix:
            port = free_port()
            user = ["-u", "nobody"] if os.geteuid() == 0 else []
            sink = subprocess.Popen([str(SMTP_SINK), *user, f"127.0.0.1:{port}", "256"])
            for _ in range(100):
                with socket.socket() as probe:
                    if probe.connect_ex(("127.0.0.1", port)) == 0:
                        break
                time.sleep(0.05)
        else:
            row(
                "Postfix smtp-source / smtp-sink reference",
                0,
                "",
                "",
                "",
                None,
                "MISSING: install Debian's postfix package (apt-get install postfix)",
            )
        where = "Postfix's smtp-sink" if postfix else "a local aiosmtpd sink"
        # Warm-up: imports, the store's schema, the digest; none of it is per message.
        send_rate(root, 99, messages=20, port=port)
        size = 0
        for connections in (1, 4):
            ours_cpu: list[float] = []
            rates = [
                send_rate(root, run, connections=connections, port=port, cpu=ours_cpu)
                for run in range(RUNS)
            ]
            if not size:
                size = eml_size(root)
            ours = statistics.median(rates)
            print(
                f"runs ({connections} connection(s)): {', '.join(f'{r:.0f}' for r in rates)} "
                f"msgs/s ({dt.date.today()}, {os.cpu_count()} CPUs)",
                file=sys.stderr,
            )
            if not postfix or port is None:
                row(
                    f"SMTP, {connections} connection(s), {MESSAGES:,} personalised digests to "
                    f"{where}",
                    ours,
                    "msgs/s",
                    RUNS,
                    cpu=f"{statistics.median(ours_cpu) / MESSAGES * 1e6:,.0f} µs CPU/msg",
                )
                continue
            ref_cpu: list[float] = []
            reference = statistics.median(
                postfix_rate(port, connections, size, ref_cpu) for _ in range(RUNS)
            )
            row(
                f"  Postfix smtp-source -s {connections}, {MESSAGES:,} messages of {size:,} "
                f"bytes, same sink",
                reference,
                "msgs/s",
                RUNS,
                cpu=f"{statistics.median(ref_cpu) / MESSAGES * 1e6:,.0f} µs CPU/msg",
            )
            share = ours / reference
            row(
                f"SMTP, {connections} connection(s), {MESSAGES:,} personalised digests to {where}",
                ours,
                "msgs/s",
                RUNS,
                f"≥ 50% of smtp-source -s {connections}",
                share >= 0.5,
                f"{share:.0%} of Postfix; "
                f"{statistics.median(ours_cpu) / MESSAGES * 1e6:,.0f} µs CPU/msg",
            )
    finally:
        if sink is not None:
            sink.terminate()
            sink.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
