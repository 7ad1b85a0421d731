"""cli.py: the thin edge — exit codes, one-line errors, JSON output, the real console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from aspdigest.cli import app

FIXTURES = Path(__file__).resolve().parent / "fixtures"
runner = CliRunner()


def test_check_reports_the_sample(sample_root: Path) -> None:
    result = runner.invoke(app, ["check", "--project", str(sample_root)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("asp23: 18 records on 5 days, ")
    assert result.stdout.endswith("; no problems\n")


def test_check_json(sample_root: Path) -> None:
    result = runner.invoke(app, ["check", "asp23", "--json", "--project", str(sample_root)])
    data = json.loads(result.stdout)
    assert data["ok"] is True and data["records"] == 18 and data["problems"] == []


def test_check_json_lists_problems(sample_root: Path) -> None:
    bad = sample_root / "content/asp23/2024-12-02/bad.md"
    bad.write_text("---\ntitle: T\nkind: session\nsummary: S.\ntime: 6:30\n---\n")
    result = runner.invoke(app, ["check", "--json", "--project", str(sample_root)])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["problems"] == [
        {
            "path": "content/asp23/2024-12-02/bad.md",
            "field": "time",
            "message": 'expected "HH:MM" in quotes, got the number 390',
        }
    ]


def test_build_prints_where_the_output_is(sample_root: Path) -> None:
    result = runner.invoke(app, ["build", "--project", str(sample_root)])
    assert result.exit_code == 0, result.output
    assert "asp23: built 5 day(s), 0 unchanged" in result.stdout
    assert result.stdout.rstrip().splitlines()[0].endswith("-> out/asp23/")
    again = runner.invoke(app, ["build", "--json", "--project", str(sample_root)])
    data = json.loads(again.stdout)
    assert data["reused"] == data["days"] and len(data["days"]) == 5


def test_build_rejects_a_bad_day_option(sample_root: Path) -> None:
    result = runner.invoke(app, ["build", "--day", "Monday", "--project", str(sample_root)])
    assert result.exit_code == 1
    assert result.stderr == '--day: expected a date like 2024-12-02, got "Monday"\n'


def test_schema_prints_json_schema_for_records_and_events() -> None:
    record = json.loads(runner.invoke(app, ["schema"]).stdout)
    assert record["additionalProperties"] is False
    assert set(record["required"]) == {"title", "kind", "summary"}
    assert record["properties"]["time"]["anyOf"][0]["pattern"].startswith("^")
    event = json.loads(runner.invoke(app, ["schema", "event"]).stdout)
    assert {"id", "timezone", "start", "end"} <= set(event["required"])


def test_several_events_need_a_name(sample_root: Path) -> None:
    (sample_root / "content/other").mkdir()
    (sample_root / "content/other/event.toml").write_text("")
    result = runner.invoke(app, ["check", "--project", str(sample_root)])
    assert result.exit_code == 1
    assert result.stderr == "content: several events (asp23, other); name one\n"


def test_bad_settings_are_one_line_each(sample_root: Path) -> None:
    (sample_root / "aspdigest.toml").write_text('[brand]\nprimary = "purple"\n[emial]\n')
    result = runner.invoke(app, ["check", "--project", str(sample_root)])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        'aspdigest.toml: brand.primary: expected a colour like "#4b2c83", got "purple"',
        "aspdigest.toml: emial: unknown setting",
    ]


def test_the_console_script_exits_1_without_a_traceback(tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "content/demo/2025-03-10").mkdir(parents=True)
    (root / "content/demo/event.toml").write_text(
        (FIXTURES / "project/content/demo/event.toml").read_text()
    )
    (root / "content/demo/2025-03-10/a.md").write_text("---\ntitle: [unclosed\n---\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASPDIGEST_")}
    proc = subprocess.run(
        [sys.executable, "-m", "aspdigest", "build", "demo", "--project", str(root)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.startswith(
        "content/demo/2025-03-10/a.md: front matter: invalid YAML at line 2"
    )
    assert "Traceback" not in proc.stderr
    assert not (root / "out").exists()


def test_the_console_script_leaves_fast_with_all_its_output_and_status(sample_root: Path) -> None:
    """`main` skips the interpreter's teardown (os._exit): nothing printed may be lost, the
    status must be the command's, and the card pool's exit handler must still run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASPDIGEST_")}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "aspdigest", *args],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=120,
        )

    schema = cli("schema")  # a long output through a pipe
    assert schema.returncode == 0
    assert schema.stdout == runner.invoke(app, ["schema"]).stdout
    built = cli("build", "asp23", "--force", "--json", "-C", str(sample_root))
    assert built.returncode == 0
    assert json.loads(built.stdout)["event"] == "asp23"  # the JSON whole, to its last brace
    # Cards were drawn ahead in worker processes: none is left behind.
    children = subprocess.run(
        ["pgrep", "-f", f"aspdigest build asp23 --force --json -C {sample_root}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert children.stdout == ""
    usage = cli("no-such-command")
    assert usage.returncode == 2 and "No such command" in usage.stderr
    wrong = cli("build", "no-such-event", "-C", str(sample_root))
    assert wrong.returncode == 1
    assert wrong.stderr.startswith("content/no-such-event: no such event")


_GC_AT_EXIT = """
import atexit, gc, sys
sys.argv = ["aspdigest", *sys.argv[1:]]
atexit.register(lambda: print("collector", "on" if gc.isenabled() else "off"))
from aspdigest.cli import main
main()
"""


def test_brief_commands_run_without_the_cycle_collector_and_others_with_it() -> None:
    def collector(*args: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-c", _GC_AT_EXIT, *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return proc.stdout.splitlines()[-1]

    assert collector("version") == "collector off"
    assert collector("--help") == "collector off"
    assert collector("status", "--help") == "collector on"  # the queue's commands keep it
    assert collector("run", "--help") == "collector on"
