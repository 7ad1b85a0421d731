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
import hashlib
import math
import os
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path

import frontmatter
import yaml
from pydantic import ValidationError

from aspdigest.config import Project
from aspdigest.errors import ContentError, Problem, toml_problem
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
    zone_problem,
)
from aspdigest.safetext import text_problem
from aspdigest.validation import (
    every_attribution_problem,
    excerpt_problem,
    problems_from,
    wrapped_problem,
)

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
        problems.append(toml_problem(path, exc, text))
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
    zone = zone_problem(tz) if isinstance(tz, str) else None
    if zone is not None:
        problems.append(Problem(path, "timezone", zone))
    # The dates are checked as written even when another field is wrong, so every problem
    # of the file shows at once; a valid-but-wrong event (bad id or zone) still dates the
    # records, so their problems show too.
    if not _dates_problems(path, data, problems) or meta is None:
        return None
    return Event(**dict(meta), path=path, sha256=hashlib.sha256(raw).hexdigest())


def _date(value: object) -> dt.date | None:
    """A TOML date as written (not a date-time: pydantic reports that one)."""
    return value if isinstance(value, dt.date) and not isinstance(value, dt.datetime) else None


def read_event(project: Project, event_id: str) -> Event | None:
    """The event's event.toml alone, or None when it has a problem (load_content says which)."""
    return _load_event(project, event_id, [])


def _dates_problems(path: str, data: dict[str, object], problems: list[Problem]) -> bool:
    """Check the event's dates and its [days] keys as written; False when the dates cannot
    date the records (end before start, or an event too long to be meant)."""
    start, end = _date(data.get("start")), _date(data.get("end"))
    max_days = data.get("max_days", 31)
    # An invalid max_days is reported as such; the length is then not judged against it.
    limit = (
        max_days
        if isinstance(max_days, int) and not isinstance(max_days, bool) and max_days >= 1
        else None
    )
    if start is not None and end is not None:
        if end < start:
            problems.append(Problem(path, "end", f"{end} is before start {start}"))
            return False
        length = _too_long(start, end, limit) if limit is not None else None
        if length is not None:
            # Every day becomes pages, threads and deliveries: a typo such as end = 2034-12-06
            # would build for hours. Refused before the records are looked at.
            problems.append(Problem(path, "end", length))
            return False
    days = data.get("days")
    for key in days if isinstance(days, dict) else {}:
        try:
            day = dt.date.fromisoformat(key)
        except ValueError:
            problems.append(Problem(path, f"days.{key}", 'not a date; write [days."YYYY-MM-DD"]'))
            continue
        if start is not None and end is not None and not start <= day <= end:
            problems.append(
                Problem(path, f"days.{key}", f"outside the event's dates ({start} to {end})")
            )
    return True


def _too_long(start: dt.date, end: dt.date, max_days: int) -> str | None:
    """Why the event's dates are refused as too far apart, naming the likely typo; or None."""
    days = (end - start).days + 1
    if days <= max_days:
        return None
    message = f"the event runs {days:,} days ({start} to {end}), more than max_days ({max_days})"
    for year in (start.year, start.year + 1):  # +1: an event over New Year
        try:
            guess = end.replace(year=year)
        except ValueError:  # 29 February
            continue
        if guess != end and start <= guess <= start + dt.timedelta(days=max_days - 1):
            message += f"; is the year of end a typo for {guess}?"
            break
    else:
        message += "; is start or end a typo?"
    return f"{message} If the event really is this long, set max_days = {days} in {EVENT_FILE}"


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
    attributions: list[tuple[str, RecordMeta]],
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
    # Quote attributions are checked once every record is read: a name that is a speaker of
    # another record gets its own fix (load_content).
    attributions.append((path, meta))
    for i, quote in enumerate(meta.quotes):
        wrapped = wrapped_problem(quote.text)
        if wrapped:
            problems.append(Problem(path, f"quotes[{i}].text", wrapped))
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
    attributions: list[tuple[str, RecordMeta]] = []
    for file in _record_files(project, folder, problems):
        record = _read_record(project, file, folder, event, problems, attributions)
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
    found = every_attribution_problem(attributions)
    problems.extend(found)
    records = [r for r in records if r.path not in {p.path for p in found}]
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
