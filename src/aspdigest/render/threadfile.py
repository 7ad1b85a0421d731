"""A day's thread as the files the build writes: thread.<platform>.json and .txt.

Render stage, under `social.py`: `thread_data(day, result)` turns a `SocialDay` (the composed
posts and quote posts of one platform) into the JSON-ready dict reviewers, exports and the
publishers read (each post's text with every URL whole, Bluesky's `api_text` and facets, the
length by the platform's rule, media and alt text); `_blocked` writes the files of a platform
whose thread could not be made, with the reason; `dumps` is the one JSON encoding.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from aspdigest.days import Day
from aspdigest.platforms import PLATFORMS
from aspdigest.render import Artifact
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

if TYPE_CHECKING:
    from aspdigest.render.social import SocialDay


def post_data(post: Post, platform: Platform, position: int) -> dict[str, Any]:
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
    if platform.name == "linkedin":
        data["api_text"] = linkedin_escape(shown, keep_hashtags=True)
    return data


def thread_data(day: Day, result: SocialDay) -> dict[str, Any]:
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
        "posts": [post_data(p, platform, n) for n, p in enumerate(result.posts, start=1)],
        "quote_posts": [
            {
                "record": qp.record,
                "index": qp.index,
                "quote_in_text": qp.quote_in_text,
                "posts": [post_data(p, platform, n) for n, p in enumerate(qp.posts, start=1)],
            }
            for qp in result.quote_posts
        ],
    }


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
