"""Project settings: `aspdigest.toml` at the project root, overridden by ASPDIGEST_* variables.

Sits beside the content stage at the top of the flow: `load_project(root)` returns a
frozen `Project` (root folder + validated `Settings`) that every later stage receives.
Secrets never live here: `secret(name)` reads them from the environment at the moment
they are needed, so they cannot end up in a manifest, a log line or an error message.
"""

from __future__ import annotations

import email.utils
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aspdigest import platforms as registry
from aspdigest.errors import ConfigError, Problem, UserError, read_toml

CONFIG_FILE = "aspdigest.toml"
# The platform ids of the registry, in order (`aspdigest.platforms` has what each allows).
PLATFORMS = registry.names()

# Variables that are read where they are used, not settings (and never echoed back).
SECRET_VARIABLES = frozenset(
    {
        "ASPDIGEST_SMTP_URL",
        "ASPDIGEST_SMTP_PASSWORD",
        "ASPDIGEST_UNSUBSCRIBE_KEY",
        "ASPDIGEST_UNSUBSCRIBE_KEY_OLD",
        "ASPDIGEST_DKIM_KEY_FILE",
        "ASPDIGEST_BLUESKY_PASSWORD",
        "ASPDIGEST_MASTODON_TOKEN",
        "ASPDIGEST_PREVIEW_TOKEN",
    }
)
OTHER_VARIABLES = frozenset({"ASPDIGEST_PROJECT", "ASPDIGEST_APPROVER", "ASPDIGEST_EVENT"})


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Brand(_Section):
    name: str | None = None  # None: the event's publisher (see `named`)
    primary: str = Field("#4b2c83", pattern=r"^#[0-9a-fA-F]{6}$")
    accent: str = Field("#c2185b", pattern=r"^#[0-9a-fA-F]{6}$")
    background: str = Field("#ffffff", pattern=r"^#[0-9a-fA-F]{6}$")
    text: str = Field("#1d1d1f", pattern=r"^#[0-9a-fA-F]{6}$")
    logo_url: str | None = None
    logo_width: int = Field(180, ge=16, le=600)  # px as shown in the 600 px digest
    logo_height: int | None = Field(None, ge=16, le=400)  # px; required with logo_url
    logo_alt: str | None = None  # default: the brand name
    website: str | None = None
    # The publisher's postal address, printed in every digest's footer: CAN-SPAM requires
    # one in commercial mail, and Mailchimp and others refuse to send without it.
    postal_address: str | None = None
    # A PNG or SVG file in the project, drawn on quote cards at the height the card spec gives.
    logo: str | None = None

    def named(self, publisher: str) -> Brand:
        """These settings with `name` filled in: the one set, else the event's publisher."""
        return self if self.name else self.model_copy(update={"name": publisher})


# What a build puts where a needed setting is unset: addresses under .invalid (RFC 2606), so
# nothing built from them can reach anyone; `settings_warnings` says so at every build, and
# `digest_ready`/`sender_problems` refuse to approve or send a digest until they are set.
_BARE_ADDRESS = re.compile(r"^[^\s<>\"@,;]+@[^\s<>\"@,;]+$")
MARKER_HOST = "aspdigest.invalid"
FROM_UNSET = f"from-not-set@{MARKER_HOST}"
UNSUBSCRIBE_UNSET = f"https://{MARKER_HOST}/unsubscribe-url-not-set?token={{token}}"


class Email(_Section):
    # No placeholder defaults: unset is None, and what needs a value warns (settings_warnings).
    from_: str | None = Field(None, alias="from")
    reply_to: str | None = None
    list_id: str | None = None  # default: digest.<the domain of email.from>
    unsubscribe_url: str | None = None
    unsubscribe_mailto: str | None = None
    archive_url: str | None = None  # unset: no links to the web archive, no feed
    signup_url: str | None = None  # the subscriber service's sign-up page
    preferences_url: str | None = None  # manage-preferences page; {token} as in unsubscribe_url
    subscribers: str = "subscribers.csv"
    subject: str = "{{ day.title }} | {{ event.short_name }}"
    preheader: str = "{{ day_preheader or teaser }}"
    rate_per_second: float = 10.0  # messages per second over SMTP; 0 = as fast as possible
    return_path: str | None = None  # envelope sender (where bounces go); default: from
    feed_url: str | None = None  # Atom feed URL; default: archive_url up to {date} + feed.atom
    max_attempts: int = Field(4, ge=1)  # tries per recipient on 4xx replies
    retry_backoff: float = Field(2.0, ge=0)  # seconds before the first retry; doubles
    timeout: float = Field(30.0, gt=0)  # seconds to wait for the SMTP server
    connections: int = Field(1, ge=1, le=64)  # parallel SMTP connections for one digest
    # DKIM signing (the private key's file: ASPDIGEST_DKIM_KEY_FILE): d= and s= of the signature.
    dkim_domain: str | None = None
    dkim_selector: str | None = None
    soft_bounce_limit: int = Field(3, ge=1)  # soft bounces within 30 days that suppress

    def sender(self, name: str) -> str:
        """The From header: email.from, its display name defaulting to `name` (the brand's,
        which defaults to the event's publisher); a marker under .invalid while unset."""
        address = (self.from_ or "").strip()
        if not address:
            address = FROM_UNSET
        elif not _BARE_ADDRESS.match(address):
            return address  # as written (a malformed value is refused where it is used)
        escaped = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}" <{address}>'

    @property
    def list_name(self) -> str:
        """The List-Id (also in Message-IDs and signed tokens): email.list_id, else
        digest.<the domain of email.from>."""
        if self.list_id:
            return self.list_id
        _, address = email.utils.parseaddr(self.from_ or "")
        domain = address.rpartition("@")[2] if "@" in address else ""
        return f"digest.{domain or FROM_UNSET.rpartition('@')[2]}"

    @property
    def unsubscribe(self) -> str:
        """email.unsubscribe_url, else a marker under .invalid (refused at approval)."""
        return self.unsubscribe_url or UNSUBSCRIBE_UNSET


class Social(_Section):
    platforms: tuple[str, ...] = PLATFORMS
    numbering: tuple[str, ...] = tuple(p.id for p in registry.PLATFORMS.values() if p.numbered)
    mastodon_limit: int = Field(registry.PLATFORMS["mastodon"].limit, ge=100)
    signup_url: str | None = None
    # A thread's budget in posts (quote posts aside); per platform in [social.platform_max_posts].
    max_posts: int = Field(registry.PLATFORMS["x"].max_posts, ge=3, le=100)
    platform_max_posts: dict[str, int] = Field(default_factory=dict)
    # "excerpt": a carded quote is one post (excerpt, card, whole quote in the alt text);
    # "split": the whole quote as text, split sentence by sentence over posts.
    long_quotes: Literal["excerpt", "split"] = "excerpt"

    def budget(self, platform: str) -> int:
        """The most posts a thread on `platform` may have."""
        return self.platform_max_posts.get(platform, self.max_posts)


class Output(_Section):
    dir: str = "out"


class State(_Section):
    url: str = "sqlite:///.aspdigest/state.sqlite"


class Paths(_Section):
    content: str = "content"
    templates: str = "templates"
    schedules: str = "schedules"


class DeliverySettings(_Section):
    """The queue's runner and the social publisher (schedules/<event>.toml says when)."""

    publisher: str = "handoff"  # how thread and quote posts go out; "handoff": files (+ email)
    publishers: dict[str, str] = Field(
        default_factory=dict
    )  # per platform, e.g. bluesky = "bluesky"
    outbox: str = "outbox"  # handoff files: <outbox>/<event>/<date>/<platform>/<channel>/
    handoff_to: tuple[str, ...] = ()  # team addresses that get each handoff by email
    poll_seconds: float = Field(5.0, gt=0, le=300)  # how often `aspdigest run` rereads the store
    rate_limit_wait: float = Field(900.0, ge=0)  # longest wait for a platform's rate limit
    network_retries: int = Field(3, ge=0, le=10)  # tries again after a connection error
    timeout: float = Field(30.0, gt=0)  # seconds to wait for a platform's API


class Bluesky(_Section):
    """The account the `bluesky` publisher posts as (app password: ASPDIGEST_BLUESKY_PASSWORD)."""

    service: str = "https://bsky.social"  # the account's PDS (or the entryway that finds it)
    handle: str = ""  # e.g. ciwj.bsky.social, or the account's DID


class Mastodon(_Section):
    """The account the `mastodon` publisher posts as (token: ASPDIGEST_MASTODON_TOKEN)."""

    instance: str = ""  # e.g. https://mastodon.social
    visibility: Literal["public", "unlisted", "private", "direct"] = "public"


class Settings(_Section):
    brand: Brand = Brand()
    email: Email = Email()
    social: Social = Social()
    output: Output = Output()
    state: State = State()
    paths: Paths = Paths()
    delivery: DeliverySettings = DeliverySettings()
    bluesky: Bluesky = Bluesky()
    mastodon: Mastodon = Mastodon()


SECTIONS = tuple(Settings.model_fields)


@dataclass(frozen=True)
class Project:
    """Where a project lives and how it is set up."""

    root: Path
    settings: Settings

    def path(self, relative: str) -> Path:
        return (self.root / relative).resolve()

    @property
    def content_dir(self) -> Path:
        return self.path(self.settings.paths.content)

    @property
    def templates_dir(self) -> Path:
        return self.path(self.settings.paths.templates)

    @property
    def schedules_dir(self) -> Path:
        return self.path(self.settings.paths.schedules)

    @property
    def output_dir(self) -> Path:
        return self.path(self.settings.output.dir)

    def relative(self, path: Path) -> str:
        """A path as messages show it: relative to the project root, with forward slashes."""
        try:
            return path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return path.as_posix()


def _env_overrides(
    environ: Mapping[str, str], problems: list[Problem]
) -> dict[str, dict[str, str]]:
    overrides: dict[str, dict[str, str]] = {}
    for name, value in sorted(environ.items()):
        if not name.startswith("ASPDIGEST_") or name in SECRET_VARIABLES | OTHER_VARIABLES:
            continue
        rest = name.removeprefix("ASPDIGEST_").lower()
        section, _, key = rest.partition("_")
        if section not in SECTIONS or not key:
            continue
        model = Settings.model_fields[section].annotation
        fields = (
            model.model_fields if isinstance(model, type) and issubclass(model, BaseModel) else {}
        )
        names = {f.alias or k: k for k, f in fields.items()}
        if key not in names:
            problems.append(Problem(name, "", f"unknown setting [{section}] {key}"))
            continue
        overrides.setdefault(section, {})[key] = value
    return overrides


def _split_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _split_pairs(value: str) -> dict[str, str] | str:
    """ "bluesky=bluesky, mastodon=mastodon" → a table; anything else is left for validation."""
    pairs = [item.partition("=") for item in _split_list(value)]
    if not all(sep for _, sep, _ in pairs):
        return value
    return {k.strip(): v.strip() for k, _, v in pairs}


def load_settings(root: Path, environ: Mapping[str, str] | None = None) -> Settings:
    environ = os.environ if environ is None else environ
    path = root / CONFIG_FILE
    problems: list[Problem] = []
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = read_toml(CONFIG_FILE, path.read_bytes())
        except UserError as exc:
            raise ConfigError(exc.problems) from None
    for section, values in _env_overrides(environ, problems).items():
        target = data.setdefault(section, {})
        for key, value in values.items():
            model = Settings.model_fields[section].annotation
            assert isinstance(model, type) and issubclass(model, BaseModel)
            field = next(f for k, f in model.model_fields.items() if (f.alias or k) == key)
            annotation = str(field.annotation)
            target[key] = (
                _split_list(value)
                if "tuple" in annotation
                else _split_pairs(value)
                if "dict" in annotation
                else value
            )
    settings: Settings | None = None
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            problems.append(Problem(CONFIG_FILE, loc, _config_message(err)))
    # Checked on the values as written, so they are reported with the type errors above.
    problems += _cross_problems(data)
    if problems or settings is None:
        raise ConfigError(problems)
    return settings


def _table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


def _cross_problems(data: Mapping[str, Any]) -> list[Problem]:
    """What no single setting's type says: platforms named that are not known, a logo URL
    without its height."""
    problems = []
    listed = _table(data, "social").get("platforms")
    named = [
        ("social.platforms", name)
        for name in (listed if isinstance(listed, list | tuple) else [])
        if isinstance(name, str)
    ]
    publishers = _table(data, "delivery").get("publishers")
    named += [
        (f"delivery.publishers.{name}", name)
        for name in (publishers if isinstance(publishers, Mapping) else {})
    ]
    problems += [
        Problem(CONFIG_FILE, where, f'unknown platform "{name}"; known: {", ".join(PLATFORMS)}')
        for where, name in named
        if name not in PLATFORMS
    ]
    brand = _table(data, "brand")
    if brand.get("logo_url") and brand.get("logo_height") is None:
        width = brand.get("logo_width")
        problems.append(
            Problem(
                CONFIG_FILE,
                "brand.logo_height",
                "required with brand.logo_url: the logo's height in pixels when shown "
                f"{width if isinstance(width, int) else Brand().logo_width} px wide "
                "(brand.logo_width), so mail programs keep its space while images are blocked",
            )
        )
    return problems


def _config_message(err: Any) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown setting"
    if err["type"] == "missing":
        return "required setting missing"
    if err["type"] == "string_pattern_mismatch" and "#[0-9a-fA-F]{6}" in str(err["ctx"]):
        return f'expected a colour like "#4b2c83", got "{err["input"]}"'
    return str(err["msg"])


def find_root(start: Path) -> Path:
    """The nearest folder at or above `start` holding aspdigest.toml, else `start` itself."""
    for folder in (start, *start.parents):
        if (folder / CONFIG_FILE).exists():
            return folder
    return start


def load_project(root: Path | None = None, environ: Mapping[str, str] | None = None) -> Project:
    environ = os.environ if environ is None else environ
    if root is None:
        root = (
            Path(environ["ASPDIGEST_PROJECT"])
            if environ.get("ASPDIGEST_PROJECT")
            else find_root(Path.cwd())
        )
    if not root.is_dir():
        raise ConfigError(f"{root}: project folder not found")
    return Project(root=root.resolve(), settings=load_settings(root, environ))


def secret(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """A secret from the environment, or None; callers decide whether it is required."""
    environ = os.environ if environ is None else environ
    value = environ.get(name)
    return value or None
