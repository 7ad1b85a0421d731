"""Helper processes for a digest sent over several connections without a rate limit.

Deliver stage, beside `deliver.email`. One Python process cannot go faster than one core,
and building, signing and recording each message takes most of a core at a few thousand
messages a second; so when `email.connections` > 1, `email.rate_per_second` is 0 and the
list is long, `send_digest` splits the recipients by id into shards (`id % n`), sends
shard 0 itself and starts one helper process per other shard (`start`). Each helper
opens its own store connection and runs the same workers (`email.Workers`) over its shard.

Exactly once holds as in one process: every recipient is claimed in the store, atomically,
right before the final dot of its message, whichever process sends it. The helpers are
started from multiprocessing's fork server (a clean, single-threaded copy of the package,
so not a fork of a runner that has other threads), and each watches a pipe whose other end
only the parent holds: when the parent dies, even by SIGKILL, the pipe reads as closed and
the helper takes no further recipient (the one in flight ends as it would have).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import queue
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aspdigest.config import Project

if TYPE_CHECKING:
    from aspdigest.deliver.mailworkers import Workers

# Below this many recipients per extra process, starting one costs more than it saves.
PER_PROCESS = 500
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["aspdigest.deliver.email"])


def shares(connections: int, rate: float, pending: int) -> list[int]:
    """How many connections each process runs, ours first: one process unless several
    connections send without a rate limit to enough recipients, then one per core."""
    processes = 1
    if connections > 1 and rate <= 0:
        processes = max(1, min(connections, os.cpu_count() or 1, pending // PER_PROCESS))
    return [connections // processes + (n < connections % processes) for n in range(processes)]


@dataclass(frozen=True)
class _Spec:
    """What a helper needs to send its shard (picklable: it crosses to the fork server)."""

    project: Project
    environ: dict[str, str] | None
    store_url: str
    delivery_id: int
    shard: tuple[int, int]
    connections: int


class Helpers:
    """The helper processes of one send, and a thread that feeds their progress and errors
    into the parent's `Workers` and stops them when it stops."""

    def __init__(self, send: Workers, processes: list[tuple[Any, Any]]) -> None:
        self.send = send
        self.processes = processes  # (process, its done counter)
        self.stop = _CONTEXT.Event()
        self.results: Any = _CONTEXT.Queue()
        self.alive_reader, self.alive_writer = _CONTEXT.Pipe(duplex=False)
        self.counted = [0] * len(processes)
        self.finished: dict[int, tuple[int, str | None, str | None]] = {}
        self.monitor = threading.Thread(target=self._watch, name="smtp-helpers", daemon=True)

    def _start(self, specs: list[_Spec]) -> None:
        for n, spec in enumerate(specs):
            counter = _CONTEXT.Value("q", 0)
            process = _CONTEXT.Process(
                target=_helper,
                args=(spec, self.alive_reader, self.stop, counter, self.results, n),
                name=f"aspdigest-smtp-{spec.shard[0]}",
                daemon=True,
            )
            process.start()
            self.processes.append((process, counter))
        self.counted = [0] * len(self.processes)
        self.alive_reader.close()  # only the helpers hold the reading end now
        self.monitor.start()

    def _collect(self) -> None:
        for n, (_, counter) in enumerate(self.processes):
            value = int(counter.value)
            if value > self.counted[n]:
                self.send.count_many(value - self.counted[n])
                self.counted[n] = value
        while True:
            try:
                n, connections, unavailable, raised = self.results.get_nowait()
            except queue.Empty:
                break
            self.finished[n] = (connections, unavailable, raised)
            with self.send.lock:
                self.send.unavailable = self.send.unavailable or unavailable
                if raised is not None and self.send.raised is None:
                    self.send.raised = RuntimeError(f"a sending process failed: {raised}")

    def _watch(self) -> None:
        while any(p.is_alive() for p, _ in self.processes):
            self._collect()
            if self.send.stopped():
                self.stop.set()
            self.stop.wait(0.05)
        self._collect()

    def join(self) -> int:
        """Wait for every helper; returns the SMTP connections they made. A helper that
        died without saying why (killed, out of memory) stops the send as an error."""
        for process, _ in self.processes:
            process.join()
        self.monitor.join()
        self._collect()
        self.alive_writer.close()
        for n, (process, _) in enumerate(self.processes):
            if n not in self.finished:
                with self.send.lock:
                    self.send.raised = self.send.raised or RuntimeError(
                        f"a sending process ended unexpectedly (exit code {process.exitcode})"
                    )
        return sum(connections for connections, _, _ in self.finished.values())


def start(
    send: Workers,
    project: Project,
    environ: Mapping[str, str] | None,
    store_url: str,
    delivery_id: int,
    connections: list[int],
) -> Helpers:
    """Start one helper process per entry of `connections` (its share of them), for shards
    1 … len(connections) of len(connections) + 1; the caller sends shard 0."""
    helpers = Helpers(send, [])
    total = len(connections) + 1
    helpers._start(
        [
            _Spec(
                project,
                dict(environ) if environ is not None else None,
                store_url,
                delivery_id,
                (n + 1, total),
                share,
            )
            for n, share in enumerate(connections)
        ]
    )
    return helpers


def _helper(
    spec: _Spec,
    alive: multiprocessing.connection.Connection,
    stop: Any,
    counter: Any,
    results: Any,
    n: int,
) -> None:
    """A helper process: send one shard, then say how it went on `results`."""
    from aspdigest.deliver.email import run_shard
    from aspdigest.store import open_store

    connections, unavailable, raised = 0, None, None
    try:
        with open_store(spec.store_url, migrate=False) as store:

            def done(_done: int, _total: int, _address: str) -> None:
                with counter.get_lock():
                    counter.value += 1

            def halted() -> bool:
                # poll() is true once the parent has gone: its end of the pipe closed.
                return bool(stop.is_set() or alive.poll())

            report = run_shard(
                store,
                spec.delivery_id,
                spec.project,
                environ=spec.environ,
                shard=spec.shard,
                connections=spec.connections,
                progress=done,
                halt=halted,
            )
            connections, unavailable = report
    except BaseException as exc:  # reported to the parent, which raises it there
        raised = f"{type(exc).__name__}: {exc}"
    results.put((n, connections, unavailable, raised))
