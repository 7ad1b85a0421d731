"""The platforms registry: every fact about X, Bluesky, Mastodon, Threads and LinkedIn.

Sits beside `config.py` at the top of the flow and is read by every stage that needs to know a
platform's rules: settings (which ids exist, which are numbered), records (handle formats), text/
(limits; the counting code stays in `text/length.py`, which builds its `PlatformRule`s from
the figures here), render/ (display names, card sizes, alt-text limits, media caps, hashtags)
and deliver/ (the API limits a publisher checks before posting). One frozen `Platform` per
platform in `PLATFORMS`, in the order the project uses everywhere, and `MENTION_RE`, the one
Mastodon mention pattern.

Cheap to import on purpose (stdlib only): `config.py` reads it on every command. `MENTION_RE`
is compiled with the `regex` module (whose `\\w` matches Ruby's `[[:word:]]`, letters and
combining marks alike; the stdlib's does not) on first use, and `Platform.rule` imports the
counters of `text/length.py` only when asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aspdigest.text.length import PlatformRule


@dataclass(frozen=True, slots=True)
class Platform:
    """What one platform allows and how the project writes for it.

    ``limit`` is the most a post may measure, in ``unit``, by ``counter`` (the name of the
    counting function in `aspdigest.text.length`); ``thread`` tells whether a long text may
    become a reply thread (else it must fit one post). ``url_length`` is what any URL counts
    (None: as written), ``max_bytes`` a further cap on the UTF-8 size, ``max_links`` on the
    distinct URLs of one post. ``alt_limit`` is the longest image description (UTF-16 units
    never undercount it), ``card_sizes`` the card sizes the platform shows uncropped in its
    feed, best first (Threads and Instagram-style feeds show 4:5 portrait full height; X and
    Bluesky landscape 16:9; LinkedIn and link previews 1.91:1, the `preview` size; Mastodon
    square), ``max_media`` the images one post carries (0: none attached).
    ``handle_pattern`` is the format of an account in event.toml ``[handles]`` (None: free
    text), ``handle_prefix`` what a post writes before it. ``hashtags`` is how many of the
    event's hashtags a post carries (None: all), ``numbered`` whether threads are numbered
    ("3/7") unless `social.numbering` says otherwise. ``hashtags_last`` puts the hashtags at
    the end of a post (LinkedIn's style) rather than in the opener; ``max_posts`` is a
    thread's budget unless `social.max_posts` says otherwise.
    """

    id: str
    name: str
    limit: int
    unit: str
    counter: str
    thread: bool
    alt_limit: int
    card_sizes: tuple[str, ...]
    max_media: int
    numbered: bool
    handle_pattern: str | None
    handle_prefix: str
    handle_help: str  # what a handle looks like, as the content reference shows it
    handle_hint: str | None = None  # the start of the error for a handle that does not match
    url_length: int | None = None
    max_bytes: int | None = None
    max_links: int | None = None
    hashtags: int | None = None
    hashtags_last: bool = False
    max_posts: int = 12

    @property
    def card_size(self) -> str:
        """The card size this platform attaches when that size could be drawn."""
        return self.card_sizes[0]

    @property
    def rule(self) -> PlatformRule:
        """The length rule `text/length.py` builds from these figures (its default limits)."""
        from aspdigest.text.length import RULES

        return RULES[self.id]


_PLATFORMS = (
    Platform(
        # twitter-text config/v3.json: 280 weighted, every URL 23.
        id="x",
        name="X",
        limit=280,
        unit="weighted characters",
        counter="x_weighted_length",
        thread=True,
        url_length=23,
        alt_limit=1000,
        card_sizes=("landscape", "preview", "square"),
        max_media=4,
        numbered=True,
        handle_pattern=r"^[A-Za-z0-9_]{1,15}$",
        handle_prefix="@",
        handle_help="Without the @.",
        handle_hint="expected an X handle without the @ (letters, digits, _; at most 15)",
    ),
    Platform(
        # app.bsky.feed.post: 300 graphemes and 3000 UTF-8 bytes; app.bsky.embed.images: 4.
        id="bluesky",
        name="Bluesky",
        limit=300,
        unit="graphemes",
        counter="bluesky_length",
        thread=True,
        max_bytes=3000,
        alt_limit=2000,
        card_sizes=("landscape", "preview", "square"),
        max_media=4,
        numbered=True,
        handle_pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]*\.[A-Za-z]{2,}$",
        handle_prefix="@",
        handle_help="A domain handle such as name.bsky.social, without @.",
        handle_hint="expected a Bluesky handle such as name.bsky.social, without the @",
    ),
    Platform(
        # A server's StatusLengthValidator: 500 unless the instance says otherwise (the
        # setting social.mastodon_limit), every URL 23; MediaAttachment::MAX_DESCRIPTION_LENGTH
        # 1500 unless /api/v2/instance reports its own description_limit.
        id="mastodon",
        name="Mastodon",
        limit=500,
        unit="characters",
        counter="mastodon_length",
        thread=True,
        url_length=23,
        alt_limit=1500,
        card_sizes=("square", "landscape"),
        max_media=4,
        numbered=True,
        handle_pattern=r"^@[A-Za-z0-9_]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$",
        handle_prefix="",  # the handle is written with its @ and server
        handle_help="@user@instance",
        handle_hint="expected a Mastodon handle such as @name@instance.social",
    ),
    Platform(
        # Meta: 500 characters (emoji by their UTF-8 bytes), at most 5 links; we also hold a
        # post to 500 UTF-8 bytes. Graph API alt_text: 1000. Threads makes only a post's first
        # hashtag its topic tag; the others stay in the text as written.
        id="threads",
        name="Threads",
        limit=500,
        unit="characters",
        counter="threads_length",
        thread=True,
        max_bytes=500,
        max_links=5,
        alt_limit=1000,
        card_sizes=("portrait", "landscape", "square"),
        max_media=4,
        numbered=True,
        handle_pattern=r"^[A-Za-z0-9_.]{1,30}$",
        handle_prefix="@",
        handle_help="Without the @.",
        handle_hint="expected a Threads handle without the @",
        hashtags=1,  # Threads makes one tag a post's topic; more read as clutter
    ),
    Platform(
        # Posts API commentary: 3000 characters, one post (no thread, no card attached);
        # Images API altText: 4086. A mention needs an API URN, so the page name is written.
        id="linkedin",
        name="LinkedIn",
        limit=3000,
        unit="characters",
        counter="linkedin_length",
        thread=False,
        alt_limit=4086,
        card_sizes=("preview", "square", "landscape"),
        max_media=0,
        numbered=False,
        handle_pattern=None,
        handle_prefix="",
        handle_help="Company or profile name as LinkedIn shows it.",
        hashtags_last=True,
        max_posts=1,
    ),
)

PLATFORMS: Mapping[str, Platform] = MappingProxyType({p.id: p for p in _PLATFORMS})
"""Every platform by id, in the order the project lists them (x, bluesky, mastodon, threads,
linkedin)."""

# app/models/account.rb MENTION_RE: @user or @user@domain, not after '=', '/' or a word
# character. A match followed by an @, an accented Latin letter or "://" is not a mention
# (twitter-text's end_mention_match, which Mastodon's extractor applies): see
# `aspdigest.text.extract.extract_mastodon_mentions`.
MENTION_PATTERN = (
    r"(?<![=/\w])@(?P<acct>(?P<user>[a-zA-Z0-9_]+(?:[.\-]+[a-zA-Z0-9_]+)*)"
    r"(?:@(?P<domain>\w+(?:[.\-]+\w+)*))?)"
)

if TYPE_CHECKING:
    MENTION_RE: Any  # regex.Pattern[str], compiled from MENTION_PATTERN on first use


def __getattr__(name: str) -> Any:
    # PEP 562: compile MENTION_RE only when a module that matches mentions asks for it.
    if name == "MENTION_RE":
        import regex

        compiled = regex.compile(MENTION_PATTERN)
        globals()[name] = compiled
        return compiled
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def display_name(platform: str) -> str:
    """The platform's name as people read it ("LinkedIn"); an unknown id is shown as is."""
    spec = PLATFORMS.get(platform)
    return spec.name if spec is not None else platform


def names() -> tuple[str, ...]:
    """Every platform id, in order."""
    return tuple(PLATFORMS)


__all__ = ["MENTION_PATTERN", "PLATFORMS", "Platform", "display_name", "names"]
