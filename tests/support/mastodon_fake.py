"""The in-memory Mastodon behind tests/support/mastodon_server.py: its state, rules and JSON.

Test support for `deliver.mastodon`. `FakeMastodon` holds one server's accounts, statuses,
media and every request it saw, and answers the API calls the publisher makes and the tests
read back as docs.joinmastodon.org describes them; each call returns an `Answer` (status
code, JSON body, extra headers) that mastodon_server.py sends over HTTP. Rules kept: a
Bearer token per account (401 `The access token is invalid`, 403 for a disabled login); the
character limit, with each URL counted as `characters_reserved_per_url`; media that must be
processed before a status may attach it; `in_reply_to_id` that must exist (404).

A `Profile` makes the fake behave as one real version (`PROFILES`: "4.3", "4.5", "4.6"),
each rule read from Mastodon's own source and cited where the profile is defined: what a
resend under the same Idempotency-Key gets and whether two requests can race past the key
check, the upload rate limit, the alt-text limit, the version reported. Faults for tests:
`rate_limit_statuses`, `reject_posts_containing`, `drop_after_accept`,
`delay_status_posts`, `fail_status_posts` (a 5xx), `fail_media_processing`,
`spend_media_budget`, `disable_account`.
Nothing here imports aspdigest: it counts characters its own way.
"""

from __future__ import annotations

import datetime as dt
import html
import random
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

TOKEN = "test-token-ciwj-0123456789abcdef"
IDEMPOTENCY_SECONDS = 3600  # Mastodon keeps a key in Redis for an hour
# config/initializers/rack_attack.rb (every profile): throttle_media, 30 uploads to
# /api/v1/media or /api/v2/media per 30 minutes per account; a throttled answer is 429 with
# X-RateLimit-Limit/Remaining/Reset, Reset the end of the current period.
MEDIA_LIMIT, MEDIA_PERIOD = 30, 1800
# app/controllers/api/v1/media_controller.rb (every profile): GET of an upload whose
# processing failed answers 422 with this error; an upload already attached to a status is
# not found (the lookup is scoped to `status_id: nil`).
PROCESSING_ERROR = "Error processing thumbnail for uploaded media"
# app/controllers/api/base_controller.rb: Mastodon::RaceConditionError (a Redis lock held by
# another request) answers 503 with this error.
RACE_ERROR = "There was a temporary problem serving your request, please try again"


@dataclass(frozen=True)
class Profile:
    """How one Mastodon version behaves where exactly-once depends on it."""

    version: str  # what /api/v1 and /api/v2/instance report
    # What a resend under a key already stored gets: "original" (200 with the first status)
    # or "error" (500, nothing made).
    replay: str
    # True: the key is checked when the request starts and stored after the status is
    # saved, with no lock, so a resend arriving while the original is still being made
    # makes a second status. False: check and store happen under a lock on the key; a
    # request meeting the lock held answers 503.
    racy: bool
    description_limit: int  # MediaAttachment's alt-text limit
    reports_description_limit: bool  # configuration.media_attachments.description_limit


PROFILES = {
    # app/services/post_status_service.rb (4.3.0): `return idempotency_duplicate if
    # idempotency_given? && idempotency_duplicate?` at the start of #call, then
    # `redis.setex(idempotency_key, 3_600, @status.id)` after process_status!: a replay
    # gets the original (200) but nothing stops two requests racing past the check.
    # app/models/media_attachment.rb: MAX_DESCRIPTION_LENGTH = 1_500, not reported by
    # app/serializers/rest/instance_serializer.rb.
    "4.3": Profile("4.3.0", "original", True, 1500, False),
    # 4.5.15: the same post_status_service.rb check-then-store (no lock), the same limits.
    "4.5": Profile("4.5.15", "original", True, 1500, False),
    # 4.6.5 and main, app/services/post_status_service.rb: the key is checked and stored
    # under a Redis lock (with_redis_lock; a concurrent request with the key answers 503),
    # and a duplicate found goes on to post-processing with no status: HTTP 500 (upstream
    # issue #40399). app/models/media_attachment.rb: MAX_DESCRIPTION_LENGTH = 10_000,
    # reported as configuration.media_attachments.description_limit by
    # app/serializers/rest/instance_serializer.rb.
    "4.6": Profile("4.6.5", "error", False, 10_000, True),
}
URL_RE = re.compile(r"https?://\S+")
Form = dict[str, list[str]]
Answer = tuple[int, Any, dict[str, str]]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def first(form: Form, name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None


def error(code: int, text: str) -> Answer:
    return code, {"error": text}, {}


@dataclass(frozen=True)
class Seen:
    """One request as it arrived (before any delay or fault)."""

    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    form: Form
    at: float  # time.monotonic()

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")


@dataclass
class Status:
    id: str
    account_id: str
    text: str
    in_reply_to_id: str | None
    media_ids: list[str]
    visibility: str
    language: str | None
    created_at: dt.datetime
    idempotency_key: str | None


@dataclass
class Media:
    id: str
    account_id: str
    description: str | None
    file_name: str
    polls_left: int  # GETs still to answer 206 (processing) before one answers 200
    processed: bool
    status_id: str | None = None
    failed: bool = False  # processing failed: GET answers 422


@dataclass
class Account:
    id: str
    username: str
    display_name: str
    disabled: bool = False  # its token is then refused with 403


NONE = dict.fromkeys(("edited_at", "reblog", "card", "poll", "last_status_at"))
FALSE = dict.fromkeys(
    (
        "sensitive",
        "favourited",
        "reblogged",
        "muted",
        "bookmarked",
        "pinned",
        "locked",
        "bot",
        "group",
    ),
    False,
)
EMPTY: dict[str, list[Any]] = {
    "mentions": [],
    "tags": [],
    "emojis": [],
    "filtered": [],
    "fields": [],
}


@dataclass
class Pending:
    """A status post past its checks, not yet saved (a slow server sits here)."""

    account: Account
    form: Form
    key: str | None


@dataclass
class FakeMastodon:
    profile: str = "4.3"
    max_characters: int = 500
    url_length: int = 23
    max_media: int = 4
    offer_v2_instance: bool = True  # False: an older server, GET /api/v2/instance is 404
    processing_polls: int = 1
    clock: Callable[[], dt.datetime] = utcnow  # Date and X-RateLimit-Reset come from it
    url: str = ""
    token: str = TOKEN
    accounts: dict[str, Account] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # token → account id
    statuses: dict[str, Status] = field(default_factory=dict)  # in the order they were made
    media: dict[str, Media] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    replays: int = 0  # status POSTs answered from the Idempotency-Key store
    dropped: int = 0
    in_flight: int = 0  # status POSTs being handled right now
    rate_limited: int = 0
    reset_in: float = 120.0
    rejected: dict[str, str] = field(default_factory=dict)  # marker → error text
    drops: int = 0
    failures: list[int] = field(default_factory=list)  # codes for the next status posts
    status_delay: Callable[[], float] | None = None
    lock: threading.RLock = field(default_factory=threading.RLock)
    keys: dict[tuple[str, str], tuple[str, dt.datetime]] = field(default_factory=dict)
    locked_keys: set[tuple[str, str]] = field(default_factory=set)  # 4.6: being posted
    uploads: list[dt.datetime] = field(default_factory=list)  # for the media rate limit
    media_limited: int = 0  # uploads answered 429
    processing_failures: int = 0  # the next uploads whose processing fails
    deleted: list[Status] = field(default_factory=list)
    read_failures: list[int] = field(default_factory=list)
    last_id: int = 113_000_000_000_000_000

    @property
    def rules(self) -> Profile:
        return PROFILES[self.profile]

    def __post_init__(self) -> None:
        self.accounts.setdefault("1", Account("1", "ciwj", "Coalition for the ICC"))
        self.tokens.setdefault(self.token, "1")

    # -- faults -----------------------------------------------------------------------------
    def rate_limit_statuses(self, n: int, reset_in: float = 120.0) -> None:
        """Answer the next `n` status posts 429, the limit resetting `reset_in` s from now."""
        with self.lock:
            self.rate_limited, self.reset_in = n, reset_in

    def reject_posts_containing(self, marker: str, error: str) -> None:
        with self.lock:
            self.rejected[marker] = error

    def drop_after_accept(self, n: int = 1) -> None:
        """Make the next `n` statuses, then close each connection without an answer."""
        with self.lock:
            self.drops = n

    def delay_status_posts(
        self, low: float, high: float | None = None, rng: random.Random | None = None
    ) -> None:
        """Hold each status post `low` s (or a random time up to `high`): half before the
        status is made, half after, so a client that gives up may find it made or not."""
        pick = rng or random.Random()
        self.status_delay = (lambda: low) if high is None else (lambda: pick.uniform(low, high))

    def fail_status_posts(self, *codes: int) -> None:
        """Answer the next status posts with these codes (e.g. 503), making nothing."""
        with self.lock:
            self.failures = list(codes)

    def fail_media_processing(self, n: int = 1) -> None:
        """The next `n` uploads fail processing (GET of the media answers 422)."""
        with self.lock:
            self.processing_failures = n

    def fail_account_reads(self, *codes: int) -> None:
        """Answer the next reads of an account's statuses with these codes (e.g. 503)."""
        with self.lock:
            self.read_failures = list(codes)

    def spend_media_budget(self, n: int) -> None:
        """Count `n` uploads in the current rate-limit period, as if made before."""
        with self.lock:
            self.uploads.extend([self.stamp()] * n)

    def disable_account(self, account_id: str = "1") -> None:
        self.accounts[account_id].disabled = True

    def clear_faults(self) -> None:
        with self.lock:
            self.rate_limited, self.drops, self.status_delay = 0, 0, None
            self.rejected.clear()
            self.failures.clear()

    # -- what tests read back ---------------------------------------------------------------
    def posts(self) -> list[Status]:
        with self.lock:
            return list(self.statuses.values())

    def status_posts(self) -> list[Seen]:
        return self.requests_to("POST", "/api/v1/statuses")

    def requests_to(self, method: str, path: str) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.method == method and s.path == path]

    # -- the API ----------------------------------------------------------------------------
    def stamp(self) -> dt.datetime:
        return self.clock().replace(microsecond=0)

    def limits(self) -> dict[str, str]:
        """The account's budget, sent with every authenticated answer as rack-attack does."""
        now = self.stamp()
        reset = now + dt.timedelta(seconds=300 - now.timestamp() % 300)
        return {
            "X-RateLimit-Limit": "300",
            "X-RateLimit-Remaining": str(max(1, 300 - len(self.seen))),
            "X-RateLimit-Reset": iso(reset),
        }

    def authenticate(self, authorization: str) -> Account | Answer:
        token = authorization.removeprefix("Bearer ") if authorization.startswith("Bearer ") else ""
        account_id = self.tokens.get(token)
        if account_id is None:
            return (
                401,
                {"error": "The access token is invalid"},
                {
                    "WWW-Authenticate": 'Bearer realm="Doorkeeper", error="invalid_token", '
                    'error_description="The access token is invalid"'
                },
            )
        account = self.accounts[account_id]
        if account.disabled:
            return error(403, "Your login is currently disabled")
        return account

    def instance(self, version: int) -> Answer:
        if version == 2 and not self.offer_v2_instance:
            return error(404, "Not Found")
        domain = urlsplit(self.url).netloc
        config = {
            "statuses": {
                "max_characters": self.max_characters,
                "max_media_attachments": self.max_media,
                "characters_reserved_per_url": self.url_length,
            },
            "media_attachments": {
                "supported_mime_types": ["image/png", "image/jpeg"],
                "image_size_limit": 16777216,
            },
        }
        if self.rules.reports_description_limit:
            config["media_attachments"]["description_limit"] = self.rules.description_limit
        common = {
            "title": "Test Mastodon",
            "version": self.rules.version,
            "languages": ["en"],
            "description": "",
            "rules": [],
            "configuration": config,
        }
        if version == 1:
            return (
                200,
                {
                    **common,
                    "uri": domain,
                    "short_description": "",
                    "email": "",
                    "urls": {},
                    "stats": {"user_count": 1},
                    "thumbnail": None,
                    "registrations": False,
                    "contact_account": None,
                },
                {},
            )
        return (
            200,
            {
                **common,
                "domain": domain,
                "usage": {"users": {"active_month": 1}},
                "source_url": "https://github.com/mastodon/mastodon",
                "thumbnail": {"url": ""},
                "api_versions": {"mastodon": 2},
                "contact": {"email": "", "account": None},
                "registrations": {"enabled": False, "approval_required": False},
            },
            {},
        )

    def upload(self, account: Account, form: Form, file_name: str | None) -> Answer:
        if file_name is None:
            return error(422, "Validation failed: File can't be blank")
        now = self.stamp()
        period = now - dt.timedelta(seconds=now.timestamp() % MEDIA_PERIOD)
        self.uploads = [u for u in self.uploads if u >= period]
        if len(self.uploads) >= MEDIA_LIMIT:
            self.media_limited += 1
            reset = period + dt.timedelta(seconds=MEDIA_PERIOD)
            return (
                429,
                {"error": "Too many requests"},
                {
                    "X-RateLimit-Limit": str(MEDIA_LIMIT),
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": iso(reset),
                },
            )
        self.uploads.append(now)
        description = first(form, "description")
        limit = self.rules.description_limit
        if description is not None and len(description) > limit:
            return error(
                422, f"Validation failed: Description is too long (maximum is {limit} characters)"
            )
        # 202 while the file is processed in the background; 200 when that is already done
        polls = self.processing_polls
        failed = self.processing_failures > 0
        if failed:
            self.processing_failures -= 1
            polls = max(polls, 1)
        m = Media(
            self.next_id(), account.id, description, file_name, polls, polls == 0, None, failed
        )
        self.media[m.id] = m
        return 200 if m.processed else 202, self.media_json(m), {}

    def get_media(self, account: Account, media_id: str) -> Answer:
        m = self.media.get(media_id)
        if m is None or m.account_id != account.id or m.status_id is not None:
            return error(404, "Record not found")
        if m.failed:
            return error(422, PROCESSING_ERROR)
        if m.polls_left > 0:
            m.polls_left -= 1
        else:
            m.processed = True
        return 200 if m.processed else 206, self.media_json(m), {}

    def get_status(self, status_id: str) -> Answer:
        s = self.statuses.get(status_id)
        return error(404, "Record not found") if s is None else (200, self.status_json(s), {})

    def source(self, account: Account, status_id: str) -> Answer:
        s = self.statuses.get(status_id)
        if s is None or s.account_id != account.id:
            return error(404, "Record not found")
        return 200, {"id": s.id, "text": s.text, "spoiler_text": ""}, {}

    def delete_status(self, account: Account, status_id: str) -> Answer:
        s = self.statuses.get(status_id)
        if s is None or s.account_id != account.id:
            return error(404, "Record not found")
        answer = self.status_json(s)
        del self.statuses[status_id]
        self.deleted.append(s)
        return 200, {**answer, "text": s.text}, {}

    def context(self, status_id: str) -> Answer:
        s = self.statuses.get(status_id)
        if s is None:
            return error(404, "Record not found")
        ancestors: list[Status] = []
        up = self.statuses.get(s.in_reply_to_id or "")
        while up is not None:
            ancestors.insert(0, up)
            up = self.statuses.get(up.in_reply_to_id or "")
        descendants: list[Status] = []

        def walk(parent: str) -> None:
            for child in self.statuses.values():
                if child.in_reply_to_id == parent:
                    descendants.append(child)
                    walk(child.id)

        walk(s.id)
        return (
            200,
            {
                "ancestors": [self.status_json(a) for a in ancestors],
                "descendants": [self.status_json(d) for d in descendants],
            },
            {},
        )

    def account_statuses(self, account_id: str, form: Form) -> Answer:
        if account_id not in self.accounts:
            return error(404, "Record not found")
        if self.read_failures:
            return error(self.read_failures.pop(0), "The server is temporarily unavailable")
        limit = min(40, int(first(form, "limit") or 20))
        max_id = int(first(form, "max_id") or 10**30)
        mine = [
            s
            for s in reversed(self.statuses.values())
            if s.account_id == account_id and int(s.id) < max_id
        ][:limit]
        return 200, [self.status_json(s) for s in mine], {}

    def begin_status(self, account: Account, form: Form, key: str | None) -> Answer | Pending:
        """POST /api/v1/statuses up to the save: limits, faults, the key, validation."""
        now = self.stamp()
        if self.rate_limited > 0:
            self.rate_limited -= 1
            return (
                429,
                {"error": "Too many requests"},
                {
                    "X-RateLimit-Limit": "300",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": iso(now + dt.timedelta(seconds=self.reset_in)),
                },
            )
        if self.failures:
            return error(self.failures.pop(0), "The server is temporarily unavailable")
        slot = (account.id, key) if key else None
        if slot is not None and not self.rules.racy and slot in self.locked_keys:
            return error(503, RACE_ERROR)
        hit = self.keys.get(slot) if slot else None
        if hit is not None and (now - hit[1]).total_seconds() < IDEMPOTENCY_SECONDS:
            self.replays += 1
            if self.rules.replay == "error":
                return error(500, "We're sorry, but something went wrong on our end.")
            return self.get_status(hit[0])
        problem = self._invalid(account, form)
        if problem is not None:
            return problem
        if slot is not None and not self.rules.racy:
            self.locked_keys.add(slot)
        return Pending(account, form, key)

    def finish_status(self, pending: Pending) -> tuple[Answer, bool]:
        """The save, then the key stored; the flag says to drop the connection."""
        account, form, key = pending.account, pending.form, pending.key
        now = self.stamp()
        slot = (account.id, key) if key else None
        if slot is not None:
            self.locked_keys.discard(slot)
        # Checked once, at the start (validate_media!): a racing copy takes the media over.
        media_ids = form.get("media_ids[]") or form.get("media_ids") or []
        s = Status(
            self.next_id(),
            account.id,
            first(form, "status") or "",
            first(form, "in_reply_to_id") or None,
            list(media_ids),
            first(form, "visibility") or "public",
            first(form, "language"),
            now,
            key,
        )
        self.statuses[s.id] = s
        for i in media_ids:
            self.media[i].status_id = s.id
        if slot is not None:
            self.keys[slot] = (s.id, now)
        drop = self.drops > 0
        if drop:
            self.drops -= 1
            self.dropped += 1
        return (200, self.status_json(s), {}), drop

    def make_status(self, account: Account, form: Form, key: str | None) -> tuple[Answer, bool]:
        """POST /api/v1/statuses with nothing in between check and save."""
        begun = self.begin_status(account, form, key)
        return (begun, False) if not isinstance(begun, Pending) else self.finish_status(begun)

    def _invalid(self, account: Account, form: Form) -> Answer | None:
        text = first(form, "status") or ""
        media_ids = form.get("media_ids[]") or form.get("media_ids") or []
        reply = first(form, "in_reply_to_id")
        if reply and reply not in self.statuses:
            return error(404, "The post you are trying to reply to does not appear to exist.")
        if len(media_ids) > self.max_media:
            return error(422, f"Cannot attach more than {self.max_media} files")
        missing = [
            i
            for i in media_ids
            if i not in self.media
            or self.media[i].account_id != account.id
            or self.media[i].status_id
        ]
        if missing:
            return error(
                422, f"Media {', '.join(missing)} not found or already attached to another post"
            )
        if any(not self.media[i].processed for i in media_ids):
            return error(
                422, "Cannot attach files that have not finished processing. Try again in a moment!"
            )
        if not text.strip() and not media_ids:
            return error(422, "Validation failed: Text can't be blank")
        if (first(form, "visibility") or "public") not in (
            "public",
            "unlisted",
            "private",
            "direct",
        ):
            return error(422, "Validation failed: Visibility is not included in the list")
        if self.length(text) > self.max_characters:
            return error(
                422, f"Validation failed: Text character limit of {self.max_characters} exceeded"
            )
        for marker, reason in self.rejected.items():
            if marker in text:
                return error(422, reason)
        return None

    # -- JSON as Mastodon shapes it ---------------------------------------------------------
    def account_json(self, a: Account, *, source: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            **NONE,
            **FALSE,
            **EMPTY,
            "id": a.id,
            "username": a.username,
            "acct": a.username,
            "display_name": a.display_name,
            "created_at": "2023-01-01T00:00:00.000Z",
            "note": "",
            "url": f"{self.url}/@{a.username}",
            "avatar": "",
            "header": "",
            "followers_count": 0,
            "following_count": 0,
            "statuses_count": sum(1 for s in self.statuses.values() if s.account_id == a.id),
        }
        if source:
            data["source"] = {
                "privacy": "public",
                "sensitive": False,
                "language": "en",
                "note": "",
                "fields": [],
            }
        return data

    def media_json(self, m: Media) -> dict[str, Any]:
        return {
            "id": m.id,
            "type": "image",
            "description": m.description,
            "meta": {},
            "url": f"{self.url}/system/media/{m.id}/{m.file_name}" if m.processed else None,
            "preview_url": f"{self.url}/system/media/{m.id}/small.png",
            "remote_url": None,
        }

    def status_json(self, s: Status) -> dict[str, Any]:
        a = self.accounts[s.account_id]
        paragraphs = [html.escape(p).replace("\n", "<br />") for p in s.text.split("\n\n")]
        parent = self.statuses.get(s.in_reply_to_id or "")
        return {
            **NONE,
            **FALSE,
            **EMPTY,
            "id": s.id,
            "created_at": iso(s.created_at),
            "in_reply_to_id": s.in_reply_to_id,
            "in_reply_to_account_id": parent.account_id if parent else None,
            "spoiler_text": "",
            "visibility": s.visibility,
            "language": s.language,
            "uri": f"{self.url}/users/{a.username}/statuses/{s.id}",
            "url": f"{self.url}/@{a.username}/{s.id}",
            "replies_count": sum(1 for o in self.statuses.values() if o.in_reply_to_id == s.id),
            "reblogs_count": 0,
            "favourites_count": 0,
            "account": self.account_json(a),
            "content": "".join(f"<p>{p}</p>" for p in paragraphs),
            "media_attachments": [self.media_json(self.media[m]) for m in s.media_ids],
        }

    def next_id(self) -> str:
        self.last_id += 1
        return str(self.last_id)

    def length(self, text: str) -> int:
        # Every URL counts characters_reserved_per_url; the tests' texts have no mentions or
        # combining marks, so code points stand in for Mastodon's grapheme clusters.
        return len(URL_RE.sub("x" * self.url_length, text))
