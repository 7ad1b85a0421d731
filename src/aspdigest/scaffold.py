"""A new project's first files: what `aspdigest init` writes.

Before the first stage of the flow: it writes the inputs every later stage reads.
`answer_problem(field, value)` checks one answer (the same rules for a prompt and for a flag,
so a terminal can ask again with the reason); `Answers` holds the six facts a project starts
from; `files(answers)` returns each file's project-relative path and text, and `write(root,
answers, force)` writes them all or none. Nothing here is a placeholder to forget: the
settings that must be filled before a digest can go out are left empty and marked
"TO FILL", and `aspdigest build` warns about each of them until they are set.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aspdigest.config import CONFIG_FILE
from aspdigest.errors import Problem, UserError
from aspdigest.records import SLUG_RE, zone_problem
from aspdigest.safetext import text_problem

MAX_DAYS = 31  # event.toml's default max_days: a longer event needs max_days set
EXAMPLE_RECORD = "welcome.md"


@dataclass(frozen=True)
class Field:
    """One answer: the flag that gives it, the prompt that asks for it, an example."""

    flag: str
    prompt: str
    example: str


FIELDS: dict[str, Field] = {
    "event": Field("--event", "Event id (lowercase letters, digits, hyphens)", "wps25"),
    "name": Field("--name", "Full name of the event", '"Women, Peace and Security Forum 2025"'),
    "timezone": Field("--timezone", "Time zone of the venue (IANA name)", "America/New_York"),
    "start": Field("--start", "First day (YYYY-MM-DD)", "2025-03-08"),
    "end": Field("--end", "Last day (YYYY-MM-DD)", "2025-03-10"),
    "publisher": Field(
        "--publisher", "Publisher (who sends the digest and posts)", '"Peace Coalition"'
    ),
}


@dataclass(frozen=True)
class Answers:
    """The facts a project starts from; the rest of event.toml can be added later."""

    event: str
    name: str
    timezone: str
    start: dt.date
    end: dt.date
    publisher: str

    @property
    def short_name(self) -> str:
        # Subjects, cards and posts use it: the name when it is short, else the id in capitals.
        return self.name if len(self.name) <= 24 else self.event.upper()


def answer_problem(field: str, value: str, start: dt.date | None = None) -> str | None:
    """Why `value` cannot be the answer for `field` (worded to be asked again), or None.
    `start`: the first day, which the last may not precede."""
    value = value.strip()
    if not value:
        return "required"
    if field == "event":
        if not SLUG_RE.match(value):
            return f'expected a slug (lowercase letters, digits, hyphens), got "{value}"'
        return None
    if field == "timezone":
        return zone_problem(value)
    if field in ("start", "end"):
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            return f'expected a date like 2025-03-10, got "{value}"'
        if field == "end" and start is not None:
            if day < start:
                return f"{day} is before the first day, {start}"
            days = (day - start).days + 1
            if days > MAX_DAYS:
                return (
                    f"the event would run {days} days ({start} to {day}), more than {MAX_DAYS}; "
                    "is the year a typo? (a longer event: set max_days in event.toml later)"
                )
        return None
    return text_problem(value, single_line=True)


def parse(values: Mapping[str, str | None]) -> Answers:
    """Answers from the flags, or one UserError with a line per missing or bad one."""
    problems = []
    clean: dict[str, str] = {}
    for field, spec in FIELDS.items():
        value = (values.get(field) or "").strip()
        start = dt.date.fromisoformat(clean["start"]) if "start" in clean else None
        problem = answer_problem(field, value, start)
        if problem == "required":
            problems.append(
                Problem(
                    spec.flag,
                    "",
                    f"missing; give it, e.g. {spec.flag} {spec.example} "
                    "(init asks for it only on a terminal)",
                )
            )
        elif problem:
            problems.append(Problem(spec.flag, "", problem))
        else:
            clean[field] = value
    if problems:
        raise UserError(problems)
    return Answers(
        event=clean["event"],
        name=clean["name"],
        timezone=clean["timezone"],
        start=dt.date.fromisoformat(clean["start"]),
        end=dt.date.fromisoformat(clean["end"]),
        publisher=clean["publisher"],
    )


def _toml_string(value: str) -> str:
    """A TOML basic string (the answers are one line, free of controls: text_problem)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _yaml_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _settings(a: Answers) -> str:
    return f"""\
# Settings of this aspdigest project ({a.name}). Every key can be overridden by an
# environment variable ASPDIGEST_<SECTION>_<KEY> (e.g. ASPDIGEST_EMAIL_FROM). Secrets (the
# SMTP URL and password, the unsubscribe key, API tokens) come from the environment only and
# never belong here. `aspdigest build` warns about each setting below marked TO FILL while it
# is empty; `aspdigest approve` and `aspdigest run` refuse to send a digest without them.

[brand]
# The name on cards, the review site and the digest's List-Id; default: the event's
# publisher ({a.publisher}).
# name = {_toml_string(a.publisher)}
primary = "#4b2c83"       # headings, links and card backgrounds
accent = "#c2185b"
# website = ""            # the publisher's site, linked in the digest's footer
# TO FILL before the first digest is approved: the publisher's postal address, printed in
# every digest's footer (anti-spam laws such as CAN-SPAM require one).
postal_address = ""

[email]
# TO FILL before the first digest is approved or sent: the address the digest comes from,
# e.g. "digest@<your domain>"; the name shown defaults to the brand's name.
from = ""
# TO FILL: the subscriber service's unsubscribe page (`aspdigest serve`), with {{token}}
# where each reader's signed token goes, e.g. "https://<your domain>/unsubscribe?token={{token}}".
unsubscribe_url = ""
# TO FILL: where each day's digest is on the web ({{event}} and {{date}} are filled in);
# threads, quote posts and the digest link to it. Empty: no such links, and no feed.
archive_url = ""
# reply_to = ""           # where replies go; default: the from address
# list_id = ""            # default: digest.<the domain of from>; keep it once readers have tokens
# signup_url = ""         # the sign-up page, offered in the digest and the threads
subscribers = "subscribers.csv"

[social]
# The platforms a build makes threads and quote posts for (default: all five).
# platforms = ["x", "bluesky", "mastodon", "threads", "linkedin"]

[delivery]
# How threads and quote posts go out: "handoff" writes files for people to post (outbox/).
publisher = "handoff"
"""


def _event(a: Answers) -> str:
    return f"""\
# {a.name}: the facts of the event. `aspdigest check` validates this file with every record
# and the schedule; the README's "Content format" section describes every field.
id = {_toml_string(a.event)}                 # the folder's name
name = {_toml_string(a.name)}
short_name = {_toml_string(a.short_name)}    # in subjects, cards and posts
publisher = {_toml_string(a.publisher)}      # who sends the digest and posts; the default brand name
# venue = "Venue, City"
timezone = {_toml_string(a.timezone)}        # record times and the schedule are local times here
language = "en"                # BCP 47; a quote may give its own (lang: fr)
start = {a.start.isoformat()}              # unquoted TOML dates
end = {a.end.isoformat()}
hashtags = []                  # without the #, one word each, e.g. ["WPS25"]

# A day's headline, intro and inbox preview line (all optional):
# [days."{a.start.isoformat()}"]
# title = "Opening day"
# intro = "A short paragraph opening the day's digest."

# A name's accounts, used when the name appears in a post:
# [handles."{a.publisher}"]
# bluesky = "publisher.bsky.social"
"""


def _record(a: Answers) -> str:
    return f"""\
---
# An example record: replace it with the first real item of {a.start.isoformat()}, or delete
# it. One file per item, in the folder of its day; the file name is its id. The README's
# "Content format" section describes every field; `aspdigest schema record` prints them.
title: Opening session            # required
kind: session                     # required: session, side-event, statement, launch, report, screening, plea or closing
time: "09:00"                     # optional local time, in quotes
summary: The organisers opened the event and set out the questions it will answer.   # required: for posts and the digest teaser
organisers: [{_yaml_string(a.publisher)}]
speakers:
  - name: Jane Doe
    role: Chair of the opening session
quotes:
  - text: We are here to make sure that what is decided this week reaches the people it is for.
    by: Jane Doe                  # a speaker of this record (or from: a source's title)
    # without quotation marks around it: aspdigest adds the right ones for the language
# sources:                        # documents a quote is taken from
#   - title: Draft resolution
#     url: https://…
# links:                          # http(s) only
#   - title: Programme
#     url: https://…
tags: [opening]
---
The paragraph the digest shows for this item, in Markdown.
"""


def _schedule(a: Answers) -> str:
    return f"""\
# When each day of {a.short_name} goes out, in local time at {a.timezone}.
# `aspdigest schedule plan {a.event}` turns this file and the build into the delivery queue;
# run it again after changing this file. Each day's content goes out the morning after
# (day_offset = 1): the digest at 07:30, the thread at 12:00, the quote posts at 16:00.
event = {_toml_string(a.event)}

[digest]
time = "07:30"          # times in quotes
day_offset = 1          # the next morning (0: the same day)
approval = true         # a person approves each day's build (aspdigest approve)
grace_minutes = 90      # missed while nothing ran: still sent up to 90 minutes late …
missed = "hold"         # … after that, held for a person (or "skip")

[thread]
time = "12:00"
day_offset = 1
# platforms = ["x", "bluesky"]   # default: social.platforms in aspdigest.toml

[quotes]
time = "16:00"
day_offset = 1
missed = "skip"

# One day's channel at another time:
# [days."{a.end.isoformat()}".digest]
# time = "08:00"
"""


SUBSCRIBERS = "email,name,language\n"

# What aspdigest writes that is not to be kept in version control (see config.py defaults).
GITIGNORE = """\
# Written by aspdigest: rebuilt from the content at any time.
/out/
# The state store (SQLite by default) with its journal files: deliveries, approvals and
# subscribers live there, so back it up, but do not commit it.
/.aspdigest/
*.sqlite
*.sqlite-journal
*.sqlite-wal
*.sqlite-shm
# Handoff files for people to post, and the rehearsals' sandboxes.
/outbox/
# Editors.
.#*
*~
*.swp
"""


def files(a: Answers) -> dict[str, str]:
    """Each file of a new project: its path relative to the project folder, and its text."""
    return {
        CONFIG_FILE: _settings(a),
        f"content/{a.event}/event.toml": _event(a),
        f"content/{a.event}/{a.start.isoformat()}/{EXAMPLE_RECORD}": _record(a),
        f"schedules/{a.event}.toml": _schedule(a),
        "subscribers.csv": SUBSCRIBERS,
        ".gitignore": GITIGNORE,
    }


def default_event(root: Path) -> str | None:
    """The folder's name as the event id, when it is one (`aspdigest init wps25`)."""
    name = root.resolve().name
    return name if SLUG_RE.match(name) else None


def local_zone(environ: Mapping[str, str] | None = None) -> str | None:
    """This machine's IANA time zone ($TZ, else /etc/localtime's link), when it has a name."""
    environ = os.environ if environ is None else environ
    candidates = [environ.get("TZ", "").removeprefix(":")]
    try:
        link = os.readlink("/etc/localtime")
        candidates.append(link.partition("zoneinfo/")[2])
    except OSError:
        pass
    return next((z for z in candidates if z and "/" in z and zone_problem(z) is None), None)


def write(root: Path, a: Answers, force: bool = False, shown: str = "") -> list[str]:
    """Write every file of a new project under `root` (created if need be) and return their
    paths; without `force`, one UserError naming each file already there (`shown` + its
    path), and nothing written."""
    planned = files(a)
    if not force:
        there = [path for path in planned if os.path.lexists(root / path)]
        if there:
            raise UserError(
                [
                    Problem(
                        shown + path,
                        "",
                        "already exists; nothing was written (--force replaces it)",
                    )
                    for path in there
                ]
            )
    for path, text in planned.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if force and target.is_symlink():
            target.unlink()  # replace the link itself, never the file it points to
        tmp = target.with_name(f".{target.name}.init-tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
    return list(planned)
