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
    strict: Annotated[
        bool,
        typer.Option(
            "--strict", help="Exit 1 when any artifact is blocked (the rest is still written)."
        ),
    ] = False,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Validate, render every day and write out/<event>/ with manifests (all or nothing)."""
    from aspdigest.inputs import unchanged

    started = time.monotonic()
    proj, event_id = resolve(project, event)
    only = day
    # Nothing changed since the last full build (and its output is intact): say so without
    # loading content or importing a renderer. Otherwise the build decides, day by day.
    same = unchanged(proj, event_id) if not force and only is None else None
    if same is not None:
        event_dir = same.event_dir
        days, reused, artifacts, warnings = same.days, same.days, same.artifacts, same.warnings
        blocked = list(same.blocked)
    else:
        from aspdigest.build import build as run_build

        with progress_bar("Building") as step:
            result = run(lambda: run_build(proj, event_id, only=only, progress=step, force=force))
        event_dir = result.written.event_dir
        days = tuple(d.day.key for d in result.days)
        reused, artifacts, warnings = result.reused, result.artifact_count, result.warnings
        blocked = [b.__dict__ for b in result.blocked]
    elapsed = time.monotonic() - started
    for warning in warnings:
        sys.stderr.write(f"warning: {warning}\n")
    out_dir = proj.relative(event_dir)
    for b in blocked:
        sys.stderr.write(f"{'error' if strict else 'warning'}: {out_dir}/{b['date']}/{b['path']}: ")
        sys.stderr.write(f"blocked: {b['reason']}\n")
    if as_json:
        print(
            json.dumps(
                {
                    "event": event_id,
                    "output": out_dir,
                    "days": list(days),
                    "reused": list(reused),
                    "artifacts": artifacts,
                    "warnings": list(warnings),
                    "blocked": blocked,
                    "seconds": round(elapsed, 3),
                },
                indent=2,
            )
        )
    else:
        print(
            f"{event_id}: built {len(days) - len(reused)} day(s), {len(reused)} unchanged, "
            f"{artifacts} artifacts in {elapsed:.2f}s -> {out_dir}/"
        )
        review = event_dir / "index.html"
        if review.exists():
            print(f"review page: {proj.relative(review)}")
    if strict and blocked:
        raise typer.Exit(1)


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
    from aspdigest.content import event_name
    from aspdigest.export import export as run_export
    from aspdigest.queue.telling import queue_words

    proj, event_id = resolve(project, event)
    chosen = fmt.value if fmt else None
    if chosen is None and output is not None:
        chosen = {".csv": "csv", ".json": "json", ".md": "md"}.get(output.suffix.lower())
    result = run(
        lambda: run_export(
            proj,
            event_id,
            chosen or "md",
            day.isoformat() if day else None,
            platform,
            queue=queue_words(proj, event_id),
            title=event_name(proj, event_id),
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
