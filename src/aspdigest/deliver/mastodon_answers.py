"""What a Mastodon server answers, read for the `mastodon` publisher: its limits and failures.

Deliver stage, used by `deliver.mastodon.MastodonApi`, which asks the server and hands the
answers here; nothing here talks to the network or keeps state. `limits(data, instance)`
turns GET /api/v2/instance (or v1 on an older server) into an `Instance`: the character
limit, a URL's counted length, the images per post and the alt-text limit a post is checked
against, the registry's figures (`platforms.PLATFORMS`) wherever the server says nothing.
`failure(exc, instance, timeout, last)` turns a Mastodon.py error into `posting`'s: a refused
token is `AuthFailed`, a 404 `NotFound`, another 4xx (or a media file Mastodon.py cannot
read) `Rejected`, a 429 `RateLimited` with the wait until the reset time the server sent
(read from `last`, the last HTTP answer, as Mastodon.py's error carries no headers), and a
5xx, an answer that is not Mastodon's JSON or no answer at all `Unreachable`: the post may
be up. The token itself never appears in a message, only the variable it is read from.
"""

from __future__ import annotations

import datetime as dt
import email.utils
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from mastodon import (
    MastodonAPIError,
    MastodonError,
    MastodonNetworkError,
    MastodonRatelimitError,
)

from aspdigest.deliver.posting import (
    ApiError,
    AuthFailed,
    RateLimited,
    Rejected,
    Unreachable,
)
from aspdigest.platforms import PLATFORMS

TOKEN = "ASPDIGEST_MASTODON_TOKEN"
# What a server allows unless /api/v2/instance says otherwise: the registry's figures. The
# description limit is MediaAttachment::MAX_DESCRIPTION_LENGTH before 4.6; 4.6 reports its own
# (10,000) as configuration.media_attachments.description_limit.
_SPEC = PLATFORMS["mastodon"]
MAX_CHARACTERS = _SPEC.limit
URL_LENGTH = _SPEC.url_length or 23
MAX_MEDIA = _SPEC.max_media
DESCRIPTION_LIMIT = _SPEC.alt_limit


@dataclass(frozen=True)
class Instance:
    """What the server allows, from GET /api/v2/instance (or v1 on an older server)."""

    domain: str
    max_characters: int = MAX_CHARACTERS
    url_length: int = URL_LENGTH
    max_media: int = MAX_MEDIA
    description_limit: int = DESCRIPTION_LIMIT


def limits(data: Mapping[str, Any], instance: str) -> Instance:
    """The limits in an instance answer (v2's `configuration`, v1's `max_toot_chars`)."""
    config = data.get("configuration") or {}
    statuses = config.get("statuses") or {}
    media = config.get("media_attachments") or {}
    return Instance(
        str(data.get("domain") or urlsplit(instance).netloc),
        int(statuses.get("max_characters") or data.get("max_toot_chars") or MAX_CHARACTERS),
        int(statuses.get("characters_reserved_per_url") or URL_LENGTH),
        int(statuses.get("max_media_attachments") or MAX_MEDIA),
        int(media.get("description_limit") or DESCRIPTION_LIMIT),
    )


class NotFound(Rejected):
    """A 404: a post replied to that is gone, or an endpoint an older server lacks."""


def failure(
    exc: MastodonError, instance: str, timeout: float, last: requests.Response | None
) -> ApiError:
    """`posting`'s error for a failed Mastodon.py request to `instance`; `last` is the last
    HTTP answer of that request, if any (where a rate limit's reset time is read)."""
    if isinstance(exc, MastodonRatelimitError):
        return _rate_limited(instance, last)
    if isinstance(exc, MastodonNetworkError):
        return Unreachable(
            f"no answer from {instance} ({_reason(exc, timeout)})",
            slow=isinstance(exc.__context__, requests.Timeout),
        )
    if isinstance(exc, MastodonAPIError):
        code = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else None
        error = next((str(a) for a in exc.args[3:1:-1] if a), None)  # error, else reason
        if code in (401, 403):
            return AuthFailed(
                f"the token in {TOKEN} was refused by {instance} ({error or f'HTTP {code}'})"
            )
        if code == 404:
            return NotFound(f"{instance} answered 404: {error or 'not found'}")
        if code is not None and 400 <= code < 500:
            return Rejected(f"{instance} answered {code}: {error or 'no reason given'}")
        # a 5xx, or an answer that is not Mastodon's JSON: the post may be up
        if code is None:
            return Unreachable(f"{instance} sent an answer that is not Mastodon's JSON")
        return Unreachable(f"{instance} answered {code} ({error or 'no reason given'})")
    return Rejected(str(exc))  # a media file Mastodon.py cannot read or type


def _rate_limited(instance: str, last: requests.Response | None) -> ApiError:
    if last is None or last.status_code != 429:
        # Mastodon.py could not read the rate-limit headers of an answer: maybe a success.
        return Unreachable(f"{instance} sent rate-limit headers that could not be read")
    reset = _moment(last.headers.get("X-RateLimit-Reset"))
    sent = _http_date(last.headers.get("Date"))
    if reset is None:
        return RateLimited(f"{instance} limits this account (HTTP 429, no reset time given)", 60.0)
    # Measured against the server's own clock, so a skewed local clock does not matter.
    wait = (reset - (sent or dt.datetime.now(dt.UTC))).total_seconds()
    return RateLimited(
        f"{instance} limits this account until {reset.astimezone(dt.UTC):%H:%M:%S} UTC (HTTP 429)",
        wait,
    )


def _reason(exc: MastodonNetworkError, timeout: float) -> str:
    cause = exc.__context__
    if isinstance(cause, requests.Timeout):
        return f"nothing within {timeout:g} s"
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
