"""The `mastodon` publisher against a local Mastodon API server (tests/support/mastodon_server.py).

Real parts only: Mastodon.py talking HTTP to a server on 127.0.0.1, a real SQLite store file
under tmp_path, the ASP23 sample built once. Covers the thread and quote posts (order,
replies, alt text, visibility, language), the instance's own character limit, rate limits
(waiting until the reset), a refused token, a rejected post and the retry that resumes after
it, a connection dropped after the server made the status, a timeout, 5xx answers, a post left
in doubt past Mastodon's one-hour Idempotency-Key window, uploads (recorded and reused, the
upload rate limit, a processing failure, the alt-text limit), and `account()`. The posting
tests run against each behaviour profile of the fake (4.3, 4.5, 4.6: how a resend under the
same key is answered, see tests/support/mastodon_fake.py). The kill -9 test is in
test_mastodon_kill.py.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from mastodon import Mastodon

from aspdigest.config import Project, load_project
from aspdigest.deliver import Ledger, Media, Post, Publication, publication_for
from aspdigest.deliver.mastodon import MastodonPublisher
from aspdigest.errors import UserError
from aspdigest.store import Store, open_store
from conftest import FIXED_NOW
from support.delivery_helpers import built_copy, wait_for
from support.mastodon_server import PROFILES, FakeMastodon, running_mastodon

DAY = dt.date(2024, 12, 3)  # ASP23 day 2: a 10-post thread with 3 cards, 3 quote posts


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return built_copy(tmp_path)


@pytest.fixture(params=list(PROFILES))
def profile(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(profile: str) -> Iterator[FakeMastodon]:
    with running_mastodon(profile=profile) as s:
        yield s


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(f"sqlite:///{tmp_path}/state.sqlite") as s:
        yield s


def project_for(root: Path, server: FakeMastodon, **settings: str) -> Project:
    return load_project(root, environ={"ASPDIGEST_MASTODON_INSTANCE": server.url, **settings})


def publisher(
    project: Project, token: str, sleeps: list[float] | Callable[[float], None] | None = None
) -> MastodonPublisher:
    sleep = time.sleep if sleeps is None else sleeps.append if isinstance(sleeps, list) else sleeps
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
    assert len(posts) == 10 and sum(len(p.media) for p in posts) == 3

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
    assert len(keys) == 10 and len(set(keys)) == 10 and all(k and len(k) == 64 for k in keys)
    ledger = store.social_posts(d.id)
    assert [ledger[(0, i)].remote_id for i in range(10)] == [s["id"] for s in thread]
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
        f"Mastodon: nothing posted: post 3 of 10: image out/asp23/2024-12-03/{card} is missing"
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


def test_a_connection_dropped_after_the_server_made_the_post_is_found_not_resent(
    root: Path, server: FakeMastodon, store: Store
) -> None:
    # On 4.6 a resend under the same key would answer 500 (upstream #40399): the post is
    # looked up on the account instead, so the thread goes up once with no person needed.
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
    assert [s.in_reply_to_id for s in made] == [None, made[0].id, made[1].id]
    assert len(server.status_posts()) == 3  # found on the account: never resent
    assert (server.dropped, server.replays) == (1, 0)
    assert len(server.requests_to("GET", "/api/v1/accounts/1/statuses")) == 1
    assert sleeps == [2.0]  # one pause before looking (delivery backoff)
    assert len(server.requests_to("POST", "/api/v2/media")) == 1  # not uploaded again
    assert [server.media[m].description for m in made[0].media_ids] == ["A card."]
    assert store.social_posts(pub.delivery_id)[(0, 0)].remote_id == made[0].id


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
        f"Mastodon: post 1 of 1 was not posted: {server.url} answered 503 (The server is "
        "temporarily unavailable) (after 2 tries; it is not on the account); nothing was "
        f"posted; `aspdigest schedule retry {again.delivery_id}` resumes at post 1 of 1"
    )

    # The account cannot be read either: nothing is claimed about the post.
    server.fail_account_reads(503, 503, 503)
    with pytest.raises(UserError) as err:
        publisher(project, server.token, []).publish(again, Ledger(store, again.delivery_id))
    assert str(err.value) == (
        f"Mastodon: post 1 of 1 may have been posted: {server.url} answered 503 (Service "
        "Unavailable) (after 2 tries; the account could not be read to check: "
        f"{server.url} answered 503 (Service Unavailable)); no post before it is up; "
        f"`aspdigest schedule retry {again.delivery_id}` resumes at post 1 of 1"
    )
    assert [s.text for s in server.posts()] == ["First.", "Second.", "Third."]


def test_a_timeout_is_looked_up_and_resent_and_posted_once(
    root: Path, server: FakeMastodon, store: Store, profile: str
) -> None:
    # The first status post is saved 1 s in and answered 2 s in; the client gives up at
    # 0.3 s. Pauses are a fifth of the real ones (0.4 s, 0.8 s …).
    delays = iter([2.0])
    server.status_delay = lambda: next(delays, 0.0)
    pub = made_up(store, ["First.", "Second.", "Third."], root)
    project = project_for(root, server, ASPDIGEST_DELIVERY_TIMEOUT="0.3")
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(seconds / 5)

    receipt = publisher(project, server.token, sleep).publish(pub, Ledger(store, pub.delivery_id))
    wait_for(lambda: server.in_flight == 0, 5, "the slow request to finish")
    made = server.posts()
    assert [s.text for s in made] == ["First.", "Second.", "Third."]  # each once
    assert [s.in_reply_to_id for s in made] == [None, made[0].id, made[1].id]
    ledger = store.social_posts(pub.delivery_id)
    assert [ledger[(0, i)].remote_id for i in range(3)] == [s.id for s in made]
    tries = server.status_posts()
    assert len({t.idempotency_key for t in tries}) == 3
    if PROFILES[profile].racy:
        # The resend raced past the key check and made a second "First."; the thread went
        # on from it, and the late original was deleted when it landed.
        assert len(tries) == 4 and [s.text for s in server.deleted] == ["First."]
        assert sleeps == [2.0]
        assert receipt["deleted"] == [
            {
                "group": 0,
                "index": 0,
                "id": server.deleted[0].id,
                "url": f"{server.url}/@ciwj/{server.deleted[0].id}",
            }
        ]
    else:
        # 4.6 holds the key while the original is made: the resend meets a 503, the next
        # look finds the original, which is kept.
        assert len(tries) == 4 and server.deleted == [] and "deleted" not in receipt
        assert server.replays == 0
        assert sleeps == [2.0, 4.0]


@pytest.mark.parametrize("was_up", [True, False], ids=["was-up", "was-not-up"])
def test_a_post_left_sending_over_an_hour_ago_is_looked_up_not_left_to_a_person(
    root: Path, tmp_path: Path, profile: str, was_up: bool
) -> None:
    # Past the key's hour a resend would not be recognised; the account says what is up.
    clock = [FIXED_NOW]
    with (
        running_mastodon(profile=profile, clock=lambda: clock[0]) as server,
        open_store(f"sqlite:///{tmp_path}/clock.sqlite", clock=lambda: clock[0]) as store,
    ):
        pub = five(store, root)
        Ledger(store, pub.delivery_id).sending(0, 0, "key-of-a-try-that-died")
        if was_up:
            Mastodon(access_token=server.token, api_base_url=server.url).status_post(
                pub.groups[0][0].text, idempotency_key="key-of-a-try-that-died"
            )
        clock[0] = FIXED_NOW + dt.timedelta(minutes=61)
        publisher(project_for(root, server), server.token).publish(
            pub, Ledger(store, pub.delivery_id)
        )
        made = server.posts()
        assert [s.text for s in made] == [p.text for p in pub.groups[0]]
        assert [s.in_reply_to_id for s in made] == [None] + [s.id for s in made[:-1]]
        assert len(server.status_posts()) == 5  # the first sent once, by whichever try


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


# -- uploads -----------------------------------------------------------------------------------


def with_cards(store: Store, root: Path, n: int, alt: str = "A card.") -> Publication:
    """Two posts, the first carrying `n` of the built cards."""
    folder = root / "out" / "asp23" / DAY.isoformat()
    cards = [p.relative_to(folder).as_posix() for p in sorted(folder.glob("cards/*.png"))[:n]]
    pub = replace(made_up(store, ["First.", "Second."], root), folder=folder)
    media = tuple(Media(c, f"{alt} {k}" if n > 1 else alt) for k, c in enumerate(cards))
    return replace(pub, groups=((replace(pub.groups[0][0], media=media), pub.groups[0][1]),))


def test_uploads_are_recorded_as_they_finish_and_reused_by_a_retry_in_a_new_process(
    root: Path, server: FakeMastodon, store: Store
) -> None:
    pub = with_cards(store, root, 2)
    server.fail_status_posts(503, 503)
    project = project_for(root, server, ASPDIGEST_DELIVERY_NETWORK_RETRIES="1")
    with pytest.raises(UserError):
        publisher(project, server.token, []).publish(pub, Ledger(store, pub.delivery_id))
    uploaded = store.post_media(pub.delivery_id, 0, 0)
    assert len(uploaded) == 2 and len(server.requests_to("POST", "/api/v2/media")) == 2

    publisher(project, server.token, []).publish(pub, Ledger(store, pub.delivery_id))  # anew
    made = server.posts()
    assert [s.text for s in made] == ["First.", "Second."]
    assert made[0].media_ids == uploaded  # the same uploads, attached
    assert len(server.requests_to("POST", "/api/v2/media")) == 2
    assert [server.media[m].description for m in made[0].media_ids] == ["A card. 0", "A card. 1"]


def test_an_upload_rate_limit_is_waited_out_keeping_the_uploads_already_done(
    root: Path, store: Store, profile: str
) -> None:
    clock = [FIXED_NOW]  # 12:00:00: rack-attack's 30-minute period ends at 12:30:00
    with running_mastodon(profile=profile, clock=lambda: clock[0]) as server:
        server.spend_media_budget(29)  # room for one more upload
        pub = with_cards(store, root, 2)
        sleeps: list[float] = []

        def sleep(seconds: float) -> None:
            sleeps.append(seconds)
            clock[0] += dt.timedelta(seconds=seconds)

        project = project_for(root, server, ASPDIGEST_DELIVERY_RATE_LIMIT_WAIT="3600")
        publisher(project, server.token, sleep).publish(pub, Ledger(store, pub.delivery_id))
        assert sleeps == [1800.0]
        assert server.media_limited == 1
        assert len(server.requests_to("POST", "/api/v2/media")) == 3  # 1, refused, 2
        made = server.posts()
        assert [s.text for s in made] == ["First.", "Second."] and len(made[0].media_ids) == 2


def test_an_image_the_server_fails_to_process_fails_the_post_with_its_reason(
    root: Path, server: FakeMastodon, store: Store
) -> None:
    pub = with_cards(store, root, 1)
    card = Path(pub.groups[0][0].media[0].path).name
    server.fail_media_processing(1)
    with pytest.raises(UserError) as err:
        publisher(project_for(root, server), server.token).publish(
            pub, Ledger(store, pub.delivery_id)
        )
    assert str(err.value) == (
        f"Mastodon: post 1 of 2 was rejected: {card} could not be processed: {server.url} "
        "answered 422: Error processing thumbnail for uploaded media; nothing was posted; "
        f"`aspdigest schedule retry {pub.delivery_id}` resumes at post 1 of 2"
    )
    assert server.posts() == [] and store.post_media(pub.delivery_id, 0, 0) == []


def test_the_alt_text_limit_is_the_one_the_instance_reports(
    root: Path, server: FakeMastodon, store: Store, profile: str
) -> None:
    pub = with_cards(store, root, 1, alt="d" * 2000)
    card = pub.groups[0][0].media[0].path
    if PROFILES[profile].reports_description_limit:  # 4.6: 10,000
        publisher(project_for(root, server), server.token).publish(
            pub, Ledger(store, pub.delivery_id)
        )
        assert [server.media[m].description for m in server.posts()[0].media_ids] == ["d" * 2000]
        return
    with pytest.raises(UserError) as err:  # before 4.6 nothing is reported: 1,500
        publisher(project_for(root, server), server.token).publish(
            pub, Ledger(store, pub.delivery_id)
        )
    assert str(err.value) == (
        f"Mastodon: nothing posted: post 1 of 2: the description of {card} has 2000 "
        f"characters; {server.url} allows 1500"
    )
    assert server.requests_to("POST", "/api/v2/media") == []
