"""Run the whole build for one event: content → days → renderers → artifacts on disk.

The orchestrating stage. `build(project, event_id)` validates everything before writing
anything, renders each day (reusing a day from the previous build when none of its inputs
changed), runs the event-wide renderers over all days (reusing their files too when no day's
inputs changed: they depend on nothing else, not even the state store), and hands the lot to
`artifacts.write_output`. Progress is reported through a callback so the CLI can draw a
bar and tests can stay quiet. Returns a frozen `BuildResult`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aspdigest import __version__
from aspdigest.artifacts import Written, dumps, read_day, read_event, write_output
from aspdigest.config import Project
from aspdigest.content import load_content
from aspdigest.days import Day, plan_days
from aspdigest.errors import UserError
from aspdigest.readiness import settings_warnings
from aspdigest.render import (
    DAY_RENDERERS,
    EVENT_RENDERERS,
    DayOutput,
    RenderContext,
    Rendered,
    day_renderers,
    event_renderers,
)
from aspdigest.render.templates import make_environment, templates_digest

# step(done, total, what) — called after each unit of work.
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class BuildResult:
    event_id: str
    written: Written
    days: tuple[DayOutput, ...]
    reused: tuple[str, ...]  # dates whose artifacts came unchanged from the previous build
    warnings: tuple[str, ...]
    event_reused: bool = False  # the feed and review site came unchanged from the previous build

    @property
    def artifact_count(self) -> int:
        return sum(len(d.rendered.artifacts) for d in self.days)


def code_digest() -> str:
    """Hash of aspdigest's own code and data (fonts, default templates), so a change to any of
    them invalidates days reused from the previous build."""
    digest = hashlib.sha256(__version__.encode())
    package = Path(__file__).resolve().parent
    for path in sorted(package.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


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
    content = load_content(project, event_id)
    event = content.event
    if only is not None and not event.start <= only <= event.end:
        raise UserError(f"--day {only}: outside {event.id}'s dates ({event.start} to {event.end})")
    days = plan_days(content, only)
    ctx = RenderContext(project=project, content=content, env=make_environment(project))
    templates = templates_digest(project)
    # The store's location is no input: out/ never depends on the state store (a pure build).
    settings_json = project.settings.model_dump_json(by_alias=True, exclude={"state"})
    shared = hashlib.sha256(
        dumps(
            {
                "code": code_digest(),
                "settings": settings_json,
                "templates": templates,
                "renderers": [*DAY_RENDERERS, *EVENT_RENDERERS],
            }
        )
    ).hexdigest()
    event_dir = project.output_dir / event.id
    renderers = None  # imported on first use: a rebuild with nothing changed needs none
    total = len(days) + len(EVENT_RENDERERS)
    outputs: list[tuple[DayOutput, str]] = []
    reused: list[str] = []
    for i, day in enumerate(days, start=1):
        key = _inputs_key(day, shared)
        previous = None if force else read_day(event_dir, day.key)
        if previous is not None and previous.inputs == key:
            outputs.append((DayOutput(day, previous.rendered), key))
            reused.append(day.key)
        else:
            rendered = Rendered()
            if renderers is None:
                renderers = day_renderers()
            for renderer in renderers:
                rendered = rendered + renderer(day, ctx)
            outputs.append((DayOutput(day, rendered), key))
        if progress:
            progress(i, total, day.key)
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
    schedule = project.schedules_dir / f"{event.id}.toml"
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
        "settings_sha256": hashlib.sha256(settings_json.encode()).hexdigest(),
        "templates": templates,
    }
    written = write_output(
        project.output_dir, event.id, outputs, event_rendered, facts, now or build_time()
    )
    warnings = (
        tuple(str(w) for w in settings_warnings(project))
        + tuple(str(w) for w in content.warnings)
        + tuple(f"{out.day.key}: {w}" for out in built for w in out.rendered.warnings)
        + event_rendered.warnings
    )
    return BuildResult(event.id, written, built, tuple(reused), warnings, event_reused)
