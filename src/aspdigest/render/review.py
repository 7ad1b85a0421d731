"""The review site: out/<event>/index.html and one page per day, for people to check drafts.

Event renderer (render stage), registered in EVENT_RENDERERS after the feed. `render_event(
days, ctx)` takes every day's `DayOutput` with its artifacts in memory and returns the pages
(`index.html`, `<date>/index.html`) and their static assets (`_review/review.css`,
`_review/review.js`, copied from templates/review/static/ so a project can override them).
The site works from the file system: every link is relative, nothing comes from a network.

Each day page shows the digest in frames at phone and desktop width with its size against
Gmail's clipping budget, every platform's posts with their length by the platform's own rule,
the quote cards and the build's warnings. The pages are pure: they depend on the content,
templates and settings only, never on the state store, so the same inputs give the same bytes
whatever has been approved. Approval status is live instead: each day page carries the sha256
of every artifact it shows, and when `aspdigest preview` serves it, review.js fetches the
store's status from `/_status.json`, compares the approved hashes with these and adds the
Approve buttons; from the file system the pages say where to see it. The site wears the
brand's colours (`palette.review`: header, buttons, links), each checked for 4.5:1 contrast.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jinja2
from babel.dates import format_interval

from aspdigest.render import Artifact, DayOutput, RenderContext, Rendered, palette
from aspdigest.render.reviewviews import DayView, day_view
from aspdigest.render.templates import render_template

TEMPLATES = {"index": "review/index.html.j2", "day": "review/day.html.j2"}
ASSETS = {
    "_review/review.css": "review/static/review.css",
    "_review/review.js": "review/static/review.js",
}
INDEX = "index.html"
# Days named in each page's header. Naming every day made every page grow with the event, so
# the site grew with the square of its length; the index lists every day once, and each day
# page links to its neighbours and the index.
NAV_DAYS = 7


def _asset(env: jinja2.Environment, name: str) -> bytes:
    assert env.loader is not None
    source, _, _ = env.loader.get_source(env, name)
    return source.encode("utf-8")


def nav_days(views: Sequence[DayView], current: int | None) -> Sequence[DayView]:
    """The days a page's header names: all of a short event's; for a longer one, NAV_DAYS
    around the current day, and none on the index (which lists them all below)."""
    if len(views) <= NAV_DAYS:
        return views
    if current is None:
        return ()
    first = max(0, min(current - NAV_DAYS // 2, len(views) - NAV_DAYS))
    return views[first : first + NAV_DAYS]


def render_event(days: Sequence[DayOutput], ctx: RenderContext) -> Rendered:
    event = ctx.content.event
    social = ctx.project.settings.social
    views = [day_view(out, social) for out in days]
    brand = ctx.project.settings.brand.named(event.publisher)
    common: dict[str, Any] = {
        "event": event,
        "days": views,
        "brand": brand,
        "colours": palette.review(brand),
        "locale": event.language,
        "lang": event.language,
        "dates": format_interval(
            event.start, event.end, "yMMMMd", locale=event.language.replace("-", "_")
        ),
    }
    index = render_template(
        ctx.env,
        TEMPLATES["index"],
        {**common, "root": "", "current": None, "nav_days": nav_days(views, None)},
    )
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
            "nav_days": nav_days(views, i),
            "day": view,
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
    return Rendered(tuple(artifacts))
