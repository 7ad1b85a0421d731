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
from typing import Annotated

import typer

from aspdigest.cli import (
    EventArg,
    JsonOpt,
    ProjectOpt,
    app,
    cell,
    date_param,
    opened,
    resolve,
    run,
)
from aspdigest.cli.schedule import ByOpt, _by, _row


@app.command()
def approve(
    event: Annotated[str, typer.Argument(metavar="EVENT", help="Event id.")],
    day: Annotated[
        dt.date,
        typer.Argument(
            metavar="DATE", parser=date_param("DATE"), help="Conference day (YYYY-MM-DD)."
        ),
    ],
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
    from aspdigest.store import open_project_store

    proj, event_id = resolve(project, event)

    def go() -> DayApproval:
        who = _by(by)
        # Bad input is refused before the store is opened (which would create it).
        check_request(proj, event_id, day, channel=channel, platform=platform, by=who)
        with open_project_store(proj) as store:
            # A whole day: a digest the settings cannot send yet is held, the rest approved.
            return approve_day(
                proj,
                store,
                event_id,
                day,
                channel=channel,
                platform=platform,
                by=who,
                hold_unready=channel is None and platform is None,
            )

    result = run(go)
    done = result.approved
    for line in result.held:
        sys.stderr.write(f"{line}\n")
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
    from aspdigest.queue.rehearsal import rehearse as run_rehearsal
    from aspdigest.queue.schedule import local_text

    day = rehearse
    with log_to(sys.stderr):
        result = run(lambda: run_rehearsal(proj, event_id, day, speed, environ=os.environ))
    for r in result.deliveries:
        late = f"{r.late_seconds * 1000:.0f} ms late" if r.late_seconds is not None else "-"
        zone = r.planned_local.tzinfo or dt.UTC
        print(
            "\t".join(
                [
                    local_text(r.planned_local, zone),
                    r.channel,
                    r.platform or "email",
                    r.status,
                    late,
                    r.detail,
                ]
            )
        )
    print(
        f"rehearsal of {event_id} {day} at {speed:g}x: {result.messages} message(s) in "
        f"{proj.relative(result.folder / 'mail')}, posts in "
        f"{proj.relative(result.folder / 'outbox')}"
    )


@app.command()
def status(event: EventArg = None, project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """The queue at a glance: runner, pause, counts, what is next, what needs a person."""
    from aspdigest.queue.actions import report
    from aspdigest.queue.schedule import local_text
    from aspdigest.queue.serve import store_name
    from aspdigest.store.lock import RunnerLock

    with opened(project, event) as (proj, event_id, store):
        holder = RunnerLock(store, store_name(proj, store)).held_elsewhere()
        rep = run(lambda: report(store, event_id, running=holder is not None))
    if as_json:
        print(
            json.dumps(
                {
                    "event": rep.event,
                    "timezone": rep.timezone,
                    "running": rep.running,
                    "runner": rep.runner.__dict__ if rep.runner else None,
                    "paused_at": rep.paused_at,
                    "paused_by": rep.paused_by,
                    "counts": rep.counts,
                    "upcoming": [_row(r) for r in rep.upcoming],
                    "attention": [_row(r) for r in rep.attention],
                },
                indent=2,
                default=str,
            )
        )
        return
    runner_text = "not running"
    if rep.running and rep.runner:
        runner_text = (
            f"running (pid {rep.runner.pid} on {rep.runner.host}, last seen "
            f"{rep.runner.seen_at:%H:%M:%SZ})"
        )
    elif rep.running:
        runner_text = "running"
    print(
        f"{event_id}: runner {runner_text}"
        + (f"; PAUSED by {cell(rep.paused_by or '')}" if rep.paused_at else "")
    )
    print("  " + ", ".join(f"{n} {s}" for s, n in rep.counts.items()))
    for r in rep.upcoming[:3]:
        print(
            f"  next: {r.id} {r.channel} {r.platform or 'email'} "
            f"{local_text(r.send_at_utc, r.send_at_local.tzinfo or dt.UTC) if r.send_at_local else '-'}"
        )
    now = dt.datetime.now(dt.UTC)
    for r in rep.attention[:12]:
        why = r.last_error or (
            "its time passed without approval"
            if r.send_at_utc and r.send_at_utc <= now
            else "not approved; due within 24 h"
        )
        print(
            f"  needs a person: {r.id} {r.date} {r.channel} {r.platform or 'email'} "
            f"{r.status}: {cell(why)}"  # a server's error text, escaped
        )
    if len(rep.attention) > 12:
        print(f"  … and {len(rep.attention) - 12} more: `aspdigest schedule list`")
