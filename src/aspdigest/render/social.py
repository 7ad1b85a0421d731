"""Social threads per platform and quote posts: thread.<platform>.json and .txt for each day.

Render stage, registered in DAY_RENDERERS. `render(day, ctx)` takes a `Day` and returns, for
every platform in `settings.social.platforms`, `thread.<platform>.json` (the posts with their
length by the platform's own rule, limit, links, media with alt text, the exact quote spans
they carry, Bluesky facets, LinkedIn's escaped API text) and `thread.<platform>.txt` for people.
The day's quote posts live in the same JSON under the separate key `quote_posts`.
`social_day(day, ctx, platform)` returns the same as a frozen `SocialDay` for callers that want
values, not files.

What a thread says, and which records fit its budget, is `render/threadsections.py` (from
templates/social/*.txt.j2: opener, one item per record with its quotes, closing); how it is cut
into posts is `render/threads.py`; which card goes with which quote is `render/quoteposts.py`.

JSON, per post: `text` exactly as posted (on Bluesky with long links shortened for display),
`length` by the platform's own rule and `limit`, `links` (full URLs), `media` ([{path, alt,
size}], a card attached where a quote starts), `quotes` ([{record, index, start, end, part,
parts}]: the characters of `quotes[index].text` the post carries), `records`; Bluesky adds
`bytes` and `facets` ([{type, byteStart, byteEnd, uri|tag|handle}]; a mention's handle must be
resolved to a DID when publishing), LinkedIn adds `api_text` (reserved characters escaped for
the Posts API; the length counts the unescaped text). Numbered platforms end each post with a
line "3/7".

Names and handles: an organiser named in `event.handles` is written as that platform's handle
in the item posts (@IntlCrimCourt on X, @user@instance on Mastodon, @handle on Bluesky and
Threads, the page name on LinkedIn, whose mentions need an API URN); every other name, and
every quote attribution, stays the name as written: an attribution is editorial and must read
the same in the post, on the card and in its alt text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jinja2

from aspdigest.config import Social
from aspdigest.days import Day
from aspdigest.errors import RenderError
from aspdigest.platforms import PLATFORMS
from aspdigest.records import Record
from aspdigest.render import Artifact, RenderContext, Rendered
from aspdigest.render.mentions import Mentions
from aspdigest.render.quoteposts import CardIndex, QuotePost, card_index, quote_post
from aspdigest.render.templates import render_template
from aspdigest.render.threadfile import LinkCard, _blocked, dumps, link_cards, thread_data
from aspdigest.render.threads import Platform, Post, TextUnit, compose, verify
from aspdigest.render.threadsections import (
    QuoteMedia,
    archive_url,
    quote_unit,
    quote_values,
    template_values,
    thread_sections,
)
from aspdigest.text import RULES, mastodon_rule

TEMPLATES = {
    "quote_post": "social/quote_post.txt.j2",
    "thread": "social/thread.txt.j2",
    "linkedin": "social/linkedin.txt.j2",
}


@dataclass(frozen=True)
class SocialDay:
    """One platform's thread and quote posts for one day."""

    platform: Platform
    posts: tuple[Post, ...]
    quote_posts: tuple[QuotePost, ...]
    warnings: tuple[str, ...]
    unattached: tuple[tuple[str, int, str], ...] = ()  # (record, quote index, why no card)


def platform_for(name: str, social: Social) -> Platform:
    """What packing needs of a platform: the registry's rule (a Mastodon server's own limit
    from the settings), numbering as `social.numbering` says, the registry's media cap."""
    spec = PLATFORMS[name]
    rule = mastodon_rule(social.mastodon_limit) if name == "mastodon" else RULES[name]
    return Platform(
        name,
        rule,
        numbered=name in social.numbering and rule.thread,
        max_media=spec.max_media,
    )


def _render(env: jinja2.Environment, key: str, values: dict[str, Any]) -> str:
    return render_template(env, TEMPLATES[key], values)


class Blocked(Exception):
    """One platform's artifact for one day cannot be made; the others still are."""


def _linkedin(day: Day, ctx: RenderContext, platform: Platform, values: dict[str, Any]) -> Post:
    """The day in one post, LinkedIn's style: the hook, the digest link, three to five
    highlights as short lines, the hashtags last. Fewer highlights, then no intro, until it
    fits; `Blocked` when not even the hook and three titles do."""
    order = sorted(range(len(day.records)), key=lambda n: (not day.records[n].highlight, n))
    mentions = Mentions(day.event, platform.name)
    names = {n: [mentions.name(name) for name in r.organisers] for n, r in enumerate(day.records)}
    least = min(3, len(order))
    for intro in (day.intro, None):
        for count in range(min(5, len(order)), least - 1, -1):
            chosen = sorted(order[:count])
            text = _render(
                ctx.env,
                "linkedin",
                {
                    **values,
                    "hook": day.hook or day.title,
                    "intro": intro,
                    "highlights": [(day.records[n], names[n]) for n in chosen],
                    "more": len(order) - count,
                },
            ).strip()
            if platform.fits(text):
                return Post(text, tuple(day.records[n].id for n in chosen), (), ())
    raise Blocked(
        f'{day.event.path}: days."{day.key}".hook: the day\'s LinkedIn post is over '
        f"{platform.rule.limit} {platform.rule.unit} even with only its hook and {least} "
        "highlight titles; shorten the hook or the titles"
    )


def social_day(
    day: Day, ctx: RenderContext, name: str, cards: CardIndex | None = None
) -> SocialDay:
    """One platform's thread and quote posts; `Blocked` when this platform cannot have them."""
    platform = platform_for(name, ctx.project.settings.social)
    values = template_values(day, ctx, platform)
    media = QuoteMedia(cards, [])
    warnings: list[str] = []
    try:
        if platform.rule.thread:
            posts = compose(thread_sections(day, ctx, platform, media, values), platform)
        else:
            posts = (_linkedin(day, ctx, platform, values),)
            verify(posts, platform)
    except RenderError as exc:
        raise Blocked("; ".join(str(p) for p in exc.problems)) from None
    quote_posts = []
    for record in day.records:
        for index, quote in enumerate(record.quotes):
            if not quote.makes_card:
                continue
            qvalues = quote_values(record, index, values)

            def text(
                record: Record,
                index: int,
                marked: str | None,
                tags: bool,
                qvalues: dict[str, Any] = qvalues,
            ) -> str:
                shown = {
                    **qvalues,
                    "quote": marked,
                    "hashtags": qvalues["hashtags"] if tags else "",
                }
                return _render(ctx.env, "quote_post", shown).strip()

            hashtags = TextUnit(values["hashtags"], day.event.path) if values["hashtags"] else None
            made = quote_post(
                record,
                index,
                quote_unit(day, ctx, record, index, values),
                media.get(day, record, index, platform.name),
                platform,
                text,
                hashtags,
            )
            if made is None:
                warnings.append(
                    f"social: {platform.name}: {record.id} quote {index + 1}: no "
                    f"quote post: the quote is longer than one {platform.label} "
                    "post and has no card to carry it"
                )
            else:
                quote_posts.append(made)
    for qp in quote_posts:
        verify(qp.posts, platform)
    return SocialDay(platform, posts, tuple(quote_posts), tuple(warnings), tuple(media.missing))


def render(day: Day, ctx: RenderContext) -> Rendered:
    if not day.records:
        return Rendered(warnings=("social: no records, so no threads",))
    cards = (
        card_index(day, ctx) if any(q.makes_card for r in day.records for q in r.quotes) else None
    )
    artifacts: list[Artifact] = []
    warnings: list[str] = []
    unattached: dict[tuple[str, int, str], list[str]] = {}
    previews: dict[str, LinkCard] | None = None
    for name in ctx.project.settings.social.platforms:
        try:
            result = social_day(day, ctx, name, cards)
        except Blocked as exc:
            artifacts.extend(_blocked(day, name, str(exc)))
            warnings.append(f"social: {name}: blocked: {exc}")
            continue
        if name == "bluesky" and previews is None:
            previews = link_cards(day, ctx, cards, archive_url(ctx, day))
        data = thread_data(day, result, previews if name == "bluesky" else None)
        sources = tuple(r.id for r in day.records)
        lengths = [p["length"] for p in data["posts"]]
        meta = {
            "platform": name,
            "posts": len(result.posts),
            "quote_posts": len(result.quote_posts),
            "limit": result.platform.rule.limit,
            "unit": result.platform.rule.unit,
            "longest": max(lengths),
        }
        people = _render(
            ctx.env,
            "thread",
            {
                **template_values(day, ctx, result.platform),
                "posts": data["posts"],
                "quote_posts": data["quote_posts"],
                "limit": data["limit"],
                "unit": data["unit"],
            },
        )
        artifacts.append(Artifact(f"thread.{name}.json", dumps(data), sources, meta=meta))
        artifacts.append(
            Artifact(
                f"thread.{name}.txt",
                people.encode("utf-8"),
                sources,
                meta={"platform": name, "posts": len(result.posts)},
            )
        )
        warnings.extend(w for w in result.warnings if w not in warnings)
        for key in result.unattached:
            unattached.setdefault(key, []).append(name)
    warnings += [
        f"social: {record} quote {index + 1}: no card attached on {', '.join(platforms)}: {why}"
        for (record, index, why), platforms in unattached.items()
    ]
    return Rendered(tuple(artifacts), tuple(warnings))
