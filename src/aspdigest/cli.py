"""The command line: the only module that talks to the user.

The edge of the flow. Each command parses its options, calls one library function, and
prints the result. Library errors (`UserError`) become one line per problem on stderr and
exit status 1; nothing else is caught, so a bug still shows its traceback. Heavy modules
are imported inside the commands that need them, keeping `aspdigest --help` fast.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from aspdigest.errors import UserError

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
    for line in lines:
        sys.stderr.write(line + "\n")
    raise typer.Exit(1)


def run(action: Callable[[], T]) -> T:
    """Call into the library; turn a UserError into one line per problem and exit 1."""
    try:
        return action()
    except UserError as exc:
        fail(exc.lines())
        raise AssertionError("unreachable") from None


def _project(path: Path | None) -> Any:
    from aspdigest.config import load_project

    return run(lambda: load_project(path))


def _event(project: Any, event: str | None) -> str:
    from aspdigest.content import resolve_event

    return run(lambda: resolve_event(project, event))


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


@app.command()
def check(event: EventArg = None, project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """Validate event.toml and every record; print each problem as `path: field: message`."""
    from aspdigest.content import load_content
    from aspdigest.errors import ContentError

    proj = _project(project)
    event_id = _event(proj, event)
    try:
        content = load_content(proj, event_id)
    except ContentError as exc:
        if as_json:
            print(
                json.dumps(
                    {
                        "event": event_id,
                        "ok": False,
                        "problems": [
                            {"path": p.path, "field": p.field, "message": p.message}
                            for p in exc.problems
                        ],
                    },
                    ensure_ascii=False,
                    indent=2,
                )
            )
            raise typer.Exit(1) from None
        fail(exc.lines())
        return
    days = len({r.date for r in content.records})
    quotes = sum(len(r.quotes) for r in content.records)
    if as_json:
        print(
            json.dumps(
                {
                    "event": event_id,
                    "ok": True,
                    "records": len(content.records),
                    "days": days,
                    "quotes": quotes,
                    "problems": [],
                },
                indent=2,
            )
        )
    else:
        print(
            f"{event_id}: {len(content.records)} records on {days} days, "
            f"{quotes} quotes; no problems"
        )


@app.command()
def build(
    event: EventArg = None,
    day: Annotated[
        str | None, typer.Option("--day", help="Build only this date (YYYY-MM-DD).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Re-render days whose inputs are unchanged.")
    ] = False,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Validate, render every day and write out/<event>/ with manifests (all or nothing)."""
    from aspdigest.build import build as run_build

    proj = _project(project)
    event_id = _event(proj, event)
    only = None
    if day is not None:
        try:
            only = dt.date.fromisoformat(day)
        except ValueError:
            fail([f'--day: expected a date like 2024-12-02, got "{day}"'])
    started = time.monotonic()
    with progress_bar("Building") as step:
        result = run(lambda: run_build(proj, event_id, only=only, progress=step, force=force))
    elapsed = time.monotonic() - started
    for warning in result.warnings:
        sys.stderr.write(f"warning: {warning}\n")
    out_dir = proj.relative(result.written.event_dir)
    if as_json:
        print(
            json.dumps(
                {
                    "event": event_id,
                    "output": out_dir,
                    "days": [d.day.key for d in result.days],
                    "reused": list(result.reused),
                    "artifacts": result.artifact_count,
                    "warnings": list(result.warnings),
                    "seconds": round(elapsed, 3),
                },
                indent=2,
            )
        )
        return
    fresh = len(result.days) - len(result.reused)
    print(
        f"{event_id}: built {fresh} day(s), {len(result.reused)} unchanged, "
        f"{result.artifact_count} artifacts in {elapsed:.2f}s -> {out_dir}/"
    )
    review = result.written.event_dir / "index.html"
    if review.exists():
        print(f"review page: {proj.relative(review)}")


class SchemaKind(StrEnum):
    record = "record"
    event = "event"


@app.command()
def schema(
    kind: Annotated[
        SchemaKind, typer.Argument(help="record (front matter) or event (event.toml).")
    ] = SchemaKind.record,
) -> None:
    """Print the JSON Schema of a record's front matter or of event.toml, for editors."""
    from aspdigest.records import EventMeta, RecordMeta

    model = RecordMeta if kind is SchemaKind.record else EventMeta
    print(json.dumps(model.model_json_schema(), ensure_ascii=False, indent=2))


@app.command()
def version() -> None:
    """Print aspdigest's version."""
    from aspdigest import __version__

    print(__version__)


def main() -> None:
    app()
