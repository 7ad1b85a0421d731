"""A day's thread as the files the build writes: thread.<platform>.json and .txt.

Render stage, under `social.py`: `thread_data(day, result)` turns a `SocialDay` (the composed
posts and quote posts of one platform) into the JSON-ready dict reviewers, exports and the
publishers read (each post's text with every URL whole, Bluesky's `api_text` and facets, the
length by the platform's rule, media and alt text); `_blocked` writes the files of a platform
whose thread could not be made, with the reason; `dumps` is the one JSON encoding.

On Bluesky a post with a link and no image gets `embed`: the link card the publisher attaches
(app.bsky.embed.external), decided here so that what a reviewer approves is what is sent. Only
links whose page is ours have one (`LinkCard`s from the caller: the digest's archive page with
its title, description and preview card; a record's link with the record's title and summary);
nothing is fetched.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from aspdigest.days import Day
from aspdigest.platforms import PLATFORMS
from aspdigest.render import Artifact, RenderContext
from aspdigest.render.email import og_card, subject_and_preheader
from aspdigest.render.quoteposts import CardIndex
from aspdigest.render.threads import (
    Platform,
    Post,
)
from aspdigest.text import (
    bluesky_bytes,
    bluesky_shorten_links,
    extract_mastodon_urls,
    extract_urls,
    linkedin_escape,
)
from aspdigest.text.links import linkable

if TYPE_CHECKING:
    from aspdigest.render.social import SocialDay


@dataclass(frozen=True)
class LinkCard:
    """What a link card shows of a page we publish: its title, description and image."""

    uri: str
    title: str
    description: str
    thumb: str | None = None  # a day-relative PNG (the day's preview card), or none


def _embed(links: list[str], cards: Mapping[str, LinkCard]) -> dict[str, Any] | None:
    card = next((cards[link] for link in links if link in cards), None)
    if card is None:
        return None
    return {
        "type": "external",
        "uri": card.uri,
        "title": card.title,
        "description": card.description,
        "thumb": card.thumb,
    }


def post_data(
    post: Post, platform: Platform, position: int, cards: Mapping[str, LinkCard] | None = None
) -> dict[str, Any]:
    """A post as thread.<platform>.json holds it: `text` with every URL whole (what a person
    copies); on Bluesky `api_text` is what its API takes (long links shortened for display,
    the facets' byte offsets into it and each link facet the whole URL)."""
    facets: list[dict[str, Any]] = []
    shown = post.text
    if platform.name == "bluesky":
        shown, found = bluesky_shorten_links(post.text)
        key = {"link": "uri", "mention": "handle", "tag": "tag"}
        facets = [
            {"type": f.kind, "byteStart": f.byte_start, "byteEnd": f.byte_end, key[f.kind]: f.value}
            for f in found
        ]
        links = [f.value for f in found if f.kind == "link"]
    else:
        found_urls = (
            extract_mastodon_urls(shown) if platform.name == "mastodon" else extract_urls(shown)
        )
        links = [e.text for e in found_urls]
    data: dict[str, Any] = {
        "position": position,
        "text": post.text,
        "length": platform.rule.count(shown),
        "limit": platform.rule.limit,
        "records": list(post.records),
        "links": links,
        "media": [asdict(m) for m in post.media],
        "quotes": [asdict(q) for q in post.quotes],
    }
    if platform.name == "bluesky":
        data["api_text"] = shown
        data["bytes"] = bluesky_bytes(shown)
        data["facets"] = facets
        if not post.media and cards and (embed := _embed(links, cards)) is not None:
            data["embed"] = embed
    if platform.name == "linkedin":
        data["api_text"] = linkedin_escape(shown, keep_hashtags=True)
    return data


def thread_data(
    day: Day, result: SocialDay, cards: Mapping[str, LinkCard] | None = None
) -> dict[str, Any]:
    platform = result.platform
    return {
        "event": day.event.id,
        "date": day.key,
        "timezone": day.event.timezone,
        "language": day.event.language,
        "platform": platform.name,
        "limit": platform.rule.limit,
        "unit": platform.rule.unit,
        "numbered": platform.numbered,
        "posts": [post_data(p, platform, n, cards) for n, p in enumerate(result.posts, start=1)],
        "quote_posts": [
            {
                "record": qp.record,
                "index": qp.index,
                "quote_in_text": qp.quote_in_text,
                "posts": [
                    post_data(p, platform, n, cards) for n, p in enumerate(qp.posts, start=1)
                ],
            }
            for qp in result.quote_posts
        ],
    }


def link_cards(
    day: Day, ctx: RenderContext, cards: CardIndex | None, archive: str | None
) -> dict[str, LinkCard]:
    """Link URL (as its facet carries it) → the card a Bluesky post shows for it: the digest's
    archive page with the title and description its og tags give and the day's preview card;
    a record's own link with the record's title and summary and no image. No archive page
    (``email.archive_url`` unset) means no digest link, so no card for it."""
    out: dict[str, LinkCard] = {}
    if archive is not None:
        title, description = subject_and_preheader(day, ctx)
        thumb = None
        shared = og_card(day)
        if shared is not None and cards is not None:
            job = cards.jobs.get(shared, {}).get("preview")
            thumb = job.path if job is not None and cards.drawable(job) else None
        out[archive] = LinkCard(archive, title, description, thumb)
    for record in day.records:
        for link in record.links:
            card = LinkCard(linkable(link.url, "bluesky"), record.title, record.summary)
            out.setdefault(card.uri, card)
    return out


def _blocked(day: Day, name: str, why: str) -> list[Artifact]:
    """A platform's thread that cannot be made today: the files say why, the manifest marks
    them blocked, and the queue refuses to plan or approve them."""
    data = {"event": day.event.id, "date": day.key, "platform": name, "blocked": why, "posts": []}
    meta = {"platform": name, "posts": 0, "blocked": why}
    note = f"{day.event.short_name} · {day.key} · {PLATFORMS[name].name}: BLOCKED\n{why}\n"
    sources = tuple(r.id for r in day.records)
    return [
        Artifact(f"thread.{name}.json", dumps(data), sources, meta=meta),
        Artifact(f"thread.{name}.txt", note.encode("utf-8"), sources, meta=meta),
    ]


def dumps(data: Any) -> bytes:
    """Sorted keys, UTF-8, two-space indent, final newline: the build's one JSON form."""
    return (json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode("utf-8")
