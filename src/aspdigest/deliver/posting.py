"""Posting a publication through a platform's API, one post at a time, each exactly once.

Deliver stage, shared by the API publishers (`deliver.bluesky`, `deliver.mastodon`), which
each wrap their SDK in a `PostingApi`. `post_all(publication, ledger, api, …)` checks every
post first (nothing goes out if one cannot), then walks the groups in order (a thread is one
group, each quote post its own) and, for each post:

1. a post the ledger says is `posted` is not sent again: its id becomes the next reply's
   parent, so a thread interrupted after post 3 of 7 resumes at post 4 replying to post 3;
2. a new post gets a key (Mastodon: an Idempotency-Key; Bluesky: the record key) that is
   written to the store *before* the request goes out;
3. a post left `sending` (the process died, or the connection dropped, while the request
   was out) is looked up by that key (`api.find`); if the server has it, it is recorded
   and not resent; otherwise it is sent again under the same key, which the server
   deduplicates (Mastodon within `idempotency_window`; Bluesky's record key is unique).

A server whose deduplication cannot be trusted (Mastodon: a replay answers 500 on 4.6, and
before 4.6 a resend racing a slow original makes a second status) is a `LooksUp` API: a
post in doubt is looked up on the account by its exact text and reply target before any
resend and again after one; the first copy is kept and recorded, any later copy is deleted
and listed in the receipt (`deleted`), including a late original that lands after the
thread went on (a last look when the thread is done, after the server had time to finish).

Rate limits (429) wait until the server's reset time (up to `delivery.rate_limit_wait`),
connection errors are retried `delivery.network_retries` times, and a refusal (a post
rejected, a password refused) stops at once with a `UserError` naming the post and the
server's reason, never retried in a loop. Returns the receipt: every post's id and URL.

`ApiPublisher` is the half the two publishers share: the API client built on first use (so a
missing credential stops only posting), patience from `[delivery]`, and `account()`.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from aspdigest.config import Project
from aspdigest.deliver import Ledger, Post, Publication, PublishUncertain
from aspdigest.errors import UserError


@dataclass(frozen=True)
class PostRef:
    """Where a post landed: what a reply to it needs and where a person sees it."""

    id: str  # Mastodon status id; Bluesky at:// URI
    cid: str | None = None  # Bluesky only: the record's content hash
    url: str | None = None


class ApiError(Exception):
    """A platform's answer, as text fit for the person running the queue (no secrets)."""


class AuthFailed(ApiError):
    """The credentials were refused (401/403, a wrong password or token)."""


class Rejected(ApiError):
    """The server refused this post (validation, content, size): sending it again won't help."""


class Unreachable(ApiError):
    """No answer, a dropped connection or a 5xx: the post may or may not have arrived."""

    def __init__(self, message: str, *, slow: bool = False) -> None:
        super().__init__(message)
        self.slow = slow  # no answer in time: the server may still be working on it


class RateLimited(ApiError):
    def __init__(self, message: str, wait: float) -> None:
        super().__init__(message)
        self.wait = max(0.0, wait)  # seconds until the server's limit resets


class Halted(Exception):
    """The runner asked the publisher to stop between posts; the delivery stays claimed."""


class PostingApi(Protocol):
    platform: str  # "Bluesky", "Mastodon": as messages name it
    # Seconds the server honours a key for a repeated request; None when `find` is
    # authoritative (the key names the post itself, as Bluesky's record key does).
    idempotency_window: float | None

    def account(self) -> str:
        """Log in if needed; who the posts go out as ("@ciwj.bsky.social on https://…")."""
        ...

    def check(self, publication: Publication) -> list[str]:
        """Problems that would make a post fail (too long for this server, missing image)."""
        ...

    def new_key(self, publication: Publication, group: int, index: int) -> str: ...

    def find(self, key: str) -> PostRef | None:
        """The post sent under `key`, if the server has it (None when it cannot tell)."""
        ...

    def post(
        self,
        post: Post,
        key: str,
        root: PostRef | None,
        parent: PostRef | None,
        publication: Publication,
    ) -> PostRef: ...


@runtime_checkable
class LooksUp(Protocol):
    """A `PostingApi` that can read the account, for servers whose resends are not safe."""

    timeout: float  # seconds a request is given; a late original may land this long after

    def copies(self, post: Post, parent: PostRef | None, since: dt.datetime) -> list[PostRef]:
        """The account's posts since `since` with exactly this text, replying to `parent`
        (top-level when None), oldest first."""
        ...

    def delete(self, ref: PostRef) -> None: ...


@dataclass(frozen=True)
class Patience:
    """How long to keep trying (from aspdigest.toml's [delivery])."""

    rate_limit_wait: float = 900.0
    network_retries: int = 3
    backoff: float = 2.0  # seconds before the first retry after a connection error; doubles


Sleep = Callable[[float], None]
A = TypeVar("A", bound=PostingApi)


class ApiPublisher(Generic[A]):
    """A `Publisher` that posts through a platform's API, one recorded post at a time."""

    name = ""
    resumable = True  # every post is in the ledger; a second publish() resumes after the last

    def __init__(
        self,
        project: Project,
        environ: Mapping[str, str] | None = None,
        outbox: Path | None = None,
        *,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.project = project
        self.environ = environ
        self.sleep = sleep  # waits for rate limits and between retries (tests pass a clock)
        self._api: A | None = None

    def make_api(self) -> A:
        """The client for the configured account; UserError when a setting is missing."""
        raise NotImplementedError

    def api(self) -> A:
        if self._api is None:
            self._api = self.make_api()
        return self._api

    def account(self) -> str:
        api = self.api()
        try:
            return api.account()
        except ApiError as exc:
            raise UserError(f"{api.platform}: {exc}") from None

    def publish(
        self,
        publication: Publication,
        ledger: Ledger | None = None,
        halt: Callable[[], bool] | None = None,
    ) -> Mapping[str, Any]:
        if ledger is None:
            raise ValueError(
                f"the {self.name} publisher records each post: pass the delivery's Ledger"
            )
        delivery = self.project.settings.delivery
        patience = Patience(
            rate_limit_wait=delivery.rate_limit_wait, network_retries=delivery.network_retries
        )
        return post_all(
            publication, ledger, self.api(), patience=patience, halt=halt, sleep=self.sleep
        )


def post_all(
    publication: Publication,
    ledger: Ledger,
    api: PostingApi,
    *,
    patience: Patience = Patience(),
    halt: Callable[[], bool] | None = None,
    sleep: Sleep = time.sleep,
    now: Callable[[], dt.datetime] | None = None,
) -> Mapping[str, Any]:
    """Post everything in `publication` not yet posted; return the receipt."""
    pub = publication
    done = ledger.posts()
    resumed = sum(1 for r in done.values() if r.status == "posted")
    stopped = (
        f"{api.platform}: nothing posted"
        if not resumed
        else f"{api.platform}: nothing more posted ({resumed} post(s) were already up)"
    )
    try:
        problems = api.check(pub)
        if problems:
            raise UserError(f"{stopped}: " + "; ".join(problems))
        account = api.account()
    except ApiError as exc:  # the server refused the token or did not answer: stop here
        raise UserError(f"{stopped}: {exc}") from None
    listed: list[dict[str, Any]] = []
    watch = _Watch()
    for g, group in enumerate(pub.groups):
        root: PostRef | None = None
        parent: PostRef | None = None
        for i, post in enumerate(group):
            record = done.get((g, i))
            if record is not None and record.status == "posted" and record.remote_id:
                ref = PostRef(record.remote_id, record.cid, record.url)
            else:
                if halt is not None and halt():
                    raise Halted(pub.label(g, i))
                step = _Step(pub, g, i, post, ledger, api, patience, halt, sleep, listed, watch)
                ref = step.run(
                    root,
                    parent,
                    record.key if record else None,
                    record.started_at if record else None,
                    now() if now else ledger.store.clock(),
                )
            root = root or ref
            parent = ref
            listed.append({"group": g, "index": i, "id": ref.id, "url": ref.url})
    if isinstance(api, LooksUp):
        watch.settle(api)
    return {
        "publisher": api.platform.lower(),
        "account": account,
        "posts": listed,
        "resumed_after": resumed or None,
        **({"deleted": watch.deleted} if watch.deleted else {}),
    }


def _up(listed: list[dict[str, Any]], checked: bool = True) -> str:
    if not listed:
        # Said only when this post was looked for (or could not have gone out).
        return "nothing was posted" if checked else "no post before it is up"
    urls = [p["url"] or p["id"] for p in listed]
    return f"{len(listed)} post(s) are up ({', '.join(urls)})"


# A server's clock and ours may differ: a copy is looked for from this long before the post
# was started. Matching is by exact text and reply target, so the margin costs nothing.
SKEW = dt.timedelta(minutes=15)
# After a dropped connection or a killed process (not a slow answer), how long a request
# the server was still working on may take to land, at most `timeout`.
SETTLE = 2.0
# After no answer within `timeout`, a late original is looked for until this many timeouts
# more have passed (at the end of the thread; found earlier, it is deleted at once).
SLOW = 3.0


@dataclass
class _Watched:
    group: int
    index: int
    post: Post
    parent: PostRef | None
    since: dt.datetime
    kept: PostRef
    until: float  # time.monotonic() after which a late copy is no longer expected


@dataclass
class _Watch:
    """Posts resent while an earlier request may still land, and the copies deleted."""

    posts: list[_Watched] = field(default_factory=list)
    deleted: list[dict[str, Any]] = field(default_factory=list)

    def drop(self, api: LooksUp, group: int, index: int, extra: list[PostRef]) -> None:
        for ref in extra:
            api.delete(ref)
            self.deleted.append({"group": group, "index": index, "id": ref.id, "url": ref.url})

    def settle(self, api: LooksUp) -> None:
        """The last look: a late original that landed after the thread went on is deleted
        (the thread continues from the copy recorded). A failed look leaves it to a person
        reading the receipt; the thread itself is up."""
        for w in self.posts:
            while True:
                try:
                    found = api.copies(w.post, w.parent, w.since)
                except ApiError:
                    break
                extra = [f for f in found if f.id != w.kept.id]
                if extra:
                    with suppress(ApiError):
                        self.drop(api, w.group, w.index, extra)
                    break
                left = w.until - time.monotonic()
                if left <= 0:
                    break
                time.sleep(min(0.2, left))  # wall time even under a test's clock: a real wait


@dataclass
class _Step:
    """Getting one post onto the server, whatever it takes (within patience)."""

    pub: Publication
    group: int
    index: int
    post: Post
    ledger: Ledger
    api: PostingApi
    patience: Patience
    halt: Callable[[], bool] | None
    sleep: Sleep
    listed: list[dict[str, Any]]
    watch: _Watch

    @property
    def label(self) -> str:
        return self.pub.label(self.group, self.index)

    def _stop(self, why: str, checked: bool = True) -> UserError:
        return UserError(
            f"{self.api.platform}: {self.label} {why}; {_up(self.listed, checked)}; "
            f"`aspdigest schedule retry {self.pub.delivery_id}` resumes at "
            f"{self.label}"
        )

    def run(
        self,
        root: PostRef | None,
        parent: PostRef | None,
        key: str | None,
        started: dt.datetime | None,
        now: dt.datetime,
    ) -> PostRef:
        looks = self.api if isinstance(self.api, LooksUp) else None
        if key is None:
            key = self.api.new_key(self.pub, self.group, self.index)
            self.ledger.sending(self.group, self.index, key)
            in_doubt = False
        else:
            in_doubt = True
            window = self.api.idempotency_window
            if (
                looks is None  # a server that is looked at needs no trusted window
                and window is not None
                and started is not None
                and (now - started).total_seconds() > window
            ):
                raise PublishUncertain(
                    f"{self.api.platform}: {self.label} was being sent at "
                    f"{started:%Y-%m-%d %H:%M} UTC and may be on the account; the server only "
                    f"recognises a repeat for {window / 60:.0f} minutes; look at the account, "
                    f"then `aspdigest schedule resolve {self.pub.delivery_id} --sent` or "
                    "`--not-sent` (then `retry` resumes there)"
                )
        since = (started or now) - SKEW
        # When a request the server may still be working on stops mattering (monotonic).
        until = time.monotonic() + (min(looks.timeout, SETTLE) if looks else 0.0)
        tries = 0
        waited = 0.0
        resent = False  # sent again while an earlier request may still land
        while True:
            try:
                if in_doubt:
                    if looks is not None:
                        found = looks.copies(self.post, parent, since)
                        if found:
                            return self._keep(looks, found, parent, since, until, resent)
                    elif (ref := self.api.find(key)) is not None:
                        return self._record(ref)
                resent = resent or in_doubt
                ref = self.api.post(self.post, key, root, parent, self.pub)
                if looks is not None and in_doubt:
                    # Again after the resend: a slow original may have landed meanwhile.
                    found = looks.copies(self.post, parent, since)
                    if ref.id not in {f.id for f in found}:
                        found.append(ref)
                    return self._keep(looks, found, parent, since, until, True)
                return self._record(ref)
            except AuthFailed as exc:
                raise self._stop(f"was not posted: {exc}") from None
            except Rejected as exc:
                raise self._stop(f"was rejected: {exc}") from None
            except RateLimited as exc:
                # At least a second: a reset already past (a clock off) must not become a
                # loop of requests that never adds up to rate_limit_wait.
                wait = max(exc.wait, 1.0)
                waited += wait
                if waited > self.patience.rate_limit_wait:
                    raise self._stop(
                        f"was not posted: {exc} (waiting {wait:.0f} s would "
                        f"pass delivery.rate_limit_wait)",
                        checked=not in_doubt,
                    ) from None
                self._pause(wait)
            except Unreachable as exc:
                tries += 1
                in_doubt = True  # it may have arrived: look before sending again
                if looks is not None:
                    settle = SLOW * looks.timeout if exc.slow else min(looks.timeout, SETTLE)
                    until = max(until, time.monotonic() + settle)
                if tries > self.patience.network_retries:
                    if looks is None:
                        raise self._stop(
                            f"may not have been posted: {exc} (after {tries} tries)"
                        ) from None
                    return self._last_look(looks, exc, tries, parent, since, until, resent)
                self._pause(self.patience.backoff * 2 ** (tries - 1))

    def _last_look(
        self,
        looks: LooksUp,
        exc: Unreachable,
        tries: int,
        parent: PostRef | None,
        since: dt.datetime,
        until: float,
        resent: bool,
    ) -> PostRef:
        """Out of tries: say whether the post is up only after looking at the account."""
        try:
            found = looks.copies(self.post, parent, since)
        except ApiError as failed:
            raise self._stop(
                f"may have been posted: {exc} (after {tries} tries; the account could not "
                f"be read to check: {failed})",
                checked=False,
            ) from None
        if found:
            return self._keep(looks, found, parent, since, until, resent)
        raise self._stop(
            f"was not posted: {exc} (after {tries} tries; it is not on the account)"
        ) from None

    def _keep(
        self,
        looks: LooksUp,
        found: list[PostRef],
        parent: PostRef | None,
        since: dt.datetime,
        until: float,
        resent: bool,
    ) -> PostRef:
        """Record the first copy; delete any later one; after a resend, watch for a copy
        still to land (without one, the copy found was the only request out)."""
        kept, extra = found[0], found[1:]
        self._record(kept)
        self.watch.drop(looks, self.group, self.index, extra)
        if resent and time.monotonic() < until:
            self.watch.posts.append(
                _Watched(self.group, self.index, self.post, parent, since, kept, until)
            )
        return kept

    def _record(self, ref: PostRef) -> PostRef:
        self.ledger.posted(self.group, self.index, remote_id=ref.id, cid=ref.cid, url=ref.url)
        return ref

    def _pause(self, seconds: float) -> None:
        """Sleep, a second at a time so a stopping runner need not wait out a rate limit."""
        if self.sleep is not time.sleep:  # a test's clock: one call, no wall time
            self.sleep(seconds)
            return
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if self.halt is not None and self.halt():
                raise Halted(self.label)
            self.sleep(min(1.0, left))
