"""The `mastodon` publisher against a local Mastodon API server (tests/mastodon_server.py).

Real parts only: Mastodon.py talking HTTP to a server on 127.0.0.1, a real SQLite store file
under tmp_path, the ASP23 sample built once. Covers the thread and quote posts (order,
replies, alt text, visibility, language), the instance's own character limit, rate limits
(waiting until the reset), a refused token, a rejected post and the retry that resumes after
it, a connection dropped after the server made the status, a timeout, 5xx answers, a post left
in doubt past Mastodon's one-hour Idempotency-Key window, and `account()`. The kill -9 test
is in test_mastodon_kill.py.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from mastodon import Mastodon

from aspdigest.config import Project, load_project
from aspdigest.deliver import Ledger, Media, Post, Publication, PublishUncertain, publication_for
from aspdigest.deliver.mastodon import MastodonPublisher
from aspdigest.errors import UserError
from aspdigest.store import Store, open_store
from conftest import FIXED_NOW
from delivery_helpers import built_copy, wait_for
from mastodon_server import FakeMastodon, running_mastodon

DAY = dt.date(2024, 12, 3)  # ASP23 day 2: a 12-post thread with 3 cards, 3 quote posts


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return built_copy(tmp_path)


@pytest.fixture
def server() -> Iterator[FakeMastodon]:
    with running_mastodon() as s:
        yield s


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(f"sqlite:///{tmp_path}/state.sqlite") as s:
        yield s


def project_for(root: Path, server: FakeMastodon, **settings: str) -> Project:
    return load_project(root, environ={"ASPDIGEST_MASTODON_INSTANCE": server.url, **settings})


def publisher(project: Project, token: str, sleeps: list[float] | None = None) -> MastodonPublisher:
    sleep = sleeps.append if sleeps is not None else time.sleep
    return MastodonPublisher(project, {"ASPDIGEST_MASTODON_TOKEN": token}, sleep=sleep)


def made_up(store: Store, texts: list[str], root: Path, day: dt.date = DAY) -> Publication:
    """A thread of short posts, built here rather than by `aspdigest build`."""
    d = store.ensure_delivery("asp23", day, "thread", "mastodon")
    return Publication(
        d.id, "asp23", day, "thread", "mastodon", root, (tuple(Post(t) for t in texts),), "en"
    )


def five(store: Store, root: Path) -> Publication:
    return made_up(store, [f"Post {n} of a five-post thread." for n in range(1, 6)], root)


# -- posting -----------------------------------------------------------------------------------


def test_thread_is_posted_in_order_as_replies_with_alt_text_visibility_and_language(
    root: Path, server: FakeMastodon, store: Store
) -> None:
    project = project_for(root, server, ASPDIGEST_MASTODON_VISIBILITY="unlisted")
    d = store.ensure_delivery("asp23", DAY, "thread", "mastodon")
    pub = publication_for(project, d)
    posts = pub.groups[0]
    assert len(posts) == 12 and sum(len(p.media) for p in posts) == 3

    receipt = publisher(project, server.token).publish(pub, Ledger(store, d.id))

    # read back through the API, as anyone would see it
    client = Mastodon(access_token=server.token, api_base_url=server.url)
    first = server.posts()[0]
    thread = [client.status(first.id), *client.status_context(first.id)["descendants"]]
    assert [s["in_reply_to_id"] for s in thread] == [None] + [s["id"] for s in thread[:-1]]
    assert [s.text for s in server.posts()] == [p.text for p in posts]
    assert {s["visibility"] for s in thread} == {"unlisted"}
    assert {s["language"] for s in thread} == {"en"}
    assert [[m["description"] for m in s["media_attachments"]] for s in thread] == [
        [m.alt for m in p.media] for p in posts
    ]
    assert all(m["url"] for s in thread for m in s["media_attachments"])
    keys = [r.idempotency_key for r in server.status_posts()]
    assert len(keys) == 12 and len(set(keys)) == 12 and all(k and len(k) == 64 for k in keys)
    ledger = store.social_posts(d.id)
    assert [ledger[(0, i)].remote_id for i in range(12)] == [s["id"] for s in thread]
    assert {r.status for r in ledger.values()} == {"posted"}
    assert [p["url"] for p in receipt["posts"]] == [s["url"] for s in thread]
    assert receipt["account"].startswith("@ciwj@127.0.0.1:")


def test_quote_posts_go_out_each_as_its_own_thread(
    root: Path, server: FakeMastodon, store: Store
) -> None:
    project = project_for(root, server)
    d = store.ensure_delivery("asp23", DAY, "quotes", "mastodon")
    pub = publication_for(project, d)
    assert len(pub.groups) == 3

    publisher(project, server.token).publish(pub, Ledger(store, d.id))

    made = server.posts()
    assert [s.text for s in made] == [p.text for g in pub.groups for p in g]
    at = 0
    for group in pub.groups:
        mine = made[at : at + len(group)]
        assert [s.in_reply_to_id for s in mine] == [None] + [s.id for s in mine[:-1]]
        at += len(group)
    assert [server.media[m].description for s in made for m in s.media_ids] == [
        m.alt for g in pub.groups for p in g for m in p.media
    ]


@pytest.mark.parametrize("v2", [True, False], ids=["v2-instance", "v1-instance"])
def test_a_post_over_the_instance_limit_is_refused_before_anything_is_posted(
    root: Path, store: Store, v2: bool
) -> None:
    with running_mastodon(max_characters=100, offer_v2_instance=v2) as server:
        link = "https://example.org/" + "a" * 100  # counts 23, as Mastodon counts a URL
        pub = made_up(store, ["Short opener.", "x" * 150, f"See {link}", "y" * 101], root)
        with pytest.raises(UserError) as err:
            publisher(project_for(root, server), server.token).publish(
                pub, Ledger(store, pub.delivery_id)
            )
        assert str(err.value) == (
            f"Mastodon: nothing posted: post 2 of 4 has 150 characters; {server.url} allows "
            f"100; post 4 of 4 has 101 characters; {server.url} allows 100"
        )
        assert server.status_posts() == [] and store.social_posts(pub.delivery_id) == {}
        assert server.requests_to("GET", "/api/v2/instance")


def test_a_missing_card_is_refused_naming_the_post(
    root: Path, server: FakeMastodon, store: Store
) -> None:
    project = project_for(root, server)
    d = store.ensure_delivery("asp23", DAY, "thread", "mastodon")
    pub = publication_for(project, d)
    card = pub.groups[0][2].media[0].path
    (pub.folder / card).unlink()
    with pytest.raises(UserError) as err:
        publisher(project, server.token).publish(pub, Ledger(store, d.id))
    assert str(err.value) == (
        f"Mastodon: nothing posted: post 3 of 12: image out/asp23/2024-12-03/{card} is missing"
    )
    assert server.status_posts() == []


def test_a_rate_limit_is_waited_out_until_its_reset_then_the_thread_completes(
    root: Path, store: Store
) -> None:
    with running_mastodon(clock=lambda: FIXED_NOW) as server:
        server.rate_limit_statuses(1, reset_in=120)
        pub = five(store, root)
        sleeps: list[float] = []
        publisher(project_for(root, server), server.token, sleeps).publish(
            pub, Ledger(store, pub.delivery_id)
        )
        assert sleeps == [120.0]  # Reset − Date of the 429, both the server's clock
        assert [s.text for s in server.posts()] == [p.text for p in pub.groups[0]]
        tries = server.status_posts()
        assert len(tries) == 6 and tries[0].idempotency_key == tries[1].idempotency_key


def test_a_rate_limit_longer_than_rate_limit_wait_stops_with_the_reset_time(
    root: Path, store: Store
) -> None:
    with running_mastodon(clock=lambda: FIXED_NOW) as server:
        server.rate_limit_statuses(1, reset_in=1800)
        pub = five(store, root)
        sleeps: list[float] = []
        project = project_for(root, server, ASPDIGEST_DELIVERY_RATE_LIMIT_WAIT="900")
        with pytest.raises(UserError) as err:
            publisher(project, server.token, sleeps).publish(pub, Ledger(store, pub.delivery_id))
        assert str(err.value) == (
            f"Mastodon: post 1 of 5 was not posted: {server.url} limits this account until "
            "12:30:00 UTC (HTTP 429) (waiting 1800 s would pass delivery.rate_limit_wait); "
            f"nothing was posted; `aspdigest schedule retry {pub.delivery_id}` resumes at "
            "post 1 of 5"
        )
        assert sleeps == [] and server.posts() == []


def test_a_refused_token_stops_at_the_first_request_that_needs_it(
    root: Path, server: FakeMastodon, store: Store
) -> None:
    pub = five(store, root)
    with pytest.raises(UserError) as err:
        publisher(project_for(root, server), "not-the-token").publish(
            pub, Ledger(store, pub.delivery_id)
        )
    assert str(err.value) == (
        f"Mastodon: nothing posted: the token in "
        f"ASPDIGEST_MASTODON_TOKEN was refused by {server.url} "
        "(The access token is invalid)"
    )
    assert "not-the-token" not in str(err.value)
    # the public instance read, then the one request that needs the token: no retry
    assert [(r.method, r.path) for r in server.seen] == [
        ("GET", "/api/v2/instance"),
        ("GET", "/api/v1/accounts/verify_credentials"),
    ]
    assert server.status_posts() == [] and store.social_posts(pub.delivery_id) == {}


def test_a_rejected_post_stops_naming_it_and_the_retry_resumes_there(
    root: Path, server: FakeMastodon, store: Store
) -> None:
    server.reject_posts_containing("Post 3", "Text contains a word this server does not allow")
    pub = five(store, root)
    project = project_for(root, server)
    with pytest.raises(UserError) as err:
        publisher(project, server.token).publish(pub, Ledger(store, pub.delivery_id))
    up = server.posts()
    assert str(err.value) == (
        f"Mastodon: post 3 of 5 was rejected: {server.url} answered 422: Text contains a word "
        f"this server does not allow; 2 post(s) are up ({server.url}/@ciwj/{up[0].id}, "
        f"{server.url}/@ciwj/{up[1].id}); `aspdigest schedule retry "
        f"{pub.delivery_id}` resumes at post 3 of 5"
    )
    assert [s.text for s in up] == [p.text for p in pub.groups[0][:2]]
    assert len(server.status_posts()) == 3  # refused once, not retried in a loop
    refused_key = server.status_posts()[2].idempotency_key
    with pytest.raises(UserError) as err:  # a resume that cannot start says what is up
        publisher(project, "wrong").publish(pub, Ledger(store, pub.delivery_id))
    assert str(err.value) == (
        f"Mastodon: nothing more posted (2 post(s) were already up): the "
        f"token in ASPDIGEST_MASTODON_TOKEN was refused by {server.url} "
        "(The access token is invalid)"
    )

    server.clear_faults()
    receipt = publisher(project, server.token).publish(pub, Ledger(store, pub.delivery_id))
    made = server.posts()
    assert [s.text for s in made] == [p.text for p in pub.groups[0]]
    assert made[2].in_reply_to_id == up[1].id
    assert [s.in_reply_to_id for s in made] == [None] + [s.id for s in made[:-1]]
    assert len(server.status_posts()) == 6 and made[2].idempotency_key == refused_key
    assert receipt["resumed_after"] == 2


def test_a_connection_dropped_after_the_server_made_the_post_does_not_post_it_twice(
    root: Path, server: FakeMastodon, store: Store
) -> None:
    server.drop_after_accept(1)
    folder = root / "out" / "asp23" / DAY.isoformat()
    card = sorted(folder.glob("cards/*.png"))[0].relative_to(folder).as_posix()
    pub = replace(made_up(store, ["First.", "Second.", "Third."], root), folder=folder)
    pub = replace(
        pub,
        groups=((replace(pub.groups[0][0], media=(Media(card, "A card."),)), *pub.groups[0][1:]),),
    )
    sleeps: list[float] = []
    publisher(project_for(root, server), server.token, sleeps).publish(
        pub, Ledger(store, pub.delivery_id)
    )
    made = server.posts()
    assert [s.text for s in made] == ["First.", "Second.", "Third."]
    tries = server.status_posts()
    assert len(tries) == 4 and tries[0].idempotency_key == tries[1].idempotency_key
    assert (server.dropped, server.replays) == (1, 1)
    assert sleeps == [2.0]  # one pause before the resend (delivery backoff)
    assert len(server.requests_to("POST", "/api/v2/media")) == 1  # not uploaded again
    assert [server.media[m].description for m in made[0].media_ids] == ["A card."]


def test_a_5xx_is_retried_with_growing_pauses_and_stops_after_network_retries(
    root: Path, server: FakeMastodon, store: Store
) -> None:
    server.fail_status_posts(503, 502)
    pub = made_up(store, ["First.", "Second.", "Third."], root)
    sleeps: list[float] = []
    publisher(project_for(root, server), server.token, sleeps).publish(
        pub, Ledger(store, pub.delivery_id)
    )
    assert sleeps == [2.0, 4.0]
    assert [s.text for s in server.posts()] == ["First.", "Second.", "Third."]

    server.fail_status_posts(503, 503)
    again = made_up(store, ["Only."], root, DAY + dt.timedelta(days=1))
    project = project_for(root, server, ASPDIGEST_DELIVERY_NETWORK_RETRIES="1")
    with pytest.raises(UserError) as err:
        publisher(project, server.token, []).publish(again, Ledger(store, again.delivery_id))
    assert str(err.value) == (
        f"Mastodon: post 1 of 1 may not have been posted: {server.url} answered 503 (The "
        "server is temporarily unavailable) (after 2 tries); nothing was posted; `aspdigest "
        f"schedule retry {again.delivery_id}` resumes at post 1 of 1"
    )


def test_a_timeout_is_resent_under_the_same_key_and_posted_once(
    root: Path, server: FakeMastodon, store: Store
) -> None:
    delays = iter([1.0])
    server.status_delay = lambda: next(delays, 0.0)  # the first answer comes after 1 s
    pub = made_up(store, ["First.", "Second."], root)
    project = project_for(root, server, ASPDIGEST_DELIVERY_TIMEOUT="0.3")
    publisher(project, server.token, []).publish(pub, Ledger(store, pub.delivery_id))
    wait_for(lambda: server.in_flight == 0, 5, "the slow request to finish")
    assert [s.text for s in server.posts()] == ["First.", "Second."]
    assert server.replays == 1


def test_a_post_left_sending_over_an_hour_ago_is_not_sent_again(
    root: Path, server: FakeMastodon, tmp_path: Path
) -> None:
    now = [FIXED_NOW]
    with open_store(f"sqlite:///{tmp_path}/clock.sqlite", clock=lambda: now[0]) as store:
        pub = five(store, root)
        Ledger(store, pub.delivery_id).sending(0, 0, "key-of-a-try-that-died")
        now[0] = FIXED_NOW + dt.timedelta(minutes=61)
        with pytest.raises(PublishUncertain) as err:
            publisher(project_for(root, server), server.token).publish(
                pub, Ledger(store, pub.delivery_id)
            )
    assert str(err.value) == (
        "Mastodon: post 1 of 5 was being sent at 2024-11-30 12:00 UTC and may be on the "
        "account; the server only recognises a repeat for 60 minutes; look at the account, "
        f"then `aspdigest schedule resolve {pub.delivery_id} --sent` or `--not-sent` (then "
        "`retry` resumes there)"
    )
    assert server.status_posts() == []


# -- account -----------------------------------------------------------------------------------


def test_account_names_who_where_visibility_and_limit(root: Path) -> None:
    with running_mastodon(max_characters=1000) as server:
        project = project_for(root, server, ASPDIGEST_MASTODON_VISIBILITY="unlisted")
        host = server.url.removeprefix("http://")
        assert publisher(project, server.token).account() == (
            f"@ciwj@{host} (id 1) on {server.url}, visibility unlisted, 1000 characters"
        )
        server.disable_account()
        with pytest.raises(UserError) as err:
            publisher(project, server.token).account()
        assert str(err.value) == (
            f"Mastodon: the token in ASPDIGEST_MASTODON_TOKEN was "
            f"refused by {server.url} (Your login is currently disabled)"
        )


def test_account_without_instance_token_or_server_says_which(
    root: Path, server: FakeMastodon
) -> None:
    with pytest.raises(UserError) as err:
        publisher(load_project(root, environ={}), server.token).account()
    assert str(err.value) == (
        "aspdigest.toml: mastodon.instance is not set: the server to post "
        'to, e.g. "https://mastodon.social" (or set '
        "ASPDIGEST_MASTODON_INSTANCE)"
    )
    project = project_for(root, server)
    with pytest.raises(UserError) as err:
        MastodonPublisher(project, {}).account()
    assert str(err.value) == (
        "ASPDIGEST_MASTODON_TOKEN is not set: the access token of the "
        "account to post as (on the server: Preferences > Development > "
        "New application, scopes write:statuses, write:media, "
        "read:accounts)"
    )
    with running_mastodon() as gone:
        closed = gone.url
    with pytest.raises(UserError) as err:
        MastodonPublisher(
            load_project(root, environ={"ASPDIGEST_MASTODON_INSTANCE": closed}),
            {"ASPDIGEST_MASTODON_TOKEN": "t"},
        ).account()
    assert str(err.value) == f"Mastodon: no answer from {closed} (connection refused)"
