"""Helper processes for a digest sent over several connections without a rate limit.

Deliver stage, beside `deliver.email`. One Python process cannot go faster than one core,
and building, signing and recording each message takes most of a core at a couple of
thousand messages a second; so when `email.connections` > 1, `email.rate_per_second` is
0 and the list is long, `send_digest` starts one helper process per other core (`start`)
and hands out the list in spans of recipient ids (`spans`), to its own workers and, on
request, to the helpers, so a helper that is slow to start simply takes fewer. A helper is
a fresh Python running `_helper`; it stays, warm, for the next send of the same parent
(a runner sends digest after digest, and a start is half a second of imports).

Exactly once holds as in one process: every recipient is claimed in the store, atomically,
right before the final dot of its message, whichever process sends it. The helper and the
parent talk in lines. On the helper's standard input: `spec …` (what to send, pickled,
secrets included, never on a command line), `span LO HI` or `none` (an answer), `stop`.
On its standard output: `more` (a span, please), `done N` (progress), `end […]` (how the
send went). Only the parent holds the helper's standard input open: when the parent dies,
even by SIGKILL, it reads as closed and the helper takes no further recipient (the one in
flight ends as it would have), then exits. A new process rather than a fork: a runner has
other threads, and multiprocessing's fork server would re-run the parent's main module in
each helper.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import json
import os
import pickle
import queue
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from aspdigest.config import Project

if TYPE_CHECKING:
    from aspdigest.deliver.mailworkers import Workers

# Below this many recipients per extra process, starting one (about half a second of
# imports) costs more than it saves.
PER_PROCESS = 500
SPAN = 128  # recipients per span handed out: small enough to share the end evenly
STOP = b"stop\n"  # the parent asks a helper to take no further recipient
_CODE = "from aspdigest.deliver import emailprocs; emailprocs._helper()"


def shares(connections: int, rate: float, pending: int) -> list[int]:
    """How many connections each process runs, ours first: one process unless several
    connections send without a rate limit to enough recipients, then one per core."""
    processes = 1
    if connections > 1 and rate <= 0:
        processes = max(1, min(connections, os.cpu_count() or 1, pending // PER_PROCESS))
    return [connections // processes + (n < connections % processes) for n in range(processes)]


def spans(ids: list[int]) -> collections.deque[tuple[int, int]]:
    """`ids` (in order) as (first, last) spans of SPAN ids each."""
    return collections.deque(
        (ids[n], ids[min(n + SPAN, len(ids)) - 1]) for n in range(0, len(ids), SPAN)
    )


@dataclass(frozen=True)
class _Spec:
    """What a helper needs to send its shard."""

    project: Project
    environ: dict[str, str] | None
    store_url: str
    delivery_id: int
    connections: int


class Helpers:
    """The helper processes of one send, with a thread each that feeds its progress and
    errors into the parent's `Workers`; any of them stopping stops the others."""

    def __init__(self, send: Workers, spans: collections.deque[tuple[int, int]]) -> None:
        self.send = send
        self.spans = spans
        self.spans_lock = threading.Lock()
        self.write_lock = threading.Lock()
        self.processes: list[subprocess.Popen[bytes]] = []
        self.readers: list[threading.Thread] = []
        self.finished: dict[int, tuple[int, str | None, str | None]] = {}
        self.stopped = threading.Event()
        self.watcher = threading.Thread(target=self._watch, name="smtp-helpers", daemon=True)

    def _start(self, specs: list[_Spec]) -> None:
        for n, spec in enumerate(specs):
            process = _helper_process()
            assert process.stdout is not None
            # stdin stays open: its closing tells the helper we are gone.
            self._tell(process, b"spec " + base64.b64encode(pickle.dumps(spec)) + b"\n")
            self.processes.append(process)
            reader = threading.Thread(
                target=self._read, args=(n, process.stdout), name=f"smtp-helper-{n}", daemon=True
            )
            reader.start()
            self.readers.append(reader)
        self.watcher.start()

    def take_span(self) -> tuple[int, int] | None:
        """The next span of recipient ids to send, for the parent's workers or a helper."""
        if self.send.stopped():
            return None
        with self.spans_lock:
            return self.spans.popleft() if self.spans else None

    def _tell(self, process: subprocess.Popen[bytes], line: bytes) -> None:
        with self.write_lock, contextlib.suppress(OSError, ValueError):  # it may have gone
            assert process.stdin is not None
            process.stdin.write(line)
            process.stdin.flush()

    def _read(self, n: int, stdout: IO[bytes]) -> None:
        counted = 0
        for line in stdout:
            kind, _, rest = line.decode("utf-8", "replace").strip().partition(" ")
            if kind == "more":
                span = self.take_span()
                self._tell(
                    self.processes[n], f"span {span[0]} {span[1]}\n".encode() if span else b"none\n"
                )
            elif kind == "done":
                done = int(rest)
                if done > counted:
                    self.send.count_many(done - counted)
                    counted = done
            elif kind == "end":
                connections, unavailable, raised = json.loads(rest)
                self.finished[n] = (connections, unavailable, raised)
                with self.send.lock:
                    self.send.unavailable = self.send.unavailable or unavailable
                    if raised is not None and self.send.raised is None:
                        self.send.raised = RuntimeError(f"a sending process failed: {raised}")
                return  # the helper waits for its next send; its stdout stays open

    def _watch(self) -> None:
        while not self.stopped.wait(0.05):
            if self.send.stopped():
                self._stop_all()
                return

    def _stop_all(self) -> None:
        for process in self.processes:
            self._tell(process, STOP)

    def join(self) -> int:
        """Wait for every helper to finish its part; returns the SMTP connections they
        made. A helper that ended cleanly waits, warm, for the next send of this process;
        one that died without saying why (killed, out of memory) stops the send as an
        error."""
        for reader in self.readers:
            reader.join()
        self.stopped.set()
        self.watcher.join()
        for n, process in enumerate(self.processes):
            if self.finished.get(n, (0, "", ""))[1:] == (None, None):
                with _IDLE_LOCK:
                    _IDLE.append(process)
                continue
            with self.write_lock:
                assert process.stdin is not None
                process.stdin.close()
            process.wait()
            if n not in self.finished:
                with self.send.lock:
                    self.send.raised = self.send.raised or RuntimeError(
                        f"a sending process ended unexpectedly (exit code {process.returncode})"
                    )
        return sum(connections for connections, _, _ in self.finished.values())


# Helpers that finished a send cleanly, waiting for this process's next one: starting a
# helper costs about half a second of imports, a runner sends digest after digest.
_IDLE: list[subprocess.Popen[bytes]] = []
_IDLE_LOCK = threading.Lock()


def _helper_process() -> subprocess.Popen[bytes]:
    with _IDLE_LOCK:
        while _IDLE:
            process = _IDLE.pop()
            if process.poll() is None:
                return process
    return subprocess.Popen(
        [sys.executable, "-c", _CODE],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        close_fds=True,
        env=_environment(),
    )


def _environment() -> dict[str, str]:
    # This very package first on the path, whichever way the parent found it.
    package_root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": package_root + (os.pathsep + path if path else "")}


def start(
    send: Workers,
    project: Project,
    environ: Mapping[str, str] | None,
    store_url: str,
    delivery_id: int,
    connections: list[int],
    spans: collections.deque[tuple[int, int]],
) -> Helpers:
    """Start one helper process per entry of `connections` (its share of them), each
    asking for `spans` as it goes; the caller's workers take theirs with `take_span`."""
    helpers = Helpers(send, spans)
    environ = dict(environ) if environ is not None else None
    helpers._start(
        [_Spec(project, environ, store_url, delivery_id, share) for share in connections]
    )
    return helpers


def _helper() -> None:
    """A helper process: for each `spec` line, send the spans the parent hands out and
    report on standard output; stop a send when told, and exit when standard input
    closes (the parent has gone)."""
    from aspdigest.deliver.email import run_share
    from aspdigest.store import open_store

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    specs: queue.Queue[_Spec | None] = queue.Queue()
    answers: queue.Queue[tuple[int, int] | None] = queue.Queue()
    halt, gone = threading.Event(), threading.Event()
    lock = threading.Lock()
    done: int | None = None  # recipients settled in the current send (None: between sends)

    def listen() -> None:
        for line in stdin:
            kind, *words = line.split()
            if kind == b"spec":
                specs.put(pickle.loads(base64.b64decode(words[0])))
            elif kind == b"span":
                answers.put((int(words[0]), int(words[1])))
            elif kind == b"none":
                answers.put(None)
            elif kind == STOP.strip():
                halt.set()
        gone.set()  # end of file: the parent is gone
        halt.set()
        answers.put(None)
        specs.put(None)

    def say(line: str | None = None) -> None:
        """Write `line`, or the progress of the send under way if any (checked under the
        same lock that ends a send, so no stale count follows its `end` line)."""
        with lock, contextlib.suppress(OSError):  # the parent may be gone: nobody to tell
            if line is None and done is None:
                return
            stdout.write((line or f"done {done}\n").encode())
            stdout.flush()

    def report() -> None:
        while not gone.wait(0.05):
            say()

    def more() -> tuple[int, int] | None:
        if halt.is_set():
            return None
        say("more\n")
        return answers.get()

    def count(_done: int, _total: int, _address: str) -> None:
        nonlocal done
        with lock:
            done = (done or 0) + 1

    threading.Thread(target=listen, daemon=True).start()
    threading.Thread(target=report, daemon=True).start()
    while (spec := specs.get()) is not None and not gone.is_set():
        halt.clear()  # a stop line belongs to the send before
        done = 0
        connections, unavailable, raised = 0, None, None
        try:
            with open_store(spec.store_url, migrate=False) as store:
                connections, unavailable = run_share(
                    store,
                    spec.delivery_id,
                    spec.project,
                    environ=spec.environ,
                    more=more,
                    connections=spec.connections,
                    progress=count,
                    halt=halt.is_set,
                )
        except BaseException as exc:  # reported to the parent, which raises it there
            raised = f"{type(exc).__name__}: {exc}"
        with lock:
            finished, done = done, None
        say(f"done {finished}\nend {json.dumps([connections, unavailable, raised])}\n")
    # Not a normal exit: the listening thread may be blocked reading standard input, and
    # the interpreter's shutdown would wait on that file's lock.
    os._exit(0)
