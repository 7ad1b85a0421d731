"""The render stage: per-day renderers that turn a `Day` into artifacts.

Third stage. Each renderer is a function `render(day, ctx) -> Rendered`; event-wide
renderers (feeds, the review site) are `render_event(days, ctx) -> Rendered` and see every
day's artifacts. They register in one place, `DAY_RENDERERS` / `EVENT_RENDERERS` below, as
"module:function" strings so that `aspdigest --help` never imports Pillow or MJML.
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


def event_renderers() -> list[EventRenderer]:
    return [_load(spec) for spec in EVENT_RENDERERS]
