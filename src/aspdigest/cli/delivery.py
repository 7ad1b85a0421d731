"""Commands that move the queue forward: `approve`, `run` (and its `--rehearse`), `status`.

The edge of the flow, beside `cli/schedule.py` (whose option types and row printers they
share): each parses its options, opens the project's store where one is needed, and calls
`queue.approval.approve`, `queue.serve.serve`, `queue.rehearsal.rehearse` or
`queue.actions.report`.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from functools import partial
from typing import Annotated

import typer

from aspdigest.cli import (
    EventArg,
    EventDayArg,
    JsonOpt,
    ProjectOpt,
    app,
    cell,
    date_param,
    event_and_day,
    resolve,
    resolve_all,
    run,
)
from aspdigest.cli.schedule import ByOpt, _by, _row


@app.command()
def approve(
    event_day: EventDayArg,
    channel: Annotated[
        str | None, typer.Option("--channel", help="Only digest, thread or quotes.")
    ] = None,
    platform: Annotated[
        str | None,
        typer.Option(
            "--platform",
            help="Only this platform (x, bluesky, mastodon, threads, linkedin; "
            "email for the digest).",
        ),
    ] = None,
    by: ByOpt = None,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Approve a day's built artifacts (recorded by sha256; checked again at send time)."""
    from aspdigest.queue.approval import DayApproval, approve_day, check_request
    from aspdigest.queue.telling import subscriber_warning
    from aspdigest.store import open_project_store

    event, day = event_and_day(event_day)
    proj, event_id = resolve(project, event)

    def go() -> DayApproval:
        who = _by(by)
        # Bad input is refused before the store is opened (which would create it).
        check_request(proj, event_id, day, channel=channel, platform=platform, by=who)
        with open_project_store(proj) as store:
            # A whole day: a digest the settings cannot send yet is held, the rest approved.
            approved = approve_day(
                proj,
                store,
                event_id,
                day,
                channel=channel,
                platform=platform,
                by=who,
                hold_unready=channel is None and platform is None,
            )
            audience.append(len(store.active_subscribers()))
            return approved

    audience: list[int] = []
    result = run(go)
    done = result.approved
    for line in result.held:
        sys.stderr.write(f"{line}\n")
    warning = subscriber_warning(audience[0], any(a.channel == "digest" for a in done))
    if warning:
        sys.stderr.write(f"warning: {warning}\n")
    if as_json:
        print(json.dumps([a.__dict__ for a in done], indent=2))
        return
    for a in done:
        print(
            f"delivery {a.delivery_id} ({day} {a.channel} {a.platform or 'email'}): approved "
            f"by {_by(by)}, {len(a.hashes)} file(s)"
        )


@app.command("run")
def run_command(
    event: EventArg = None,
    rehearse: Annotated[
        dt.date | None,
        typer.Option(
            "--rehearse",
            metavar="DATE",
            parser=date_param("--rehearse"),
            help="Replay this conference day's queue in a sandbox "
            "(local SMTP sink, handoff files) instead of serving the real one.",
        ),
    ] = None,
    speed: Annotated[
        float,
        typer.Option("--speed", metavar="N", help="With --rehearse: run the clock N times faster."),
    ] = 60.0,
    as_approved: Annotated[
        bool,
        typer.Option(
            "--as-approved",
            help="With --rehearse: rehearse every delivery of the day as if approved "
            "(default: as the real queue stands).",
        ),
    ] = False,
    poll: Annotated[
        float | None,
        typer.Option(
            "--poll",
            metavar="SECONDS",
            help="How often to reread the store (default: delivery.poll_seconds).",
            show_default=False,
        ),
    ] = None,
    project: ProjectOpt = None,
) -> None:
    """The scheduler process: deliver each approved delivery at its time, once."""
    import os
    import sys

    from aspdigest.queue.joblog import log_to

    proj, event_id = resolve(project, event)
    if rehearse is None:
        from aspdigest.queue.serve import serve

        with log_to(sys.stderr):  # one JSON object per line, for people and log collectors
            run(lambda: serve(proj, event_id, environ=os.environ, poll=poll))
        return
    from aspdigest.cli.table import print_table
    from aspdigest.queue.rehearsal import rehearse as run_rehearsal
    from aspdigest.queue.schedule import local_text

    day = rehearse
    with log_to(sys.stderr):
        result = run(
            lambda: run_rehearsal(
                proj, event_id, day, speed, environ=os.environ, as_approved=as_approved
            )
        )
    rows = []
    for r in result.deliveries:
        late = f"{r.late_seconds * 1000:.0f} ms late" if r.late_seconds is not None else "-"
        zone = r.planned_local.tzinfo or dt.UTC
        rows.append(
            [
                local_text(r.planned_local, zone),
                r.channel,
                r.platform or "email",
                r.status,
                late,
                r.outcome,
                r.detail,
            ]
        )
    print_table(
        ("local time", "channel", "platform", "status", "late", "the real run", "detail"), rows
    )
    print(
        f"rehearsal of {event_id} {day} at {speed:g}x: {result.messages} message(s) in "
        f"{proj.relative(result.folder / 'mail')}, posts in "
        f"{proj.relative(result.folder / 'outbox')}"
    )


@app.command()
def status(event: EventArg = None, project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """The queue at a glance: runner, pause, counts, what is next, what was missed, what needs
    a person (every planned event of the project when it has several and none is named)."""
    from aspdigest.queue.actions import StatusReport, report
    from aspdigest.queue.serve import store_name
    from aspdigest.store import open_project_store
    from aspdigest.store.lock import RunnerLock

    proj, event_ids = resolve_all(project, event)
    reports: list[StatusReport] = []
    unplanned: list[str] = []
    with run(lambda: open_project_store(proj)) as store:
        holder = RunnerLock(store, store_name(proj, store)).held_elsewhere()
        for e in event_ids:
            if len(event_ids) > 1 and store.queue(e) is None:
                unplanned.append(e)
                continue
            reports.append(run(partial(report, store, e, running=holder is not None, project=proj)))
    if as_json:
        data = [_report_json(rep) for rep in reports]
        print(json.dumps(data[0] if len(event_ids) == 1 else data, indent=2, default=str))
        return
    for rep in reports:
        _print_report(rep)
    for e in unplanned:
        print(f"{e}: nothing planned; `aspdigest schedule plan {e}`")


def _report_json(rep: object) -> dict[str, object]:
    from aspdigest.queue.actions import StatusReport

    assert isinstance(rep, StatusReport)
    return {
        "event": rep.event,
        "timezone": rep.timezone,
        "running": rep.running,
        "runner": rep.runner.__dict__ if rep.runner else None,
        "paused_at": rep.paused_at,
        "paused_by": rep.paused_by,
        "counts": rep.counts,
        "subscribers": rep.subscribers,
        "upcoming": [_row(r) for r in rep.upcoming],
        "missed": [_row(r) for r in rep.missed],
        "attention": [_row(r) for r in rep.attention],
    }


def _print_report(rep: object) -> None:
    import sys

    from aspdigest.cli.table import print_table
    from aspdigest.queue.actions import StatusReport
    from aspdigest.queue.telling import status_text

    assert isinstance(rep, StatusReport) and rep.now is not None
    now = rep.now
    runner_text = "not running"
    if rep.running and rep.runner:
        runner_text = (
            f"running (pid {rep.runner.pid} on {rep.runner.host}, last seen "
            f"{rep.runner.seen_at:%H:%M:%SZ})"
        )
    elif rep.running:
        runner_text = "running"
    print(
        f"{rep.event}: runner {runner_text}"
        + (f"; PAUSED by {cell(rep.paused_by or '')}" if rep.paused_at else "")
    )
    print("  " + ", ".join(f"{n} {s}" for s, n in rep.counts.items()))
    for warning in rep.warnings:
        sys.stderr.write(f"warning: {warning}\n")
    table: list[list[str]] = []
    for r in rep.upcoming[:3]:
        table.append(["next", *_brief(r), status_text(r, now)])
    for r in rep.missed[:12]:
        table.append(["missed", *_brief(r), status_text(r, now)])
    if len(rep.missed) > 12:
        table.append(["missed", "", "", "", "", f"… and {len(rep.missed) - 12} more"])
    for r in rep.attention[:12]:
        why = status_text(r, now)
        if r.status == "planned":
            why += "; due within 24 h"
        elif r.last_error and r.status not in ("held", "failed"):
            why += f"; {r.last_error}"
        table.append(["needs a person", *_brief(r), why])
    if len(rep.attention) > 12:
        table.append(
            [
                "needs a person",
                "",
                "",
                "",
                "",
                f"… and {len(rep.attention) - 12} more: `aspdigest schedule list`",
            ]
        )
    if table:
        print_table(("", "id", "day", "channel", "platform", "what happens"), table)


def _brief(r: object) -> list[str]:
    return [str(r.id), r.date.isoformat(), r.channel, r.platform or "email"]  # type: ignore[attr-defined]
