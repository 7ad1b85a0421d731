"""Shared pieces of the queue and runner tests: a built sample, a real SMTP sink, processes.

Plain functions, not fixtures, so each test module keeps its own fixtures visible. The
sample is built once per test session (a real `build`) and copied for each test.
"""

from __future__ import annotations

import atexit
import csv
import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from aspdigest.build import build
from aspdigest.config import Project, load_project

REPO = Path(__file__).resolve().parents[2]
KEY = "test-signing-key-0123456789"
DAY = dt.date(2024, 12, 2)
_TEMPLATE: list[Path] = []


def built_template() -> Path:
    """The ASP23 sample with its schedule, built once for the whole session."""
    if not _TEMPLATE:
        root = Path(tempfile.mkdtemp(prefix="aspdigest-queue-")) / "project"
        root.mkdir()
        for name in ("content", "schedules"):
            shutil.copytree(REPO / name, root / name)
        for name in ("aspdigest.toml", "subscribers.csv"):
            shutil.copy(REPO / name, root / name)
        build(load_project(root, environ={}), "asp23")
        atexit.register(shutil.rmtree, root.parent, True)
        _TEMPLATE.append(root)
    return _TEMPLATE[0]


def built_copy(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(built_template(), root, ignore=shutil.ignore_patterns(".aspdigest"))
    return root


def project(root: Path, **environ: str) -> Project:
    return load_project(root, environ=environ)


def write_subscribers(path: Path, n: int) -> list[str]:
    addresses = [f"reader{i:04d}@example.org" for i in range(n)]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["email", "name", "language"])
        for i, address in enumerate(addresses):
            writer.writerow([address, f"Reader {i}", "en"])
    return addresses


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sink:
    """Keeps every message it accepts; can run a callback (e.g. kill -9) on message n
    before its 250 reply goes out."""

    messages: list[tuple[list[str], bytes]] = field(default_factory=list)
    on_message: Callable[[int], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), envelope.content))
            n = len(self.messages)
        if self.on_message is not None:
            self.on_message(n)
        return "250 2.0.0 queued"

    def copies(self) -> Counter[str]:
        with self.lock:
            return Counter(r for rcpts, _ in self.messages for r in rcpts)

    def count(self) -> int:
        with self.lock:
            return len(self.messages)

    def subjects(self) -> list[str]:
        with self.lock:
            data = [d for _, d in self.messages]
        return [str(BytesParser().parsebytes(d)["Subject"]) for d in data]


@contextmanager
def smtp_sink() -> Iterator[tuple[Sink, int]]:
    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


def environment(port: int | None = None, **extra: str) -> dict[str, str]:
    """The environment for a runner process: no stray ASPDIGEST_*, fast sending."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASPDIGEST_")}
    env.update(
        {
            "TZ": "UTC",
            "LC_ALL": "C.UTF-8",
            "ASPDIGEST_UNSUBSCRIBE_KEY": KEY,
            "ASPDIGEST_EMAIL_RATE_PER_SECOND": "0",
            "ASPDIGEST_EMAIL_RETRY_BACKOFF": "0.01",
            "ASPDIGEST_DELIVERY_POLL_SECONDS": "0.2",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if port is not None:
        env["ASPDIGEST_SMTP_URL"] = f"smtp://127.0.0.1:{port}"
    env.update(extra)
    return env


def start_runner(root: Path, env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "aspdigest", "run", "asp23", "--project", str(root), *args],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
        )


def log_lines(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    return [
        json.loads(line)
        for line in log.read_text(encoding="utf-8").splitlines()
        if line.startswith("{")
    ]


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@contextmanager
def postgres_schema(prefix: str = "test") -> Iterator[str]:
    """A store URL on a fresh schema of the machine's PostgreSQL, dropped afterwards.

    PostgreSQL being unreachable fails the test: store tests never pass by skipping.
    """
    import uuid

    import pytest
    import sqlalchemy as sa

    admin = sa.create_engine(POSTGRES)
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with admin.begin() as c:
            c.execute(sa.text(f"CREATE SCHEMA {schema}"))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {POSTGRES} is needed for this test: {exc.orig}")
    try:
        yield f"{POSTGRES}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as c:
            c.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
