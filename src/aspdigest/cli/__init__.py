"""The command line: the only package that talks to the user.

The edge of the flow. Each command parses its options, calls one library function, and
prints the result. This module holds the Typer app and what every command shares; the
commands live beside it by topic: `init.py` (init), `content.py` (check, build, schema,
export, preview),
`mail.py` (send, subscribers), `schedule.py` (schedule …),
`delivery.py` (approve, run, status) and
`accounts.py` (accounts check); `table.py` draws their listings. Library errors (`UserError`) become one line per problem on stderr and
exit status 1; nothing else is caught, so a bug still shows its traceback. Heavy modules
are imported inside the commands that need them, keeping `aspdigest --help` fast.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import gc
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NamedTuple, NoReturn, TypeVar

import typer

from aspdigest.cli.table import cell as cell
from aspdigest.errors import UserError
from aspdigest.safetext import terminal_safe

if TYPE_CHECKING:  # only for annotations: `aspdigest --help` must not import the store
    from rich.progress import Progress

    from aspdigest.config import Project
    from aspdigest.store import Store

app = typer.Typer(
    name="aspdigest",
    help="Turn conference records into daily email digests, social threads and quote cards.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

T = TypeVar("T")

ProjectOpt = Annotated[
    Path | None,
    typer.Option(
        "--project",
        "-C",
        help="Project folder (default: nearest with aspdigest.toml).",
        envvar="ASPDIGEST_PROJECT",
        show_default=False,
    ),
]
EventArg = Annotated[
    str | None, typer.Argument(help="Event id (folder under content/); optional when there is one.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def fail(lines: list[str]) -> None:
    # Problems quote what the user wrote; an ESC or a bidi override in it must be shown, not
    # obeyed by the terminal, and a line break in it must not split the problem's line.
    for line in lines:
        sys.stderr.write(terminal_safe(line).replace("\n", "\\n") + "\n")
    raise typer.Exit(1)


def approver(name: str | None) -> str:
    """Who does it: `--by`, else $ASPDIGEST_APPROVER, else the OS user; refused (exit 1)
    unless it is one printable line, since it goes into the store, the log and listings."""
    from aspdigest.queue.approval import default_approver
    from aspdigest.safetext import text_problem

    chosen = name or default_approver()
    problem = text_problem(chosen, single_line=True)
    if problem is not None:
        fail([f"{'--by' if name else 'ASPDIGEST_APPROVER'}: {problem}"])
    return chosen


def run(action: Callable[[], T]) -> T:
    """Call into the library; turn a UserError into one line per problem and exit 1."""
    try:
        return action()
    except UserError as exc:
        fail(exc.lines())
        raise AssertionError("unreachable") from None


def resolve_all(path: Path | None, event: str | None) -> tuple[Project, list[str]]:
    """For the commands that can cover the whole project (`status`, `schedule list`,
    `schedule ics`): the event named, else every event of the project."""
    from aspdigest.config import load_project
    from aspdigest.inputs import list_events, resolve_event

    project = run(lambda: load_project(path))
    if event is None and len(events := list_events(project)) > 1:
        return project, events
    return project, [run(lambda: resolve_event(project, event))]


class Target(NamedTuple):
    """What a command works on: the project and its event ("" for commands without one)."""

    project: Project
    event: str


def resolve(path: Path | None, event: str | None = None, *, with_event: bool = True) -> Target:
    """The project (--project, $ASPDIGEST_PROJECT or the nearest aspdigest.toml) and, when the
    command takes one, the event (optional when the project has one); exit 1 when unclear."""
    from aspdigest.config import load_project
    from aspdigest.inputs import resolve_event

    project = run(lambda: load_project(path))
    return Target(project, run(lambda: resolve_event(project, event)) if with_event else "")


@contextmanager
def opened(
    path: Path | None, event: str | None = None, *, with_event: bool = True
) -> Iterator[tuple[Project, str, Store]]:
    """`resolve`, then the project's state store, closed when the command is done."""
    from aspdigest.store import open_project_store

    project, event_id = resolve(path, event, with_event=with_event)
    with run(lambda: open_project_store(project)) as store:
        yield project, event_id, store


def parse_date(value: str, what: str) -> dt.date:
    """A YYYY-MM-DD date, or one line naming the option and exit 1 (the one wording)."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        fail([f'{what}: expected a date like 2024-12-02, got "{value}"'])
        raise AssertionError("unreachable") from None


def event_and_day(values: list[str]) -> tuple[str | None, dt.date]:
    """`[EVENT] DATE`: one value is the date (the event then being the project's only one),
    two are the event and the date. Typer fills positional arguments left to right, so the
    command takes them as one list and this sorts them out."""
    if len(values) == 1:
        return None, parse_date(values[0], "DATE")
    if len(values) == 2:
        return values[0], parse_date(values[1], "DATE")
    fail([f"expected [EVENT] DATE, got {len(values)} arguments: {' '.join(values)}"])
    raise AssertionError("unreachable")


EventDayArg = Annotated[
    list[str],
    typer.Argument(
        metavar="[EVENT] DATE",
        help="Event id (optional when the project has one), then the conference day (YYYY-MM-DD).",
        show_default=False,
    ),
]


def date_param(what: str) -> Callable[[str], dt.date]:
    """The parser (typer's `parser=`) of every DATE argument and date option: `parse_date`
    naming the parameter as the user typed it (`--day`, `DATE`)."""
    return lambda value: parse_date(value, what)


@contextmanager
def progress_bar(label: str) -> Iterator[Callable[[int, int, str], None]]:
    """A rich progress bar that appears only once work has taken more than a second."""
    started = time.monotonic()
    bar: Progress | None = None
    task = None

    def step(done: int, total: int, what: str) -> None:
        nonlocal bar, task
        if bar is None and time.monotonic() - started > 1.0 and sys.stderr.isatty():
            # Imported only when the bar shows: rich costs a build that is quick ~50 ms.
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            bar = Progress(
                TextColumn(label),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                transient=True,
                console=None,
            )
            bar.start()
            task = bar.add_task(what, total=total)
        if bar is not None and task is not None:
            bar.update(task, completed=done, total=total, description=what)

    try:
        yield step
    finally:
        if bar is not None:
            bar.stop()


# Importing the command modules registers their commands on `app` (in --help order).
from aspdigest.cli import (  # noqa: E402
    accounts,
    content,
    init,
    mail,
    schedule,
    subscribers_service,
)

__all__ = ["accounts", "app", "content", "init", "mail", "main", "schedule", "subscribers_service"]


# Commands that run for a second or so and exit: Python's cycle collector, which walks
# the ever larger heap of imported modules again and again while they load, costs them
# more than it frees (~35 ms of a one-record rebuild; the 1,000-record conference's
# build peaks at the same 115 MB either way). Commands that keep running keep it.
_BRIEF = frozenset({"build", "check", "export", "schema", "version"})


def main() -> None:
    """The console script: run the command, then exit without the interpreter's teardown."""
    words = [arg for arg in sys.argv[1:] if not arg.startswith("-")]
    if not words or words[0] in _BRIEF:
        gc.disable()
    try:
        app()
    except SystemExit as exc:
        _leave(exc.code)
    _leave(0)


def _leave(code: object) -> NoReturn:
    """Exit with `code` as `sys.exit` would, but without freeing every module and object one
    by one first: that took 30-80 ms of a build that itself takes a few hundred (a seventh
    of a one-record rebuild). Exit handlers run first (the card pool's shutdown, logging's
    flush) and the standard streams are flushed; while another non-daemon thread still
    runs, the ordinary exit (which waits for it) is taken instead."""
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # what sys.exit does with a message
        sys.stderr.write(f"{code}\n")
        status = 1
    atexit._run_exitfuncs()
    others = [
        t
        for t in threading.enumerate()
        if t is not threading.main_thread() and not t.daemon and t.is_alive()
    ]
    if others:
        sys.exit(status)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed, or a reader gone
            stream.flush()
    os._exit(status)
