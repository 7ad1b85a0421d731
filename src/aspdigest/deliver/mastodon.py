"""The `mastodon` publisher: a day's thread or quote posts, posted to a Mastodon account.

Deliver stage. `delivery.publishers.mastodon = "mastodon"` selects it; the runner hands
`MastodonPublisher.publish(publication, ledger)` an approved `Publication` and the delivery's
`Ledger`, and gets back a receipt (every post's id and URL). The walk itself, one post at a
time and each exactly once, is `deliver.posting.post_all`; this module is the `MastodonApi`
it drives, a thin layer over Mastodon.py that knows the server's rules: the character limit
the instance reports (counted as Mastodon counts, `aspdigest.text.mastodon_length`), images
uploaded with their alt text and waited for until processed, replies chained by
`in_reply_to_id`, and an `Idempotency-Key` on every status so a post resent after a lost
answer or a killed process is not posted twice (Mastodon keeps a key for an hour). The key
is not trusted alone: a replay answers 500 on Mastodon 4.6 (upstream issue #40399) and
before 4.6 a resend racing a slow original makes a second status, so this is a
`posting.LooksUp` API: `copies` reads the account's own recent statuses (matched by reply
target, then exact text from /api/v1/statuses/:id/source) and `delete` removes a duplicate.
The images of the next posts are uploaded in background threads while the posts before them
go out (`deliver.mastodon_ahead`: waiting for each card's processing in turn was most of a
thread's time). Uploads are recorded per post in the ledger and reused by a retry in any
process (the server allows 30 uploads per 30 minutes). Server answers become `posting`'s
errors: a refused token, a rejected post (or an image the server failed to process), a rate
limit with its reset time, or no answer (`deliver.mastodon_answers` reads the failures and
the instance's limits). Settings: `mastodon.instance` and `mastodon.visibility`; the token
is read from ASPDIGEST_MASTODON_TOKEN when needed and never appears in a message.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import requests
from mastodon import Mastodon, MastodonError

from aspdigest.config import secret
from aspdigest.deliver import Ledger, Post, Publication
from aspdigest.deliver.mastodon_ahead import Uploader, UploadsAhead
from aspdigest.deliver.mastodon_answers import TOKEN, Instance, NotFound, failure, limits
from aspdigest.deliver.posting import (
    ApiPublisher,
    PostRef,
    Rejected,
    Sleep,
    Unreachable,
)
from aspdigest.errors import UserError
from aspdigest.store import SocialPost
from aspdigest.text import mastodon_length

PAGES = 3  # pages of 40 own statuses read when looking for a post in doubt
T = TypeVar("T")


class MastodonPublisher(ApiPublisher["MastodonApi"]):
    name = "mastodon"

    def publish(
        self,
        publication: Publication,
        ledger: Ledger | None = None,
        halt: Callable[[], bool] | None = None,
    ) -> Mapping[str, Any]:
        api = self.api()
        api.ledger = ledger  # where finished uploads are recorded
        api.ahead = None  # started by the first post sent
        try:
            return super().publish(publication, ledger, halt)
        finally:
            if api.ahead is not None:
                api.ahead.finish()
                api.ahead = None

    def make_api(self) -> MastodonApi:
        settings = self.project.settings
        instance = settings.mastodon.instance.strip().rstrip("/")
        if not instance:
            raise UserError(
                "aspdigest.toml: mastodon.instance is not set: the server to "
                'post to, e.g. "https://mastodon.social" (or set '
                "ASPDIGEST_MASTODON_INSTANCE)"
            )
        if "://" not in instance:
            instance = "https://" + instance
        token = secret(TOKEN, self.environ)
        if token is None:
            raise UserError(
                f"{TOKEN} is not set: the access token of the account to post "
                "as (on the server: Preferences > Development > New "
                "application, scopes write:statuses, write:media, "
                "read:accounts)"
            )
        return MastodonApi(
            instance,
            token,
            visibility=settings.mastodon.visibility,
            timeout=settings.delivery.timeout,
            show=self.project.relative,
        )


class MastodonApi:
    """`posting.PostingApi` for one Mastodon account (Mastodon.py underneath)."""

    platform = "Mastodon"
    idempotency_window: float | None = 3600.0  # Mastodon keeps an Idempotency-Key an hour

    def __init__(
        self,
        instance: str,
        token: str,
        *,
        visibility: str = "public",
        timeout: float = 30.0,
        show: Callable[[Path], str] = Path.as_posix,
    ) -> None:
        self.instance = instance
        self.visibility = visibility
        self.timeout = timeout
        self.show = show
        self.wait_for_media: Sleep = time.sleep
        self._info: Instance | None = None
        self._me: str | None = None  # the account's id
        self.ledger: Ledger | None = None  # records uploads; without one they are kept here
        self.ahead: UploadsAhead | None = None  # the later posts' uploads, in the background
        self._token = token  # for the background uploads' own sessions
        self._twins: list[Uploader] = []  # those sessions, between uploads
        self._media: dict[tuple[int, int], list[str]] = {}
        self._last: requests.Response | None = None
        session = requests.Session()
        # Mastodon.py's rate-limit error carries no headers; the reset time is read from
        # the last answer instead.
        session.hooks["response"].append(self._remember)
        self.client = Mastodon(
            access_token=token,
            api_base_url=instance,
            version_check_mode="none",
            ratelimit_method="throw",
            request_timeout=timeout,
            session=session,
            user_agent="aspdigest",
        )

    def _remember(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._last = response

    # -- PostingApi ---------------------------------------------------------------------------
    def account(self) -> str:
        me = self._call(self.client.account_verify_credentials)
        self._me = str(me["id"])
        info = self.info()
        return (
            f"@{me['acct']}@{info.domain} (id {me['id']}) on {self.instance}, "
            f"visibility {self.visibility}, {info.max_characters} characters"
        )

    def check(self, publication: Publication) -> list[str]:
        info = self.info()
        problems: list[str] = []
        for g, group in enumerate(publication.groups):
            for i, post in enumerate(group):
                label = publication.label(g, i)
                # Counts a URL's trailing "@" as part of the URL where Mastodon (4.3 on)
                # counts it apart: one character too many at most, so never over the limit.
                size = mastodon_length(post.text, info.url_length)
                if size > info.max_characters:
                    problems.append(
                        f"{label} has {size} characters; {self.instance} allows "
                        f"{info.max_characters}"
                    )
                if len(post.media) > info.max_media:
                    problems.append(
                        f"{label} has {len(post.media)} images; {self.instance} "
                        f"allows {info.max_media}"
                    )
                for m in post.media:
                    path = publication.folder / m.path
                    if not path.is_file():
                        problems.append(f"{label}: image {self.show(path)} is missing")
                    if len(m.alt) > info.description_limit:
                        problems.append(
                            f"{label}: the description of {m.path} has "
                            f"{len(m.alt)} characters; {self.instance} allows "
                            f"{info.description_limit}"
                        )
        return problems

    def new_key(self, publication: Publication, group: int, index: int) -> str:
        # The same post of the same delivery gets the same key in any process, so a resend
        # after a crash is one Mastodon recognises.
        text = publication.groups[group][index].text
        data = "\n".join(
            (self.instance, str(publication.delivery_id), str(group), str(index), text)
        )
        return hashlib.sha256(data.encode("utf-8")).hexdigest()

    def find(self, key: str) -> PostRef | None:
        # Mastodon has no lookup by Idempotency-Key: `copies` looks by text instead.
        return None

    def copies(self, post: Post, parent: PostRef | None, since: dt.datetime) -> list[PostRef]:
        me = self._me or str(self._call(self.client.account_verify_credentials)["id"])
        self._me = me
        want = parent.id if parent else None
        candidates: list[tuple[str, str | None]] = []
        max_id: str | None = None
        for _ in range(PAGES):
            page = self._call(partial(self.client.account_statuses, me, max_id=max_id, limit=40))
            older = False
            for s in page:
                created = s["created_at"]
                if isinstance(created, dt.datetime) and created < since:
                    older = True
                    break
                reply = s.get("in_reply_to_id")
                if not s.get("reblog") and (str(reply) if reply else None) == want:
                    candidates.append((str(s["id"]), s.get("url")))
            if older or len(page) < 40:
                break
            max_id = str(page[-1]["id"])
        found: list[PostRef] = []
        # Status ids grow with time; the rendered HTML is no longer the text (mentions
        # shorten, links are wrapped), so the exact text comes from the source endpoint.
        for status_id, url in sorted(candidates, key=lambda c: (len(c[0]), c[0])):
            try:
                source = self._call(partial(self.client.status_source, status_id))
            except NotFound:  # deleted meanwhile
                continue
            if source.get("text") == post.text:
                found.append(PostRef(status_id, None, url))
        return found

    def delete(self, ref: PostRef) -> None:
        with suppress(NotFound):  # already gone
            self._call(partial(self.client.status_delete, ref.id))

    def post(
        self,
        post: Post,
        key: str,
        root: PostRef | None,
        parent: PostRef | None,
        publication: Publication,
    ) -> PostRef:
        where = next(
            (g, i)
            for g, group in enumerate(publication.groups)
            for i, p in enumerate(group)
            if p is post
        )
        if self.ahead is None or self.ahead.publication is not publication:
            done = self.ledger.posts() if self.ledger else {}
            self.ahead = UploadsAhead(
                publication,
                partial(self._uploaded, done),
                self._twin,
                self._keep_upload,
                self._twins,
            )
        self.ahead.start_after(where)
        media = self._attach(post, where, publication.folder)
        try:
            status = self._call(
                lambda: self.client.status_post(
                    post.text,
                    in_reply_to_id=parent.id if parent else None,
                    media_ids=media or None,
                    visibility=self.visibility,
                    language=publication.language,
                    idempotency_key=key,
                )
            )
        except Rejected:
            self._forget(where)  # in case the uploads were the reason: fresh ones next time
            raise
        return PostRef(str(status["id"]), None, status.get("url"))

    # -- uploads, recorded as each finishes ---------------------------------------------------
    def _attach(self, post: Post, where: tuple[int, int], folder: Path) -> list[str]:
        """Media ids for the post's images: those uploaded ahead for it, earlier uploads the
        server still holds unattached (from any process), new uploads for the rest, each
        recorded when it finishes."""
        # Made in the background, just now, and processed: attached without a look.
        fresh = self.ahead.take(where) if self.ahead else {}
        known = self.ledger.media(*where) if self.ledger else self._media.get(where, [])
        ids: list[str] = []
        for position, m in enumerate(post.media):
            path = folder / m.path
            media_id = known[position] if position < len(known) else None
            if media_id is not None and fresh.get(position) == media_id:
                pass
            elif media_id is None or not self._usable(media_id, path.name):
                media_id = self._upload(path, m.alt)
                self._keep_upload(where, position, media_id)
            ids.append(media_id)
        return ids

    def _keep_upload(self, where: tuple[int, int], position: int, media_id: str) -> None:
        if self.ledger:
            self.ledger.media_uploaded(*where, position, media_id)
        else:
            self._media.setdefault(where, [])[position:] = [media_id]

    def _uploaded(self, done: Mapping[tuple[int, int], SocialPost], where: tuple[int, int]) -> bool:
        """Whether the post needs no uploads ahead: posted, or uploads recorded earlier."""
        if self.ledger is None:
            return where in self._media
        record = done.get(where)
        return (record is not None and record.status == "posted") or bool(self.ledger.media(*where))

    def _twin(self) -> MastodonApi:
        """An API with its own HTTP session, for background uploads."""
        return MastodonApi(self.instance, self._token, timeout=self.timeout)

    def _forget(self, where: tuple[int, int]) -> None:
        if self.ledger:
            self.ledger.forget_media(*where)
        self._media.pop(where, None)

    def _usable(self, media_id: str, name: str) -> bool:
        """Whether an earlier upload can be attached: GET /api/v1/media/:id is 404 once it
        is attached to a status or removed (unattached media is vacuumed after a while)."""
        try:
            media = self._call(partial(self.client.media, media_id))
        except NotFound:
            return False
        self.processed(media, name)
        return True

    # -- the server ---------------------------------------------------------------------------
    def info(self) -> Instance:
        if self._info is None:
            try:
                data: Mapping[str, Any] = self._call(self.client.instance_v2)
            except NotFound:  # before Mastodon 4.0
                try:
                    data = self._call(self.client.instance_v1)
                except NotFound:
                    raise Rejected(
                        f"{self.instance} does not answer as a Mastodon server "
                        "(GET /api/v1/instance: HTTP 404)"
                    ) from None
            self._info = limits(data, self.instance)
        return self._info

    def _upload(self, path: Path, alt: str) -> str:
        media = self.send_file(path, alt)
        self.processed(media, path.name)
        return str(media["id"])

    def send_file(self, path: Path, alt: str) -> Mapping[str, Any]:
        """POST /api/v2/media: the upload, its url null until the server has processed it."""
        media: Mapping[str, Any] = self._call(
            lambda: self.client.media_post(str(path), description=alt or None, file_name=path.name)
        )
        return media

    def processed(self, media: Mapping[str, Any], name: str) -> None:
        # POST /api/v2/media answers before the image is processed (url null); a status
        # may only attach it once GET /api/v1/media/:id answers with a url. It answers 422
        # with the reason when processing failed (app/controllers/api/v1/media_controller.rb).
        # The first look comes soon (a small card is often ready within tens of ms), then the
        # pauses double: starting at 0.1 s cost ~0.3 s per card, most of a thread's time.
        waited, pause = 0.0, 0.025
        while media.get("url") is None:
            if waited > self.timeout:
                raise Unreachable(
                    f"{self.instance} was still processing {name} after {waited:.0f} s"
                )
            self.wait_for_media(pause)
            waited += pause
            pause = min(pause * 2, 2.0)
            try:
                media = self._call(partial(self.client.media, media["id"]))
            except NotFound:
                raise
            except Rejected as exc:
                raise Rejected(f"{name} could not be processed: {exc}") from None

    def _call(self, request: Callable[[], T]) -> T:
        """Run one Mastodon.py request; its failures become `posting`'s errors."""
        self._last = None
        try:
            return request()
        except MastodonError as exc:
            raise failure(exc, self.instance, self.timeout, self._last) from None
