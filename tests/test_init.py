"""`aspdigest init` and what a new project's settings say: a fresh folder goes through check,
build, schedule plan and approve as it is; unset or placeholder settings are warnings at build
time and a digest cannot be approved or sent without its sender and unsubscribe settings."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from aspdigest.cli import app
from aspdigest.config import load_project
from aspdigest.readiness import sender_problems
from aspdigest.scaffold import Answers, files

FLAGS = [
    "--event",
    "wps30",
    "--name",
    "Women, Peace and Security Forum 2030",
    "--timezone",
    "America/New_York",
    "--start",
    "2030-03-08",
    "--end",
    "2030-03-10",
    "--publisher",
    "Peace Coalition",
]
FILES = [
    "aspdigest.toml",
    "content/wps30/event.toml",
    "content/wps30/2030-03-08/welcome.md",
    "schedules/wps30.toml",
    "subscribers.csv",
    ".gitignore",
]
# Every variable that could hand the project a setting or another folder.
CLEAN = {name: None for name in os.environ if name.startswith("ASPDIGEST_")}
SETTINGS_WARNINGS = [
    "warning: aspdigest.toml: email.from: not set; the built digest comes from "
    "from-not-set@aspdigest.invalid, and it cannot be approved or sent until this is set",
    "warning: aspdigest.toml: email.unsubscribe_url: not set; the built digest's unsubscribe "
    "link points to aspdigest.invalid, and it cannot be approved or sent until this is set",
    "warning: aspdigest.toml: brand.postal_address: not set; the digest cannot be approved "
    "until it is (every digest's footer prints the publisher's postal address)",
    "warning: aspdigest.toml: email.archive_url: not set; threads, quote posts and the digest "
    "carry no link to the day's digest on the web, and no feed is built",
]
FROM_MISSING = (
    "aspdigest.toml: email.from: required to approve or send a digest: the address it comes "
    'from; set it under [email], e.g. from = "digest@your-domain.org" (the name shown '
    "defaults to the brand's, the event's publisher)"
)
UNSUBSCRIBE_MISSING = (
    "aspdigest.toml: email.unsubscribe_url: required to approve or send a digest: the page of "
    "the subscriber service (`aspdigest serve`) that unsubscribes at one click; set it under "
    '[email], e.g. unsubscribe_url = "https://digest.your-domain.org/unsubscribe?token={token}"'
)


def cli(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=stdin, env=CLEAN)


def test_a_fresh_folder_goes_from_init_to_approve(tmp_path: Path) -> None:
    root = tmp_path / "forum"
    made = cli("init", str(root), *FLAGS)  # CliRunner's stdin is no terminal: flags only
    assert made.exit_code == 0, made.output
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == (
        sorted(FILES)
    )
    assert "example.org" not in "".join((root / f).read_text() for f in FILES)
    project = ["--project", str(root)]

    checked = cli("check", *project)
    assert checked.exit_code == 0, checked.output
    assert checked.stdout == "wps30: 1 records on 1 days, 1 quotes; no problems\n"

    built = cli("build", *project)
    assert built.exit_code == 0, built.output
    warnings = built.stderr.splitlines()
    assert warnings[: len(SETTINGS_WARNINGS)] == SETTINGS_WARNINGS
    eml = (root / "out/wps30/2030-03-08/digest.eml").read_text()
    # The From name is the publisher's; the unset address is a marker nobody receives.
    assert 'From: "Peace Coalition" <from-not-set@aspdigest.invalid>' in eml
    assert "example.org" not in eml
    thread = (root / "out/wps30/2030-03-08/thread.x.txt").read_text()
    assert "https://" not in thread  # no archive link without email.archive_url
    assert not (root / "out/wps30/feed.atom").exists()

    planned = cli("schedule", "plan", "wps30", *project)
    assert planned.exit_code == 0, planned.output
    assert "wps30: 11 deliveries (11 created)" in planned.stdout

    # A whole day: the threads and quote posts are approved, the digest held with the reasons.
    approved = cli("approve", "wps30", "2030-03-08", "--by", "ana", *project)
    assert approved.exit_code == 0, approved.output
    assert len(approved.stdout.splitlines()) == 10
    assert all(" approved by ana, " in line for line in approved.stdout.splitlines())
    assert approved.stderr.splitlines()[:2] == [
        f"delivery 1 (2030-03-08 digest): not approved: {FROM_MISSING}",
        f"delivery 1 (2030-03-08 digest): not approved: {UNSUBSCRIBE_MISSING}",
    ]
    # The digest alone: refused, naming the settings.
    digest = cli("approve", "wps30", "2030-03-08", "--channel", "digest", "--by", "ana", *project)
    assert digest.exit_code == 1
    assert digest.stderr.splitlines()[:2] == [FROM_MISSING, UNSUBSCRIBE_MISSING]

    # Sending refuses too, before any SMTP server is looked for.
    test_copy = cli("send", "wps30", "2030-03-08", "--test", "me@peace.org", *project)
    assert test_copy.exit_code == 1
    assert test_copy.stderr.splitlines() == [FROM_MISSING, UNSUBSCRIBE_MISSING]


def test_settings_filled_in_make_the_digest_approvable(tmp_path: Path) -> None:
    root = tmp_path / "forum"
    assert cli("init", str(root), *FLAGS).exit_code == 0
    project = ["--project", str(root)]
    # Built and planned before the settings are filled in: that build reaches nobody.
    assert cli("build", *project).exit_code == 0
    assert cli("schedule", "plan", "wps30", *project).exit_code == 0
    toml = root / "aspdigest.toml"
    text = toml.read_text()
    text = text.replace('from = ""', 'from = "digest@peace-coalition.org"')
    text = text.replace(
        'unsubscribe_url = ""',
        'unsubscribe_url = "https://digest.peace-coalition.org/unsubscribe?token={token}"',
    )
    text = text.replace('postal_address = ""', 'postal_address = "Peace Coalition, 1 Main St"')
    toml.write_text(text)
    assert sender_problems(load_project(root, environ={}).settings) == []
    stale = cli("approve", "wps30", "2030-03-08", "--channel", "digest", "--by", "ana", *project)
    assert stale.exit_code == 1
    assert stale.stderr == (
        "out/wps30/2030-03-08/digest.eml: built while email.from or email.unsubscribe_url was "
        "unset; run `aspdigest build wps30` again\n"
    )
    built = cli("build", *project)
    assert built.exit_code == 0, built.output
    assert [w for w in built.stderr.splitlines() if "aspdigest.toml" in w] == [
        SETTINGS_WARNINGS[-1]  # archive_url is still empty: a warning, never a refusal
    ]
    eml = (root / "out/wps30/2030-03-08/digest.eml").read_text()
    assert 'From: "Peace Coalition" <digest@peace-coalition.org>' in eml
    assert "List-Id: Peace Coalition <digest.peace-coalition.org>" in eml
    digest = cli("approve", "wps30", "2030-03-08", "--channel", "digest", "--by", "ana", *project)
    assert digest.exit_code == 0, digest.output
    assert digest.stdout == "delivery 1 (2030-03-08 digest email): approved by ana, 3 file(s)\n"


def test_placeholders_and_a_missing_settings_file_are_warnings(tmp_path: Path) -> None:
    root = tmp_path / "forum"
    assert cli("init", str(root), *FLAGS).exit_code == 0
    toml = root / "aspdigest.toml"
    toml.write_text(
        toml.read_text().replace('archive_url = ""', 'archive_url = "https://example.org/{date}/"')
    )
    built = cli("build", "--project", str(root))
    assert (
        'warning: aspdigest.toml: email.archive_url: "https://example.org/{date}/" is a '
        "placeholder (example.org is reserved for examples); set the real value"
    ) in built.stderr.splitlines()
    toml.unlink()
    built = cli("build", "wps30", "--project", str(root))
    assert built.exit_code == 0, built.output
    assert built.stderr.splitlines()[0] == (
        "warning: aspdigest.toml: not found; building with default settings and no sender, "
        "unsubscribe or archive addresses (run `aspdigest init` to write one)"
    )


def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "forum"
    root.mkdir()
    (root / "aspdigest.toml").write_text("# mine\n")
    (root / ".gitignore").write_text("mine\n")
    result = cli("init", str(root), *FLAGS)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{root.as_posix()}/{name}: already exists; nothing was written (--force replaces it)"
        for name in ("aspdigest.toml", ".gitignore")
    ]
    assert sorted(p.name for p in root.iterdir()) == [".gitignore", "aspdigest.toml"]
    assert (root / "aspdigest.toml").read_text() == "# mine\n"
    forced = cli("init", str(root), *FLAGS, "--force")
    assert forced.exit_code == 0, forced.output
    assert (root / "aspdigest.toml").read_text().startswith("# Settings of this aspdigest")


def test_without_a_terminal_each_missing_or_bad_flag_is_one_line(tmp_path: Path) -> None:
    result = cli(
        "init",
        str(tmp_path / "p"),
        "--event",
        "WPS 30",
        "--start",
        "2030-03-08",
        "--end",
        "2030-03-01",
    )
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        '--event: expected a slug (lowercase letters, digits, hyphens), got "WPS 30"',
        '--name: missing; give it, e.g. --name "Women, Peace and Security Forum 2025" '
        "(init asks for it only on a terminal)",
        "--timezone: missing; give it, e.g. --timezone America/New_York (init asks for it only "
        "on a terminal)",
        "--end: 2030-03-01 is before the first day, 2030-03-08",
        '--publisher: missing; give it, e.g. --publisher "Peace Coalition" (init asks for it '
        "only on a terminal)",
    ]
    assert not (tmp_path / "p").exists()


def test_on_a_terminal_init_asks_and_asks_again_with_the_reason(tmp_path: Path) -> None:
    root = tmp_path / "wps30"
    answers = [
        "",  # the event id: the folder's name, offered as the default
        "Women, Peace and Security Forum 2030",
        "Europe/Amsterdan",  # a typo: asked again
        "Europe/Amsterdam",
        "8 March",  # not a date: asked again
        "2030-03-08",
        "2030-03-01",  # before the first day: asked again
        "",  # the default: the first day (a one-day event)
        "Peace Coalition",
    ]
    # --interactive stands for a terminal (CliRunner's stdin is none); TZ fixes the default zone.
    result = CliRunner().invoke(
        app,
        ["init", str(root), "--interactive"],
        input="\n".join(answers) + "\n",
        env={**CLEAN, "TZ": "UTC"},
    )
    assert result.exit_code == 0, result.output
    prompts = re.findall(r"^(?:  )?[A-Z][^:\n]*(?: \[[^\]]*\])?:", result.stdout, re.M)
    assert prompts[:2] == [
        "Event id (lowercase letters, digits, hyphens) [wps30]:",
        "Full name of the event:",
    ]
    assert result.stderr.splitlines() == [
        '  unknown time zone "Europe/Amsterdan"; did you mean "Europe/Amsterdam"?; try again',
        '  expected a date like 2025-03-10, got "8 March"; try again',
        "  2030-03-01 is before the first day, 2030-03-08; try again",
    ]
    event = (root / "content/wps30/event.toml").read_text()
    assert 'timezone = "Europe/Amsterdam"' in event
    assert "start = 2030-03-08" in event and "end = 2030-03-08" in event
    checked = cli("check", "--project", str(root))
    assert checked.exit_code == 0, checked.output


@pytest.mark.parametrize(
    "name", ['Quote "Forum" 2030', "Forum \\ Backslash 2030", "Forum: O'Neill & Co 2030"]
)
def test_answers_with_quotes_and_backslashes_stay_valid(tmp_path: Path, name: str) -> None:
    root = tmp_path / "p"
    flags = [*FLAGS]
    flags[flags.index("--name") + 1] = name
    flags[flags.index("--publisher") + 1] = name
    assert cli("init", str(root), *flags).exit_code == 0
    checked = cli("check", "--project", str(root))
    assert checked.exit_code == 0, checked.output
    from aspdigest.content import load_content

    content = load_content(load_project(root, environ={}), "wps30")
    assert content.event.name == name
    assert content.records[0].organisers == [name]


def test_the_example_record_shows_every_common_field() -> None:
    import datetime as dt

    answers = Answers(
        "wps30", "Forum", "UTC", dt.date(2030, 3, 8), dt.date(2030, 3, 8), "Peace Coalition"
    )
    record = files(answers)["content/wps30/2030-03-08/welcome.md"]
    for field in ("title:", "kind:", "time:", "summary:", "organisers:", "speakers:", "quotes:"):
        assert f"\n{field}" in record
    for field in ("# sources:", "# links:", "tags:"):
        assert field in record


def test_the_queue_refuses_to_send_a_digest_once_its_sender_is_unset(tmp_path: Path) -> None:
    root = tmp_path / "forum"
    assert cli("init", str(root), *FLAGS).exit_code == 0
    toml = root / "aspdigest.toml"
    filled = (
        toml.read_text()
        .replace('from = ""', 'from = "digest@peace-coalition.org"')
        .replace('unsubscribe_url = ""', 'unsubscribe_url = "https://peace.org/u?token={token}"')
        .replace('postal_address = ""', 'postal_address = "Peace Coalition, 1 Main St"')
    )
    toml.write_text(filled)
    project = ["--project", str(root)]
    assert cli("build", *project).exit_code == 0
    assert cli("schedule", "plan", "wps30", *project).exit_code == 0
    approved = cli("approve", "wps30", "2030-03-08", "--channel", "digest", "--by", "ana", *project)
    assert approved.exit_code == 0, approved.output
    toml.write_text(filled.replace('from = "digest@peace-coalition.org"', 'from = ""'))
    sent = cli("schedule", "send-now", "1", "--by", "ana", *project)  # no runner: sent here
    assert sent.exit_code == 1
    listed = cli("schedule", "list", "wps30", "--json", *project)
    [digest] = [d for d in json.loads(listed.stdout) if d["channel"] == "digest"]
    assert digest["status"] == "failed"
    assert digest["last_error"] == FROM_MISSING
