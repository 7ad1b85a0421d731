"""The deliver stage: hand approved artifacts to the outside world, once.

Last stage of the flow (… → schedule/outbox → deliver). Each channel has a module:
`deliver.email` sends the email digest (one test copy, or every subscriber with progress
kept in the state store) over `deliver.smtp`. Thread and quote posts go through a
`Publisher`: `publication_for(project, delivery)` reads the approved `thread.<platform>.json`
into a frozen `Publication`, and `make_publisher(name, …)` returns the publisher that hands it
on (`handoff`, the default, writes ready-to-post files and may email them to the team; API
publishers register in `PUBLISHERS`). A publisher returns a receipt mapping, raises
`UserError` when nothing went out, and `PublishUncertain` when it cannot tell. The scheduler
imports what it needs from here; nothing in this package imports the CLI or the scheduler.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from aspdigest.config import Project
from aspdigest.deliver.email import SendReport, send_digest, send_test
from aspdigest.errors import UserError
from aspdigest.outbox import Delivery
from aspdigest.schedule import day_dir, thread_file

__all__ = [
    "PUBLISHERS",
    "Post",
    "Publication",
    "PublishUncertain",
    "Publisher",
    "SendReport",
    "make_publisher",
    "publication_for",
    "send_digest",
    "send_test",
]

# name → "module:factory"; a factory takes (project, environ, outbox) and returns a Publisher.
PUBLISHERS: dict[str, str] = {
    "handoff": "aspdigest.deliver.handoff:HandoffPublisher",
}


@dataclass(frozen=True)
class Media:
    path: str  # relative to the day's build folder
    alt: str


@dataclass(frozen=True)
class Post:
    text: str
    media: tuple[Media, ...] = ()


@dataclass(frozen=True)
class Publication:
    """What one thread or quotes delivery posts: groups of posts (a thread is one group,
    each quote post is its own group), their media in the build folder."""

    delivery_id: int
    event: str
    date: dt.date
    channel: str  # thread or quotes
    platform: str
    folder: Path  # out/<event>/<date>/
    groups: tuple[tuple[Post, ...], ...]


class PublishUncertain(UserError):
    """The publisher cannot tell whether the posts went out (the delivery becomes unknown)."""


class Publisher(Protocol):
    name: str

    def publish(self, publication: Publication) -> Mapping[str, Any]:
        """Hand the posts on; return a receipt (ids, URLs, folders) for the store."""
        ...


def _posts(raw: Any) -> tuple[Post, ...]:
    return tuple(
        Post(str(p["text"]), tuple(Media(str(m["path"]), str(m.get("alt", "")))
                                   for m in p.get("media") or []))
        for p in raw or [])


def publication_for(project: Project, d: Delivery) -> Publication:
    """The approved posts of a thread or quotes delivery, read from the build."""
    folder = day_dir(project, d.event, d.date)
    path = folder / thread_file(d.platform)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{project.relative(path)}: cannot read the posts ({exc})") from None
    if d.channel == "thread":
        groups: tuple[tuple[Post, ...], ...] = (_posts(data.get("posts")),)
    elif d.channel == "quotes":
        groups = tuple(_posts(q.get("posts")) for q in data.get("quote_posts") or [])
    else:
        raise UserError(f"delivery {d.id}: channel {d.channel} is not published by a publisher")
    groups = tuple(g for g in groups if g)
    if not groups:
        raise UserError(f"{project.relative(path)}: no {d.channel} posts to publish")
    return Publication(d.id, d.event, d.date, d.channel, d.platform, folder, groups)


def make_publisher(name: str, project: Project, environ: Mapping[str, str] | None = None,
                   outbox: Path | None = None) -> Publisher:
    """The publisher called `name` (delivery.publisher in aspdigest.toml)."""
    spec = PUBLISHERS.get(name)
    if spec is None:
        raise UserError(f'aspdigest.toml: delivery.publisher: unknown publisher "{name}"; '
                        f"known: {', '.join(sorted(PUBLISHERS))}")
    module, _, factory = spec.partition(":")
    publisher: Publisher = getattr(importlib.import_module(module), factory)(
        project, environ, outbox)
    return publisher
