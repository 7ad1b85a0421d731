"""`aspdigest init`: start a project. Asks on a terminal, takes flags otherwise; the files
and every rule for an answer are in `aspdigest.scaffold`."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated

import typer

from aspdigest.cli import app, fail, run


@app.command()
def init(
    folder: Annotated[
        Path, typer.Argument(metavar="DIR", help="Project folder (created if need be).")
    ] = Path("."),
    event: Annotated[
        str | None, typer.Option("--event", help="Event id: a slug, e.g. wps25.")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Full name of the event.")] = None,
    timezone: Annotated[
        str | None, typer.Option("--timezone", help="IANA time zone of the venue.")
    ] = None,
    start: Annotated[str | None, typer.Option("--start", help="First day, YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option("--end", help="Last day, YYYY-MM-DD.")] = None,
    publisher: Annotated[
        str | None, typer.Option("--publisher", help="Who sends the digest and posts.")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace files that already exist.")
    ] = False,
    interactive: Annotated[
        bool | None,
        typer.Option(
            "--interactive/--no-interactive",
            help="Ask for what the flags leave out (default: when standard input is a terminal).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Start a project: aspdigest.toml, event.toml, an example record, a schedule, a
    subscriber list and a .gitignore, ready for `check`, `build` and `schedule plan`."""
    from aspdigest import scaffold

    given = {
        "event": event,
        "name": name,
        "timezone": timezone,
        "start": start,
        "end": end,
        "publisher": publisher,
    }
    ask = sys.stdin.isatty() if interactive is None else interactive
    if ask:
        given = _ask(given, folder)
    answers = run(lambda: scaffold.parse(given))
    shown = "" if folder == Path(".") else f"{folder.as_posix().rstrip('/')}/"
    if folder.exists() and not folder.is_dir():
        fail([f"{folder}: not a folder"])
    written = run(lambda: scaffold.write(folder, answers, force=force, shown=shown))
    for path in written:
        print(f"wrote {shown}{path}")
    record = f"content/{answers.event}/{answers.start.isoformat()}/{scaffold.EXAMPLE_RECORD}"
    go = f"cd {folder} && " if shown else ""
    print(
        f"\nNext: edit or replace the example record {record}, add one file per item in the "
        f"folder of its day, then `{go}aspdigest build` and `aspdigest preview`.\n"
        "Before the first digest goes out, fill in the settings marked TO FILL in "
        "aspdigest.toml (`aspdigest build` warns about each until then)."
    )


def _ask(given: dict[str, str | None], folder: Path) -> dict[str, str | None]:
    """Each answer the flags leave out (or give wrongly), asked until it is right."""
    from aspdigest import scaffold

    defaults = {
        "event": scaffold.default_event(folder),
        "timezone": scaffold.local_zone(),
    }
    out: dict[str, str | None] = {}
    for field, spec in scaffold.FIELDS.items():
        start = dt.date.fromisoformat(out["start"] or "") if out.get("start") else None
        value = given.get(field)
        if value is not None:
            problem = scaffold.answer_problem(field, value, start)
            if problem is None:
                out[field] = value.strip()
                continue
            typer.echo(f"{spec.flag}: {problem}", err=True)
        default = defaults.get(field) or (out.get("start") if field == "end" else None)
        while True:
            value = typer.prompt(spec.prompt, default=default, show_default=bool(default))
            problem = scaffold.answer_problem(field, value, start)
            if problem is None:
                out[field] = value.strip()
                break
            typer.echo(f"  {problem}; try again", err=True)
    return out
