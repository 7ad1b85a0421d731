"""Read and validate one event's folder: event.toml plus one Markdown record per item.

First stage of the flow. `load_content(project, event_id)` reads
`content/<event>/event.toml` (tomllib) and every `content/<event>/<YYYY-MM-DD>/<slug>.md`
(python-frontmatter), validates them with the models in `records.py`, checks what no
single file can check alone (quote speakers, day folders, duplicate ids), and returns a
frozen `Content`. Every problem in every file is collected first; then one
`ContentError` carries them all, one line each: `path: field: message`.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import math
import os
import stat
import tomllib
import zoneinfo
from dataclasses import dataclass
from pathlib import Path

import frontmatter
import yaml
from pydantic import ValidationError

from aspdigest.config import Project
from aspdigest.errors import ContentError, Problem, toml_message
from aspdigest.inputs import EVENT_FILE
from aspdigest.quotelint import quote_mark_warnings
from aspdigest.records import (
    SLUG_RE,
    Event,
    EventMeta,
    Record,
    RecordMeta,
    describe,
    known_language,
)
from aspdigest.safetext import text_problem
from aspdigest.validation import attribution_problems, excerpt_problem, problems_from

BOM = b"\xef\xbb\xbf"
MAX_FILE_BYTES = 256 * 1024  # far above any real record (the sample's largest is ~5 KB)
_FILE_KINDS = {
    stat.S_IFDIR: "a folder",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a device",
    stat.S_IFBLK: "a device",
}


@dataclass(frozen=True)
class Content:
    """Everything the team wrote for one event, validated."""

    event: Event
    records: tuple[Record, ...]
    # Worth a person's look, never a reason to stop (`check` and `build` print them).
    warnings: tuple[Problem, ...] = ()


def event_name(project: Project, event_id: str) -> str:
    """The event's name as people read it (calendars, export titles): `name` from its
    event.toml, or the id when that file does not read (`check` reports why)."""
    problems: list[Problem] = []
    event = _load_event(project, event_id, problems)
    return event.name if event is not None and not problems else event_id


# -- reading files ----------------------------------------------------------------------------


def _shown(project: Project, file: Path) -> str:
    """A file's path as messages show it: project-relative, naming a symlink itself rather than
    where it leads (project.relative resolves it, and /dev/zero says nothing of which record)."""
    try:
        return (file.parent.resolve() / file.name).relative_to(project.root.resolve()).as_posix()
    except (ValueError, OSError, RuntimeError):
        return file.as_posix()


def _not_regular(info: os.stat_result) -> str:
    kind = _FILE_KINDS.get(stat.S_IFMT(info.st_mode), "not a file")
    return f"not a regular file ({kind}); remove it"


def read_source(project: Project, file: Path, what: str = "a record") -> bytes | str:
    """The bytes of a file the team keeps under content/, or why it is not read (one message).

    Only regular files inside the project, of at most MAX_FILE_BYTES, are opened: opening a
    FIFO blocks, a symlink to /dev/zero or a huge file fills the memory, and a symlink out of
    the project could put any file the user can read into what is published.
    """
    inside = "records must be files inside the project"
    try:
        link = stat.S_ISLNK(os.lstat(file).st_mode)
        target = file.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python 3.11)
        return "symlink that leads back to itself (a loop); remove it"
    root = project.root.resolve()
    if not target.is_relative_to(root):
        if link:
            return f"symlink to {target}, outside the project; {inside}"
        return f"in a symlinked folder that leads to {target}, outside the project; {inside}"
    try:
        info = os.stat(target)
    except FileNotFoundError:
        gone = target.relative_to(root).as_posix()
        return f"symlink to {gone}, which does not exist" if link else "no longer exists"
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    if not stat.S_ISREG(info.st_mode):  # checked before opening: opening a FIFO blocks
        return _not_regular(info)
    try:
        # O_NONBLOCK: should a FIFO take the file's place after the check, opening it still
        # returns at once (and the fstat below refuses it).
        fd = os.open(target, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return _not_regular(info)
        raw = handle.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        size = max(info.st_size, len(raw))
        return f"{math.ceil(size / 1024):,} KB; {what} may be at most {MAX_FILE_BYTES // 1024} KB"
    return raw


def _decode(raw: bytes, path: str, problems: list[Problem]) -> str | None:
    if raw.startswith(BOM):
        raw = raw[len(BOM) :]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        problems.append(
            Problem(
                path,
                "encoding",
                (
                    f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} on line {line}); save the file as UTF-8"
                ),
            )
        )
        return None


def _load_event(project: Project, event_id: str, problems: list[Problem]) -> Event | None:
    file = project.content_dir / event_id / EVENT_FILE
    path = _shown(project, file)
    raw = read_source(project, file, f"{EVENT_FILE}")
    if isinstance(raw, str):
        problems.append(Problem(path, "", raw))
        return None
    text = _decode(raw, path, problems)
    if text is None:
        return None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problems.append(Problem(path, "", toml_message(exc)))
        return None
    try:
        meta = EventMeta.model_validate(data)
    except ValidationError as exc:
        problems.extend(problems_from(path, exc, EventMeta))
        meta = None
    if isinstance(data.get("id"), str) and data["id"] != event_id:
        problems.append(
            Problem(path, "id", f'"{data["id"]}" does not match the folder name "{event_id}"')
        )
    tz = data.get("timezone")
    if isinstance(tz, str) and not _valid_zone(tz):
        close = difflib.get_close_matches(tz, sorted(zoneinfo.available_timezones()), n=1)
        fix = (
            f'; did you mean "{close[0]}"?'
            if close
            else ' (an IANA name such as "Europe/Amsterdam")'
        )
        problems.append(Problem(path, "timezone", f'unknown time zone "{tz}"{fix}'))
    # A valid-but-wrong event (bad id or zone) still dates the records, so their problems show too.
    if meta is None:
        return None
    if meta.end < meta.start:
        problems.append(Problem(path, "end", f"{meta.end} is before start {meta.start}"))
        return None
    length = _too_long(meta)
    if length is not None:
        # Every day becomes pages, threads and deliveries: a typo such as end = 2034-12-06
        # would build for hours. Refused before anything else is looked at.
        problems.append(Problem(path, "end", length))
        return None
    for key in meta.days:
        try:
            day = dt.date.fromisoformat(key)
        except ValueError:
            problems.append(Problem(path, f"days.{key}", 'not a date; write [days."YYYY-MM-DD"]'))
            continue
        if not meta.start <= day <= meta.end:
            problems.append(
                Problem(
                    path, f"days.{key}", (f"outside the event's dates ({meta.start} to {meta.end})")
                )
            )
    return Event(**dict(meta), path=path, sha256=hashlib.sha256(raw).hexdigest())


def _too_long(meta: EventMeta) -> str | None:
    """Why the event's dates are refused as too far apart, naming the likely typo; or None."""
    days = (meta.end - meta.start).days + 1
    if days <= meta.max_days:
        return None
    message = (
        f"the event runs {days:,} days ({meta.start} to {meta.end}), more than max_days "
        f"({meta.max_days})"
    )
    for year in (meta.start.year, meta.start.year + 1):  # +1: an event over New Year
        try:
            guess = meta.end.replace(year=year)
        except ValueError:  # 29 February
            continue
        if guess != meta.end and meta.start <= guess <= meta.start + dt.timedelta(
            days=meta.max_days - 1
        ):
            message += f"; is the year of end a typo for {guess}?"
            break
    else:
        message += "; is start or end a typo?"
    return f"{message} If the event really is this long, set max_days = {days} in {EVENT_FILE}"


def _valid_zone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _record_files(project: Project, folder: Path, problems: list[Problem]) -> list[Path]:
    """Every record file under the event's folder, sorted; whatever its kind (read_source
    refuses FIFOs, devices and folders named *.md). A symlinked folder is not followed; one
    that leads out of the project is reported, as its records would otherwise go unread."""
    files = []
    root = project.root.resolve()
    for top, folders, names in os.walk(folder):
        here = Path(top)
        # Names starting with "." or "_" are editor files and drafts; README.md explains a folder.
        folders[:] = [f for f in folders if not f.startswith((".", "_"))]
        for name in folders:
            linked = here / name
            if linked.is_symlink():
                try:
                    target = linked.resolve()
                except (OSError, RuntimeError):
                    continue
                if not target.is_relative_to(root):
                    problems.append(
                        Problem(
                            _shown(project, linked),
                            "",
                            f"symlink to {target}, outside the project; "
                            "records must be files inside the project",
                        )
                    )
        files += [
            here / name
            for name in (*names, *folders)
            if name.endswith(".md") and not name.startswith((".", "_")) and name != "README.md"
        ]
    return sorted(files)


def _read_record(
    project: Project,
    file: Path,
    folder_of_event: Path,
    event: Event | None,
    problems: list[Problem],
) -> Record | None:
    path = _shown(project, file)
    raw = read_source(project, file)
    if isinstance(raw, str):
        problems.append(Problem(path, "", raw))
        return None
    text = _decode(raw, path, problems)
    if text is None:
        return None
    before = len(problems)
    folder = file.parent.name
    date: dt.date | None = None
    if file.parent == folder_of_event:
        problems.append(
            Problem(path, "date", "record is not in a day folder; move it into YYYY-MM-DD/")
        )
    else:
        try:
            date = dt.date.fromisoformat(folder) if len(folder) == 10 else None
        except ValueError:
            date = None
        if date is None:
            problems.append(
                Problem(
                    path, "date", (f'folder "{folder}" is not a date; name day folders YYYY-MM-DD')
                )
            )
        elif event is not None and not event.start <= date <= event.end:
            problems.append(
                Problem(
                    path,
                    "date",
                    (f"{date} is outside the event's dates ({event.start} to {event.end})"),
                )
            )
    record_id = file.stem
    if not SLUG_RE.match(record_id):
        problems.append(
            Problem(
                path,
                "id",
                (f'file name "{file.name}" is not a slug (lowercase letters, digits, hyphens)'),
            )
        )
    if not text.strip():
        problems.append(
            Problem(
                path,
                "",
                (
                    "file is empty; a record starts with front matter between two --- lines "
                    "(title, kind, summary)"
                ),
            )
        )
        return None
    if not text.startswith("---"):
        problems.append(
            Problem(
                path,
                "front matter",
                (
                    'missing; start the file with a line "---", then title, kind and summary, then "---"'
                ),
            )
        )
        return None
    try:
        post = frontmatter.loads(text)
    except yaml.YAMLError as exc:
        # Line numbers count from the file's first line ("---" is line 1).
        mark = getattr(exc, "context_mark", None) or getattr(exc, "problem_mark", None)
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context = getattr(exc, "context", None)
        if context and getattr(exc, "context_mark", None) is not None:
            reason = f"{reason} {context}"
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problems.append(Problem(path, "front matter", f"invalid YAML{where}: {reason}"))
        return None
    data = post.metadata
    if not isinstance(data, dict):
        problems.append(
            Problem(path, "front matter", f"expected keys and values, got {describe(data)}")
        )
        return None
    # The body is Markdown, not YAML: no parser has looked at its characters yet.
    body_problem = text_problem(post.content.replace("\r\n", "\n"))
    body = [Problem(path, "body", body_problem)] if body_problem else []
    try:
        meta = RecordMeta.model_validate(data)
    except ValidationError as exc:
        problems.extend([*problems_from(path, exc, RecordMeta), *body])
        return None
    problems.extend(body)
    problems.extend(attribution_problems(path, meta))
    for i, quote in enumerate(meta.quotes):
        if quote.excerpt is not None:
            problem = excerpt_problem(quote.text, quote.excerpt, f"quotes[{i}].text")
            if problem:
                problems.append(Problem(path, f"quotes[{i}].excerpt", problem))
    if len(problems) > before or date is None:
        return None
    return Record(
        **dict(meta),
        id=record_id,
        date=date,
        path=path,
        sha256=hashlib.sha256(raw).hexdigest(),
        body=post.content.strip() + "\n" if post.content.strip() else "",
    )


def load_content(project: Project, event_id: str) -> Content:
    """Read, validate and return one event's content, or raise one ContentError with every problem."""
    folder = project.content_dir / event_id
    problems: list[Problem] = []
    event = _load_event(project, event_id, problems)
    records: list[Record] = []
    seen: dict[str, str] = {}
    for file in _record_files(project, folder, problems):
        record = _read_record(project, file, folder, event, problems)
        key = file.stem.lower()
        if key in seen:
            problems.append(
                Problem(
                    _shown(project, file),
                    "id",
                    (
                        f'duplicate id "{file.stem}", also used by {seen[key]}; rename one of the files'
                    ),
                )
            )
            continue
        seen[key] = _shown(project, file)
        if record is not None:
            records.append(record)
    for record in records:
        for i, quote in enumerate(record.quotes):
            if quote.lang is not None and not known_language(quote.lang):
                problems.append(
                    Problem(record.path, f"quotes[{i}].lang", f'unknown language "{quote.lang}"')
                )
    if event is not None and not known_language(event.language):
        problems.append(Problem(event.path, "language", f'unknown language "{event.language}"'))
    if problems:
        raise ContentError(sorted(problems, key=lambda p: p.path))  # stable: file order kept
    assert event is not None
    records.sort(
        key=lambda r: (
            r.date,
            r.order is None,
            r.order or 0,
            r.time is None,
            r.time or dt.time(),
            r.id,
        )
    )
    warnings = tuple(w for r in records for w in quote_mark_warnings(r))
    return Content(event=event, records=tuple(records), warnings=warnings)
