"""export.py and `aspdigest export`: drafts from a real build as CSV (BOM), JSON and Markdown."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from aspdigest.build import build
from aspdigest.cli import app
from aspdigest.config import Project, load_project
from aspdigest.errors import UserError
from aspdigest.export import CSV_COLUMNS, export

runner = CliRunner()
DAY = dt.date(2024, 12, 5)
PLATFORMS = ("x", "bluesky", "mastodon", "threads", "linkedin")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole ASP23 sample, built once; tests that change it copy it first."""
    repo = Path(__file__).resolve().parents[1]
    root = tmp_path_factory.mktemp("built")
    shutil.copytree(repo / "content", root / "content")
    shutil.copy(repo / "aspdigest.toml", root / "aspdigest.toml")
    build(load_project(root, environ={}), "asp23")
    return root


@pytest.fixture
def project(built: Path, tmp_path: Path) -> Project:
    root = tmp_path / "copy"
    shutil.copytree(built, root)
    return load_project(root, environ={})


def thread_files(root: Path) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (p.parent.name, p.name.split(".")[1]): json.loads(p.read_text())
        for p in sorted((root / "out/asp23").glob("*/thread.*.json"))
    }


def posts_of(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [*data["posts"], *(p for qp in data["quote_posts"] for p in qp["posts"])]


def test_csv_has_a_bom_one_row_per_post_and_every_column(built: Path) -> None:
    result = export(load_project(built, environ={}), "asp23", "csv")
    assert result.data.startswith(b"\xef\xbb\xbfdate,local_time,timezone,day,platform,")
    rows = list(csv.DictReader(io.StringIO(result.data.decode("utf-8-sig"), newline="")))
    assert tuple(rows[0]) == CSV_COLUMNS
    threads = thread_files(built)
    expected = [
        p
        for key in sorted(threads, key=lambda k: (k[0], PLATFORMS.index(k[1])))
        for p in posts_of(threads[key])
    ]
    assert len(rows) == len(expected) == len(result.drafts)
    assert [r["text"] for r in rows] == [p["text"] for p in expected]
    # No schedules/asp23.toml here: each post is dated by its day and has no time yet.
    assert {(r["date"], r["day"], r["local_time"], r["timezone"]) for r in rows} == {
        (d, d, "", "Europe/Amsterdam")
        for d in ("2024-12-02", "2024-12-03", "2024-12-04", "2024-12-05", "2024-12-06")
    }
    kit = [r for r in rows if r["quote"] == "kit-general-debate quote 1" and r["platform"] == "x"]
    assert len(kit) == 1 and kit[0]["kind"] == "quote"
    assert kit[0]["image_path"] == "out/asp23/2024-12-03/cards/kit-general-debate-1.landscape.png"
    assert (built / kit[0]["image_path"]).is_file()
    assert kit[0]["alt_text"].startswith("“\u2068Justice at the national level is insufficient")
    first = rows[0]
    assert (first["platform"], first["kind"], first["thread_position"]) == ("x", "thread", "1")
    assert int(first["length"]) <= int(first["limit"]) == 280
    assert all(int(r["length"]) <= int(r["limit"]) for r in rows)


def test_json_filters_by_day_and_platform(built: Path) -> None:
    result = export(
        load_project(built, environ={}),
        "asp23",
        "json",
        day="2024-12-05",
        platforms=["x", "linkedin"],
    )
    data = json.loads(result.data)
    assert data["event"] == "asp23" and result.days == ("2024-12-05",)
    assert {p["platform"] for p in data["posts"]} == {"x", "linkedin"}
    assert {p["date"] for p in data["posts"]} == {"2024-12-05"}
    x = thread_files(built)[("2024-12-05", "x")]
    assert [p["text"] for p in data["posts"] if p["platform"] == "x"] == [
        p["text"] for p in posts_of(x)
    ]
    assert data["posts"][0]["images"] == [] and data["posts"][0]["total"] == len(x["posts"])


def test_markdown_review_doc(built: Path, golden: Callable[[str, bytes], None]) -> None:
    result = export(load_project(built, environ={}), "asp23", "md", day="2024-12-05")
    text = result.data.decode()
    assert text.startswith(
        "# asp23: post drafts for review\n\n## 2024-12-05\n\n"
        "### X: thread, 6 posts\n\nnot scheduled.\n\n#### 1/6 · "
    )
    for heading in (
        "### Bluesky: thread",
        "### Mastodon: thread",
        "### Threads: thread",
        "### LinkedIn: thread, 1 post\n",
        "### X: quote posts",
    ):
        assert heading in text
    assert "/280 weighted characters (" in text and " to spare)" in text
    golden("social/export-2024-12-05.md", result.data)


def test_dates_and_times_come_from_the_schedule(project: Project) -> None:
    repo = Path(__file__).resolve().parents[1]
    shutil.copytree(repo / "schedules", project.root / "schedules")
    result = export(project, "asp23", "csv", day="2024-12-06")
    rows = list(csv.DictReader(io.StringIO(result.data.decode("utf-8-sig"), newline="")))
    # [thread] 12:00 and [quotes] 16:00 the morning after (day_offset = 1)
    assert {(r["kind"], r["day"], r["date"], r["local_time"]) for r in rows} == {
        ("thread", "2024-12-06", "2024-12-07", "12:00"),
        ("quote", "2024-12-06", "2024-12-07", "16:00"),
    }
    text = export(project, "asp23", "md", day="2024-12-06").data.decode()
    assert (
        "### X: thread, 6 posts\n\nto go out 2024-12-07 at 12:00 (Europe/Amsterdam); "
        "not planned yet.\n" in text
    )
    assert (
        "### X: quote posts\n\nto go out 2024-12-07 at 16:00 (Europe/Amsterdam); "
        "not planned yet.\n" in text
    )


def test_markdown_fences_outlast_backticks_in_posts() -> None:
    from aspdigest.export import _fence

    assert _fence("a ```` b") == "`````text\na ```` b\n`````"


# -- errors ------------------------------------------------------------------------------------


def test_no_build_is_one_line(sample_project: Project) -> None:
    with pytest.raises(UserError) as caught:
        export(sample_project, "asp23")
    assert caught.value.lines() == ["out/asp23: no build yet; run `aspdigest build asp23` first"]


def test_edited_record_makes_the_build_stale(project: Project) -> None:
    record = project.root / "content/asp23/2024-12-03/ecocide.md"
    record.write_text(record.read_text() + "\nMore.\n")
    with pytest.raises(UserError) as caught:
        export(project, "asp23")
    assert caught.value.lines() == [
        "out/asp23/2024-12-03: out of date (built from an older "
        "content/asp23/2024-12-03/ecocide.md); run `aspdigest build asp23`"
    ]
    assert export(project, "asp23", day="2024-12-05").days == ("2024-12-05",)


def test_added_and_removed_records_make_the_build_stale(project: Project) -> None:
    (project.root / "content/asp23/2024-12-04/afghanistan.md").unlink()
    with pytest.raises(UserError) as caught:
        export(project, "asp23", day="2024-12-04")
    assert caught.value.lines() == [
        "out/asp23/2024-12-04: out of date (built from content/asp23/2024-12-04/afghanistan.md, "
        "which no longer exists); run `aspdigest build asp23`"
    ]
    shutil.copy(
        project.root / "content/asp23/2024-12-05/icc-under-siege.md",
        project.root / "content/asp23/2024-12-05/copy.md",
    )
    with pytest.raises(UserError) as caught:
        export(project, "asp23", day="2024-12-05")
    assert caught.value.lines() == [
        "out/asp23/2024-12-05: out of date (content/asp23/2024-12-05/copy.md is new since); "
        "run `aspdigest build asp23`"
    ]


def test_edited_thread_file_is_refused(project: Project) -> None:
    path = project.root / "out/asp23/2024-12-05/thread.x.json"
    path.write_text(path.read_text().replace("Amnesty", "Amnesti"))
    with pytest.raises(UserError) as caught:
        export(project, "asp23", day="2024-12-05")
    assert caught.value.lines() == [
        "out/asp23/2024-12-05/thread.x.json: changed since the build; run `aspdigest build "
        "asp23` --force"
    ]


def test_option_errors(project: Project) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        (
            {"platforms": ["myspace"]},
            '--platform: unknown platform "myspace"; known: x, bluesky, mastodon, threads, linkedin',
        ),
        (
            {"day": "2024-12-09"},
            "out/asp23/2024-12-09: not in the build; run `aspdigest build asp23` (or check the date)",
        ),
        ({"fmt": "xlsx"}, '--format: expected one of csv, json, md, got "xlsx"'),
    ]
    for options, line in cases:
        with pytest.raises(UserError) as caught:
            export(project, "asp23", **options)
        assert caught.value.lines() == [line]


def test_a_platform_left_out_of_the_build(sample_root: Path) -> None:
    settings = sample_root / "aspdigest.toml"
    settings.write_text(settings.read_text() + '\n[social]\nplatforms = ["x"]\n')
    project = load_project(sample_root, environ={})
    build(project, "asp23", only=DAY)
    assert {d.platform for d in export(project, "asp23").drafts} == {"x"}
    with pytest.raises(UserError) as caught:
        export(project, "asp23", platforms=["bluesky"])
    assert caught.value.lines() == [
        "out/asp23/2024-12-05: no Bluesky thread in this build (is bluesky in "
        "social.platforms?); run `aspdigest build asp23`"
    ]


# -- the command ---------------------------------------------------------------------------------


def test_cli_writes_the_format_its_output_names(project: Project) -> None:
    target = project.root / "drafts.csv"
    result = runner.invoke(
        app,
        [
            "export",
            "asp23",
            "--day",
            "2024-12-05",
            "--platform",
            "x",
            "--platform",
            "mastodon",
            "-o",
            str(target),
            "--project",
            str(project.root),
        ],
    )
    assert result.exit_code == 0, result.output
    assert target.read_bytes().startswith(b"\xef\xbb\xbfdate,")
    count = len(export(project, "asp23", day="2024-12-05", platforms=["x", "mastodon"]).drafts)
    assert result.stdout == f"asp23: {count} posts (1 day, x, mastodon) -> {target}\n"


def test_cli_prints_markdown_by_default_and_json_on_request(project: Project) -> None:
    result = runner.invoke(app, ["export", "--day", "2024-12-05", "--project", str(project.root)])
    assert result.exit_code == 0 and result.stdout.startswith(
        "# 23rd Session of the Assembly of States Parties to the Rome Statute: post drafts"
    )
    result = runner.invoke(
        app, ["export", "--format", "json", "--platform", "threads", "--project", str(project.root)]
    )
    assert {p["platform"] for p in json.loads(result.stdout)["posts"]} == {"threads"}


def test_cli_errors_are_one_line(sample_root: Path) -> None:
    result = runner.invoke(app, ["export", "--project", str(sample_root)])
    assert result.exit_code == 1
    assert result.stderr == "out/asp23: no build yet; run `aspdigest build asp23` first\n"
    result = runner.invoke(app, ["export", "--day", "Friday", "--project", str(sample_root)])
    assert result.stderr == '--day: expected a date like 2024-12-02, got "Friday"\n'
