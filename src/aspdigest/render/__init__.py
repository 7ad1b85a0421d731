"""The render stage: per-day renderers that turn a `Day` into artifacts.

Third stage. Each renderer is a function `render(day, ctx) -> Rendered`; event-wide
renderers (feeds, the review site) are `render_event(days, ctx) -> Rendered` and see every
day's artifacts. They register in one place, `DAY_RENDERERS` / `EVENT_RENDERERS` below, as
"module:function" strings so that `aspdigest --help` never imports Pillow or MJML. A
renderer may also name, in `DAY_RENDERERS_AHEAD`, a function that starts its work for all
of a build's days at once (cards, in worker processes) while the others render.
Renderers return bytes in memory; only `artifacts.py` writes to disk.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jinja2

from aspdigest.config import Project
from aspdigest.content import Content
from aspdigest.days import Day

# Order matters only for event renderers that read other renderers' artifacts.
DAY_RENDERERS: tuple[str, ...] = (
    "aspdigest.render.summary:render",
    "aspdigest.render.email:render",
    "aspdigest.render.cards:render",
    "aspdigest.render.social:render",
)
# Renderers whose work a build starts for all its days at once, before walking them:
# "module:function" taking (days, ctx) and returning the day renderer that collects it.
DAY_RENDERERS_AHEAD: Mapping[str, str] = {
    "aspdigest.render.cards:render": "aspdigest.render.cards:ahead",
}
EVENT_RENDERERS: tuple[str, ...] = (
    "aspdigest.render.feed:render_event",
    "aspdigest.render.review:render_event",
)


@dataclass(frozen=True)
class Artifact:
    """One output file, relative to its day folder (or to the event folder for event renderers)."""

    path: str
    data: bytes
    sources: tuple[str, ...] = ()  # ids of the records it was made from
    alt: str | None = None  # alt text, for images
    meta: Mapping[str, Any] = field(default_factory=dict)  # extra manifest facts (lengths, sizes)


@dataclass(frozen=True)
class Rendered:
    artifacts: tuple[Artifact, ...] = ()
    warnings: tuple[str, ...] = ()

    def __add__(self, other: Rendered) -> Rendered:
        return Rendered(self.artifacts + other.artifacts, self.warnings + other.warnings)


@dataclass(frozen=True)
class RenderContext:
    """What every renderer may read besides its day."""

    project: Project
    content: Content
    env: jinja2.Environment


@dataclass(frozen=True)
class DayOutput:
    day: Day
    rendered: Rendered


DayRenderer = Callable[[Day, RenderContext], Rendered]
EventRenderer = Callable[[Sequence[DayOutput], RenderContext], Rendered]


def _load(spec: str) -> Any:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def day_renderers() -> list[DayRenderer]:
    return [_load(spec) for spec in DAY_RENDERERS]


@dataclass(frozen=True)
class Started:
    """A day renderer as a build of several days runs it (see `start_day_renderers`)."""

    render: DayRenderer
    late: bool  # its work is under way elsewhere: called after every other renderer's


def start_day_renderers(days: Sequence[Day], ctx: RenderContext) -> list[Started]:
    """The day renderers, in DAY_RENDERERS order, for a build of `days`: a renderer listed
    in DAY_RENDERERS_AHEAD first starts its work on every one of them (in other
    processes), and what it returns collects a day's part, best called last."""
    started = []
    for spec in DAY_RENDERERS:
        ahead = DAY_RENDERERS_AHEAD.get(spec)
        if ahead is None:
            started.append(Started(_load(spec), late=False))
        else:
            started.append(Started(_load(ahead)(days, ctx), late=True))
    return started


def event_renderers() -> list[EventRenderer]:
    return [_load(spec) for spec in EVENT_RENDERERS]
