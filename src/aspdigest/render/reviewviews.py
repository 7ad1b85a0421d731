"""What the review page shows of one day, as frozen values built from the day's artifacts.

Part of the render stage, used only by the review renderer (`render/review.py`). `day_view`
takes one `DayOutput` (every artifact in memory, never a file) and returns a `DayView`: the
digest's subject, preheader, size against Gmail's clipping budget and text part; each
platform's thread and quote posts as post cards whose text is cut into plain, link, tag and
mention segments and whose length is measured again by the platform's own rule; the quote
cards by quote and size; and the day's warnings. Templates autoescape every string in it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aspdigest.config import Social
from aspdigest.platforms import display_name
from aspdigest.render import Artifact, DayOutput
from aspdigest.render.email import LIMIT_BYTES, WARN_BYTES
from aspdigest.text import (
    RULES,
    PlatformRule,
    entities,
    extract_hashtags,
    extract_mastodon_mentions,
    extract_mastodon_urls,
    mastodon_rule,
)

KB = 1024
_CARD = re.compile(r"^cards/(?P<key>.+)\.(?P<size>[a-z]+)\.png$")
_SIZE_ORDER = ("square", "portrait", "landscape", "preview")


@dataclass(frozen=True)
class Segment:
    """A piece of a post's text; links, tags and mentions are shown highlighted."""

    text: str
    kind: str  # "text", "link", "tag" or "mention"
    href: str | None = None


@dataclass(frozen=True)
class MediaView:
    path: str
    alt: str
    size: str
    width: int | None
    height: int | None


@dataclass(frozen=True)
class PostView:
    position: int
    total: int
    segments: tuple[Segment, ...]
    length: int
    limit: int
    percent: int  # of the limit, capped at 100 for the bar
    problems: tuple[str, ...]  # empty when the post can go out as it is
    media: tuple[MediaView, ...]
    quote_parts: tuple[str, ...]  # 'quote 1 from “<record title>”, part 2 of 5'
    byte_count: int | None  # Bluesky's second limit
    link_card: Mapping[str, Any] | None = None  # Bluesky's `embed`: the card sent with it

    @property
    def over(self) -> bool:
        return bool(self.problems)


@dataclass(frozen=True)
class QuotePostView:
    record: str
    record_title: str
    number: int  # the quote's number within its record, from 1
    posts: tuple[PostView, ...]


@dataclass(frozen=True)
class ThreadView:
    platform: str
    name: str
    limit: int
    unit: str
    posts: tuple[PostView, ...]
    quote_posts: tuple[QuotePostView, ...]
    text: str  # thread.<platform>.txt, for people
    blocked: str | None = None  # why the build could not make this platform's thread today

    @property
    def over_count(self) -> int:
        return sum(p.over for p in self.posts) + sum(
            p.over for qp in self.quote_posts for p in qp.posts
        )

    @property
    def longest(self) -> int:
        return max((p.length for p in self.posts), default=0)


@dataclass(frozen=True)
class DigestView:
    subject: str
    preheader: str
    html_bytes: int
    kb: float
    budget_kb: int
    warn_kb: int
    percent: int
    level: str  # "ok", "warn" or "over"
    text: str


@dataclass(frozen=True)
class CardView:
    path: str
    size: str
    width: int | None
    height: int | None
    alt: str
    kb: float


@dataclass(frozen=True)
class CardGroup:
    key: str  # "<record>-<n>"
    record_title: str
    cards: tuple[CardView, ...]


@dataclass(frozen=True)
class DayView:
    key: str
    number: int
    title: str
    date: dt.date
    record_count: int
    digest: DigestView | None
    threads: tuple[ThreadView, ...]
    cards: tuple[CardGroup, ...]
    warnings: tuple[str, ...]
    sha256s: Mapping[str, str]  # artifact path → sha256, to compare with what was approved

    @property
    def over_count(self) -> int:
        return sum(t.over_count for t in self.threads)

    @property
    def card_count(self) -> int:
        return sum(len(g.cards) for g in self.cards)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _href(url: str) -> str | None:
    """A link target safe to put in href: http(s) only; a bare domain gets https://."""
    lowered = url.lower()
    if lowered.startswith(("http://", "https://")):
        return url
    if ":" in url.split("/", 1)[0]:
        return None  # some other scheme (javascript:, data:, …): show it, never link it
    return "https://" + url


def _spans_to_segments(
    text: str, spans: Sequence[tuple[int, int, str, str | None]]
) -> tuple[Segment, ...]:
    out: list[Segment] = []
    at = 0
    for start, end, kind, href in sorted(spans):
        if start < at or end <= start or end > len(text):
            continue  # overlapping or out of range: leave that stretch plain
        if start > at:
            out.append(Segment(text[at:start], "text"))
        out.append(Segment(text[start:end], kind, href))
        at = end
    if at < len(text):
        out.append(Segment(text[at:], "text"))
    return tuple(out)


def _bluesky_spans(
    text: str, facets: Sequence[Mapping[str, Any]]
) -> list[tuple[int, int, str, str | None]]:
    # Facets count UTF-8 bytes; map them back to character offsets.
    offsets: dict[int, int] = {}
    position = 0
    for index, char in enumerate(text):
        offsets[position] = index
        position += len(char.encode("utf-8"))
    offsets[position] = len(text)
    spans = []
    for facet in facets:
        byte_start, byte_end = _int(facet.get("byteStart")), _int(facet.get("byteEnd"))
        start = offsets.get(byte_start) if byte_start is not None else None
        end = offsets.get(byte_end) if byte_end is not None else None
        if start is None or end is None:
            continue
        kind = str(facet.get("type", ""))
        if kind == "link":
            spans.append((start, end, "link", _href(str(facet.get("uri", "")))))
        elif kind in ("tag", "mention"):
            spans.append((start, end, kind, None))
    return spans


def segments(
    platform: str, text: str, facets: Sequence[Mapping[str, Any]] | None = None
) -> tuple[Segment, ...]:
    """A post's text cut where the platform would make links, hashtags and mentions."""
    if platform == "bluesky" and facets is not None:
        return _spans_to_segments(text, _bluesky_spans(text, facets))
    kinds = {"url": "link", "hashtag": "tag", "mention": "mention", "cashtag": "tag"}
    if platform == "mastodon":
        # Mastodon mentions name the server too (@user@instance.example), and are found as
        # the server finds them: the registry's one pattern, via text/.
        found = [*extract_mastodon_urls(text), *extract_hashtags(text)]
        mentions = [(m.start, m.end, "mention", None) for m in extract_mastodon_mentions(text)]
    else:
        found, mentions = list(entities(text)), []
    return _spans_to_segments(
        text,
        [
            *(
                (e.start, e.end, kinds[e.kind], _href(e.text) if e.kind == "url" else None)
                for e in found
            ),
            *mentions,
        ],
    )


def rule_for(platform: str, social: Social) -> PlatformRule | None:
    if platform == "mastodon":
        return mastodon_rule(social.mastodon_limit)
    return RULES.get(platform)


def _media(items: Any, cards: Mapping[str, Artifact]) -> tuple[MediaView, ...]:
    out = []
    for item in items if isinstance(items, list) else []:
        path = str(item.get("path", ""))
        meta = cards[path].meta if path in cards else {}
        out.append(
            MediaView(
                path=path,
                alt=str(item.get("alt", "")),
                size=str(item.get("size", meta.get("size", ""))),
                width=_int(meta.get("width")),
                height=_int(meta.get("height")),
            )
        )
    return tuple(out)


def _quote_parts(items: Any, titles: Mapping[str, str]) -> tuple[str, ...]:
    out = []
    for q in items if isinstance(items, list) else []:
        index, parts = _int(q.get("index")), _int(q.get("parts"))
        record = str(q.get("record", ""))
        label = f"quote {(index or 0) + 1} from “{titles.get(record, record)}”"
        if parts and parts > 1:
            label += f", part {q.get('part')} of {parts}"
        out.append(label)
    return tuple(out)


def _post(
    platform: str,
    data: Mapping[str, Any],
    total: int,
    rule: PlatformRule | None,
    cards: Mapping[str, Artifact],
    titles: Mapping[str, str],
) -> PostView:
    text = str(data.get("text", ""))
    if platform == "bluesky" and "api_text" in data:
        # What Bluesky shows and counts: its facets' byte offsets are into this text, whose
        # long links are shortened for display (each facet still links the whole URL).
        text = str(data["api_text"])
    length = _int(data.get("length")) or 0
    limit = _int(data.get("limit")) or (rule.limit if rule else 0)
    # Measured again here, so the page does not merely repeat what the renderer claimed.
    problems = list(rule.problems(text)) if rule is not None else []
    if length > limit and not any(p.startswith(f"{length}/") for p in problems):
        problems.insert(0, f"{length}/{limit} {rule.unit if rule else 'characters'}")
    facets = data.get("facets")
    return PostView(
        position=_int(data.get("position")) or 0,
        total=total,
        segments=segments(platform, text, facets if isinstance(facets, list) else None),
        length=length,
        limit=limit,
        percent=min(100, round(100 * length / limit)) if limit else 0,
        problems=tuple(problems),
        media=_media(data.get("media"), cards),
        quote_parts=_quote_parts(data.get("quotes"), titles),
        byte_count=_int(data.get("bytes")),
        link_card=data["embed"] if isinstance(data.get("embed"), dict) else None,
    )


def thread_view(
    artifacts: Mapping[str, Artifact], platform: str, social: Social, titles: Mapping[str, str]
) -> ThreadView | None:
    artifact = artifacts.get(f"thread.{platform}.json")
    if artifact is None:
        return None
    data = json.loads(artifact.data)
    rule = rule_for(platform, social)
    cards = {p: a for p, a in artifacts.items() if p.startswith("cards/")}
    posts = data.get("posts", [])
    quote_posts = []
    for qp in data.get("quote_posts", []):
        qposts = qp.get("posts", [])
        record = str(qp.get("record", ""))
        quote_posts.append(
            QuotePostView(
                record=record,
                record_title=titles.get(record, record),
                number=(_int(qp.get("index")) or 0) + 1,
                posts=tuple(_post(platform, p, len(qposts), rule, cards, titles) for p in qposts),
            )
        )
    txt = artifacts.get(f"thread.{platform}.txt")
    return ThreadView(
        platform=platform,
        name=display_name(platform),
        limit=_int(data.get("limit")) or (rule.limit if rule else 0),
        unit=str(data.get("unit", rule.unit if rule else "characters")),
        posts=tuple(_post(platform, p, len(posts), rule, cards, titles) for p in posts),
        quote_posts=tuple(quote_posts),
        text=txt.data.decode("utf-8") if txt is not None else "",
        blocked=str(data["blocked"]) if data.get("blocked") else None,
    )


def digest_view(artifacts: Mapping[str, Artifact]) -> DigestView | None:
    html = artifacts.get("digest.html")
    if html is None:
        return None
    text = artifacts.get("digest.txt")
    size = len(html.data)
    level = "over" if size > LIMIT_BYTES else "warn" if size >= WARN_BYTES else "ok"
    return DigestView(
        subject=str(html.meta.get("subject", "")),
        preheader=str(html.meta.get("preheader", "")),
        html_bytes=size,
        kb=round(size / KB, 1),
        budget_kb=LIMIT_BYTES // KB,
        warn_kb=WARN_BYTES // KB,
        percent=min(100, round(100 * size / LIMIT_BYTES)),
        level=level,
        text=text.data.decode("utf-8") if text is not None else "",
    )


def card_groups(
    artifacts: Mapping[str, Artifact], titles: Mapping[str, str]
) -> tuple[CardGroup, ...]:
    groups: dict[str, list[CardView]] = {}
    sources: dict[str, str] = {}
    for path, artifact in artifacts.items():
        m = _CARD.match(path)
        if m is None:
            continue
        size = str(artifact.meta.get("size", m["size"]))
        groups.setdefault(m["key"], []).append(
            CardView(
                path=path,
                size=size,
                width=_int(artifact.meta.get("width")),
                height=_int(artifact.meta.get("height")),
                alt=artifact.alt or "",
                kb=round(len(artifact.data) / KB, 1),
            )
        )
        if artifact.sources:
            sources[m["key"]] = artifact.sources[0]

    def order(card: CardView) -> tuple[int, str]:
        return (_SIZE_ORDER.index(card.size) if card.size in _SIZE_ORDER else 99, card.size)

    # The artifacts come in render order from a fresh build but in path order from a reused
    # day, so the groups are sorted here: by the record's place in the day, then quote number.
    records = list(titles)

    def group_order(key: str) -> tuple[int, int, str]:
        source = sources.get(key, "")
        number = key.rsplit("-", 1)[-1]
        return (
            records.index(source) if source in records else len(records),
            int(number) if number.isdigit() else 0,
            key,
        )

    return tuple(
        CardGroup(
            key=key,
            record_title=titles.get(sources.get(key, ""), key),
            cards=tuple(sorted(groups[key], key=order)),
        )
        for key in sorted(groups, key=group_order)
    )


def day_view(output: DayOutput, social: Social) -> DayView:
    day = output.day
    artifacts = {a.path: a for a in output.rendered.artifacts}
    titles = {r.id: r.title for r in day.records}
    threads = []
    for platform in social.platforms:
        view = thread_view(artifacts, platform, social, titles)
        if view is not None:
            threads.append(view)
    return DayView(
        key=day.key,
        number=day.number,
        title=day.title,
        date=day.date,
        record_count=len(day.records),
        digest=digest_view(artifacts),
        threads=tuple(threads),
        cards=card_groups(artifacts, titles),
        warnings=tuple(output.rendered.warnings),
        sha256s={
            a.path: hashlib.sha256(a.data).hexdigest()
            for a in sorted(output.rendered.artifacts, key=lambda a: a.path)
        },
    )
