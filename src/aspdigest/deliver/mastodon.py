"""The `mastodon` publisher: a day's thread or quote posts, posted to a Mastodon account.

Deliver stage. `delivery.publishers.mastodon = "mastodon"` selects it; the runner hands
`MastodonPublisher.publish(publication, ledger)` an approved `Publication` and the delivery's
`Ledger`, and gets back a receipt (every post's id and URL). The walk itself, one post at a
time and each exactly once, is `deliver.posting.post_all`; this module is the `MastodonApi`
it drives, a thin layer over Mastodon.py that knows the server's rules: the character limit
the instance reports (counted as Mastodon counts, `aspdigest.text.mastodon_length`), images
uploaded with their alt text and waited for until processed, replies chained by
`in_reply_to_id`, and an `Idempotency-Key` on every status so a post resent after a lost
answer or a killed process is not posted twice (Mastodon keeps a key for an hour). Server
answers become `posting`'s errors: a refused token, a rejected post, a rate limit with its
reset time, or no answer. Settings: `mastodon.instance` and `mastodon.visibility`; the token
is read from ASPDIGEST_MASTODON_TOKEN when needed and never appears in a message.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from mastodon import (
    Mastodon,
    MastodonAPIError,
    MastodonError,
    MastodonNetworkError,
    MastodonRatelimitError,
)

from aspdigest.config import secret
from aspdigest.deliver import Post, Publication
from aspdigest.deliver.posting import (
    ApiError,
    ApiPublisher,
    AuthFailed,
    PostRef,
    RateLimited,
    Rejected,
    Sleep,
    Unreachable,
)
from aspdigest.errors import UserError
from aspdigest.text import mastodon_length

TOKEN = "ASPDIGEST_MASTODON_TOKEN"
DESCRIPTION_LIMIT = 1500  # MediaAttachment::MAX_DESCRIPTION_LENGTH, unless the server says
T = TypeVar("T")


class MastodonPublisher(ApiPublisher["MastodonApi"]):
    name = "mastodon"

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


@dataclass(frozen=True)
class Instance:
    """What the server allows, from GET /api/v2/instance (or v1 on an older server)."""

    domain: str
    max_characters: int = 500
    url_length: int = 23
    max_media: int = 4
    description_limit: int = DESCRIPTION_LIMIT


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
        self._media: dict[str, list[str]] = {}  # idempotency key → media ids, while in doubt
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
        # Mastodon has no lookup by Idempotency-Key; resending under the key is the lookup.
        return None

    def post(
        self,
        post: Post,
        key: str,
        root: PostRef | None,
        parent: PostRef | None,
        publication: Publication,
    ) -> PostRef:
        # Images are uploaded again when a post is retried in a new process: media that no
        # status takes is discarded by the server, so a second copy costs nothing visible.
        # Within one process the images of a post that is retried (a rate limit, a dropped
        # connection) are uploaded once; a refusal drops them, in case they were the reason.
        media = self._media.get(key)
        if media is None:
            media = [self._upload(publication.folder / m.path, m.alt) for m in post.media]
            self._media[key] = media
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
            self._media.pop(key, None)
            raise
        self._media.pop(key, None)
        return PostRef(str(status["id"]), None, status.get("url"))

    # -- the server ---------------------------------------------------------------------------
    def info(self) -> Instance:
        if self._info is None:
            try:
                data: Mapping[str, Any] = self._call(self.client.instance_v2)
            except _NotFound:  # before Mastodon 4.0
                try:
                    data = self._call(self.client.instance_v1)
                except _NotFound:
                    raise Rejected(
                        f"{self.instance} does not answer as a Mastodon server "
                        "(GET /api/v1/instance: HTTP 404)"
                    ) from None
            config = data.get("configuration") or {}
            statuses = config.get("statuses") or {}
            media = config.get("media_attachments") or {}
            self._info = Instance(
                str(data.get("domain") or urlsplit(self.instance).netloc),
                int(statuses.get("max_characters") or data.get("max_toot_chars") or 500),
                int(statuses.get("characters_reserved_per_url") or 23),
                int(statuses.get("max_media_attachments") or 4),
                int(media.get("description_limit") or DESCRIPTION_LIMIT),
            )
        return self._info

    def _upload(self, path: Path, alt: str) -> str:
        media = self._call(
            lambda: self.client.media_post(str(path), description=alt or None, file_name=path.name)
        )
        # POST /api/v2/media answers before the image is processed (url null); a status
        # may only attach it once GET /api/v1/media/:id answers with a url.
        waited, pause = 0.0, 0.1
        while media.get("url") is None:
            if waited > self.timeout:
                raise Unreachable(
                    f"{self.instance} was still processing {path.name} after {waited:.0f} s"
                )
            self.wait_for_media(pause)
            waited += pause
            pause = min(pause * 2, 2.0)
            media = self._call(partial(self.client.media, media["id"]))
        return str(media["id"])

    def _call(self, request: Callable[[], T]) -> T:
        """Run one Mastodon.py request; its failures become `posting`'s errors."""
        self._last = None
        try:
            return request()
        except MastodonRatelimitError:
            raise self._rate_limited() from None
        except MastodonNetworkError as exc:
            raise Unreachable(f"no answer from {self.instance} ({self._reason(exc)})") from None
        except MastodonAPIError as exc:
            code = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else None
            error = next((str(a) for a in exc.args[3:1:-1] if a), None)  # error, else reason
            if code in (401, 403):
                raise AuthFailed(
                    f"the token in {TOKEN} was refused by {self.instance} "
                    f"({error or f'HTTP {code}'})"
                ) from None
            if code == 404:
                raise _NotFound(f"{self.instance} answered 404: {error or 'not found'}") from None
            if code is not None and 400 <= code < 500:
                raise Rejected(
                    f"{self.instance} answered {code}: {error or 'no reason given'}"
                ) from None
            # a 5xx, or an answer that is not Mastodon's JSON: the post may be up
            if code is None:
                raise Unreachable(
                    f"{self.instance} sent an answer that is not Mastodon's JSON"
                ) from None
            raise Unreachable(
                f"{self.instance} answered {code} ({error or 'no reason given'})"
            ) from None
        except MastodonError as exc:  # a media file Mastodon.py cannot read or type
            raise Rejected(str(exc)) from None

    def _rate_limited(self) -> ApiError:
        last = self._last
        if last is None or last.status_code != 429:
            # Mastodon.py could not read the rate-limit headers of an answer: maybe a success.
            return Unreachable(f"{self.instance} sent rate-limit headers that could not be read")
        reset = _moment(last.headers.get("X-RateLimit-Reset"))
        sent = _http_date(last.headers.get("Date"))
        if reset is None:
            return RateLimited(
                f"{self.instance} limits this account (HTTP 429, no reset time given)", 60.0
            )
        # Measured against the server's own clock, so a skewed local clock does not matter.
        wait = (reset - (sent or dt.datetime.now(dt.UTC))).total_seconds()
        return RateLimited(
            f"{self.instance} limits this account until "
            f"{reset.astimezone(dt.UTC):%H:%M:%S} UTC (HTTP 429)",
            wait,
        )

    def _reason(self, exc: MastodonNetworkError) -> str:
        cause = exc.__context__
        if isinstance(cause, requests.Timeout):
            return f"nothing within {self.timeout:g} s"
        text = str(cause or exc)
        for needle, reason in (
            ("refused", "connection refused"),
            ("RemoteDisconnected", "the connection closed without an answer"),
            ("reset by peer", "the connection was reset"),
            ("aborted", "the connection closed without an answer"),
            ("resolve", "the host name is unknown"),
            ("SSL", "TLS failed"),
        ):
            if needle in text:
                return reason
        return type(cause or exc).__name__


class _NotFound(Rejected):
    """A 404: a post replied to that is gone, or an endpoint an older server lacks."""


def _moment(value: str | None) -> dt.datetime | None:
    """X-RateLimit-Reset: Mastodon sends an ISO 8601 time ("2024-11-30T12:05:00.000000Z")."""
    if not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _http_date(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
