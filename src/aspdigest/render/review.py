"""The review site: out/<event>/index.html and one page per day, for people to check drafts.

Event renderer (render stage), registered in EVENT_RENDERERS after the feed. `render_event(
days, ctx)` takes every day's `DayOutput` with its artifacts in memory and returns the pages
(`index.html`, `<date>/index.html`) and their static assets (`_review/review.css`,
`_review/review.js`, copied from templates/review/static/ so a project can override them).
The site works from the file system: every link is relative, nothing comes from a network.

Each day page shows the digest in frames at phone and desktop width with its size against
Gmail's clipping budget, every platform's posts with their length by the platform's own rule,
the quote cards, the build's warnings, and the approval status read from the state store when
there is one (reading never creates a store). The pages hold status only; the Approve buttons
are added by review.js when `aspdigest preview` serves them. The pages depend on the store's
contents as well as on the content, so a new approval changes them on the next build.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from babel.dates import format_datetime, format_interval

from aspdigest.config import Project
from aspdigest.errors import UserError
from aspdigest.render import Artifact, DayOutput, RenderContext, Rendered
from aspdigest.render.reviewviews import DayView, day_view
from aspdigest.render.templates import render_template
from aspdigest.render.threads import NAMES

TEMPLATES = {"index": "review/index.html.j2", "day": "review/day.html.j2"}
ASSETS = {
    "_review/review.css": "review/static/review.css",
    "_review/review.js": "review/static/review.js",
}
INDEX = "index.html"
APPROVED = ("approved", "claimed", "sent")
CHANNELS = {"digest": "email digest", "thread": "thread", "quotes": "quote posts"}


@dataclass(frozen=True)
class HashView:
    path: str
    approved: str
    current: str | None  # None: the build no longer has this artifact

    @property
    def same(self) -> bool:
        return self.current == self.approved


@dataclass(frozen=True)
class DeliveryView:
    id: int
    date: str
    channel: str
    platform: str
    label: str
    status: str
    send_at: str
    approved_by: str | None
    approved_at: str | None
    hashes: tuple[HashView, ...]
    last_error: str | None

    @property
    def changed(self) -> bool:
        """Approved, but the build now differs from what was approved."""
        return any(not h.same for h in self.hashes)


@dataclass(frozen=True)
class StoreView:
    state: str  # "none" (no store yet), "ok" or "error"
    message: str
    deliveries: tuple[DeliveryView, ...] = ()

    def for_day(self, key: str) -> tuple[DeliveryView, ...]:
        return tuple(d for d in self.deliveries if d.date == key)

    def approved(self, key: str | None = None) -> int:
        """Deliveries approved (or sent on approval) whose files are still as approved."""
        chosen = self.deliveries if key is None else self.for_day(key)
        return sum(d.status in APPROVED and not d.changed for d in chosen)


def delivery_label(channel: str, platform: str) -> str:
    what = CHANNELS.get(channel, channel)
    if not platform:
        return what[:1].upper() + what[1:]
    return f"{NAMES.get(platform, platform)} {what}"


def _when(value: Any, tz: dt.tzinfo, locale: str) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return format_datetime(
            aware, "EEE d MMM, HH:mm", tzinfo=tz, locale=locale.replace("-", "_")
        )
    return str(value)


def store_exists(project: Project) -> bool:
    """Whether the configured store exists; a SQLite file that is not there yet does not."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(project.settings.state.url)
    except ArgumentError:
        return True  # let the store itself report the bad URL
    if url.get_backend_name() != "sqlite":
        return True
    if url.database in (None, "", ":memory:"):
        return False
    path = Path(url.database or "")
    return (path if path.is_absolute() else project.root / path).is_file()


def _approved_hashes(status: Any) -> Mapping[str, str]:
    for name in ("approved", "approved_hashes", "approved_sha256"):
        value = getattr(status, name, None)
        if isinstance(value, Mapping):
            return value
    return {}


def read_store(
    project: Project, event_id: str, days: Sequence[DayView], tz: dt.tzinfo, locale: str
) -> StoreView:
    if not store_exists(project):
        return StoreView("none", "No state store yet: nothing has been planned or approved.")
    from aspdigest.queue.approval import status
    from aspdigest.store import open_project_store

    try:
        with open_project_store(project) as store:
            rows = status(store, event_id)
    except UserError as exc:
        return StoreView("error", f"The state store could not be read: {' '.join(exc.lines())}")
    current = {d.key: d.sha256s for d in days}
    channels, platforms = list(CHANNELS), list(project.settings.social.platforms)

    def order(row: Any) -> tuple[str, int, int, str]:
        channel, platform = str(row.channel), str(row.platform or "")
        return (
            str(row.date),
            channels.index(channel) if channel in channels else 99,
            platforms.index(platform) if platform in platforms else 99,
            platform,
        )

    views = []
    for row in sorted(rows, key=order):
        date = str(row.date)
        now = current.get(date, {})
        views.append(
            DeliveryView(
                id=int(row.id),
                date=date,
                channel=str(row.channel),
                platform=str(row.platform or ""),
                label=delivery_label(str(row.channel), str(row.platform or "")),
                status=str(row.status),
                send_at=_when(row.send_at_local, tz, locale),
                approved_by=row.approved_by,
                approved_at=_when(row.approved_at, tz, locale) or None,
                hashes=tuple(
                    HashView(path, sha, now.get(path))
                    for path, sha in sorted(_approved_hashes(row).items())
                ),
                last_error=row.last_error,
            )
        )
    return StoreView("ok", "" if views else "Nothing planned yet.", tuple(views))


def _asset(env: jinja2.Environment, name: str) -> bytes:
    assert env.loader is not None
    source, _, _ = env.loader.get_source(env, name)
    return source.encode("utf-8")


def render_event(days: Sequence[DayOutput], ctx: RenderContext) -> Rendered:
    event = ctx.content.event
    social = ctx.project.settings.social
    views = [day_view(out, social) for out in days]
    store = read_store(ctx.project, event.id, views, event.tz, event.language)
    common: dict[str, Any] = {
        "event": event,
        "days": views,
        "store": store,
        "brand": ctx.project.settings.brand,
        "locale": event.language,
        "lang": event.language,
        "dates": format_interval(
            event.start, event.end, "yMMMMd", locale=event.language.replace("-", "_")
        ),
    }
    index = render_template(ctx.env, TEMPLATES["index"], {**common, "root": "", "current": None})
    artifacts = [
        Artifact(
            INDEX,
            index.encode("utf-8"),
            sources=tuple(r.id for out in days for r in out.day.records),
        )
    ]
    for i, view in enumerate(views):
        values = {
            **common,
            "root": "../",
            "current": view.key,
            "day": view,
            "deliveries": store.for_day(view.key),
            "prev": views[i - 1] if i > 0 else None,
            "next": views[i + 1] if i + 1 < len(views) else None,
        }
        page = render_template(ctx.env, TEMPLATES["day"], values)
        artifacts.append(
            Artifact(
                f"{view.key}/{INDEX}",
                page.encode("utf-8"),
                sources=tuple(r.id for r in days[i].day.records),
            )
        )
    artifacts.extend(Artifact(path, _asset(ctx.env, name)) for path, name in ASSETS.items())
    warnings = (f"review: {store.message}",) if store.state == "error" else ()
    return Rendered(tuple(artifacts), warnings)
