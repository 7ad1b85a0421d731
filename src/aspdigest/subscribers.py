"""Subscribers: the CSV the team keeps, its import into the state store, unsubscribe tokens.

Beside the outbox in the flow (… → schedule/outbox → deliver). `read_csv(path)` takes a
CSV with the columns email, name (optional) and language (optional) and returns frozen
`SubscriberRow`s, or raises one `UserError` listing every bad line; `import_csv(store,
…)` loads them into the store. The unsubscribe tokens of the digest's links are made in
`aspdigest.tokens` from each subscriber's random id, never from the address.
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import io
import re
from dataclasses import dataclass
from pathlib import Path

from aspdigest.config import Project
from aspdigest.errors import Problem, UserError
from aspdigest.records import known_language
from aspdigest.safetext import text_problem
from aspdigest.store import ImportCounts, Store, normalise_address

COLUMNS = ("email", "name", "language")
# Deliberately plain: no spaces, quotes, angle brackets or line breaks (they would let a
# CSV cell inject headers), one @, and a domain with at least one dot.
_ADDRESS_RE = re.compile(
    r"^[^\s@<>()\",;:\\\[\]]+@[^\s@<>()\",;:\\\[\].]+(?:\.[^\s@<>()\",;:\\\[\].]+)+$"
)


@dataclass(frozen=True)
class SubscriberRow:
    address: str
    name: str | None
    language: str | None
    line: int


def is_address(value: str) -> bool:
    return bool(_ADDRESS_RE.match(value))


def subscribers_path(project: Project) -> Path:
    return project.path(project.settings.email.subscribers)


def read_csv(path: Path, shown: str | None = None) -> list[SubscriberRow]:
    """Every subscriber in the CSV, or one UserError naming each bad line."""
    where = shown or path.as_posix()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError([Problem(where, "", "file not found")]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise UserError(
            [Problem(where, f"line {line}", "not valid UTF-8; save the file as UTF-8")]
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    problems: list[Problem] = []
    header = next(reader, None)
    if header is None or not any(cell.strip() for cell in header):
        raise UserError(
            [
                Problem(
                    where,
                    "line 1",
                    ("expected a header row naming the columns: email, name, language"),
                )
            ]
        )
    columns = [cell.strip().lower() for cell in header]
    for number, column in enumerate(columns, 1):
        if not column:
            # A spreadsheet's trailing comma or an emptied heading, not a column called "".
            problems.append(
                Problem(where, "line 1", f"column {number} has no name; name it or remove it")
            )
        elif column not in COLUMNS:
            close = difflib.get_close_matches(column, COLUMNS, n=1, cutoff=0.6)
            hint = f'; did you mean "{close[0]}"?' if close else f"; columns: {', '.join(COLUMNS)}"
            problems.append(Problem(where, "line 1", f'unknown column "{column}"{hint}'))
    if "email" not in columns:
        problems.append(Problem(where, "line 1", 'no "email" column'))
    if problems:
        raise UserError(problems)
    rows: list[SubscriberRow] = []
    seen: dict[str, int] = {}
    for cells in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) > len(columns):
            problems.append(
                Problem(
                    where,
                    f"line {line}",
                    (
                        f"{len(cells)} cells but the header names {len(columns)} columns "
                        "(a comma in a name needs the name in double quotes)"
                    ),
                )
            )
            continue
        values = dict(zip(columns, (c.strip() for c in cells), strict=False))
        address = values.get("email", "")
        name = values.get("name") or None
        language = values.get("language") or None
        if not is_address(address):
            got = f'"{address}"' if address else "nothing"
            problems.append(
                Problem(
                    where,
                    f"line {line}",
                    (f"email: expected an address like name@example.org, got {got}"),
                )
            )
        elif normalise_address(address) in seen:
            problems.append(
                Problem(
                    where,
                    f"line {line}",
                    (f"email: {address} is already on line {seen[normalise_address(address)]}"),
                )
            )
        else:
            seen[normalise_address(address)] = line
        # The name goes into each message's To header: checked as a mail program reads it,
        # after decoding encoded words (a name must never stop the send for later rows).
        name_problem = text_problem(name, single_line=True) if name is not None else None
        if name_problem:
            problems.append(Problem(where, f"line {line}", f"name: {name_problem}"))
        if language is not None and not known_language(language):
            problems.append(
                Problem(
                    where,
                    f"line {line}",
                    (f'language: expected a language tag such as "en" or "fr", got "{language}"'),
                )
            )
        rows.append(SubscriberRow(address, name, language, line))
    if problems:
        raise UserError(problems)
    return rows


def import_csv(
    store: Store, path: Path, *, shown: str | None = None, replace: bool = False
) -> ImportCounts:
    rows = read_csv(path, shown)
    return store.import_subscribers(
        ((r.address, r.name, r.language) for r in rows), replace=replace
    )


# -- what the CLI shows ----------------------------------------------------------------------


@dataclass(frozen=True)
class Listed:
    address: str
    name: str | None
    language: str | None
    suppressed: str | None  # the reason, when the address is on the suppression list
    status: str = "suppressed"  # pending | active | suppressed
    subscribed_at: str | None = None  # the consent record, ISO 8601 UTC
    confirmed_at: str | None = None


def _iso(at: dt.datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at is not None else None


def listing(store: Store) -> list[Listed]:
    """Every subscriber with its status and suppression reason, then suppressed
    non-subscribers."""
    reasons = {s.address: s.reason for s in store.suppressions()}
    people = store.subscribers()
    out = [
        Listed(
            p.address,
            p.name,
            p.language,
            reasons.get(p.address),
            "suppressed" if p.address in reasons else p.status,
            _iso(p.subscribed_at),
            _iso(p.confirmed_at),
        )
        for p in people
    ]
    known = {p.address for p in people}
    out.extend(Listed(a, None, None, r) for a, r in sorted(reasons.items()) if a not in known)
    return out


def unsubscribe(
    store: Store, address: str, reason: str = "unsubscribed", note: str | None = None
) -> bool:
    """Suppress an address (True if it was not already); never deletes the subscriber, so a
    later import cannot quietly subscribe them again."""
    if not is_address(address):
        raise UserError(f"{address}: expected an address like name@example.org")
    return store.suppress(address, reason, note)
