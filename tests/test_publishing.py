"""Choosing publishers per platform, `aspdigest accounts check`, and the queue posting to
Bluesky and Mastodon (the rehearsal and the runner's resume, on the two local servers)."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import json
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from aspdigest.cli import app
from aspdigest.config import load_project
from aspdigest.deliver import publisher_for
from aspdigest.errors import ConfigError, UserError
from aspdigest.queue.actions import send_now
from aspdigest.queue.approval import approve
from aspdigest.queue.joblog import log_to
from aspdigest.queue.plan import plan
from aspdigest.queue.rehearsal import rehearse
from aspdigest.store import Store, open_project_store, open_store
from support.delivery_helpers import built_copy, environment, log_lines, start_runner, wait_for
from support.mastodon_server import FakeMastodon, Status, running_mastodon
from support.pds_server import Pds
from support.store_helpers import force_status

runner = CliRunner()


def _settings(root: Path, text: str) -> None:
    (root / "aspdigest.toml").write_text((root / "aspdigest.toml").read_text() + "\n" + text)


def test_each_platform_gets_its_publisher(sample_root: Path) -> None:
    _settings(sample_root, '[delivery.publishers]\nbluesky = "bluesky"\nmastodon = "mastodon"\n')
    project = load_project(sample_root, environ={})
    assert publisher_for(project, "bluesky").name == "bluesky"
    assert publisher_for(project, "mastodon").name == "mastodon"
    assert publisher_for(project, "x").name == "handoff"
    assert publisher_for(project, "linkedin").name == "handoff"


def test_publishers_from_the_environment(sample_root: Path) -> None:
    project = load_project(
        sample_root, environ={"ASPDIGEST_DELIVERY_PUBLISHERS": "bluesky=bluesky, mastodon=handoff"}
    )
    assert project.settings.delivery.publishers == {"bluesky": "bluesky", "mastodon": "handoff"}


def test_bad_publisher_settings_are_one_line_each(sample_root: Path) -> None:
    _settings(
        sample_root,
        '[delivery.publishers]\nblusky = "bluesky"\n[mastodon]\nvisibility = "everyone"\n',
    )
    with pytest.raises(ConfigError) as err:
        load_project(sample_root, environ={})
    # Every problem at once (issue 20): the unknown platform is not hidden by the type error.
    assert err.value.lines() == [
        "aspdigest.toml: mastodon.visibility: Input should be 'public', 'unlisted', 'private' "
        "or 'direct'",
        'aspdigest.toml: delivery.publishers.blusky: unknown platform "blusky"; known: x, '
        "bluesky, mastodon, threads, linkedin",
    ]
    (sample_root / "aspdigest.toml").write_text('[delivery.publishers]\nblusky = "bluesky"\n')
    with pytest.raises(ConfigError) as err:
        load_project(sample_root, environ={})
    assert err.value.lines() == [
        'aspdigest.toml: delivery.publishers.blusky: unknown platform "blusky"; known: x, '
        "bluesky, mastodon, threads, linkedin",
    ]


def test_an_api_publisher_posts_only_to_its_own_platform(sample_root: Path) -> None:
    _settings(sample_root, '[delivery.publishers]\nx = "bluesky"\n')
    project = load_project(sample_root, environ={})
    with pytest.raises(UserError) as err:
        publisher_for(project, "x")
    assert err.value.text == (
        'aspdigest.toml: delivery.publishers.x: "bluesky" posts only to '
        'bluesky; use "handoff" for x'
    )
    (sample_root / "aspdigest.toml").write_text('[delivery]\npublisher = "mastodon"\n')
    with pytest.raises(UserError) as err:
        publisher_for(load_project(sample_root, environ={}), "x")
    assert err.value.text == (
        'aspdigest.toml: delivery.publisher: "mastodon" posts only to mastodon; use "handoff" for x'
    )


def test_accounts_check_with_handoff_everywhere(sample_root: Path) -> None:
    result = runner.invoke(app, ["accounts", "check", "--project", str(sample_root)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{p:<9} handoff   files for people to post, in outbox/"
        for p in ("x", "bluesky", "mastodon", "threads", "linkedin")
    ] + ["dkim      not set up: messages go unsigned (see README, DKIM)"]


def test_accounts_check_names_what_is_missing(sample_root: Path) -> None:
    _settings(sample_root, '[delivery.publishers]\nbluesky = "bluesky"\nmastodon = "mastodon"\n')
    result = runner.invoke(
        app,
        [
            "accounts",
            "check",
            "-p",
            "bluesky",
            "-p",
            "mastodon",
            "-p",
            "x",
            "--project",
            str(sample_root),
        ],
        env={},
    )
    assert result.exit_code == 1
    assert result.stdout == "x         handoff   files for people to post, in outbox/\n"
    lines = result.stderr.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("bluesky: ") and "bluesky.handle" in lines[0]
    assert lines[1].startswith("mastodon: ") and "mastodon.instance" in lines[1]
    bad = runner.invoke(app, ["accounts", "check", "-p", "myspace", "--project", str(sample_root)])
    assert bad.exit_code == 1
    assert bad.stderr == (
        '--platform: unknown platform "myspace"; known: x, bluesky, mastodon, threads, linkedin\n'
    )


def test_resolving_not_sent_forgets_the_post_in_doubt(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 'state.sqlite'}") as store:
        d = store.ensure_delivery("asp23", dt.date(2024, 12, 2), "thread", "mastodon")
        store.post_sending(d.id, 0, 0, "k0")
        store.post_posted(d.id, 0, 0, remote_id="1", url="https://m.example/@a/1")
        store.post_sending(d.id, 0, 1, "k1")
        assert store.forget_sending(d.id) == 1
        (kept,) = store.social_posts(d.id).values()
        assert (kept.index, kept.status, kept.remote_id) == (0, "posted", "1")


# -- the queue posting to the two local servers -------------------------------------------------

DAY3 = dt.date(2024, 12, 3)


def _api_environment(pds: Pds, masto: FakeMastodon, name: str) -> dict[str, str]:
    account = pds.create_account(name)
    return environment(
        ASPDIGEST_DELIVERY_PUBLISHERS="bluesky=bluesky,mastodon=mastodon",
        ASPDIGEST_BLUESKY_SERVICE=pds.url,
        ASPDIGEST_BLUESKY_HANDLE=account.handle,
        ASPDIGEST_BLUESKY_PASSWORD=pds.app_password(account),
        ASPDIGEST_MASTODON_INSTANCE=masto.url,
        ASPDIGEST_MASTODON_TOKEN=masto.token,
    )


def _built_texts(root: Path, platform: str) -> tuple[list[str], list[list[str]]]:
    """What the platform's API is given: Bluesky's `api_text` (links shortened for display),
    every other platform's `text`."""
    data = json.loads((root / f"out/asp23/{DAY3}/thread.{platform}.json").read_text())
    key = "api_text" if platform == "bluesky" else "text"
    return (
        [p[key] for p in data["posts"]],
        [[p[key] for p in q["posts"]] for q in data["quote_posts"]],
    )


def _check_mastodon_chain(posts: list[Status], thread: list[str], quotes: list[list[str]]) -> None:
    """The server holds the thread then each quote post, in order, each replying to the one
    before it in its group and nothing else."""
    expected = thread + [t for q in quotes for t in q]
    assert [s.text for s in posts] == expected
    starts = {0} | {len(thread) + sum(len(q) for q in quotes[:n]) for n in range(len(quotes))}
    for n, status in enumerate(posts):
        assert status.in_reply_to_id == (None if n in starts else posts[n - 1].id)


def test_a_rehearsal_posts_the_day_to_the_local_pds_and_mastodon(tmp_path: Path, pds: Pds) -> None:
    root = built_copy(tmp_path)
    with running_mastodon() as masto:
        env = _api_environment(pds, masto, "rehearsal")
        did = pds.xrpc(
            "com.atproto.identity.resolveHandle", params={"handle": env["ASPDIGEST_BLUESKY_HANDLE"]}
        )["did"]
        project = load_project(root, environ=env)
        out = io.StringIO()
        with log_to(out):
            result = rehearse(project, "asp23", DAY3, 3600, environ=env, as_approved=True)
        posted = masto.posts()
    by_platform = {(r.channel, r.platform): r for r in result.deliveries}
    assert {r.status for r in result.deliveries} == {"sent"}, out.getvalue()
    assert by_platform[("thread", "bluesky")].detail.startswith("10 post(s) as @rehearsal.test")
    # Mastodon: the thread (10 posts) at 12:00, then the three quote posts at 16:00.
    thread, quotes = _built_texts(root, "mastodon")
    _check_mastodon_chain(posted, thread, quotes)
    assert {s.visibility for s in posted} == {"public"} and {s.language for s in posted} == {"en"}
    # Bluesky: the same order, reply references to the root and the previous post.
    thread, quotes = _built_texts(root, "bluesky")
    records = pds.records(did)
    # The quote posts are due 4 hours (4 s at this speed) after the thread; on a loaded
    # machine they may start while the thread is still posting, so the two are checked each
    # in its own order rather than as one sequence.
    in_thread = [r for r in records if "reply" in r["value"] or r["value"]["text"] == thread[0]]
    alone = [r for r in records if r not in in_thread]
    assert [r["value"]["text"] for r in in_thread] == thread
    assert [r["value"]["text"] for r in alone] == [t for q in quotes for t in q]
    strong = "com.atproto.repo.strongRef"
    root_ref = {"uri": in_thread[0]["uri"], "cid": in_thread[0]["cid"], "$type": strong}
    assert "reply" not in in_thread[0]["value"]
    for before, record in itertools.pairwise(in_thread):
        assert record["value"]["reply"] == {
            "$type": "app.bsky.feed.post#replyRef",
            "root": root_ref,
            "parent": {"uri": before["uri"], "cid": before["cid"], "$type": strong},
        }
    assert all("reply" not in r["value"] for r in alone)  # one post per quote
    assert all(r["value"]["langs"] == ["en"] for r in records)
    # X, Threads and LinkedIn were handed to files in the rehearsal folder, as before.
    handed = result.folder / "outbox" / str(DAY3)
    assert sorted(p.name for p in handed.iterdir()) == ["linkedin", "threads", "x"]
    assert result.messages > 0


def test_a_rehearsal_never_posts_to_a_server_elsewhere(sample_root: Path) -> None:
    from aspdigest.queue.rehearsal import on_this_machine

    assert on_this_machine("http://127.0.0.1:2583") and on_this_machine("http://localhost:80")
    assert not on_this_machine("https://bsky.social")
    assert not on_this_machine("https://mastodon.social")
    assert not on_this_machine("")


def _runner_kill_trial(
    root: Path,
    tmp_path: Path,
    env: dict[str, str],
    masto: FakeMastodon,
    rng: random.Random,
    trial: int,
) -> dict[str, Any]:
    """Send one Mastodon thread now; kill -9 `aspdigest run` after a random number of posts,
    restart it, until the delivery is sent."""
    project = load_project(root, environ=env)
    with open_project_store(project) as store:  # one connection for all the polling
        (d,) = [
            d
            for d in store.deliveries("asp23")
            if d.date == DAY3 and d.channel == "thread" and d.platform == "mastodon"
        ]
        send_now(project, store, d.id, by="test")
        log = tmp_path / f"runner-{trial}.log"
        kills = interrupted = 0
        thread = _built_texts(root, "mastodon")[0]
        before = len(masto.posts())
        while True:
            resumes = _resumes(log)
            proc = start_runner(root, env, log)
            try:
                if interrupted:
                    # Pick the kill point once this runner has taken the thread up: a post
                    # the killed one had in flight can land late, and counting it could
                    # kill this runner before it resumed at all.
                    wait_for(
                        lambda n=resumes, p=proc: (
                            _resumes(log) > n  # type: ignore[misc]
                            or p.poll() is not None
                            or _status(store, d.id) == "sent"
                        ),
                        60,
                        "the runner to resume",
                    )
                left = len(thread) - (len(masto.posts()) - before)
                if left > 1 and kills < 3:  # kill after 1 to left-1 more posts from this process
                    target = len(masto.posts()) + rng.randint(1, left - 1)
                    wait_for(
                        lambda t=target, p=proc: (
                            len(masto.posts()) >= t  # type: ignore[misc]
                            or p.poll() is not None
                        ),
                        60,
                        "posts to appear",
                    )
                    assert proc.poll() is None, "the runner exited by itself"
                    # Sometimes mid-request (each status post takes 0.05–0.25 s here); not
                    # so long that the images uploaded ahead let the thread finish first.
                    time.sleep(rng.uniform(0, 0.12))
                    proc.kill()
                    proc.wait(timeout=30)
                    kills += 1
                    interrupted += _status(store, d.id) == "claimed"  # else it had finished
                    continue
                wait_for(lambda: _status(store, d.id) == "sent", 60, "the thread to finish")
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
                break
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    posts = masto.posts()[before:]
    resumed = _resumes(log)
    texts = [s.text for s in posts]
    return {
        "trial": trial,
        "kills": kills,
        "interrupted": interrupted,
        "resumed": resumed,
        "posts": len(posts),
        "expected": len(thread),
        "duplicates": len(texts) - len(set(texts)),
        "gaps": len(set(thread) - set(texts)),
        "_posts": posts,
    }


def _resumes(log: Path) -> int:
    return sum(1 for line in log_lines(log) if line["msg"] == "resuming")


def _status(store: Store, delivery_id: int) -> str:
    d = store.delivery(delivery_id)
    assert d is not None
    return d.status


def test_a_killed_runner_resumes_the_thread_where_it_stopped(
    tmp_path: Path, artifacts_dir: Path
) -> None:
    """`aspdigest run` killed with SIGKILL in the middle of a Mastodon thread, restarted:
    the thread on the server is complete, in order, without duplicates."""
    rng = random.Random(20241203)
    trials = []
    for trial in range(3):
        folder = tmp_path / f"t{trial}"
        root = built_copy(folder)
        with running_mastodon() as masto:
            masto.delay_status_posts(0.05, 0.25, rng)
            env = environment(
                ASPDIGEST_DELIVERY_PUBLISHERS="mastodon=mastodon",
                ASPDIGEST_MASTODON_INSTANCE=masto.url,
                ASPDIGEST_MASTODON_TOKEN=masto.token,
            )
            project = load_project(root, environ=env)
            with open_project_store(project) as store:
                plan(project, "asp23", store)
                approve(
                    project, store, "asp23", DAY3, channel="thread", platform="mastodon", by="test"
                )
            result = _runner_kill_trial(root, folder, env, masto, rng, trial)
            _check_mastodon_chain(result.pop("_posts"), _built_texts(root, "mastodon")[0], [])
        trials.append(result)
    summary = {
        "trials": trials,
        "kills": sum(t["kills"] for t in trials),
        "duplicates": sum(t["duplicates"] for t in trials),
        "gaps": sum(t["gaps"] for t in trials),
    }
    (artifacts_dir / "runner-kill-test.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "trials"}))
    assert summary["kills"] >= 3
    assert summary["duplicates"] == 0 and summary["gaps"] == 0
    assert all(t["resumed"] == t["interrupted"] for t in trials)
    assert sum(t["interrupted"] for t in trials) >= 2


def test_accounts_check_names_each_account_without_posting(tmp_path: Path, pds: Pds) -> None:
    root = built_copy(tmp_path)
    with running_mastodon() as masto:
        env = _api_environment(pds, masto, "checker")
        did = pds.xrpc("com.atproto.identity.resolveHandle", params={"handle": "checker.test"})[
            "did"
        ]
        result = runner.invoke(app, ["accounts", "check", "--project", str(root)], env=env)
        wrong = runner.invoke(
            app,
            ["accounts", "check", "-p", "mastodon", "--project", str(root)],
            env={**env, "ASPDIGEST_MASTODON_TOKEN": "nope"},
        )
        posted = masto.posts()
    assert result.exit_code == 0, result.stderr
    host = masto.url.removeprefix("http://")
    assert result.stdout.splitlines() == [
        "x         handoff   files for people to post, in outbox/",
        f"bluesky   bluesky   @checker.test ({did}) on {pds.url}",
        f"mastodon  mastodon  @ciwj@{host} (id 1) on {masto.url}, visibility public, "
        "500 characters",
        "threads   handoff   files for people to post, in outbox/",
        "linkedin  handoff   files for people to post, in outbox/",
        "dkim      not set up: messages go unsigned (see README, DKIM)",
    ]
    assert wrong.exit_code == 1
    assert wrong.stderr.startswith("mastodon: the token in ASPDIGEST_MASTODON_TOKEN was refused")
    assert "nope" not in wrong.stderr
    assert posted == [] and pds.records(did) == []


def test_schedule_list_shows_how_much_of_a_stopped_thread_is_up(tmp_path: Path) -> None:
    root = built_copy(tmp_path)
    project = load_project(root, environ={})
    with open_project_store(project) as store:
        plan(project, "asp23", store)
        (d,) = [
            d
            for d in store.deliveries("asp23")
            if d.date == DAY3 and d.channel == "thread" and d.platform == "mastodon"
        ]
        for i in range(2):
            store.post_sending(d.id, 0, i, f"k{i}")
            store.post_posted(d.id, 0, i, remote_id=str(i + 1))
        store.post_sending(d.id, 0, 2, "k2")  # in doubt: not counted as up
        force_status(store, d.id, "failed", last_error="stopped")  # planned → failed: a shortcut
    args = ["--day", str(DAY3), "--status", "failed", "--project", str(root)]
    result = runner.invoke(app, ["schedule", "list", *args])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.endswith("\tthread\tmastodon\tfailed\tfailed: stopped; 2 post(s) up\n")
    (row,) = json.loads(runner.invoke(app, ["schedule", "list", "--json", *args]).stdout)
    assert (row["id"], row["posted"]) == (d.id, 2)
