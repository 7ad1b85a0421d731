"""Run the whole build for one event: content → days → renderers → artifacts on disk.

The orchestrating stage. `build(project, event_id)` validates everything before writing
anything, renders each day (reusing a day from the previous build when none of its inputs
changed; the cards of every day to render are started first, in worker processes, and
collected last), runs the event-wide renderers over all days (reusing their files too when no day's
inputs changed: they depend on nothing else, not even the state store), and hands the lot to
`artifacts.write_output`. Progress is reported through a callback so the CLI can draw a
bar and tests can stay quiet. Returns a frozen `BuildResult`, which lists the artifacts a
renderer marked blocked (one platform's thread on one day that cannot be made): the build
still writes everything, and the CLI fails only under `--strict`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass

from aspdigest import __version__
from aspdigest.artifacts import Written, dumps, read_day, read_event, write_output
from aspdigest.config import Project
from aspdigest.content import load_content
from aspdigest.days import Day, plan_days
from aspdigest.errors import UserError
from aspdigest.inputs import (
    QUICK,
    code_digest,
    quick_facts,
    quick_key,
    schedule_file,
    settings_json,
    templates_digest,
)
from aspdigest.readiness import settings_warnings
from aspdigest.render import (
    DAY_RENDERERS,
    EVENT_RENDERERS,
    DayOutput,
    RenderContext,
    Rendered,
    event_renderers,
    start_day_renderers,
)
from aspdigest.render.templates import make_environment

# step(done, total, what) — called after each unit of work.
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class Blocked:
    """One artifact the build could not make (one platform, one day) and why; the rest of
    the build is written all the same."""

    date: str
    path: str  # day-relative: thread.<platform>.json
    reason: str


@dataclass(frozen=True)
class BuildResult:
    event_id: str
    written: Written
    days: tuple[DayOutput, ...]
    reused: tuple[str, ...]  # dates whose artifacts came unchanged from the previous build
    warnings: tuple[str, ...]
    event_reused: bool = False  # the feed and review site came unchanged from the previous build
    blocked: tuple[Blocked, ...] = ()  # `build --strict` fails on any

    @property
    def artifact_count(self) -> int:
        return sum(len(d.rendered.artifacts) for d in self.days)


def _inputs_key(day: Day, shared: str) -> str:
    return hashlib.sha256(dumps({"shared": shared, "sources": day.sources})).hexdigest()


def build_time() -> dt.datetime:
    """Now, or SOURCE_DATE_EPOCH when set (the reproducible-builds convention)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        try:
            return dt.datetime.fromtimestamp(int(epoch), tz=dt.UTC)
        except ValueError:
            raise UserError(f"SOURCE_DATE_EPOCH: expected whole seconds, got {epoch!r}") from None
    return dt.datetime.now(dt.UTC)


def build(
    project: Project,
    event_id: str,
    only: dt.date | None = None,
    progress: Progress | None = None,
    force: bool = False,
    now: dt.datetime | None = None,
) -> BuildResult:
    # Hashed before anything is read: should a file change during the build, the key is the
    # old one and the next build does the full check.
    quick = quick_key(project, event_id) if only is None else None
    content = load_content(project, event_id)
    event = content.event
    if only is not None and not event.start <= only <= event.end:
        raise UserError(f"--day {only}: outside {event.id}'s dates ({event.start} to {event.end})")
    days = plan_days(content, only)
    ctx = RenderContext(project=project, content=content, env=make_environment(project))
    templates = templates_digest(project)
    # The store's location is no input: out/ never depends on the state store (a pure build).
    settings = settings_json(project)
    shared = hashlib.sha256(
        dumps(
            {
                "code": code_digest(),
                "settings": settings,
                "templates": templates,
                "renderers": [*DAY_RENDERERS, *EVENT_RENDERERS],
            }
        )
    ).hexdigest()
    event_dir = project.output_dir / event.id
    total = len(days) + len(EVENT_RENDERERS)
    done = 0
    keys = {day.key: _inputs_key(day, shared) for day in days}
    previous_days = {}
    for day in days:
        previous = None if force else read_day(event_dir, day.key)
        if previous is not None and previous.inputs == keys[day.key]:
            previous_days[day.key] = previous
            done += 1
            if progress:
                progress(done, total, day.key)
    fresh = [day for day in days if day.key not in previous_days]
    # Imported and started only when a day needs rendering: a rebuild with nothing changed
    # needs none. Renderers that started their work on every day ahead (cards, in other
    # processes) are collected last, so that work runs while the others render.
    renderers = start_day_renderers(fresh, ctx) if fresh else []
    parts: dict[tuple[str, int], Rendered] = {}
    for late in (False, True):
        for day in fresh:
            for n, renderer in enumerate(renderers):
                if renderer.late == late:
                    parts[day.key, n] = renderer.render(day, ctx)
            if late:
                done += 1
                if progress:
                    progress(done, total, day.key)
    outputs: list[tuple[DayOutput, str]] = []
    reused: list[str] = []
    for day in days:
        key = keys[day.key]
        if day.key in previous_days:
            outputs.append((DayOutput(day, previous_days[day.key].rendered), key))
            reused.append(day.key)
        else:
            rendered = Rendered()
            for n in range(len(renderers)):
                rendered = rendered + parts[day.key, n]
            outputs.append((DayOutput(day, rendered), key))
    event_rendered = Rendered()
    built = tuple(out for out, _ in outputs)
    every = list(outputs)
    if only is not None:
        # Event-wide pages (feed, review index) list every day, not just the one rebuilt:
        # the others come back from the previous build as they are on disk.
        for day in plan_days(content):
            if day.date != only and (previous := read_day(event_dir, day.key)) is not None:
                every.append((DayOutput(day, previous.rendered), previous.inputs))
        every.sort(key=lambda pair: pair[0].day.date)
    all_days = tuple(out for out, _ in every)
    # The feed dates entries by the schedule's send times: the schedule file is an input.
    schedule = schedule_file(project, event.id)
    schedule_hash = hashlib.sha256(schedule.read_bytes()).hexdigest() if schedule.is_file() else ""
    event_key = hashlib.sha256(
        dumps(
            {
                "shared": shared,
                "days": {out.day.key: key for out, key in every},
                "schedule": schedule_hash,
            }
        )
    ).hexdigest()
    previous_event = None if force else read_event(event_dir)
    event_reused = previous_event is not None and previous_event.inputs == event_key
    if previous_event is not None and event_reused:
        event_rendered = previous_event.rendered
        if progress:
            progress(total, total, "event")
    else:
        for j, event_renderer in enumerate(event_renderers(), start=len(days) + 1):
            event_rendered = event_rendered + event_renderer(all_days, ctx)
            if progress:
                progress(j, total, "event")
    facts = {
        "event": event.id,
        "aspdigest": __version__,
        "inputs": shared,
        "event_inputs": event_key,
        "settings_sha256": hashlib.sha256(settings.encode()).hexdigest(),
        "templates": templates,
    }
    blocked = tuple(
        Blocked(out.day.key, a.path, str(a.meta["blocked"]))
        for out in built
        for a in out.rendered.artifacts
        if a.meta.get("blocked") and a.path.endswith(".json")
    )
    # A blocked artifact is reported once, as `blocked` (the renderer's own warning, kept in
    # the manifest, would say it a second time).
    said = {(b.date, f"social: {b.path.split('.')[1]}: blocked: {b.reason}") for b in blocked}
    warnings = (
        tuple(str(w) for w in settings_warnings(project))
        + tuple(str(w) for w in content.warnings)
        + tuple(
            f"{out.day.key}: {w}"
            for out in built
            for w in out.rendered.warnings
            if (out.day.key, w) not in said
        )
        + event_rendered.warnings
    )
    if quick is not None:
        # What the CLI reports when a later build finds this key again (see inputs.unchanged).
        facts[QUICK] = quick_facts(
            quick,
            [out.day.key for out in built],
            sum(len(out.rendered.artifacts) for out in built),
            list(warnings),
            [b.__dict__ for b in blocked],
        )
    written = write_output(
        project.output_dir,
        event.id,
        outputs,
        event_rendered,
        facts,
        now or build_time(),
        reused=set(reused),
        event_reused=event_reused,
    )
    return BuildResult(event.id, written, built, tuple(reused), warnings, event_reused, blocked)
