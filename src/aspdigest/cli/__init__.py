"""The command line: the only package that talks to the user.

The edge of the flow. Each command parses its options, calls one library function, and
prints the result. This module holds the Typer app and what every command shares; the
commands live beside it by topic: `init.py` (init), `content.py` (check, build, schema,
export, preview),
`mail.py` (send, subscribers), `schedule.py` (schedule …),
`delivery.py` (approve, run, status) and
`accounts.py` (accounts check). Library errors (`UserError`) become one line per problem on stderr and
exit status 1; nothing else is caught, so a bug still shows its traceback. Heavy modules
are imported inside the commands that need them, keeping `aspdigest --help` fast.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NamedTuple, TypeVar

import typer

from aspdigest.errors import UserError
from aspdigest.safetext import terminal_safe

if TYPE_CHECKING:  # only for annotations: `aspdigest --help` must not import the store
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


def cell(text: str) -> str:
    """One field of a tab-separated listing, printable: controls, tabs and newlines escaped."""
    return terminal_safe(text).replace("\t", "\\t").replace("\n", "\\n")


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


class Target(NamedTuple):
    """What a command works on: the project and its event ("" for commands without one)."""

    project: Project
    event: str


def resolve(path: Path | None, event: str | None = None, *, with_event: bool = True) -> Target:
    """The project (--project, $ASPDIGEST_PROJECT or the nearest aspdigest.toml) and, when the
    command takes one, the event (optional when the project has one); exit 1 when unclear."""
    from aspdigest.config import load_project
    from aspdigest.content import resolve_event

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


def date_param(what: str) -> Callable[[str], dt.date]:
    """The parser (typer's `parser=`) of every DATE argument and date option: `parse_date`
    naming the parameter as the user typed it (`--day`, `DATE`)."""
    return lambda value: parse_date(value, what)


@contextmanager
def progress_bar(label: str) -> Iterator[Callable[[int, int, str], None]]:
    """A rich progress bar that appears only once work has taken more than a second."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    started = time.monotonic()
    bar: Progress | None = None
    task = None

    def step(done: int, total: int, what: str) -> None:
        nonlocal bar, task
        if bar is None and time.monotonic() - started > 1.0 and sys.stderr.isatty():
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


def main() -> None:
    app()
