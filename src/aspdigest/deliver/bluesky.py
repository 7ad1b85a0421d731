"""The `bluesky` publisher: a day's thread or quote posts, posted to a Bluesky account.

Deliver stage. `delivery.publishers.bluesky = "bluesky"` selects it; the runner hands
`BlueskyPublisher.publish(publication, ledger)` an approved `Publication` and the delivery's
`Ledger` and gets back a receipt (every post's at:// URI and bsky.app URL, and warnings). The
walk, one post at a time and each exactly once, is `deliver.posting.post_all`; this module is
the `BlueskyApi` it drives, over the atproto SDK: it logs in to `bluesky.service` (the
account's PDS) as `bluesky.handle` with the app password in ASPDIGEST_BLUESKY_PASSWORD, and
writes each post as an app.bsky.feed.post record (com.atproto.repo.createRecord) under a
record key it picks itself, a fresh TID that `post_all` stores before the request goes out.
A repository holds one record per key, so a post resent after a lost answer or a killed
process can never appear twice: `find` reads the key back (getRecord) and a second create
under a taken key fails. A record carries the build's facets (UTF-8 byte offsets; mentions
resolved to DIDs), reply refs to the thread's root and parent, its images as uploaded blobs
with alt text and aspect ratio — or, for a post with a link and no image, the link card the
build put in its `embed` (app.bsky.embed.external: uri, title, description, the thumbnail
uploaded as a blob) — and `langs`. Server answers become `posting`'s errors.

Blobs need no ledger of their own: a blob is addressed by its content (its CID is the hash of
its bytes), so an upload repeated after a crash is the same blob, and only the record that
references it — created under its stored key, once — is visible. Each publish uploads the
images of the post in hand afresh, as the PDS drops blobs no record references.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

import httpx
from atproto import Client, models
from atproto_client.client.session import Session, SessionEvent
from atproto_client.exceptions import (
    BadRequestError,
    NetworkError,
    RateLimitExceededError,
    RequestErrorBase,
    UnauthorizedError,
)
from atproto_client.models.common import XrpcError
from atproto_client.models.utils import get_or_create
from atproto_client.request import Request
from atproto_core.exceptions import AtProtocolError
from PIL import Image, UnidentifiedImageError
from pydantic import ValidationError

from aspdigest.config import Project, secret
from aspdigest.deliver import Ledger, Media, Post, Publication
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
from aspdigest.platforms import PLATFORMS
from aspdigest.text.bluesky import (
    BLUESKY_MAX_BYTES,
    BLUESKY_MAX_GRAPHEMES,
    Facet,
    FacetKind,
    bluesky_bytes,
    bluesky_length,
)

PASSWORD = "ASPDIGEST_BLUESKY_PASSWORD"
COLLECTION = "app.bsky.feed.post"
MAX_IMAGES = PLATFORMS["bluesky"].max_media  # app.bsky.embed.images: images maxLength
IMAGE_MAX_BYTES = 2_000_000  # app.bsky.embed.images#image: blob maxSize, checked by the PDS
MIN_RATE_LIMIT_WAIT = 1.0  # seconds
_KIND = {"link": "uri", "mention": "handle", "tag": "tag"}  # facet type → its value's key
_B32 = "234567abcdefghijklmnopqrstuvwxyz"  # base32-sortable, the TID alphabet
# What a call through the SDK raises: its own errors, and httpx's for the transport errors it
# does not wrap (a connection closed without an answer).
_FAILED = (AtProtocolError, httpx.HTTPError)


class BlueskyPublisher(ApiPublisher["BlueskyApi"]):
    name = "bluesky"

    def __init__(
        self,
        project: Project,
        environ: Mapping[str, str] | None = None,
        outbox: Path | None = None,
        *,
        sleep: Sleep = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(project, environ, outbox, sleep=sleep)
        self.clock = clock  # epoch seconds: rate-limit resets and createdAt

    def make_api(self) -> BlueskyApi:
        settings = self.project.settings
        handle = settings.bluesky.handle.strip().removeprefix("@")
        if not handle:
            raise UserError(
                "aspdigest.toml: bluesky.handle is not set: the account to post "
                'as, e.g. "ciwj.bsky.social" (or set ASPDIGEST_BLUESKY_HANDLE)'
            )
        password = secret(PASSWORD, self.environ)
        if password is None:
            raise UserError(
                f"{PASSWORD} is not set: an app password of {handle} (Bluesky: "
                "Settings > Privacy and security > App passwords)"
            )
        return BlueskyApi(
            settings.bluesky.service,
            handle,
            password,
            timeout=settings.delivery.timeout,
            clock=self.clock,
        )

    def publish(
        self,
        publication: Publication,
        ledger: Ledger | None = None,
        halt: Callable[[], bool] | None = None,
    ) -> Mapping[str, Any]:
        api = self.api()
        api.warnings.clear()
        receipt = dict(super().publish(publication, ledger, halt))
        if api.warnings:  # mentions that went out as plain text
            receipt["warnings"] = list(api.warnings)
        return receipt


_tid_lock = threading.Lock()
_tid_last = 0


def new_tid() -> str:
    """A fresh TID (the record-key format of posts): 53 bits of microseconds since the epoch
    and a random 10-bit clock id, 13 base32-sortable characters, increasing within a process."""
    global _tid_last
    with _tid_lock:
        micros = max(time.time_ns() // 1000, _tid_last + 1)
        _tid_last = micros
    value = (micros << 10) | (int.from_bytes(os.urandom(2), "big") & 0x3FF)
    return "".join(_B32[(value >> shift) & 31] for shift in range(60, -1, -5))


class BlueskyApi:
    """`posting.PostingApi` for one Bluesky account (the atproto SDK underneath)."""

    platform = "Bluesky"
    # The record key names the post itself: `find` is authoritative, for as long as it takes.
    idempotency_window: float | None = None

    def __init__(
        self,
        service: str,
        handle: str,
        password: str,
        *,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.service = service.strip().rstrip("/")
        self.handle = handle
        self.clock = clock
        self.warnings: list[str] = []  # for the receipt: mentions posted as plain text
        self._password = password
        self._session: Session | None = None
        self._dids: dict[str, tuple[str | None, str]] = {}  # handle → DID, why not
        self._blob_limit: int | None = None
        self.client = Client(base_url=self.service, request=Request(timeout=timeout))
        self.client.on_session_change(self._on_session)

    def _on_session(self, event: SessionEvent, session: Session) -> None:
        self._session = session  # at login and at each token refresh

    # -- PostingApi ---------------------------------------------------------------------------

    def account(self) -> str:
        session = self._login()
        return f"@{session.handle} ({session.did}) on {self.service}"

    def check(self, publication: Publication) -> list[str]:
        pub = publication
        limit = self.image_limit()
        problems: list[str] = []
        for g, group in enumerate(pub.groups):
            for i, post in enumerate(group):
                label = pub.label(g, i)
                shown = post.api_text or post.text
                graphemes, size = bluesky_length(shown), bluesky_bytes(shown)
                if graphemes > BLUESKY_MAX_GRAPHEMES:
                    problems.append(
                        f"{label} is {graphemes} graphemes long (at most {BLUESKY_MAX_GRAPHEMES})"
                    )
                if size > BLUESKY_MAX_BYTES:
                    problems.append(
                        f"{label} is {size} bytes long in UTF-8 (at most {BLUESKY_MAX_BYTES})"
                    )
                if len(post.media) > MAX_IMAGES:
                    problems.append(f"{label} has {len(post.media)} images (at most {MAX_IMAGES})")
                problems.extend(f"{label}: {p}" for p in _facet_problems(post, size))
                images = [m.path for m in post.media]
                if not post.media and post.embed and post.embed.get("thumb"):
                    images.append(str(post.embed["thumb"]))
                for path in images:
                    problem = _image_problem(pub.folder / path, path, limit)
                    if problem:
                        problems.append(f"{label}: {problem}")
        return problems

    def new_key(self, publication: Publication, group: int, index: int) -> str:
        return new_tid()

    def find(self, key: str) -> PostRef | None:
        session = self._login()
        try:
            found = self.client.com.atproto.repo.get_record(
                models.ComAtprotoRepoGetRecord.Params(
                    repo=session.did, collection=COLLECTION, rkey=key
                )
            )
        except BadRequestError as exc:
            if _xrpc(exc)[0] == "RecordNotFound":
                return None
            raise self._error(exc) from None
        except _FAILED as exc:
            raise self._error(exc) from None
        return PostRef(found.uri, found.cid, self._url(key))

    def post(
        self,
        post: Post,
        key: str,
        root: PostRef | None,
        parent: PostRef | None,
        publication: Publication,
    ) -> PostRef:
        session = self._login()
        label = next(
            (
                publication.label(g, i)
                for g, group in enumerate(publication.groups)
                for i, p in enumerate(group)
                if p is post
            ),
            "a post",
        )
        try:
            record = models.AppBskyFeedPost.Record(
                text=post.api_text or post.text,
                created_at=dt.datetime.fromtimestamp(self.clock(), dt.UTC)
                .isoformat(timespec="milliseconds")
                .replace("+00:00", "Z"),
                langs=[publication.language],
                facets=self._facets(post, label) or None,
                reply=(
                    models.AppBskyFeedPost.ReplyRef(
                        root=self._strong(root or parent), parent=self._strong(parent)
                    )
                    if parent is not None
                    else None
                ),
                embed=self._embed(post, publication.folder),
            )
            data = models.ComAtprotoRepoCreateRecord.Data(
                repo=session.did, collection=COLLECTION, record=record, rkey=key
            )
        except (ValidationError, ValueError) as exc:
            raise Rejected(f"not a valid post record ({exc})") from None
        try:
            made = self.client.com.atproto.repo.create_record(data)
        except _FAILED as exc:
            error = self._error(exc)
            if isinstance(error, Unreachable):
                # It may be in the repository all the same (the answer was lost, or an
                # earlier request under this key arrived first and this one hit the taken key,
                # which the PDS answers with a 500): look before post_all retries.
                try:
                    found = self.find(key)
                except ApiError:
                    found = None
                if found is not None:
                    return found
            raise error from None
        return PostRef(made.uri, made.cid, self._url(key))

    # -- the parts of a record ----------------------------------------------------------------

    def _login(self) -> Session:
        if self._session is None:
            try:
                self.client.login(self.handle, self._password, fetch_bsky_profile=False)
            except (UnauthorizedError, BadRequestError) as exc:
                raise AuthFailed(
                    f"the app password in {PASSWORD} was refused for "
                    f"{self.handle} on {self.service} ({_detail(exc)})"
                ) from None
            except _FAILED as exc:
                raise self._error(exc) from None
        assert self._session is not None, "the SDK calls _on_session at every login"
        return self._session

    def image_limit(self) -> int:
        """The largest image the server takes: the lexicon's, or the PDS's upload limit."""
        if self._blob_limit is None:
            try:
                server = self.client.com.atproto.server.describe_server()
            except _FAILED as exc:
                raise self._error(exc) from None
            upload = server.blob_upload_limit
            self._blob_limit = min(IMAGE_MAX_BYTES, upload) if upload else IMAGE_MAX_BYTES
        return self._blob_limit

    def _url(self, rkey: str) -> str:
        handle = self._session.handle if self._session else self.handle
        return f"https://bsky.app/profile/{handle}/post/{rkey}"

    def _strong(self, ref: PostRef | None) -> models.ComAtprotoRepoStrongRef.Main:
        assert ref is not None
        cid = ref.cid
        if cid is None:  # a ledger written without it: ask the repository
            found = self.find(ref.id.rsplit("/", 1)[-1])
            if found is None or found.id != ref.id or found.cid is None:
                raise Rejected(f"the post it replies to, {ref.id}, is not in the repository")
            cid = found.cid
        return models.ComAtprotoRepoStrongRef.Main(uri=ref.id, cid=cid)

    def _facets(self, post: Post, label: str) -> list[models.AppBskyRichtextFacet.Main]:
        made: list[models.AppBskyRichtextFacet.Main] = []
        for raw in post.facets:
            kind = cast(FacetKind, str(raw.get("type")))  # check() saw it is one of them
            facet = Facet(kind, int(raw["byteStart"]), int(raw["byteEnd"]), str(raw[_KIND[kind]]))
            did = self._resolve(facet.value, label) if kind == "mention" else None
            if kind == "mention" and did is None:
                continue  # the text keeps "@handle"; it is just not a link
            made.append(
                get_or_create(facet.to_record(did), models.AppBskyRichtextFacet.Main, strict=True)
            )
        return made

    def _resolve(self, handle: str, label: str) -> str | None:
        """The DID of a mentioned handle, or None (with a warning) when it is no account.

        A handle that resolves to nothing does not stop the thread: the post keeps the text
        "@handle" without the link, and the receipt says so.
        """
        if handle not in self._dids:
            try:
                answer = self.client.com.atproto.identity.resolve_handle(
                    models.ComAtprotoIdentityResolveHandle.Params(handle=handle)
                )
                self._dids[handle] = (answer.did, "")
            except BadRequestError as exc:
                self._dids[handle] = (None, _detail(exc))
            except _FAILED as exc:
                raise self._error(exc) from None
        did, why = self._dids[handle]
        warning = (
            f"{label}: @{handle} was posted as plain text, not a mention: "
            f"{self.service} cannot resolve it ({why})"
        )
        if did is None and warning not in self.warnings:
            self.warnings.append(warning)
        return did

    def _embed(
        self, post: Post, folder: Path
    ) -> models.AppBskyEmbedImages.Main | models.AppBskyEmbedExternal.Main | None:
        if post.media:
            return self._images(post.media, folder)
        if post.embed and post.embed.get("type") == "external":
            return self._external(post.embed, folder)
        return None

    def _external(self, embed: Mapping[str, Any], folder: Path) -> models.AppBskyEmbedExternal.Main:
        """The link card the build decided: its thumbnail (when it has one) uploaded."""
        thumb = embed.get("thumb")
        blob = self._upload(folder / str(thumb), str(thumb))[0] if thumb else None
        return models.AppBskyEmbedExternal.Main(
            external=models.AppBskyEmbedExternal.External(
                uri=str(embed["uri"]),
                title=str(embed.get("title") or ""),
                description=str(embed.get("description") or ""),
                thumb=blob,
            )
        )

    def _upload(self, path: Path, shown: str) -> tuple[models.BlobRef, int, int]:
        """Upload one image; its blob ref, width and height."""
        try:
            data = path.read_bytes()
            with Image.open(path) as picture:
                width, height = picture.size
                mime = picture.get_format_mimetype() or "application/octet-stream"
        except (OSError, UnidentifiedImageError) as exc:
            raise Rejected(f"cannot read the image {shown} ({exc})") from None
        try:
            with warnings.catch_warnings():
                # The SDK hands the bytes to httpx as `data=`, which httpx deprecates.
                warnings.filterwarnings("ignore", "Use 'content=", DeprecationWarning)
                uploaded = self.client.com.atproto.repo.upload_blob(
                    data, headers={"Content-Type": mime}
                )
        except _FAILED as exc:
            raise self._error(exc) from None
        return uploaded.blob, width, height

    def _images(self, media: tuple[Media, ...], folder: Path) -> models.AppBskyEmbedImages.Main:
        images: list[models.AppBskyEmbedImages.Image] = []
        for item in media:
            blob, width, height = self._upload(folder / item.path, item.path)
            images.append(
                models.AppBskyEmbedImages.Image(
                    alt=item.alt,
                    image=blob,
                    aspect_ratio=models.AppBskyEmbedDefs.AspectRatio(width=width, height=height),
                )
            )
        return models.AppBskyEmbedImages.Main(images=images)

    def _error(self, exc: Exception) -> ApiError:
        """The SDK's exception as one of posting's errors, worded for a person."""
        detail = _detail(exc)
        response = exc.response if isinstance(exc, RequestErrorBase) else None
        if isinstance(exc, RateLimitExceededError):
            reset = exc.reset_at
            if reset is not None:
                wait = reset.timestamp() - self.clock()
                until = f"until {reset:%H:%M:%S} UTC"
            else:
                wait = exc.retry_after if exc.retry_after is not None else 60.0
                until = f"for {wait:.0f} s"
            # At least a second: a reset already past (a clock off) must not turn into
            # requests as fast as the server answers them, and the waits still add up to
            # delivery.rate_limit_wait.
            return RateLimited(
                f"{self.service} is rate-limiting {self.handle} {until} ({detail})",
                max(wait, MIN_RATE_LIMIT_WAIT),
            )
        if isinstance(exc, UnauthorizedError) or _xrpc(exc)[0] in ("ExpiredToken", "InvalidToken"):
            return AuthFailed(f"{self.service} refused the session of {self.handle} ({detail})")
        if isinstance(exc, BadRequestError):
            return Rejected(f"{self.service} refused it ({detail})")
        if response is None:
            return Unreachable(f"no answer from {self.service} ({detail})")
        if response.status_code == 413:
            return Rejected(f"{self.service} refused it as too large ({detail})")
        if isinstance(exc, NetworkError) or response.status_code >= 500:
            return Unreachable(f"{self.service} answered {detail}")
        return Rejected(f"{self.service} refused it ({detail})")


def _xrpc(exc: BaseException) -> tuple[str | None, str | None]:
    """The XRPC error name and message of an answer, when it has them."""
    response = exc.response if isinstance(exc, RequestErrorBase) else None
    content = response.content if response is not None else None
    if isinstance(content, XrpcError):
        return content.error, content.message
    return None, None


def _detail(exc: BaseException) -> str:
    """'401 AuthenticationRequired: Invalid identifier or password', never a header."""
    response = exc.response if isinstance(exc, RequestErrorBase) else None
    if response is None:  # no answer: what the connection said
        cause = exc.__cause__ or exc
        return f"{type(cause).__name__}: {cause}" if str(cause) else type(cause).__name__
    error, message = _xrpc(exc)
    named = f"{response.status_code} {error}" if error else str(response.status_code)
    return f"{named}: {message}" if error and message else named


def _facet_problems(post: Post, size: int) -> list[str]:
    """Facets the build should never have written: an unknown type, a range off the text."""
    problems: list[str] = []
    for n, raw in enumerate(post.facets, 1):
        kind = raw.get("type")
        if kind not in _KIND or not raw.get(_KIND[str(kind)]):
            problems.append(f"facet {n} is not a link, mention or tag")
            continue
        start, end = raw.get("byteStart"), raw.get("byteEnd")
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= size):
            problems.append(f"facet {n} spans bytes {start}-{end}, outside the text's {size}")
    return problems


def _image_problem(path: Path, shown: str, limit: int) -> str | None:
    if not path.is_file():
        return f"the image {shown} is missing"
    size = path.stat().st_size
    if size > limit:
        return f"the image {shown} is {size:,} bytes (at most {limit:,})"
    try:
        with Image.open(path) as picture:
            picture.verify()
    except (OSError, UnidentifiedImageError, SyntaxError) as exc:
        return f"the image {shown} cannot be read ({exc})"
    return None
