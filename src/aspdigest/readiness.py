"""What the settings lack: warnings for a build, refusals for a digest's approval and send.

Beside `config.py` at the top of the flow. `settings_warnings(project)` returns one
`Problem` per setting a build needs but lacks (aspdigest.toml itself, `email.from`,
`email.unsubscribe_url`, `brand.postal_address`, `email.archive_url`) and per setting still
naming a domain reserved for examples (example.org and the like): the build goes on, with
markers under .invalid or without the links, and says so. `sender_problems(settings)` and
`digest_ready(settings)` are what `approve` and the email channel refuse a digest without.
"""

from __future__ import annotations

import re
from typing import Any

from aspdigest.config import CONFIG_FILE, FROM_UNSET, MARKER_HOST, Project, Settings
from aspdigest.errors import Problem


def sender_problems(settings: Settings) -> list[Problem]:
    """The settings a digest cannot be sent without, each as one problem naming it."""
    email = settings.email
    problems = []
    if not (email.from_ or "").strip():
        problems.append(
            Problem(
                CONFIG_FILE,
                "email.from",
                "required to approve or send a digest: the address it comes from; set it "
                'under [email], e.g. from = "digest@your-domain.org" (the name shown '
                "defaults to the brand's, the event's publisher)",
            )
        )
    if not (email.unsubscribe_url or "").strip():
        problems.append(
            Problem(
                CONFIG_FILE,
                "email.unsubscribe_url",
                "required to approve or send a digest: the page of the subscriber service "
                "(`aspdigest serve`) that unsubscribes at one click; set it under [email], e.g. "
                'unsubscribe_url = "https://digest.your-domain.org/unsubscribe?token={token}"',
            )
        )
    return problems


def digest_ready(settings: Settings) -> list[Problem]:
    """What the settings lack for a digest to be approved and sent (an empty list: nothing)."""
    problems = sender_problems(settings)
    if settings.brand.postal_address and settings.brand.postal_address.strip():
        return problems
    return [
        *problems,
        Problem(
            CONFIG_FILE,
            "brand.postal_address",
            "required to approve a digest: the publisher's postal address, printed in every "
            "digest's footer (anti-spam laws such as CAN-SPAM require one); set it under "
            '[brand], e.g. postal_address = "Publisher name, street and number, postcode '
            'city, country"',
        ),
    ]


# Domains reserved for examples and tests (RFC 2606, RFC 6761): a setting naming one is a
# placeholder nobody replaced, however valid it looks.
_PLACEHOLDER_HOST = re.compile(
    r"(?:^|[@./])(?:example\.(?:org|com|net)|[^\s/@]*\.(?:example|invalid|test))(?=$|[/:?#>])",
    re.IGNORECASE,
)
# The settings whose values reach what is built or sent, in the order warnings list them.
_URL_SETTINGS = (
    ("email", "from"),
    ("email", "reply_to"),
    ("email", "list_id"),
    ("email", "unsubscribe_url"),
    ("email", "unsubscribe_mailto"),
    ("email", "archive_url"),
    ("email", "signup_url"),
    ("email", "preferences_url"),
    ("email", "feed_url"),
    ("email", "return_path"),
    ("brand", "website"),
    ("brand", "logo_url"),
    ("social", "signup_url"),
)


def _value(settings: Settings, section: str, key: str) -> Any:
    model = getattr(settings, section)
    return getattr(model, "from_" if key == "from" else key)


def settings_warnings(project: Project) -> list[Problem]:
    """What a build makes without real values, one problem each: aspdigest.toml missing, a
    setting the digest or the threads need left unset, a setting still naming a placeholder
    domain (example.org and the like). Never a reason to stop a build: the result is marked
    and the digest cannot be approved or sent until the settings are filled in."""
    out = []
    if not (project.root / CONFIG_FILE).exists():
        out.append(
            Problem(
                CONFIG_FILE,
                "",
                "not found; building with default settings and no sender, unsubscribe or "
                "archive addresses (run `aspdigest init` to write one)",
            )
        )
    email = project.settings.email
    if not (email.from_ or "").strip():
        out.append(
            Problem(
                CONFIG_FILE,
                "email.from",
                f"not set; the built digest comes from {FROM_UNSET}, and it cannot be "
                "approved or sent until this is set",
            )
        )
    if not (email.unsubscribe_url or "").strip():
        out.append(
            Problem(
                CONFIG_FILE,
                "email.unsubscribe_url",
                "not set; the built digest's unsubscribe link points to aspdigest.invalid, and "
                "it cannot be approved or sent until this is set",
            )
        )
    if not (project.settings.brand.postal_address or "").strip():
        out.append(
            Problem(
                CONFIG_FILE,
                "brand.postal_address",
                "not set; the digest cannot be approved until it is (every digest's footer "
                "prints the publisher's postal address)",
            )
        )
    if not (email.archive_url or "").strip():
        out.append(
            Problem(
                CONFIG_FILE,
                "email.archive_url",
                "not set; threads, quote posts and the digest carry no link to the day's "
                "digest on the web, and no feed is built",
            )
        )
    for section, key in _URL_SETTINGS:
        value = _value(project.settings, section, key)
        if isinstance(value, str) and (m := _PLACEHOLDER_HOST.search(value)):
            host = m.group(0).lstrip("@./")
            out.append(
                Problem(
                    CONFIG_FILE,
                    f"{section}.{key}",
                    f'"{value}" is a placeholder ({host} is reserved for examples); '
                    "set the real value",
                )
            )
    return out


def built_without_sender(eml: bytes) -> bool:
    """Whether a built digest carries the markers of an unset email.from or
    email.unsubscribe_url: built before they were set, it reaches nobody (rebuild it)."""
    return MARKER_HOST.encode() in eml
