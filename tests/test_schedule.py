"""schedule.py: schedules/<event>.toml validation, local → UTC across clock changes, artifacts."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from aspdigest.artifacts import BuiltDay
from aspdigest.config import load_project
from aspdigest.content import load_content
from aspdigest.errors import UserError
from aspdigest.queue.schedule import Schedule, load_schedule, local_datetime
from support.delivery_helpers import built_copy

AMS = ZoneInfo("Europe/Amsterdam")
DST_EVENT = """id = "dst"
name = "A meeting across the clock change"
short_name = "DST24"
publisher = "Test"
timezone = "Europe/Amsterdam"
start = {start}
end = {end}
"""


def dst_project(
    tmp_path: Path, schedule: str, start: str = "2024-10-25", end: str = "2024-10-29"
) -> Path:
    """A project whose event spans a clock change (default: the last Sunday of October)."""
    root = tmp_path / "dst"
    (root / "content/dst").mkdir(parents=True)
    (root / "schedules").mkdir()
    shutil.copy(Path(__file__).resolve().parents[1] / "aspdigest.toml", root / "aspdigest.toml")
    (root / "content/dst/event.toml").write_text(DST_EVENT.format(start=start, end=end))
    (root / "schedules/dst.toml").write_text(schedule)
    return root


def schedule_of(root: Path, event: str = "dst") -> Schedule:
    project = load_project(root, environ={})
    return load_schedule(project, load_content(project, event).event)


def problems(root: Path, event: str = "dst") -> list[str]:
    with pytest.raises(UserError) as caught:
        schedule_of(root, event).planned()
    return caught.value.lines()


def test_sample_schedule_plans_every_day_with_the_last_day_override(sample_root: Path) -> None:
    planned = schedule_of(sample_root, "asp23").planned()
    assert len(planned) == 5 * (1 + 5 + 5)  # digest + thread and quotes on five platforms
    digests = {p.date: p for p in planned if p.channel == "digest"}
    first = digests[dt.date(2024, 12, 2)]
    assert first.local == dt.datetime(2024, 12, 3, 7, 30, tzinfo=AMS)
    assert first.send_at == dt.datetime(2024, 12, 3, 6, 30, tzinfo=dt.UTC)
    assert first.platform == "" and first.approval and first.missed == "hold"
    assert first.grace == dt.timedelta(minutes=90)
    last = digests[dt.date(2024, 12, 6)]
    assert last.local == dt.datetime(2024, 12, 7, 8, 0, tzinfo=AMS)
    quotes = [p for p in planned if p.channel == "quotes" and p.date == dt.date(2024, 12, 2)]
    assert [p.platform for p in quotes] == ["x", "bluesky", "mastodon", "threads", "linkedin"]
    assert {p.missed for p in quotes} == {"skip"}


def test_dst_event_across_the_last_sunday_of_october(tmp_path: Path) -> None:
    root = dst_project(
        tmp_path, '[digest]\ntime = "07:30"\n[thread]\ntime = "12:00"\nplatforms = ["x"]\n'
    )
    planned = schedule_of(root).planned()
    utc = {
        p.date.isoformat(): p.send_at.strftime("%H:%M") for p in planned if p.channel == "digest"
    }
    # 07:30 is CEST (+2) up to Saturday, CET (+1) from the Sunday the clocks go back.
    assert utc == {
        "2024-10-25": "05:30",
        "2024-10-26": "05:30",
        "2024-10-27": "06:30",
        "2024-10-28": "06:30",
        "2024-10-29": "06:30",
    }
    assert all(p.local.strftime("%H:%M") == "07:30" for p in planned if p.channel == "digest")


def test_a_time_that_occurs_twice_is_an_error_naming_the_fix(tmp_path: Path) -> None:
    root = dst_project(
        tmp_path, '[digest]\ntime = "07:30"\n\n[days."2024-10-27".digest]\ntime = "02:30"\n'
    )
    assert problems(root) == [
        "schedules/dst.toml: days.2024-10-27.digest.time: 02:30 occurs twice on 2024-10-27 in "
        "Europe/Amsterdam (clocks go back from 03:00 to 02:00); choose a time before 02:00 or "
        'from 03:00 on; set another time for that day: [days."2024-10-27".digest] '
        'time = "03:00"'
    ]


def test_a_time_that_does_not_exist_is_an_error_naming_the_fix(tmp_path: Path) -> None:
    # Spring forward 2025-03-30; the thread of the day before goes out the next day at 02:30.
    root = dst_project(
        tmp_path,
        '[thread]\ntime = "02:30"\nday_offset = 1\nplatforms = ["x"]\n',
        start="2025-03-27",
        end="2025-03-31",
    )
    assert problems(root) == [
        "schedules/dst.toml: thread.time: 02:30 does not exist on 2025-03-30 in "
        "Europe/Amsterdam (clocks go forward from 02:00 to 03:00); choose a time before 02:00 "
        'or from 03:00 on; set another time for that day: [days."2025-03-29".thread] '
        'time = "03:00"'
    ]


def test_the_override_named_in_the_fix_repairs_the_day(tmp_path: Path) -> None:
    root = dst_project(
        tmp_path,
        '[thread]\ntime = "02:30"\nday_offset = 1\nplatforms = ["x"]\n'
        '[days."2025-03-29".thread]\ntime = "03:00"\n',
        start="2025-03-27",
        end="2025-03-31",
    )
    planned = {p.date.isoformat(): p.send_at for p in schedule_of(root).planned()}
    assert planned["2025-03-29"] == dt.datetime(2025, 3, 30, 1, 0, tzinfo=dt.UTC)
    assert planned["2025-03-28"] == dt.datetime(2025, 3, 29, 1, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("zone", "date", "time", "expected"),
    [
        (
            "America/New_York",
            "2024-11-03",
            "01:30",
            "occurs twice on 2024-11-03 in America/New_York (clocks go back from 02:00 to 01:00)",
        ),
        (
            "America/New_York",
            "2024-03-10",
            "02:15",
            "does not exist on 2024-03-10 in "
            "America/New_York (clocks go forward from 02:00 to 03:00)",
        ),
        (
            "Australia/Lord_Howe",
            "2024-10-06",
            "02:10",
            "does not exist on 2024-10-06 in "
            "Australia/Lord_Howe (clocks go forward from 02:00 to 02:30)",
        ),
    ],
)
def test_clock_changes_in_other_zones(zone: str, date: str, time: str, expected: str) -> None:
    with pytest.raises(ValueError, match=r"^\d\d:\d\d ") as caught:
        local_datetime(dt.date.fromisoformat(date), dt.time.fromisoformat(time), ZoneInfo(zone))
    assert expected in str(caught.value)


def test_regular_times_convert_without_guessing() -> None:
    when = local_datetime(dt.date(2024, 10, 27), dt.time(3, 0), AMS)
    assert when.astimezone(dt.UTC) == dt.datetime(2024, 10, 27, 2, 0, tzinfo=dt.UTC)
    when = local_datetime(dt.date(2024, 10, 27), dt.time(1, 59), AMS)
    assert when.astimezone(dt.UTC) == dt.datetime(2024, 10, 26, 23, 59, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[digest]\ntime = 730\n",
            'schedules/dst.toml: digest.time: expected "HH:MM" in quotes, got the number 730',
        ),
        (
            '[digest]\ntime = "7:30"\n',
            'schedules/dst.toml: digest.time: expected "HH:MM" (24-hour clock), got "7:30"; '
            'did you mean "07:30"?',
        ),
        (
            "[digest]\ntime = 7:30 # morning\n",
            "schedules/dst.toml: line 2: time = 7:30 # morning is not valid TOML; write times "
            'in quotes, e.g. time = "07:30"',
        ),
        (
            '[digest]\ntime = "07:30"\ngrace_minute = 5\n',
            'schedules/dst.toml: digest.grace_minute: unknown field; did you mean "grace_minutes"?',
        ),
        (
            '[digest]\ntime = "07:30"\nmissed = "later"\n',
            "schedules/dst.toml: digest.missed: Input should be 'skip' or 'hold'",
        ),
        (
            '[digest]\ntime = "07:30"\ngrace_minutes = -1\n',
            "schedules/dst.toml: digest.grace_minutes: expected a whole number of at least 0, got the number -1",
        ),
        ("[digest]\n", "schedules/dst.toml: digest.time: required field missing"),
        (
            '[thread]\ntime = "12:00"\nplatforms = ["facebook"]\n',
            'schedules/dst.toml: thread.platforms: unknown platform "facebook"; known: x, bluesky, '
            "mastodon, threads, linkedin",
        ),
        (
            '[digest]\ntime = "07:30"\nplatforms = ["x"]\n',
            "schedules/dst.toml: digest.platforms: the digest goes by email; platforms apply to "
            "thread and quotes",
        ),
        (
            '[thread]\ntime = "12:00"\nplatforms = ["x", "x"]\n',
            "schedules/dst.toml: thread.platforms: lists a platform twice",
        ),
        (
            '[digest]\ntime = "07:30"\n[days."2024-11-02".digest]\ntime = "08:00"\n',
            "schedules/dst.toml: days.2024-11-02: outside dst's dates (2024-10-25 to 2024-10-29)",
        ),
        (
            '[digest]\ntime = "07:30"\n[days.monday.digest]\ntime = "08:00"\n',
            'schedules/dst.toml: days.monday: not a date; write [days."YYYY-MM-DD"]',
        ),
        (
            '[digest]\ntime = "07:30"\n[days."2024-10-26".quotes]\ntime = "08:00"\n',
            "schedules/dst.toml: days.2024-10-26.quotes: overrides [quotes], which this schedule "
            "does not have; add a [quotes] table",
        ),
        (
            'event = "asp23"\n[digest]\ntime = "07:30"\n',
            'schedules/dst.toml: event: "asp23" does not match the file name "dst"',
        ),
        (
            'event = "dst"\n',
            "schedules/dst.toml: schedules nothing; add a [digest], [thread] or [quotes] table",
        ),
        (
            '[digest\ntime = "07:30"\n',
            "schedules/dst.toml: invalid TOML at line 1, column 8: Expected ']' at the end of a "
            "table declaration",
        ),
    ],
)
def test_each_mistake_is_one_line(tmp_path: Path, text: str, expected: str) -> None:
    root = dst_project(tmp_path, text)
    assert problems(root) == [expected]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    root = dst_project(
        tmp_path, '[digest]\ntime = "25:00"\n[thread]\ntime = "12:00"\nplatform = ["x"]\n'
    )
    assert problems(root) == [
        'schedules/dst.toml: digest.time: expected "HH:MM" (24-hour clock), got "25:00"',
        'schedules/dst.toml: thread.platform: unknown field; did you mean "platforms"?',
    ]


def test_a_platform_the_build_does_not_make_is_refused(tmp_path: Path) -> None:
    root = dst_project(tmp_path, '[thread]\ntime = "12:00"\nplatforms = ["linkedin"]\n')
    config = root / "aspdigest.toml"
    config.write_text(config.read_text() + '\n[social]\nplatforms = ["x", "bluesky"]\n')
    assert problems(root) == [
        'schedules/dst.toml: thread.platforms: "linkedin" is not in social.platforms in '
        "aspdigest.toml, so the build makes no posts for it; add it there and rebuild"
    ]


def test_a_missing_schedule_says_what_to_create(tmp_path: Path) -> None:
    root = dst_project(tmp_path, "")
    (root / "schedules/dst.toml").unlink()
    assert problems(root) == [
        "schedules/dst.toml: no schedule for dst; create it with a [digest], [thread] and/or "
        "[quotes] table (see the README)"
    ]


def test_disabled_channels_and_days_plan_nothing(tmp_path: Path) -> None:
    root = dst_project(
        tmp_path,
        '[digest]\ntime = "07:30"\n[quotes]\ntime = "16:00"\n'
        'enabled = false\nplatforms = ["x"]\n[days."2024-10-26".digest]\n'
        'enabled = false\n[days."2024-10-28".quotes]\nenabled = true\n',
    )
    planned = schedule_of(root).planned()
    assert [(p.date.day, p.channel) for p in planned] == [
        (25, "digest"),
        (27, "digest"),
        (28, "digest"),
        (28, "quotes"),
        (29, "digest"),
    ]


def test_channel_artifacts_follow_the_build(tmp_path: Path) -> None:
    root = built_copy(tmp_path)
    project = load_project(root, environ={})
    day = BuiltDay(project, "asp23", dt.date(2024, 12, 2))
    hashes = day.hashes()
    digest = day.carries(hashes, "digest", "")
    assert digest is not None and sorted(digest) == ["digest.eml", "digest.html", "digest.txt"]
    thread = day.carries(hashes, "thread", "x")
    assert thread is not None
    assert {"thread.x.json", "thread.x.txt"} < set(thread)
    assert any(name.startswith("cards/") for name in thread)  # the cards its posts attach
    assert all(thread[name] == hashes[name] for name in thread)
    quotes = day.carries(hashes, "quotes", "x")
    assert quotes is not None and "thread.x.json" in quotes
    day3 = dt.date(2024, 12, 4)  # a day without quote posts
    built3 = BuiltDay(project, "asp23", day3)
    assert built3.carries(built3.hashes(), "quotes", "x") is None


def test_reading_a_day_that_was_not_built(sample_project: object) -> None:
    with pytest.raises(UserError) as caught:
        BuiltDay(sample_project, "asp23", dt.date(2024, 12, 2)).manifest()  # type: ignore[arg-type]
    assert caught.value.lines() == [
        "out/asp23/2024-12-02/manifest.json: not built; run `aspdigest build asp23` first"
    ]
