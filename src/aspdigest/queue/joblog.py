"""The runner's output: stdlib logging, written as one JSON object per line.

Part of the schedule/outbox → deliver step run by `aspdigest run` (`queue/runner.py`), `schedule
send-now` (`queue/serve.py`) and the rehearsal (`queue/rehearsal.py`). The library only logs:
`note(msg, **fields)` sends a record to the `aspdigest.run` logger with its fields attached.
Where the lines go is the caller's choice: the CLI attaches `json_handler(sys.stderr)` to
`aspdigest.run` and to APScheduler's logger (`log_to(stream)`), so each line is
`{"ts": …, "msg": …, <fields>}` as a log collector or a script reads it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import IO, Any

LOGGER = "aspdigest.run"
log = logging.getLogger(LOGGER)


def note(msg: str, **fields: Any) -> None:
    """One line of the run log; fields that are None are left out."""
    log.info(msg, extra={"fields": {k: v for k, v in fields.items() if v is not None}})


class JsonFormatter(logging.Formatter):
    """`{"ts", "msg", **fields}`; a record from another library (APScheduler's warnings)
    becomes `{"ts", "msg": <its package>, "level", "text"}`."""

    def format(self, record: logging.LogRecord) -> str:
        at = dt.datetime.fromtimestamp(record.created, dt.UTC)
        line: dict[str, Any] = {"ts": at.isoformat(timespec="milliseconds").replace("+00:00", "Z")}
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            line["msg"] = record.getMessage()
            line.update(fields)
        else:
            line["msg"] = record.name.split(".")[0]
            line["level"] = record.levelname.lower()
            line["text"] = record.getMessage()
        return json.dumps(line, ensure_ascii=False, default=str)


def json_handler(stream: IO[str]) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    return handler


@contextmanager
def log_to(stream: IO[str]) -> Iterator[None]:
    """Write the run log (and APScheduler's warnings) to `stream` as JSON lines meanwhile."""
    ours, aps = logging.getLogger(LOGGER), logging.getLogger("apscheduler")
    saved = [(lg, lg.level, lg.propagate) for lg in (ours, aps)]
    handler = json_handler(stream)
    ours.setLevel(logging.INFO)
    aps.setLevel(logging.WARNING)
    for lg in (ours, aps):
        lg.addHandler(handler)
        lg.propagate = False
    try:
        yield
    finally:
        for lg, level, propagate in saved:
            lg.removeHandler(handler)
            lg.setLevel(level)
            lg.propagate = propagate


class Context(logging.Filter):
    """Adds fields to every line of the run log meanwhile (the rehearsal's simulated time)."""

    def __init__(self, extra: Callable[[], Mapping[str, Any]]) -> None:
        super().__init__()
        self.extra = extra

    def filter(self, record: logging.LogRecord) -> bool:
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            record.fields = {**self.extra(), **fields}
        return True


@contextmanager
def context(extra: Callable[[], Mapping[str, Any]]) -> Iterator[None]:
    added = Context(extra)
    log.addFilter(added)
    try:
        yield
    finally:
        log.removeFilter(added)
