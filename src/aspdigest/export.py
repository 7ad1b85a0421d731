"""Post drafts for review and bulk import: CSV (UTF-8 with BOM), JSON or a Markdown review doc.

After the build in the flow (… → artifacts → build → export). `export(project, event_id, …)`
reads what the last build wrote, `out/<event>/<date>/thread.<platform>.json` and each day's
`manifest.json`, and returns a frozen `Export` (the bytes in the chosen format and the drafts
they hold). It renders nothing: reviewers see exactly the posts that were built. A build that
is missing, or older than the content it was built from (a record changed, added or removed
since), or whose thread files were edited afterwards, is a one-line `UserError` telling the
user to run `aspdigest build`.

Every post is one draft: the day's thread posts in order, then its quote posts (a quote post
that had to be split is several drafts with positions 1…n). When `schedules/<event>.toml`
exists, each draft's `date` and `local_time` are when the schedule sends it (the `thread` and
`quotes` channels, in the venue's time zone); otherwise `date` is the conference day and
`local_time` is empty. `day` is always the conference day the post is about.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aspdigest.artifacts import (
    MANIFEST,
    BuiltDay,
    built_days,
    event_built,
    manifest_hashes,
    sha256,
)
from aspdigest.config import PLATFORMS, Project
from aspdigest.content import read_source
from aspdigest.errors import UserError
from aspdigest.platforms import display_name

FORMATS = ("csv", "json", "md")
CSV_COLUMNS = (
    "date",
    "local_time",
    "timezone",
    "day",
    "platform",
    "kind",
    "thread_position",
    "thread_posts",
    "text",
    "length",
    "limit",
    "unit",
    "link",
    "image_path",
    "alt_text",
    "records",
    "quote",
    "status",
)
CHANNELS = {"thread": "thread", "quote": "quotes"}  # draft kind → schedule channel
Times = dict[tuple[str, str, str], tuple[str, str]]  # (day, channel, platform) → (date, HH:MM)
# (day, channel, platform) → what the queue will really do with it, in `queue.telling`'s words
Queue = Mapping[tuple[str, str, str], str]


@dataclass(frozen=True)
class Image:
    path: str  # project-relative, as people and import tools find it
    alt: str


@dataclass(frozen=True)
class Draft:
    """One post as a reviewer or a bulk-import tool sees it."""

    date: str  # when it is sent (the conference day when nothing is scheduled)
    local_time: str  # "HH:MM" in `timezone`, or "" when nothing is scheduled
    timezone: str
    day: str  # the conference day it is about
    platform: str
    kind: str  # "thread" or "quote"
    position: int
    total: int  # posts in its thread (or in its quote post)
    text: str
    length: int
    limit: int
    unit: str
    links: tuple[str, ...]
    images: tuple[Image, ...]
    records: tuple[str, ...]
    quote: str  # "record quote n" for a quote post, else ""
    # What the queue does with it: "scheduled for … (approved by …)", "sent at …", "skipped"…;
    # "not planned yet" / "not scheduled" when there is no queue for it.
    status: str = ""


@dataclass(frozen=True)
class Export:
    format: str
    data: bytes
    drafts: tuple[Draft, ...]
    days: tuple[str, ...]
    platforms: tuple[str, ...]


def _stale(project: Project, event_id: str, folder: Path, manifest: dict[str, Any]) -> str | None:
    """Why a built day no longer matches content/, or None when it does."""
    sources: dict[str, str] = manifest.get("sources", {})
    for path, digest in sorted(sources.items()):
        source = project.root / path
        if not os.path.lexists(source):
            return f"built from {path}, which no longer exists"
        raw = read_source(project, source)
        if isinstance(raw, str):  # a FIFO, a device or a link out of the project: never opened
            return f"{path}: {raw}"
        if sha256(raw) != digest:
            return f"built from an older {path}"
    day_content = project.content_dir / event_id / folder.name
    if day_content.is_dir():
        for record in sorted(day_content.glob("*.md")):
            if project.relative(record) not in sources:
                return f"{project.relative(record)} is new since"
    return None


def _load_day(
    project: Project, event_id: str, day: BuiltDay, platforms: Sequence[str]
) -> dict[str, dict[str, Any]]:
    folder = day.folder
    shown = day.shown()
    again = f"; run `aspdigest build {event_id}`"
    manifest = day.manifest_or_none()
    if manifest is None:
        raise UserError(f"{shown}: no readable {MANIFEST}, the build is incomplete{again}")
    why = _stale(project, event_id, folder, manifest)
    if why is not None:
        raise UserError(f"{shown}: out of date ({why}){again}")
    if len(manifest.get("sources", {})) <= 1:
        return {}  # a day without records has no threads
    hashes = manifest_hashes(manifest)
    threads: dict[str, dict[str, Any]] = {}
    for platform in platforms:
        name = day.thread_name(platform)
        if name not in hashes:
            raise UserError(
                f"{shown}: no {display_name(platform)} thread in this build (is {platform} "
                f"in social.platforms?){again}"
            )
        try:
            raw = day.path(name).read_bytes()
        except OSError:
            raise UserError(f"{shown}/{name}: missing{again}") from None
        if sha256(raw) != hashes[name]:
            raise UserError(f"{shown}/{name}: changed since the build{again} --force")
        threads[platform] = json.loads(raw)
    return threads


def _drafts(
    project: Project, folder: Path, thread: dict[str, Any], times: Times, queue: Queue
) -> list[Draft]:
    def draft(post: dict[str, Any], kind: str, total: int, quote: str) -> Draft:
        day, platform = thread["date"], thread["platform"]
        key = (day, CHANNELS[kind], platform)
        date, time = times.get(key, (day, ""))
        status = queue.get(key) or ("not planned yet" if time else "not scheduled")
        return Draft(
            date=date,
            local_time=time,
            timezone=thread.get("timezone", ""),
            day=day,
            platform=platform,
            kind=kind,
            position=post["position"],
            total=total,
            text=post["text"],
            length=post["length"],
            limit=post["limit"],
            unit=thread["unit"],
            links=tuple(post["links"]),
            images=tuple(
                Image(project.relative(folder / m["path"]), m["alt"]) for m in post["media"]
            ),
            records=tuple(post["records"]),
            quote=quote,
            status=status,
        )

    posts = thread["posts"]
    out = [draft(p, "thread", len(posts), "") for p in posts]
    for qp in thread["quote_posts"]:
        name = f"{qp['record']} quote {qp['index'] + 1}"
        out += [draft(p, "quote", len(qp["posts"]), name) for p in qp["posts"]]
    return out


def scheduled_times(project: Project, event_id: str) -> Times:
    """When the schedule sends each day's thread and quote posts, per platform (empty when
    the event has no schedule file)."""
    from aspdigest.content import load_content
    from aspdigest.queue.schedule import load_schedule, schedule_path

    if not schedule_path(project, event_id).is_file():
        return {}
    schedule = load_schedule(project, load_content(project, event_id).event)
    return {
        (d.date.isoformat(), d.channel, d.platform): (
            d.local.date().isoformat(),
            d.local.strftime("%H:%M"),
        )
        for d in schedule.planned()
        if d.channel in CHANNELS.values()
    }


def export(
    project: Project,
    event_id: str,
    fmt: str = "md",
    day: str | None = None,
    platforms: Sequence[str] | None = None,
    *,
    queue: Queue | None = None,
    title: str | None = None,
) -> Export:
    """The built drafts of `event_id` (optionally one day, some platforms) in `fmt`. `queue`
    says what the state store's queue does with each (day, channel, platform); `title` is the
    event's name for titles (the id when not given)."""
    if fmt not in FORMATS:
        raise UserError(f'--format: expected one of {", ".join(FORMATS)}, got "{fmt}"')
    chosen = tuple(platforms) if platforms else project.settings.social.platforms
    for name in chosen:
        if name not in PLATFORMS:
            raise UserError(f'--platform: unknown platform "{name}"; known: {", ".join(PLATFORMS)}')
    shown = project.relative(project.output_dir / event_id)
    if not event_built(project, event_id):
        raise UserError(f"{shown}: no build yet; run `aspdigest build {event_id}` first")
    built = built_days(project, event_id)
    if day is not None:
        built = [b for b in built if b.folder.name == day]
        if not built:
            raise UserError(
                f"{shown}/{day}: not in the build; run `aspdigest build {event_id}`"
                " (or check the date)"
            )
    drafts: list[Draft] = []
    days: list[str] = []
    times: Times | None = None
    for built_day in built:
        folder = built_day.folder
        threads = _load_day(project, event_id, built_day, chosen)
        if threads:
            days.append(folder.name)
            # Read only once the build is known to match the content it would validate.
            times = scheduled_times(project, event_id) if times is None else times
        for name in chosen:
            if name in threads:
                drafts += _drafts(project, folder, threads[name], times or {}, queue or {})
    writer = {"csv": to_csv, "json": to_json, "md": to_markdown}[fmt]
    data = writer(drafts, event_id, title or event_id)
    return Export(fmt, data, tuple(drafts), tuple(days), chosen)


def to_csv(drafts: Sequence[Draft], event_id: str, name: str = "") -> bytes:
    """One row per post; UTF-8 with a byte-order mark so spreadsheets read it as UTF-8."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for d in drafts:
        row: list[str | int] = [
            d.date,
            d.local_time,
            d.timezone,
            d.day,
            d.platform,
            d.kind,
            d.position,
            d.total,
            d.text,
            d.length,
            d.limit,
            d.unit,
            d.links[0] if d.links else "",
            "\n".join(i.path for i in d.images),
            "\n".join(i.alt for i in d.images),
            " ".join(d.records),
            d.quote,
            d.status,
        ]
        writer.writerow(_inert(cell) for cell in row)
    return buffer.getvalue().encode("utf-8-sig")


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP, CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _inert(value: str | int) -> str | int:
    """A CSV cell a spreadsheet shows as text: `'` before a leading formula character."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def to_json(drafts: Sequence[Draft], event_id: str, name: str = "") -> bytes:
    data = {"event": event_id, "name": name or event_id, "posts": [asdict(d) for d in drafts]}
    return (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _fence(text: str) -> str:
    # Longer than any run of backticks in the post, so no post can close the block early.
    ticks = "`" * max(3, _longest_backticks(text) + 1)
    return f"{ticks}text\n{text}\n{ticks}"


def _longest_backticks(text: str) -> int:
    best = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        best = max(best, run)
    return best


def to_markdown(drafts: Sequence[Draft], event_id: str, name: str = "") -> bytes:
    """A review document: by day, then platform; each post with its length against its limit.

    Every text from the content (post, alt text) is in a fence of its own, so Markdown in a
    title or an alt text is shown as written and cannot start a link, an image or HTML.
    """
    lines = [f"# {name or event_id}: post drafts for review", ""]
    day = platform = kind = None
    for d in drafts:
        if d.day != day:
            day, platform = d.day, None
            lines += [f"## {d.day}", ""]
        if (d.platform, d.kind) != (platform, kind):
            platform, kind = d.platform, d.kind
            what = (
                f"thread, {d.total} post{'s' if d.total != 1 else ''}"
                if d.kind == "thread"
                else "quote posts"
            )
            when = d.status or "not scheduled"
            if d.local_time and d.status == "not planned yet":
                when = f"to go out {d.date} at {d.local_time} ({d.timezone}); not planned yet"
            lines += [
                f"### {display_name(d.platform)}: {what}",
                "",
                f"{when}.",
                "",
            ]
        title = (
            f"{d.position}/{d.total}"
            if d.kind == "thread"
            else d.quote + (f", {d.position}/{d.total}" if d.total > 1 else "")
        )
        room = d.limit - d.length
        status = f"{room} to spare" if room >= 0 else f"OVER BY {-room}"
        lines += [
            f"#### {title} · {d.length}/{d.limit} {d.unit} ({status})",
            "",
            _fence(d.text),
            "",
        ]
        for image in d.images:
            lines += [
                f"Image: `{image.path}`",
                "",
                f"Alt text ({len(image.alt)} characters):",
                "",
                _fence(image.alt),
                "",
            ]
    if not drafts:
        lines += ["No posts.", ""]
    return "\n".join(lines).encode("utf-8")
