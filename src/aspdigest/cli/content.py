"""Commands about the content and what is built from it: check, build, schema, version,
export, preview."""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from aspdigest.cli import (
    EventArg,
    JsonOpt,
    ProjectOpt,
    app,
    approver,
    date_param,
    fail,
    progress_bar,
    resolve,
    run,
)

if TYPE_CHECKING:
    from aspdigest.config import Project
    from aspdigest.content import Content
    from aspdigest.errors import Problem


@app.command()
def check(event: EventArg = None, project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """Validate event.toml, every record and the event's schedule; print each problem as
    `path: field: message`."""
    from aspdigest.errors import ContentError
    from aspdigest.queue.schedule import check_event

    proj, event_id = resolve(project, event)
    try:
        content = check_event(proj, event_id)
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
    warnings = [*content.warnings, *run(lambda: _subject_warnings(proj, content))]
    if not as_json:
        for warning in warnings:
            sys.stderr.write(f"warning: {warning}\n")
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
                    "warnings": [
                        {"path": w.path, "field": w.field, "message": w.message} for w in warnings
                    ],
                },
                ensure_ascii=False,
                indent=2,
            )
        )
    else:
        print(
            f"{event_id}: {len(content.records)} records on {days} days, "
            f"{quotes} quotes; no problems"
        )


def _subject_warnings(proj: Project, content: Content) -> list[Problem]:
    """Each day's digest subject that is longer than an inbox shows."""
    from aspdigest.days import plan_days
    from aspdigest.render import RenderContext
    from aspdigest.render.email import subject_warnings
    from aspdigest.render.templates import make_environment

    ctx = RenderContext(proj, content, make_environment(proj))
    return subject_warnings(ctx, plan_days(content))


@app.command()
def build(
    event: EventArg = None,
    day: Annotated[
        dt.date | None,
        typer.Option(
            "--day", parser=date_param("--day"), help="Build only this date (YYYY-MM-DD)."
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Re-render days whose inputs are unchanged.")
    ] = False,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Validate, render every day and write out/<event>/ with manifests (all or nothing)."""
    from aspdigest.build import build as run_build

    proj, event_id = resolve(project, event)
    only = day
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


class ExportFormat(StrEnum):
    csv = "csv"
    json = "json"
    md = "md"


@app.command()
def export(
    event: EventArg = None,
    day: Annotated[
        dt.date | None,
        typer.Option("--day", parser=date_param("--day"), help="Only this date (YYYY-MM-DD)."),
    ] = None,
    platform: Annotated[
        list[str] | None,
        typer.Option(
            "--platform",
            metavar="NAME",
            help="Only this platform (x, bluesky, mastodon, threads, linkedin); repeatable.",
        ),
    ] = None,
    fmt: Annotated[
        ExportFormat | None,
        typer.Option(
            "--format",
            help="csv (UTF-8 with BOM), json or md; default: from --output's suffix, else md.",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", metavar="PATH", help="Write here instead of to standard output."
        ),
    ] = None,
    project: ProjectOpt = None,
) -> None:
    """Export the built post drafts for review or bulk import (needs `aspdigest build`)."""
    from aspdigest.export import export as run_export

    proj, event_id = resolve(project, event)
    chosen = fmt.value if fmt else None
    if chosen is None and output is not None:
        chosen = {".csv": "csv", ".json": "json", ".md": "md"}.get(output.suffix.lower())
    result = run(
        lambda: run_export(
            proj, event_id, chosen or "md", day.isoformat() if day else None, platform
        )
    )
    if output is None:
        sys.stdout.buffer.write(result.data)
        sys.stdout.flush()
        return
    try:
        output.write_bytes(result.data)
    except OSError as exc:
        fail([f"{output}: cannot write: {exc.strerror or exc}"])
    days = len(result.days)
    print(
        f"{event_id}: {len(result.drafts)} posts ({days} day{'s' if days != 1 else ''}, "
        f"{', '.join(result.platforms)}) -> {output}"
    )


# -- review: the live preview -------------------------------------------------------------------


@app.command()
def preview(
    event: EventArg = None,
    port: Annotated[
        int, typer.Option("--port", "-p", help="Port to listen on (0: any free port).")
    ] = 8000,
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Address to listen on; any but 127.0.0.1, localhost or ::1 requires a token.",
        ),
    ] = "127.0.0.1",
    token: Annotated[
        bool,
        typer.Option(
            "--token",
            help="Require a token on every request even on 127.0.0.1 (the token comes "
            "from ASPDIGEST_PREVIEW_TOKEN, else one is generated and printed).",
        ),
    ] = False,
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            metavar="NAME",
            help="Approver recorded by the Approve buttons (default: "
            "ASPDIGEST_APPROVER, else your user name).",
            show_default=False,
        ),
    ] = None,
    project: ProjectOpt = None,
) -> None:
    """Serve the review site on 127.0.0.1, rebuild on every change, approve from the page."""
    from aspdigest.preview import PreviewConfig, choose_token, serve

    proj, event_id = resolve(project, event)
    secret_token, generated = choose_token(host, token)
    config = PreviewConfig(
        root=proj.root,
        event=event_id,
        host=host,
        port=port,
        token=secret_token,
        by=approver(by),
    )
    run(lambda: serve(config, log=lambda line: print(line, flush=True), generated_token=generated))


# -- the delivery queue: plan, approve, steer, run ----------------------------------------------
