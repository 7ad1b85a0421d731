"""The deliver stage: hand approved artifacts to the outside world, once.

Last stage of the flow (… → schedule/outbox → deliver). Each channel has a module:
`deliver.email` sends the email digest (one test copy, or every subscriber with progress
kept in the state store) over `deliver.smtp`. The runner sees every channel alike, as a
`Channel` (`deliver(store, delivery, …) -> Outcome`): `EmailChannel` wraps `send_digest`,
`PostChannel` a publisher; `channels_for(project, environ)` is the one mapping from a
delivery (`channel_key`) to its channel. Thread and quote posts go through a
`Publisher`: `publication_for(project, delivery)` reads the approved `thread.<platform>.json`
into a frozen `Publication`, and `publisher_for(project, platform, …)` returns the publisher
that hands it on: `handoff`, the default, writes ready-to-post files and may email them to the
team; `bluesky` and `mastodon` post through the platforms' APIs (`deliver.posting` drives
them one post at a time, recording each in the store, so an interrupted thread resumes after
its last post). `delivery.publishers` in aspdigest.toml says which platform uses which. A
publisher returns a receipt mapping, raises `UserError` when it stopped (nothing or only part
went out; the message says which), and `PublishUncertain` when it cannot tell. The scheduler
imports what it needs from here; nothing in this package imports the CLI or the scheduler.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from aspdigest.artifacts import BuiltDay
from aspdigest.config import PLATFORMS, Project
from aspdigest.deliver.email import CHANNELS as EMAIL_CHANNELS
from aspdigest.deliver.email import SendReport, send_digest, send_test
from aspdigest.errors import UserError
from aspdigest.store import Delivery, SocialPost, Store

__all__ = [
    "PUBLISHERS",
    "AccountCheck",
    "Channel",
    "EmailChannel",
    "Ledger",
    "Outcome",
    "Post",
    "PostChannel",
    "Publication",
    "PublishUncertain",
    "Publisher",
    "SendReport",
    "channel_key",
    "channels_for",
    "check_accounts",
    "make_publisher",
    "publication_for",
    "publisher_for",
    "publisher_name",
    "send_digest",
    "send_test",
]

# name → "module:factory"; a factory takes (project, environ, outbox) and returns a Publisher.
PUBLISHERS: dict[str, str] = {
    "handoff": "aspdigest.deliver.handoff:HandoffPublisher",
    "bluesky": "aspdigest.deliver.bluesky:BlueskyPublisher",
    "mastodon": "aspdigest.deliver.mastodon:MastodonPublisher",
}


@dataclass(frozen=True)
class Media:
    path: str  # relative to the day's build folder
    alt: str


@dataclass(frozen=True)
class Post:
    text: str
    media: tuple[Media, ...] = ()
    # Bluesky's facets as the build computed them (UTF-8 byte offsets; a mention carries the
    # handle, which the publisher resolves to a DID); empty on other platforms.
    facets: tuple[Mapping[str, Any], ...] = ()
    # Bluesky: the text as its API takes it (long links shown shortened, the facets' offsets
    # are into it); `text` keeps every URL whole for people and handoff files.
    api_text: str = ""
    # Bluesky: the link card to attach (app.bsky.embed.external) as the build decided it:
    # {"type": "external", "uri", "title", "description", "thumb": day-relative PNG or None}.
    embed: Mapping[str, Any] | None = None


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
    language: str = "en"  # BCP 47 tag of the posts (the event's language)

    def label(self, group: int, index: int) -> str:
        """How messages name a post: "post 4 of 7" or "quote post 2, post 1 of 1"."""
        where = f"post {index + 1} of {len(self.groups[group])}"
        return where if self.channel == "thread" else f"quote post {group + 1}, {where}"


class PublishUncertain(UserError):
    """The publisher cannot tell whether the posts went out (the delivery becomes unknown)."""


class Ledger:
    """One delivery's posts in the state store: what was started, what the server took."""

    def __init__(self, store: Store, delivery_id: int) -> None:
        self.store = store
        self.delivery_id = delivery_id

    def posts(self) -> dict[tuple[int, int], SocialPost]:
        return self.store.social_posts(self.delivery_id)

    def sending(self, group: int, index: int, key: str) -> None:
        self.store.post_sending(self.delivery_id, group, index, key)

    def posted(
        self,
        group: int,
        index: int,
        *,
        remote_id: str,
        cid: str | None = None,
        url: str | None = None,
    ) -> None:
        self.store.post_posted(
            self.delivery_id, group, index, remote_id=remote_id, cid=cid, url=url
        )

    def media(self, group: int, index: int) -> list[str]:
        """The uploads of a post that finished earlier (any process), in image order."""
        return self.store.post_media(self.delivery_id, group, index)

    def media_uploaded(self, group: int, index: int, position: int, media_id: str) -> None:
        self.store.post_media_uploaded(self.delivery_id, group, index, position, media_id)

    def forget_media(self, group: int, index: int) -> None:
        self.store.forget_post_media(self.delivery_id, group, index)


class Publisher(Protocol):
    name: str
    # True when publish() records each post in the ledger and may be called again for a
    # delivery it left half done (the runner then resumes it instead of asking a person).
    resumable: bool

    def publish(
        self,
        publication: Publication,
        ledger: Ledger | None = None,
        halt: Callable[[], bool] | None = None,
    ) -> Mapping[str, Any]:
        """Hand the posts on; return a receipt (ids, URLs, folders) for the store."""
        ...

    def account(self) -> str:
        """Who or where the posts go, checked without posting (`aspdigest accounts check`)."""
        ...


def _posts(raw: Any) -> tuple[Post, ...]:
    return tuple(
        Post(
            str(p["text"]),
            tuple(Media(str(m["path"]), str(m.get("alt", ""))) for m in p.get("media") or []),
            tuple(dict(f) for f in p.get("facets") or []),
            str(p["api_text"]) if "facets" in p and "api_text" in p else "",
            dict(p["embed"]) if isinstance(p.get("embed"), dict) else None,
        )
        for p in raw or []
    )


def publication_for(project: Project, d: Delivery) -> Publication:
    """The approved posts of a thread or quotes delivery, read from the build."""
    day = BuiltDay(project, d.event, d.date)
    folder, path = day.folder, day.thread_path(d.platform)
    data = day.posts(d.platform)
    if d.channel == "thread":
        groups: tuple[tuple[Post, ...], ...] = (_posts(data.get("posts")),)
    elif d.channel == "quotes":
        groups = tuple(_posts(q.get("posts")) for q in data.get("quote_posts") or [])
    else:
        raise UserError(f"delivery {d.id}: channel {d.channel} is not published by a publisher")
    groups = tuple(g for g in groups if g)
    if not groups:
        raise UserError(f"{project.relative(path)}: no {d.channel} posts to publish")
    return Publication(
        d.id,
        d.event,
        d.date,
        d.channel,
        d.platform,
        folder,
        groups,
        str(data.get("language") or "en"),
    )


def make_publisher(
    name: str,
    project: Project,
    environ: Mapping[str, str] | None = None,
    outbox: Path | None = None,
) -> Publisher:
    """The publisher called `name` (delivery.publisher / delivery.publishers)."""
    spec = PUBLISHERS.get(name)
    if spec is None:
        raise UserError(
            f'aspdigest.toml: delivery.publisher: unknown publisher "{name}"; '
            f"known: {', '.join(sorted(PUBLISHERS))}"
        )
    module, _, factory = spec.partition(":")
    publisher: Publisher = getattr(importlib.import_module(module), factory)(
        project, environ, outbox
    )
    return publisher


def publisher_name(project: Project, platform: str) -> str:
    """Which publisher posts `platform`: delivery.publishers, else delivery.publisher."""
    delivery = project.settings.delivery
    name = delivery.publishers.get(platform, delivery.publisher)
    if name in PUBLISHERS and name != "handoff" and name != platform:
        where = (
            f"delivery.publishers.{platform}"
            if platform in delivery.publishers
            else "delivery.publisher"
        )
        raise UserError(
            f'aspdigest.toml: {where}: "{name}" posts only to {name}; use "handoff" for {platform}'
        )
    return name


def publisher_for(
    project: Project,
    platform: str,
    environ: Mapping[str, str] | None = None,
    outbox: Path | None = None,
) -> Publisher:
    return make_publisher(publisher_name(project, platform), project, environ, outbox)


@dataclass(frozen=True)
class AccountCheck:
    """`aspdigest accounts check`: who one platform's posts would go out as, or why not."""

    platform: str
    publisher: str
    account: str | None
    error: str | None


def check_accounts(
    project: Project,
    environ: Mapping[str, str] | None = None,
    platforms: tuple[str, ...] | None = None,
) -> list[AccountCheck]:
    """Ask each platform's publisher who it posts as (API publishers log in; none posts)."""
    checks = []
    for platform in platforms or project.settings.social.platforms:
        name = project.settings.delivery.publishers.get(
            platform, project.settings.delivery.publisher
        )
        try:
            name = publisher_name(project, platform)
            account = make_publisher(name, project, environ).account()
        except UserError as exc:
            # The line is shown after the platform's name: "mastodon: Mastodon: …" says it twice.
            text = exc.text.removeprefix(f"{platform.capitalize()}: ")
            checks.append(AccountCheck(platform, name, None, text))
            continue
        checks.append(AccountCheck(platform, name, account, None))
    return checks


# -- channels: how the runner hands a claimed delivery on -------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What became of a claimed delivery: its status afterwards ("claimed" when it was left
    for the next active runner) and the fields the run log shows about it."""

    status: str
    details: Mapping[str, Any]


class Channel(Protocol):
    # A delivery left claimed by a runner that died can be resumed (else: unknown, for a person).
    resumable: bool
    # SIGTERM stops it between posts (a thread); else the one in hand finishes (a digest).
    halt_on_stop: bool

    def deliver(
        self, store: Store, delivery: Delivery, *, actor: str, halt: Callable[[], bool]
    ) -> Outcome:
        """Hand a claimed delivery on and record it in the store; raises `UserError` when it
        stopped and `PublishUncertain` when it cannot tell."""
        ...


class EmailChannel:
    """The email digest: every subscriber once, with progress in the store."""

    resumable = True
    halt_on_stop = False

    def __init__(self, project: Project, environ: Mapping[str, str] | None = None) -> None:
        self.project = project
        self.environ = environ

    def deliver(
        self, store: Store, delivery: Delivery, *, actor: str, halt: Callable[[], bool]
    ) -> Outcome:
        report = send_digest(
            store, delivery.id, self.project, environ=self.environ, halt=halt, actor=actor
        )
        return Outcome(report.status, {"recipients": dict(report.counts), "error": report.error})


class PostChannel:
    """Thread and quote posts of one platform, through its publisher."""

    halt_on_stop = True

    def __init__(self, project: Project, publisher: Publisher) -> None:
        self.project = project
        self.publisher = publisher
        self.resumable = publisher.resumable

    def deliver(
        self, store: Store, delivery: Delivery, *, actor: str, halt: Callable[[], bool]
    ) -> Outcome:
        from aspdigest.deliver.posting import Halted

        ledger = Ledger(store, delivery.id) if self.publisher.resumable else None
        try:
            receipt = self.publisher.publish(
                publication_for(self.project, delivery), ledger, halt=halt
            )
        except Halted as exc:  # between posts: the next active runner resumes at this post
            return Outcome("claimed", {"at": str(exc)})
        store.mark_sent(delivery.id, receipt, actor=actor)
        return Outcome("sent", {"receipt": dict(receipt)})


EMAIL = "email"  # the key of the email channel in `channels_for`


def channel_key(delivery: Delivery) -> str:
    """Which channel of `channels_for` hands this delivery on."""
    return EMAIL if delivery.channel in EMAIL_CHANNELS else delivery.platform


def channels_for(
    project: Project,
    environ: Mapping[str, str] | None = None,
    publishers: Mapping[str, Publisher] | None = None,
) -> dict[str, Channel]:
    """The email channel and one post channel per platform (its `delivery.publishers`
    publisher unless `publishers` names one), made now so a bad setting stops the start."""
    chosen = dict(publishers or {})
    channels: dict[str, Channel] = {EMAIL: EmailChannel(project, environ)}
    for platform in PLATFORMS:
        publisher = chosen.get(platform) or publisher_for(project, platform, environ)
        channels[platform] = PostChannel(project, publisher)
    return channels
