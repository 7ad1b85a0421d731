"""Commands that steer the delivery queue: `schedule plan|list|pause|resume|reschedule|send-now|
skip|retry|resolve|ics`. `approve`, `run` and `status` live in `cli/delivery.py`."""

from __future__ import annotations

import datetime as dt
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from aspdigest.cli import (
    EventArg,
    JsonOpt,
    ProjectOpt,
    app,
    approver,
    date_param,
    fail,
    opened,
    resolve_all,
    run,
)
from aspdigest.errors import UserError

schedule_app = typer.Typer(
    help="The delivery queue: plan it from schedules/<event>.toml and "
    "the build, list it, steer single deliveries.",
    no_args_is_help=True,
)
app.add_typer(schedule_app, name="schedule")

ByOpt = Annotated[
    str | None,
    typer.Option(
        "--by",
        metavar="NAME",
        help="Who does it (default: $ASPDIGEST_APPROVER, else the OS user).",
        show_default=False,
    ),
]
IdArg = Annotated[int, typer.Argument(metavar="ID", help="Delivery id (see `schedule list`).")]


def _by(name: str | None) -> str:
    return approver(name)


def _row(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "date": r.date.isoformat(),
        "channel": r.channel,
        "platform": r.platform or "email",
        "status": r.status,
        "send_at_local": r.send_at_local.isoformat() if r.send_at_local else None,
        "send_at_utc": r.send_at_utc.isoformat().replace("+00:00", "Z") if r.send_at_utc else None,
        "approved_by": r.approved_by,
        "last_error": r.last_error,
        "posted": r.posted,
        "changed_since_approval": r.changed,
    }


ROW_HEADERS = ("id", "day", "local time", "utc", "channel", "platform", "status", "what happens")


def _cells(r: Any, now: dt.datetime) -> list[str]:
    from aspdigest.queue.schedule import local_text, utc_text
    from aspdigest.queue.telling import status_text

    tz = r.send_at_local.tzinfo if r.send_at_local else dt.UTC
    happens = status_text(r, now, tz)
    if r.last_error and r.status not in ("held", "failed"):
        happens += f"; {r.last_error}"
    if r.posted and r.status != "sent":
        happens += f"; {r.posted} post(s) up"
    return [
        str(r.id),
        r.date.isoformat(),
        local_text(r.send_at_utc, tz),
        utc_text(r.send_at_utc),
        r.channel,
        r.platform or "email",
        r.status,
        happens,
    ]


def _print_rows(rows: list[Any], now: dt.datetime, events: list[str] | None = None) -> None:
    """The queue as a table; with `events` (one per row) an event column first."""
    from aspdigest.cli.table import print_table

    table = [_cells(r, now) for r in rows]
    headers: tuple[str, ...] = ROW_HEADERS
    if events is not None:
        headers = ("event", *ROW_HEADERS)
        table = [[e, *t] for e, t in zip(events, table, strict=True)]
    print_table(headers, table, empty="no deliveries")


def _warn(line: str | None) -> None:
    if line:
        sys.stderr.write(f"warning: {line}\n")


def _changed(store: Any, d: Any, what: str) -> None:
    from aspdigest.queue.actions import describe

    print(f"{describe(store, d)} ({what})")


@schedule_app.command("plan")
def schedule_plan(
    event: EventArg = None,
    skip_past: Annotated[
        bool,
        typer.Option(
            "--skip-past",
            help="Mark the deliveries whose time has already passed (and not sent) as skipped.",
        ),
    ] = False,
    by: ByOpt = None,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create or update deliveries from the schedule and the build (safe to re-run)."""
    from aspdigest.queue.actions import listing
    from aspdigest.queue.plan import plan, skip_past_deliveries
    from aspdigest.queue.telling import is_missed, subscriber_warning

    with opened(project, event) as (proj, event_id, store):
        result = run(lambda: plan(proj, event_id, store))
        skipped = (
            run(lambda: skip_past_deliveries(store, event_id, by=_by(by))) if skip_past else []
        )
        rows = listing(store, event_id, project=proj)
        now = store.clock()
        audience = len(store.active_subscribers())
    past = [r for r in rows if is_missed(r, now)]
    for note in result.notes:
        sys.stderr.write(f"note: {note}\n")
    for refusal in result.refused:  # blocked by the build; the others are planned
        sys.stderr.write(f"refused: {refusal}\n")
    if past:
        sys.stderr.write(
            f"note: {len(past)} deliveries are already past their time and not sent "
            f"(ids {', '.join(str(r.id) for r in past[:10])}{', …' if len(past) > 10 else ''})"
            f"; `aspdigest schedule plan "
            f"{event_id} --skip-past` marks them skipped\n"
        )
    _warn(subscriber_warning(audience, any(r.channel == "digest" for r in rows)))
    if as_json:
        print(
            json.dumps(
                {
                    "event": event_id,
                    "changes": [{**c.__dict__, "date": c.date.isoformat()} for c in result.changes],
                    "notes": list(result.notes),
                    "refused": [{**r.__dict__, "date": r.date.isoformat()} for r in result.refused],
                    "past": [r.id for r in past],
                    "skipped_past": [d.id for d in skipped],
                    "queue": [_row(r) for r in rows],
                },
                indent=2,
            )
        )
        return
    counts = ", ".join(
        f"{result.count(a)} {a}"
        for a in ("created", "updated", "unapproved", "unchanged", "kept", "removed")
        if result.count(a)
    )
    print(f"{event_id}: {len(result.changes)} deliveries ({counts or 'none'})")
    for c in result.changes:
        if c.action in ("unapproved", "removed"):
            print(
                f"  delivery {c.delivery_id} ({c.date} {c.channel} {c.platform}): "
                f"{c.action}: {c.note}".replace("  )", ")")
            )
    if skipped:
        print(f"  {len(skipped)} past deliveries skipped: {', '.join(str(d.id) for d in skipped)}")
    _print_rows(rows, now)


@schedule_app.command("list")
def schedule_list(
    event: EventArg = None,
    day: Annotated[
        dt.date | None,
        typer.Option(
            "--day", parser=date_param("--day"), help="Only this conference day (YYYY-MM-DD)."
        ),
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            help="Only this status (planned, "
            "approved, claimed, sent, failed, unknown, "
            "skipped, held).",
        ),
    ] = None,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List deliveries: id, day, local time and UTC, channel, platform, status, and what will
    really happen (every event of the project when it has several and none is named)."""
    from aspdigest.queue.actions import listing
    from aspdigest.store import open_project_store

    proj, event_ids = resolve_all(project, event)
    with run(lambda: open_project_store(proj)) as store:
        per_event = [
            (e, listing(store, e, day=day, status=status, project=proj)) for e in event_ids
        ]
        now = store.clock()
    rows = [r for _, rs in per_event for r in rs]
    if as_json:
        several = len(event_ids) > 1
        print(
            json.dumps(
                [
                    {**({"event": e} if several else {}), **_row(r)}
                    for e, rs in per_event
                    for r in rs
                ],
                ensure_ascii=False,
                indent=2,
            )
        )
    else:
        events = [e for e, rs in per_event for _ in rs] if len(event_ids) > 1 else None
        _print_rows(rows, now, events)


@schedule_app.command("pause")
def schedule_pause(event: EventArg = None, by: ByOpt = None, project: ProjectOpt = None) -> None:
    """Stop the runner starting any of the event's deliveries (one in hand finishes)."""
    from aspdigest.queue.actions import pause

    with opened(project, event) as (_proj, event_id, store):
        queue = run(lambda: pause(store, event_id, by=_by(by)))
    print(
        f"{event_id}: paused (by {queue.paused_by}); `aspdigest schedule resume "
        f"{event_id}` lets it go on"
    )


class Overdue(StrEnum):
    send = "send"
    skip = "skip"
    reschedule = "reschedule"


@schedule_app.command("resume")
def schedule_resume(
    event: EventArg = None,
    overdue: Annotated[
        Overdue | None,
        typer.Option(
            "--overdue",
            help="What to do with deliveries that came due while paused (asked when not given).",
        ),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            metavar="TIME",
            help="With --overdue reschedule: the new local time (HH:MM or YYYY-MM-DD HH:MM).",
        ),
    ] = None,
    by: ByOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Unpause the event's queue, deciding what happens to overdue deliveries."""
    from aspdigest.queue.actions import OverdueDecision, resume

    choice = overdue.value if overdue else None
    with opened(project, event) as (proj, event_id, store):
        try:
            late = resume(proj, store, event_id, choice=choice, by=_by(by), at=at)
        except OverdueDecision as exc:
            if not sys.stdin.isatty():
                fail(exc.lines())
            sys.stderr.write(exc.text + "\n")
            choice = ""
            while choice not in [o.value for o in Overdue]:
                choice = str(typer.prompt("send, skip or reschedule?")).strip().lower()
            if choice == "reschedule" and not at:
                at = typer.prompt("new local time (HH:MM)")
            late = run(lambda: resume(proj, store, event_id, choice=choice, by=_by(by), at=at))
        except UserError as exc:
            fail(exc.lines())
            return
    print(f"{event_id}: resumed" + (f"; {len(late)} overdue: {choice}" if late else ""))


@schedule_app.command("reschedule")
def schedule_reschedule(
    delivery_id: IdArg,
    when: Annotated[
        str,
        typer.Argument(
            metavar="TIME", help='New local time: HH:MM (same day) or "YYYY-MM-DD HH:MM".'
        ),
    ],
    by: ByOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Move a delivery not yet sent to another local time (brings back a skipped one)."""
    from aspdigest.queue.actions import reschedule

    with opened(project, with_event=False) as (proj, _, store):
        d = run(lambda: reschedule(proj, store, delivery_id, when, by=_by(by)))
        _changed(store, d, "rescheduled")


@schedule_app.command("send-now")
def schedule_send_now(delivery_id: IdArg, by: ByOpt = None, project: ProjectOpt = None) -> None:
    """Send an approved (or held) delivery now: through the running runner, else here."""
    from aspdigest.queue.actions import send_now

    with opened(project, with_event=False) as (proj, _, store):
        d = run(lambda: send_now(proj, store, delivery_id, by=_by(by)))
        _deliver_here(proj, store, d.id)


@schedule_app.command("skip")
def schedule_skip(delivery_id: IdArg, by: ByOpt = None, project: ProjectOpt = None) -> None:
    """Never send this delivery (reschedule brings it back)."""
    from aspdigest.queue.actions import skip

    with opened(project, with_event=False) as (proj, _, store):
        d = run(lambda: skip(proj, store, delivery_id, by=_by(by)))
        _changed(store, d, "skipped")


@schedule_app.command("retry")
def schedule_retry(delivery_id: IdArg, by: ByOpt = None, project: ProjectOpt = None) -> None:
    """Send a failed or held delivery again now (email: only recipients still without it)."""
    from aspdigest.queue.actions import retry

    with opened(project, with_event=False) as (proj, _, store):
        d = run(lambda: retry(proj, store, delivery_id, by=_by(by)))
        _deliver_here(proj, store, d.id)


def _deliver_here(proj: Any, store: Any, delivery_id: int) -> None:
    """Leave a due delivery to the running runner, or deliver it in this shell."""
    import sys

    from aspdigest.queue.joblog import log_to
    from aspdigest.queue.serve import deliver_now

    with log_to(sys.stderr):
        delivered = run(lambda: deliver_now(proj, store, delivery_id))
    if not delivered:
        print(
            f"delivery {delivery_id}: due now; the running `aspdigest run` sends it within "
            f"{proj.settings.delivery.poll_seconds:g} s"
        )
        return
    after = store.delivery(delivery_id)
    _changed(store, after, "delivered from this shell: no runner was up")
    if after.status != "sent":
        raise typer.Exit(1)


@schedule_app.command("show")
def schedule_show(delivery_id: IdArg, project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """One delivery: its status, times, history and the recipients in doubt."""
    from aspdigest.queue.actions import show

    with opened(project, with_event=False) as (_proj, _, store):
        view = run(lambda: show(store, delivery_id))
    if as_json:
        print(json.dumps(_view_json(view), ensure_ascii=False, indent=2))
    else:
        _print_view(view)


def _iso(when: dt.datetime | None) -> str | None:
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if when else None


def _view_json(view: Any) -> dict[str, Any]:
    d = view.delivery
    return {
        "id": d.id,
        "event": d.event,
        "date": d.date.isoformat(),
        "channel": d.channel,
        "platform": d.platform or "email",
        "status": d.status,
        "send_at_utc": _iso(d.send_at),
        "approved_by": d.approved_by,
        "approved_at_utc": _iso(d.approved_at),
        "claimed_at_utc": _iso(d.claimed_at),
        "sent_at_utc": _iso(d.sent_at),
        "attempts": d.attempts,
        "last_error": d.last_error,
        "recipients": view.counts,
        "history": [
            {
                "at_utc": _iso(e.at),
                "status": e.status,
                "previous": e.previous,
                "by": e.actor,
                "note": e.note,
            }
            for e in view.history
        ],
        "in_doubt": [
            {"address": r.address, "since_utc": _iso(r.updated_at), "error": r.last_error}
            for r in view.in_doubt
        ],
    }


def _print_view(view: Any) -> None:
    from aspdigest.queue.approval import label
    from aspdigest.queue.schedule import local_text, utc_text
    from aspdigest.safetext import terminal_safe

    d = view.delivery

    def safe(text: str | None) -> str:  # server replies and notes may carry anything
        return terminal_safe(text) if text else "-"

    approved = f"{utc_text(d.approved_at)} by {safe(d.approved_by)}" if d.approved_at else "-"
    counts = ", ".join(f"{n} {status}" for status, n in view.counts.items())
    lines = [
        f"{label(d)}: {d.status}",
        f"send at:    {local_text(d.send_at, view.tz)} ({utc_text(d.send_at)})"
        if d.send_at
        else "send at:    -",
        f"approved:   {approved}",
        f"claimed:    {utc_text(d.claimed_at)}",
        f"sent:       {utc_text(d.sent_at)}",
        f"attempts:   {d.attempts}",
        f"last error: {safe(d.last_error)}",
    ]
    if counts:
        lines.append(f"recipients: {counts}")
    lines.append("history:")
    for e in view.history:
        moved = f"{e.previous} -> {e.status}" if e.previous != e.status else e.status
        note = f": {terminal_safe(e.note)}" if e.note else ""
        lines.append(f"  {utc_text(e.at)}  {moved}  by {terminal_safe(e.actor)}{note}")
    if not view.history:
        lines.append("  -")
    lines.append(f"in doubt: {len(view.in_doubt)}")
    for r in view.in_doubt:
        lines.append(f"  {r.address}  since {utc_text(r.updated_at)}  {safe(r.last_error)}")
    print("\n".join(lines))


@schedule_app.command("resolve")
def schedule_resolve(
    delivery_id: IdArg,
    sent: Annotated[
        bool | None,
        typer.Option(
            "--sent/--not-sent",
            help="What checking the server or platform showed: it went out, "
            "or it did not (then `retry` sends it).",
            show_default=False,
        ),
    ] = None,
    recipients: Annotated[
        list[str] | None,
        typer.Option(
            "--recipient",
            metavar="ADDRESS",
            help="Decide only this recipient in doubt (repeatable; `schedule show ID` "
            "lists them); without it, the whole delivery.",
            show_default=False,
        ),
    ] = None,
    by: ByOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Decide a delivery left `unknown` by an interrupted send, or single recipients of it."""
    from aspdigest.queue.actions import resolve, resolve_recipients
    from aspdigest.store import normalise_address

    if sent is None:
        fail(["resolve: say --sent or --not-sent"])
        return
    with opened(project, with_event=False) as (proj, _, store):
        if not recipients:
            d = run(lambda: resolve(proj, store, delivery_id, sent=bool(sent), by=_by(by)))
            _changed(store, d, "resolved")
            return
        who = _by(by)
        d = run(
            lambda: resolve_recipients(
                proj, store, delivery_id, recipients, sent=bool(sent), by=who
            )
        )
        left = store.recipient_counts(d.id)["unknown"]
        what = "sent" if sent else "not sent"
        _changed(
            store,
            d,
            f"{len({normalise_address(a) for a in recipients})} recipient(s) resolved as {what}, {left} in doubt",
        )


@schedule_app.command("ics")
def schedule_ics(
    event: EventArg = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", metavar="PATH", help="Write here instead of to standard output."
        ),
    ] = None,
    project: ProjectOpt = None,
) -> None:
    """The queue as an iCalendar file (stable UIDs: calendars update, not duplicate; every
    event of the project when it has several and none is named)."""
    from aspdigest.content import event_name
    from aspdigest.queue.actions import ics, queue_of
    from aspdigest.store import open_project_store

    proj, event_ids = resolve_all(project, event)
    names = {e: event_name(proj, e) for e in event_ids}
    with run(lambda: open_project_store(proj)) as store:
        if len(event_ids) == 1:
            run(lambda: queue_of(store, event_ids[0]))
        data = ics(store, event_ids, names)
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        output.write_bytes(data)
        print(f"{', '.join(event_ids)}: queue calendar -> {output}")


# approve, run and status register after the schedule group, as before the split.
from aspdigest.cli import delivery as delivery  # noqa: E402
