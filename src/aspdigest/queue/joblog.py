"""The runner's output: one JSON object per line on stderr, for people and log collectors.

Part of the schedule/outbox → deliver step run by `aspdigest run` (`queue/runner.py`) and the
rehearsal (`queue/rehearsal.py`): `Log(stream)` is called with a message and fields and
writes them with a UTC timestamp (plus whatever `extra()` adds, such as the rehearsal's
simulated time); `ToLog` routes APScheduler's own warnings into the same stream. Keeps every
line in `lines` too, for tests and the rehearsal's summary.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import threading
from collections.abc import Callable, Mapping
from typing import IO, Any


class Log:
    """One JSON object per line; `extra()` adds fields (the rehearsal's simulated time)."""

    def __init__(
        self, stream: IO[str] | None = None, extra: Callable[[], Mapping[str, Any]] | None = None
    ) -> None:
        self.stream = stream or sys.stderr
        self.extra = extra
        self.lock = threading.Lock()
        self.lines: list[dict[str, Any]] = []

    def __call__(self, msg: str, **fields: Any) -> None:
        now = dt.datetime.now(dt.UTC)
        line = {"ts": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"), "msg": msg}
        if self.extra is not None:
            line.update(self.extra())
        line.update({k: v for k, v in fields.items() if v is not None})
        text = json.dumps(line, ensure_ascii=False, default=str)
        with self.lock:
            self.lines.append(line)
            self.stream.write(text + "\n")
            self.stream.flush()


class ToLog(logging.Handler):
    """APScheduler's own warnings (missed jobs, full executors) as JSON lines too."""

    def __init__(self, log: Log) -> None:
        super().__init__(logging.WARNING)
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        self.log("apscheduler", level=record.levelname.lower(), text=record.getMessage())
