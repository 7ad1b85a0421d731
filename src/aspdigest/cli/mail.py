"""Commands about email: the subscriber list and test sends."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from aspdigest.cli import (
    EventDayArg,
    JsonOpt,
    ProjectOpt,
    app,
    event_and_day,
    fail,
    opened,
    resolve,
    run,
)

subscribers_app = typer.Typer(
    help="The subscriber list and the suppression list (state store).", no_args_is_help=True
)
app.add_typer(subscribers_app, name="subscribers")


class SuppressReason(StrEnum):
    unsubscribed = "unsubscribed"
    bounced = "bounced"
    complained = "complained"


@subscribers_app.command("import")
def subscribers_import(
    csv_file: Annotated[
        Path | None,
        typer.Argument(
            metavar="CSV",
            help="Columns email, name, language (default: email.subscribers).",
            show_default=False,
        ),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Also remove subscribers the file no longer lists.")
    ] = False,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add or update subscribers from a CSV; suppressed addresses stay suppressed."""
    from aspdigest.subscribers import import_csv, subscribers_path

    proj = resolve(project, with_event=False).project
    path = csv_file if csv_file is not None else subscribers_path(proj)
    with opened(project, with_event=False) as (_, _, store):
        counts = run(lambda: import_csv(store, path, shown=proj.relative(path), replace=replace))
    if as_json:
        print(json.dumps(counts.__dict__, indent=2))
    else:
        print(
            f"{proj.relative(path)}: {counts.added} added, {counts.updated} updated, "
            f"{counts.unchanged} unchanged, {counts.removed} removed"
        )


@subscribers_app.command("list")
def subscribers_list(project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """List subscribers and suppressed addresses."""
    from aspdigest.subscribers import listing

    with opened(project, with_event=False) as (_proj, _, store):
        rows = listing(store)
    if as_json:
        print(json.dumps([r.__dict__ for r in rows], ensure_ascii=False, indent=2))
        return
    from aspdigest.cli.table import print_table

    print_table(
        ("address", "name", "language", "status"),
        [
            [
                r.address,
                r.name or "",
                r.language or "",
                f"suppressed: {r.suppressed}"
                if r.suppressed
                else ("pending confirmation" if r.status == "pending" else ""),
            ]
            for r in rows
        ],
        empty="no subscribers yet; import them with `aspdigest subscribers import`",
    )


@subscribers_app.command("unsubscribe")
def subscribers_unsubscribe(
    address: Annotated[str, typer.Argument(help="The address to stop sending to.")],
    reason: Annotated[
        SuppressReason, typer.Option("--reason", help="Why the address is suppressed.")
    ] = SuppressReason.unsubscribed,
    project: ProjectOpt = None,
) -> None:
    """Put an address on the suppression list: no digest goes to it again."""
    from aspdigest.subscribers import unsubscribe

    with opened(project, with_event=False) as (_proj, _, store):
        added = run(lambda: unsubscribe(store, address, reason.value))
    print(f"{address}: {'suppressed' if added else 'already suppressed'} ({reason.value})")


@app.command()
def send(
    event_day: EventDayArg,
    test: Annotated[
        str | None, typer.Option("--test", metavar="ADDRESS", help="Send one test copy to ADDRESS.")
    ] = None,
    project: ProjectOpt = None,
) -> None:
    """Send one test copy of a built digest (SMTP from ASPDIGEST_SMTP_URL)."""
    from aspdigest.deliver.email import send_test

    event, day = event_and_day(event_day)
    proj, event_id = resolve(project, event)
    if test is None:
        fail(["send: give --test ADDRESS; the digest goes to subscribers through the schedule"])
        return
    address = test
    run(lambda: send_test(proj, event_id, day, address))
    print(f"{event_id} {day}: test copy sent to {address}")
