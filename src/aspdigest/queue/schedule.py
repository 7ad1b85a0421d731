"""The schedule: when each channel of each conference day goes out, and what it carries.

Sits after the build in the flow (… → build → schedule/outbox → deliver).
`load_schedule(project, event)` reads `schedules/<event>.toml`, validates it like the content
(every problem, one line each: `path: field: message`) and returns a frozen `Schedule`;
`Schedule.planned(dates)` turns it into one frozen `PlannedDelivery` per (day, channel,
platform), with the local send time converted to UTC through zoneinfo. A local time that
does not exist (clocks go forward) or occurs twice (clocks go back) on a clock-change day is
an error naming the fix, never a guess. `check_event(project, event)` is what `aspdigest
check` runs: the content and this file together, every problem of both at once. Which built
files a delivery carries (what a reviewer approves and what is checked again at send time)
is `artifacts.BuiltDay.carries`.

Channels: `digest` (the email, platform ""), `thread` and `quotes` (one delivery per platform;
the quote posts live in `thread.<platform>.json` under `quote_posts`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aspdigest.config import PLATFORMS, Project
from aspdigest.content import Content, load_content, read_event
from aspdigest.errors import ContentError, Problem, UserError, read_toml
from aspdigest.records import Event, LocalTime
from aspdigest.validation import problems_from

CHANNELS = ("digest", "thread", "quotes")
Channel = Literal["digest", "thread", "quotes"]
MISSED = ("skip", "hold")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ChannelSpec(_Strict):
    """One channel's defaults: `[digest]`, `[thread]` or `[quotes]`."""

    time: LocalTime = Field(description='Local send time in the event\'s time zone, "HH:MM".')
    day_offset: int = Field(
        0,
        ge=0,
        le=7,
        description="Send this many days after the day "
        "whose content it carries (1 = the next morning).",
    )
    enabled: bool = Field(True, description="false: plan nothing for this channel.")
    platforms: list[str] | None = Field(
        None, description="thread and quotes only; default: social.platforms in aspdigest.toml."
    )
    approval: bool = Field(
        True,
        description="false: planning approves the built artifacts "
        "itself (they are still checked at send time).",
    )
    grace_minutes: int = Field(
        60,
        ge=0,
        le=24 * 60,
        description="How late a delivery may still go when nothing was running at its time.",
    )
    missed: Literal["skip", "hold"] = Field(
        "hold", description="Past the grace period: skip it, or hold it for a person."
    )


class DayOverride(_Strict):
    """One channel on one day: `[days."2024-12-06".digest]`."""

    time: LocalTime | None = None
    day_offset: int | None = Field(None, ge=0, le=7)
    enabled: bool | None = None
    platforms: list[str] | None = None


class DayOverrides(_Strict):
    digest: DayOverride | None = None
    thread: DayOverride | None = None
    quotes: DayOverride | None = None


class ScheduleFile(_Strict):
    """The contents of schedules/<event>.toml."""

    event: str | None = Field(None, description="The event id; must match the file name.")
    digest: ChannelSpec | None = None
    thread: ChannelSpec | None = None
    quotes: ChannelSpec | None = None
    days: dict[str, DayOverrides] = Field(default_factory=dict)


@dataclass(frozen=True)
class PlannedDelivery:
    """One delivery as the schedule wants it; `date` is the conference day it is about."""

    event: str
    date: dt.date
    channel: str
    platform: str  # "" for the digest
    local: dt.datetime  # aware, in the event's zone
    send_at: dt.datetime  # aware, UTC
    approval: bool
    grace: dt.timedelta
    missed: str

    @property
    def key(self) -> tuple[dt.date, str, str]:
        return (self.date, self.channel, self.platform)


@dataclass(frozen=True)
class Schedule:
    event: Event
    path: str  # project-relative, for messages
    file: ScheduleFile
    default_platforms: tuple[str, ...]

    @property
    def tz(self) -> ZoneInfo:
        return self.event.tz

    def spec(self, channel: str) -> ChannelSpec | None:
        spec: ChannelSpec | None = getattr(self.file, channel)
        return spec

    def planned(self, dates: Iterable[dt.date] | None = None) -> list[PlannedDelivery]:
        """Every delivery the schedule wants for these conference days (default: all),
        or one UserError with a line per local time a clock change makes impossible."""
        out: list[PlannedDelivery] = []
        problems: list[Problem] = []
        for date in self.event.dates() if dates is None else dates:
            day = self.file.days.get(date.isoformat())
            for channel in CHANNELS:
                spec = self.spec(channel)
                if spec is None:
                    continue
                over: DayOverride | None = getattr(day, channel) if day else None
                enabled = over.enabled if over and over.enabled is not None else spec.enabled
                if not enabled:
                    continue
                time = over.time if over and over.time is not None else spec.time
                offset = (
                    over.day_offset if over and over.day_offset is not None else spec.day_offset
                )
                field = (
                    f"days.{date.isoformat()}.{channel}.time"
                    if over and over.time
                    else f"{channel}.time"
                )
                local = date + dt.timedelta(days=offset)
                try:
                    when = local_datetime(local, time, self.tz)
                except ValueError as exc:
                    fix = (
                        f'; set another time for that day: [days."{date.isoformat()}".'
                        f'{channel}] time = "{_suggest(local, time, self.tz)}"'
                    )
                    problems.append(Problem(self.path, field, f"{exc}{fix}"))
                    continue
                platforms = (
                    ("",)
                    if channel == "digest"
                    else (
                        over.platforms
                        if over and over.platforms is not None
                        else spec.platforms
                        if spec.platforms is not None
                        else self.default_platforms
                    )
                )
                for platform in platforms:
                    out.append(
                        PlannedDelivery(
                            self.event.id,
                            date,
                            channel,
                            platform,
                            when,
                            when.astimezone(dt.UTC),
                            spec.approval,
                            dt.timedelta(minutes=spec.grace_minutes),
                            spec.missed,
                        )
                    )
        if problems:
            raise UserError(problems)
        return out


# -- local time → UTC across clock changes ----------------------------------------------------


def local_datetime(date: dt.date, time: dt.time, tz: ZoneInfo) -> dt.datetime:
    """`date` at `time` on the wall clocks of `tz`; ValueError when the clocks skip that
    time or show it twice (a schedule must say which instant it means)."""
    naive = dt.datetime.combine(date, time)
    first = naive.replace(tzinfo=tz, fold=0)
    second = naive.replace(tzinfo=tz, fold=1)
    if first.utcoffset() == second.utcoffset():
        return first
    hhmm = time.strftime("%H:%M")
    start, end = _irregular_span(naive, tz)
    if _exists(naive, tz):
        raise ValueError(
            f"{hhmm} occurs twice on {date} in {tz.key} (clocks go back from "
            f"{_hhmm(end)} to {_hhmm(start)}); choose a time before {_hhmm(start)} or from "
            f"{_hhmm(end)} on"
        )
    raise ValueError(
        f"{hhmm} does not exist on {date} in {tz.key} (clocks go forward from "
        f"{_hhmm(start)} to {_hhmm(end)}); choose a time before {_hhmm(start)} or from "
        f"{_hhmm(end)} on"
    )


def _exists(naive: dt.datetime, tz: ZoneInfo) -> bool:
    aware = naive.replace(tzinfo=tz)
    return aware.astimezone(dt.UTC).astimezone(tz).replace(tzinfo=None) == naive


def _regular(naive: dt.datetime, tz: ZoneInfo) -> bool:
    return (
        naive.replace(tzinfo=tz, fold=0).utcoffset() == naive.replace(tzinfo=tz, fold=1).utcoffset()
    )


def _irregular_span(naive: dt.datetime, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """The first irregular minute and the first regular one after it, around `naive`."""
    minute = dt.timedelta(minutes=1)
    start = naive.replace(second=0, microsecond=0)
    for _ in range(24 * 60):
        if _regular(start - minute, tz):
            break
        start -= minute
    end = naive.replace(second=0, microsecond=0) + minute
    for _ in range(24 * 60):
        if _regular(end, tz):
            break
        end += minute
    return start, end


def _hhmm(value: dt.datetime) -> str:
    return value.strftime("%H:%M")


def _suggest(date: dt.date, time: dt.time, tz: ZoneInfo) -> str:
    _, end = _irregular_span(dt.datetime.combine(date, time), tz)
    return _hhmm(end)


def local_text(when: dt.datetime | None, tz: dt.tzinfo) -> str:
    return when.astimezone(tz).strftime("%a %Y-%m-%d %H:%M %Z") if when else "-"


def utc_text(when: dt.datetime | None) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%MZ") if when else "-"


# -- reading and validating the file ----------------------------------------------------------


def schedule_path(project: Project, event_id: str) -> Path:
    return project.schedules_dir / f"{event_id}.toml"


def load_schedule(project: Project, event: Event) -> Schedule:
    """schedules/<event>.toml, validated against the event and the project's settings."""
    file = schedule_path(project, event.id)
    path = project.relative(file)
    if not file.is_file():
        raise UserError(
            [
                Problem(
                    path,
                    "",
                    f"no schedule for {event.id}; create it with a "
                    "[digest], [thread] and/or [quotes] table (see the README)",
                )
            ]
        )
    data = read_toml(path, file.read_bytes())
    problems: list[Problem] = []
    parsed: ScheduleFile | None = None
    try:
        parsed = ScheduleFile.model_validate(data)
    except ValidationError as exc:
        problems += problems_from(path, exc, ScheduleFile)
    # Checked on the tables as written, so they are reported with the type errors above.
    problems += _file_problems(path, data, event, tuple(project.settings.social.platforms))
    if problems or parsed is None:
        raise UserError(problems)
    return Schedule(event, path, parsed, tuple(project.settings.social.platforms))


def check_event(project: Project, event_id: str) -> Content:
    """`load_content`, then the event's schedule file when there is one: every problem of
    every file at once (one ContentError). The schedule is checked against the event, so
    only once event.toml itself is valid."""
    problems: list[Problem] = []
    content: Content | None = None
    try:
        content = load_content(project, event_id)
    except ContentError as exc:
        problems += exc.problems
    event = content.event if content is not None else read_event(project, event_id)
    if event is not None and schedule_path(project, event_id).is_file():
        try:
            load_schedule(project, event)
        except UserError as exc:
            problems += exc.problems or [
                Problem(schedule_path(project, event_id).name, "", exc.text)
            ]
    if problems or content is None:
        raise ContentError(problems)
    return content


def _tables(data: dict[str, object], key: str) -> dict[str, object]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _names(value: object) -> list[str] | None:
    """A platforms list as written, when it is a list of names (pydantic reports the rest)."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _file_problems(
    path: str, data: dict[str, object], event: Event, built: tuple[str, ...]
) -> list[Problem]:
    """What the types of schedules/<event>.toml cannot say: the event named, the platforms
    named, the days' dates and overrides."""
    problems: list[Problem] = []
    named = data.get("event")
    if isinstance(named, str) and named != event.id:
        problems.append(
            Problem(path, "event", f'"{named}" does not match the file name "{event.id}"')
        )
    present = [c for c in CHANNELS if data.get(c) is not None]
    if not present:
        problems.append(
            Problem(path, "", "schedules nothing; add a [digest], [thread] or [quotes] table")
        )
    for channel in present:
        problems += _check_platforms(
            path, channel, _names(_tables(data, channel).get("platforms")), built
        )
    for key, raw_day in _tables(data, "days").items():
        day = raw_day if isinstance(raw_day, dict) else {}
        try:
            date = dt.date.fromisoformat(key)
        except ValueError:
            problems.append(Problem(path, f"days.{key}", 'not a date; write [days."YYYY-MM-DD"]'))
            continue
        if not event.start <= date <= event.end:
            problems.append(
                Problem(
                    path,
                    f"days.{key}",
                    f"outside {event.id}'s dates ({event.start} to {event.end})",
                )
            )
        for channel in CHANNELS:
            over = day.get(channel)
            if over is None:
                continue
            if channel not in present:
                problems.append(
                    Problem(
                        path,
                        f"days.{key}.{channel}",
                        f"overrides [{channel}], "
                        f"which this schedule does not have; add a [{channel}] "
                        "table",
                    )
                )
            platforms = _names(over.get("platforms")) if isinstance(over, dict) else None
            problems += _check_platforms(path, f"days.{key}.{channel}", platforms, built, channel)
    return problems


def _check_platforms(
    path: str,
    where: str,
    platforms: list[str] | None,
    built: tuple[str, ...],
    channel: str | None = None,
) -> list[Problem]:
    if platforms is None:
        return []
    field = f"{where}.platforms"
    if (channel or where) == "digest":
        return [
            Problem(path, field, "the digest goes by email; platforms apply to thread and quotes")
        ]
    problems = []
    for name in platforms:
        if name not in PLATFORMS:
            problems.append(
                Problem(path, field, f'unknown platform "{name}"; known: {", ".join(PLATFORMS)}')
            )
        elif name not in built:
            problems.append(
                Problem(
                    path,
                    field,
                    f'"{name}" is not in social.platforms in '
                    "aspdigest.toml, so the build makes no posts for it; add it "
                    "there and rebuild",
                )
            )
    if len(set(platforms)) != len(platforms):
        problems.append(Problem(path, field, "lists a platform twice"))
    return problems
