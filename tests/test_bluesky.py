"""The Bluesky publisher against a real PDS (@atproto/pds and a PLC directory) on 127.0.0.1.

The tests make their own accounts and app passwords, post ASP23 days through
`BlueskyPublisher` and read the records back from the PDS (listRecords, getBlob). Faults the
PDS won't produce on demand (a 429 with its reset time, a 502, an answer lost after the post
was made, a record the PDS refuses) come from a `FaultProxy` in front of it; the waits go to a
fake sleep and the clock is fixed, so every message is checked word for word. One PDS serves
the whole module (it takes a few seconds). test_bluesky_kill.py kills a publishing process.
"""

from __future__ import annotations

import html
import random
import re
import socket
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from aspdigest.artifacts import BuiltDay
from aspdigest.config import load_project
from aspdigest.deliver import Ledger, Media, Post, Publication, publication_for
from aspdigest.deliver.bluesky import BlueskyApi, BlueskyPublisher
from aspdigest.errors import UserError
from aspdigest.store import Store, open_store
from aspdigest.text.bluesky import bluesky_facets
from conftest import FIXED_NOW
from support.delivery_helpers import built_template
from support.pds_server import Account, Pds, PdsError, check_thread, fault_proxy, running_pds

EPOCH = FIXED_NOW.timestamp()  # the publisher's clock: 2024-11-30 12:00:00 UTC
DAY2, DAY3 = FIXED_NOW.date().replace(month=12, day=2), FIXED_NOW.date().replace(month=12, day=3)


@pytest.fixture(scope="module")
def root() -> Path:
    """The ASP23 sample, built once (thread.bluesky.json and the cards)."""
    return built_template()


class Poster:
    """A publisher for one account, its store and the sleeps it asked for."""

    def __init__(
        self, root: Path, tmp: Path, service: str, who: Account, password: str, **settings: str
    ) -> None:
        self.env = {
            "ASPDIGEST_BLUESKY_SERVICE": service,
            "ASPDIGEST_BLUESKY_HANDLE": who.handle,
            "ASPDIGEST_BLUESKY_PASSWORD": password,
            **{f"ASPDIGEST_{k.upper()}": v for k, v in settings.items()},
        }
        self.project = load_project(root, environ=self.env)
        self.sleeps: list[float] = []
        self.publisher = BlueskyPublisher(
            self.project, self.env, sleep=self.sleeps.append, clock=lambda: EPOCH
        )
        self.store: Store = open_store(f"sqlite:///{tmp}/state.sqlite")

    def day(self, date: Any, channel: str = "thread") -> tuple[Publication, Ledger]:
        d = self.store.ensure_delivery("asp23", date, channel, "bluesky")
        return publication_for(self.project, d), Ledger(self.store, d.id)

    def publish(self, pub: Publication, ledger: Ledger | None = None) -> dict[str, Any]:
        return dict(self.publisher.publish(pub, ledger or Ledger(self.store, pub.delivery_id)))


def test_thread_lands_in_order_with_replies_facets_and_images(
    pds: Pds, root: Path, tmp_path: Path
) -> None:
    who, password = pds.new_account("thread")
    poster = Poster(root, tmp_path, pds.url, who, password)
    pub, ledger = poster.day(DAY3)
    assert len(pub.groups[0]) == 10 and sum(len(p.media) for p in pub.groups[0]) == 3

    receipt = poster.publish(pub, ledger)

    records = pds.records(who.did)
    check_thread(
        pds, who, pub.groups[0], records, pub.folder, created="2024-11-30T12:00:00.000Z"
    )  # the publisher's clock
    rkeys = [r["uri"].rsplit("/", 1)[1] for r in records]
    assert receipt["account"] == f"@{who.handle} ({who.did}) on {pds.url}"
    assert receipt["posts"] == [
        {
            "group": 0,
            "index": i,
            "id": r["uri"],
            "url": f"https://bsky.app/profile/{who.handle}/post/{k}",
        }
        for i, (r, k) in enumerate(zip(records, rkeys, strict=True))
    ]
    assert receipt["resumed_after"] is None and "warnings" not in receipt
    stored = poster.store.social_posts(pub.delivery_id)
    assert [(s.status, s.key, s.remote_id, s.cid) for _, s in sorted(stored.items())] == [
        ("posted", k, r["uri"], r["cid"]) for r, k in zip(records, rkeys, strict=True)
    ]
    # Publishing a finished delivery again posts nothing.
    again = poster.publish(pub, ledger)
    assert again["resumed_after"] == 10 and len(pds.records(who.did)) == 10


def test_a_post_with_a_link_and_no_image_carries_the_link_card_the_build_decided(
    pds: Pds, root: Path, tmp_path: Path
) -> None:
    who, password = pds.new_account("cards")
    poster = Poster(root, tmp_path, pds.url, who, password)
    pub, ledger = poster.day(DAY2)
    posts = pub.groups[0]
    closing, item = posts[-1], posts[1]
    digest = "https://example.org/digest/asp23/2024-12-02/"
    archive = (pub.folder / "archive.html").read_text(encoding="utf-8")

    def og(name: str) -> str:
        found = re.search(rf'<meta property="og:{name}" content="([^"]*)"', archive)
        assert found is not None
        return html.unescape(found.group(1))

    # The digest link: the archive page's own og:title and og:description, and the day's
    # preview card (the image og:image names) as the thumbnail.
    assert closing.embed == {
        "type": "external",
        "uri": digest,
        "title": og("title"),
        "description": og("description"),
        "thumb": "cards/opening-1.preview.png",
    }
    assert og("image") == digest + "cards/opening-1.preview.png"
    # A record's own link: the record's title and summary, no image (nothing is fetched).
    assert item.embed == {
        "type": "external",
        "uri": "https://www.icc-cpi.int/",
        "title": "Opening of the 23rd Assembly of States Parties",
        "description": (
            "ICC President Judge Tomoko Akane opened ASP23 vowing the Court will carry on its "
            "work despite existential threats, including US economic sanctions."
        ),
        "thumb": None,
    }
    assert all(p.embed is None for p in posts if p.media)
    # What a reviewer approves carries it: the thumbnail is one of the delivery's files.
    hashes = BuiltDay(poster.project, "asp23", DAY2).hashes()
    carried = BuiltDay(poster.project, "asp23", DAY2).carries(hashes, "thread", "bluesky")
    assert carried is not None and "cards/opening-1.preview.png" in carried

    poster.publish(pub, ledger)

    records = pds.records(who.did)
    check_thread(pds, who, posts, records, pub.folder)  # every embed, blob by blob
    card = records[-1]["value"]["embed"]
    assert card["$type"] == "app.bsky.embed.external"
    assert card["external"]["uri"] == digest and card["external"]["title"] == og("title")
    thumb = (pub.folder / "cards/opening-1.preview.png").read_bytes()
    assert pds.blob(who.did, card["external"]["thumb"]["ref"]["$link"]) == thumb
    assert "thumb" not in records[1]["value"]["embed"]["external"]
    # Blobs are addressed by content: an upload repeated (a retry after a crash) is the same
    # blob, so only the record, created once under its key, can make a second copy.
    api = poster.publisher.api()
    again, _, _ = api._upload(pub.folder / "cards/opening-1.preview.png", "thumb")
    assert str(again.ref.link) == card["external"]["thumb"]["ref"]["$link"]


def test_each_quote_post_is_its_own_thread(pds: Pds, root: Path, tmp_path: Path) -> None:
    who, password = pds.new_account("quotes")
    poster = Poster(root, tmp_path, pds.url, who, password)
    pub, ledger = poster.day(DAY3, "quotes")
    assert len(pub.groups) == 3

    receipt = poster.publish(pub, ledger)

    records = pds.records(who.did)
    assert len(records) == 3 and [p["group"] for p in receipt["posts"]] == [0, 1, 2]
    for group, record in zip(pub.groups, records, strict=True):
        check_thread(pds, who, group, [record], pub.folder)  # each a first post: no reply


def handmade(
    folder: Path,
    texts: list[str],
    media: list[tuple[Media, ...]] | None = None,
    language: str = "en",
    delivery_id: int = 1,
) -> Publication:
    """A publication not from a build: facets as `aspdigest build` writes them."""
    kinds = {"link": "uri", "mention": "handle", "tag": "tag"}
    posts = tuple(
        Post(
            text,
            (media or [()] * len(texts))[i],
            tuple(
                {
                    "type": f.kind,
                    "byteStart": f.byte_start,
                    "byteEnd": f.byte_end,
                    kinds[f.kind]: f.value,
                }
                for f in bluesky_facets(text)
            ),
        )
        for i, text in enumerate(texts)
    )
    return Publication(delivery_id, "asp23", DAY2, "thread", "bluesky", folder, (posts,), language)


def test_mentions_become_dids_and_unknown_handles_stay_text(
    pds: Pds, root: Path, tmp_path: Path
) -> None:
    who, password = pds.new_account("mentions")
    bob, _ = pds.new_account("bob")
    poster = Poster(root, tmp_path, pds.url, who, password)
    d = poster.store.ensure_delivery("asp23", DAY2, "thread", "bluesky")
    pub = handmade(
        tmp_path,
        [
            f"Grüße 👋🏽 an @{bob.handle} und @nobody.test: mehr auf https://example.org/asp23 #ASP23",
            f"Noch einmal @nobody.test, dann (@{bob.handle}) #Gerechtigkeit_2024",
        ],
        language="de",
        delivery_id=d.id,
    )

    receipt = poster.publish(pub)

    records = pds.records(who.did)
    assert [r["value"]["text"] for r in records] == [p.text for p in pub.groups[0]]
    mention = [{"$type": "app.bsky.richtext.facet#mention", "did": bob.did}]
    wanted = [  # the bytes each facet spans, and what it says; none for @nobody.test
        {
            f"@{bob.handle}": mention,
            "https://example.org/asp23": [
                {"$type": "app.bsky.richtext.facet#link", "uri": "https://example.org/asp23"}
            ],
            "#ASP23": [{"$type": "app.bsky.richtext.facet#tag", "tag": "ASP23"}],
        },
        {
            f"@{bob.handle}": mention,
            "#Gerechtigkeit_2024": [
                {"$type": "app.bsky.richtext.facet#tag", "tag": "Gerechtigkeit_2024"}
            ],
        },
    ]
    for post, record, facets in zip(pub.groups[0], records, wanted, strict=True):
        text = post.text.encode("utf-8")
        assert record["value"]["langs"] == ["de"]
        assert {
            text[f["index"]["byteStart"] : f["index"]["byteEnd"]].decode(): f["features"]
            for f in record["value"]["facets"]
        } == facets
    why = f"{pds.url} cannot resolve it (400 HandleNotFound: Unable to resolve handle)"
    assert receipt["warnings"] == [
        f"post 1 of 2: @nobody.test was posted as plain text, not a mention: {why}",
        f"post 2 of 2: @nobody.test was posted as plain text, not a mention: {why}",
    ]


def test_account_says_who_and_where(pds: Pds, root: Path, tmp_path: Path) -> None:
    who, password = pds.new_account("acct")
    poster = Poster(root, tmp_path, pds.url, who, password)
    assert poster.publisher.account() == f"@{who.handle} ({who.did}) on {pds.url}"


def test_wrong_app_password_is_one_line_after_one_login(
    pds: Pds, root: Path, tmp_path: Path
) -> None:
    who, _ = pds.new_account("wrongpw")
    with fault_proxy(pds.url) as proxy:
        poster = Poster(root, tmp_path, proxy.url, who, "abcd-efgh-ijkl-mnop")
        pub, ledger = poster.day(DAY2)
        with pytest.raises(UserError) as stopped:
            poster.publish(pub, ledger)
        refused = (
            f"the app password in ASPDIGEST_BLUESKY_PASSWORD was refused for "
            f"{who.handle} on {proxy.url} (401 AuthenticationRequired: Invalid "
            "identifier or password)"
        )
        assert str(stopped.value) == f"Bluesky: nothing posted: {refused}"
        assert proxy.logins == 1 and proxy.calls == []
        with pytest.raises(UserError) as checked:
            poster.publisher.account()
        assert str(checked.value) == f"Bluesky: {refused}"
        assert proxy.logins == 2
    assert "abcd-efgh" not in str(stopped.value) + str(checked.value)
    assert poster.store.social_posts(pub.delivery_id) == {} and pds.records(who.did) == []


def test_posts_the_server_cannot_take_stop_everything_before_login(
    pds: Pds, root: Path, tmp_path: Path
) -> None:
    who, password = pds.new_account("check")
    for name in ("a", "b", "c", "d", "e"):
        Image.new("RGB", (40, 30), "teal").save(tmp_path / f"{name}.png")
    big = Image.frombytes("RGB", (900, 900), random.Random(1).randbytes(900 * 900 * 3))
    big.save(tmp_path / "big.png")
    size = (tmp_path / "big.png").stat().st_size
    assert size > 2_000_000
    media = [
        (),
        tuple(Media(f"{n}.png", "alt") for n in "abcde"),
        (),
        (Media("big.png", "alt"), Media("gone.png", "alt")),
    ]
    pub = handmade(tmp_path, ["e\u0301" * 301, "Five images", "👩‍👩‍👧‍👦" * 121, "Two"], media)
    with fault_proxy(pds.url) as proxy:
        poster = Poster(root, tmp_path, proxy.url, who, password)
        with pytest.raises(UserError) as stopped:
            poster.publish(pub, Ledger(poster.store, 1))
        assert proxy.logins == 0 and proxy.calls == []
    assert str(stopped.value) == (
        "Bluesky: nothing posted: post 1 of 4 is 301 graphemes long (at most 300); "
        "post 2 of 4 has 5 images (at most 4); "
        "post 3 of 4 is 3025 bytes long in UTF-8 (at most 3000); "
        f"post 4 of 4: the image big.png is {size:,} bytes (at most 2,000,000); "
        "post 4 of 4: the image gone.png is missing"
    )


def test_rate_limit_is_waited_out_until_the_servers_reset(
    pds: Pds, root: Path, tmp_path: Path
) -> None:
    who, password = pds.new_account("ratewait")
    with fault_proxy(pds.url) as proxy:
        proxy.faults, proxy.reset_at = {3: "429", 7: "429-retry-after"}, int(EPOCH) + 120
        poster = Poster(root, tmp_path, proxy.url, who, password)
        pub, ledger = poster.day(DAY2)
        poster.publish(pub, ledger)
    assert poster.sleeps == [120.0, 30.0]
    assert [c.status for c in proxy.calls] == [200, 200, 429, 200, 200, 200, 429] + [200] * 3
    # the same post again, under the same key
    assert proxy.calls[2].rkey == proxy.calls[3].rkey and proxy.calls[6].rkey == proxy.calls[7].rkey
    check_thread(pds, who, pub.groups[0], pds.records(who.did), pub.folder)


def test_rate_limit_past_patience_stops_then_resumes_at_that_post(
    pds: Pds, root: Path, tmp_path: Path
) -> None:
    who, password = pds.new_account("ratestop")
    with fault_proxy(pds.url) as proxy:
        proxy.faults, proxy.reset_at = {3: "429"}, int(EPOCH) + 1200
        poster = Poster(root, tmp_path, proxy.url, who, password)
        pub, ledger = poster.day(DAY2)
        with pytest.raises(UserError) as stopped:
            poster.publish(pub, ledger)
        first = pds.records(who.did)
        urls = ", ".join(
            f"https://bsky.app/profile/{who.handle}/post/{r['uri'][-13:]}" for r in first
        )
        assert str(stopped.value) == (
            f"Bluesky: post 3 of 8 was not posted: {proxy.url} is rate-limiting {who.handle} "
            "until 12:20:00 UTC (429 RateLimitExceeded: Rate Limit Exceeded) (waiting 1200 s "
            f"would pass delivery.rate_limit_wait); 2 post(s) are up ({urls}); `aspdigest "
            f"schedule retry {pub.delivery_id}` resumes at post 3 of 8"
        )
        assert poster.sleeps == [] and len(first) == 2

        receipt = poster.publish(pub, ledger)
    assert receipt["resumed_after"] == 2
    assert len(proxy.calls) == 3 + 6 and proxy.calls[3].rkey == proxy.calls[2].rkey
    check_thread(pds, who, pub.groups[0], pds.records(who.did), pub.folder)


def test_rejected_post_stops_with_the_servers_reason_then_resumes(
    pds: Pds, root: Path, tmp_path: Path
) -> None:
    who, password = pds.new_account("rejected")
    with fault_proxy(pds.url) as proxy:
        proxy.reject = lambda record: str(record.get("text", "")).endswith("\n4/8")
        poster = Poster(root, tmp_path, proxy.url, who, password)
        pub, ledger = poster.day(DAY2)
        with pytest.raises(UserError) as stopped:
            poster.publish(pub, ledger)
        first = pds.records(who.did)
        urls = ", ".join(
            f"https://bsky.app/profile/{who.handle}/post/{r['uri'][-13:]}" for r in first
        )
        assert str(stopped.value) == (
            f"Bluesky: post 4 of 8 was rejected: {proxy.url} refused it (400 InvalidRequest: "
            'Invalid app.bsky.feed.post record: Invalid language (got "not a language!") at '
            f"$.record.langs[0]); 3 post(s) are up ({urls}); `aspdigest schedule retry "
            f"{pub.delivery_id}` resumes at post 4 of 8"
        )
        assert [c.status for c in proxy.calls] == [200, 200, 200, 400]  # never retried

        proxy.reject = None
        receipt = poster.publish(pub, ledger)
    assert receipt["resumed_after"] == 3 and poster.sleeps == []
    check_thread(pds, who, pub.groups[0], pds.records(who.did), pub.folder)


def test_lost_answer_and_bad_gateway_post_once(pds: Pds, root: Path, tmp_path: Path) -> None:
    who, password = pds.new_account("lost")
    with fault_proxy(pds.url) as proxy:
        # Call 2 reaches the PDS but its answer is lost; call 4 never reaches it.
        proxy.faults = {2: "drop", 4: "502"}
        poster = Poster(root, tmp_path, proxy.url, who, password)
        pub, ledger = poster.day(DAY2)
        poster.publish(pub, ledger)
    assert [c.status for c in proxy.calls] == [200, 0, 200, 502] + [200] * 5
    assert proxy.calls[3].rkey == proxy.calls[4].rkey  # resent under its key after a look
    assert poster.sleeps == [2.0]  # delivery's backoff before the retry; none for call 2
    records = pds.records(who.did)
    check_thread(pds, who, pub.groups[0], records, pub.folder)
    assert ledger.posts()[(0, 1)].remote_id == records[1]["uri"]


def test_a_second_create_under_a_taken_record_key_returns_the_first_post(
    pds: Pds, tmp_path: Path
) -> None:
    who, password = pds.new_account("takenkey")
    api = BlueskyApi(pds.url, who.handle, password, clock=lambda: EPOCH)
    pub = handmade(tmp_path, ["Only once, whatever happens #ASP23"])
    key = api.new_key(pub, 0, 0)
    assert api.find(key) is None

    first = api.post(pub.groups[0][0], key, None, None, pub)
    again = api.post(pub.groups[0][0], key, None, None, pub)  # the PDS answers 500: it looks

    assert again == first == api.find(key)
    assert first.url == f"https://bsky.app/profile/{who.handle}/post/{key}"
    assert [r["uri"] for r in pds.records(who.did)] == [first.id]
    assert first.id == f"at://{who.did}/app.bsky.feed.post/{key}"


def test_server_errors_past_the_retries_stop_with_the_answer(
    pds: Pds, root: Path, tmp_path: Path
) -> None:
    who, password = pds.new_account("errors")
    with fault_proxy(pds.url) as proxy:
        proxy.faults = {n: "502" for n in range(1, 5)}
        poster = Poster(root, tmp_path, proxy.url, who, password, delivery_network_retries="3")
        pub, ledger = poster.day(DAY2)
        with pytest.raises(UserError) as stopped:
            poster.publish(pub, ledger)
    assert str(stopped.value) == (
        f"Bluesky: post 1 of 8 may not have been posted: {proxy.url} answered 502 "
        "UpstreamFailure: the proxy made this up (after 4 tries); nothing was posted; "
        f"`aspdigest schedule retry {pub.delivery_id}` resumes at post 1 of 8"
    )
    assert poster.sleeps == [2.0, 4.0, 8.0] and len({c.rkey for c in proxy.calls}) == 1
    assert pds.records(who.did) == []


def test_the_pds_and_plc_listen_on_127_0_0_1_only(pds: Pds) -> None:
    for url in (pds.url, pds.plc_url):
        port = int(url.rsplit(":", 1)[1])
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        with pytest.raises(ConnectionRefusedError):  # another loopback address: not bound
            socket.create_connection(("127.0.0.2", port), timeout=5)


def test_a_pds_that_cannot_start_fails_loudly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("support.pds_server.NODE", tmp_path / "node_modules" / "no-node")
    with (
        pytest.raises(
            PdsError,
            match=r"is not installed; run `make test` \(or "
            r"`npm ci`",
        ),
        running_pds(tmp_path / "a"),
    ):
        pass
    monkeypatch.undo()
    broken = tmp_path / "broken.mjs"
    broken.write_text("console.error('no PLC for you'); process.exit(3)\n")
    monkeypatch.setattr("support.pds_server.SCRIPT", broken)
    with pytest.raises(PdsError) as failed, running_pds(tmp_path / "b"):
        pass
    assert str(failed.value) == (
        "the test PDS exited with status 3 before it was ready; its stderr:\nno PLC for you\n"
    )


def test_unreachable_service_is_named(pds: Pds, root: Path, tmp_path: Path) -> None:
    who, password = pds.new_account("nowhere")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    poster = Poster(root, tmp_path, closed, who, password)
    pub, ledger = poster.day(DAY2)
    with pytest.raises(UserError) as stopped:
        poster.publish(pub, ledger)
    assert str(stopped.value) == (
        f"Bluesky: nothing posted: no answer from {closed} "
        "(ConnectError: [Errno 111] Connection refused)"
    )
