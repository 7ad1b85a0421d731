"""Images uploaded ahead of their posts (deliver/mastodon_ahead.py), against the local server.

The `mastodon` publisher uploads the cards of later posts in background threads while the
posts before them go out. What must not change: an upload's failure stops the thread at the
post that carries the image, with that post's message, after the posts before it are up; an
upload made ahead is recorded when publishing stops, so the retry attaches it instead of
uploading it again; the upload rate limit is waited out at that post. The day-2 thread test
in test_mastodon.py (cards on posts 3, 5 and 9, each attached with its alt text) covers the
ordinary case; the ledger and kill -9 guarantees are test_mastodon_kill.py's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from aspdigest.config import Project, load_project
from aspdigest.deliver import Ledger, Media, Post, Publication
from aspdigest.deliver.mastodon import MastodonPublisher
from aspdigest.errors import UserError
from aspdigest.store import Store, open_store
from conftest import FIXED_NOW
from support.delivery_helpers import built_copy
from support.mastodon_server import PROFILES, FakeMastodon, running_mastodon

DAY = dt.date(2024, 12, 3)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return built_copy(tmp_path)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(f"sqlite:///{tmp_path}/state.sqlite") as s:
        yield s


@pytest.fixture(params=list(PROFILES))
def profile(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def project_for(root: Path, server: FakeMastodon, **settings: str) -> Project:
    return load_project(root, environ={"ASPDIGEST_MASTODON_INSTANCE": server.url, **settings})


def publisher(
    project: Project, token: str, sleep: Callable[[float], None] | None = None
) -> MastodonPublisher:
    return MastodonPublisher(
        project, {"ASPDIGEST_MASTODON_TOKEN": token}, sleep=sleep or (lambda s: None)
    )


def last_with_card(store: Store, root: Path, texts: list[str]) -> Publication:
    """A thread of `texts`, the last post carrying the first built card."""
    folder = root / "out" / "asp23" / DAY.isoformat()
    card = sorted(folder.glob("cards/*.png"))[0].relative_to(folder).as_posix()
    d = store.ensure_delivery("asp23", DAY, "thread", "mastodon")
    posts = [Post(t) for t in texts]
    posts[-1] = replace(posts[-1], media=(Media(card, "A card."),))
    return Publication(d.id, "asp23", DAY, "thread", "mastodon", folder, (tuple(posts),), "en")


def test_a_later_image_the_server_fails_to_process_stops_the_thread_at_its_post(
    root: Path, store: Store, profile: str
) -> None:
    with running_mastodon(profile=profile) as server:
        pub = last_with_card(store, root, ["First.", "Second.", "Third."])
        card = Path(pub.groups[0][2].media[0].path).name
        server.fail_media_processing(1)
        with pytest.raises(UserError) as err:
            publisher(project_for(root, server), server.token).publish(
                pub, Ledger(store, pub.delivery_id)
            )
        up = server.posts()
        assert str(err.value) == (
            f"Mastodon: post 3 of 3 was rejected: {card} could not be processed: {server.url} "
            "answered 422: Error processing thumbnail for uploaded media; 2 post(s) are up "
            f"({server.url}/@ciwj/{up[0].id}, {server.url}/@ciwj/{up[1].id}); "
            f"`aspdigest schedule retry {pub.delivery_id}` resumes at post 3 of 3"
        )
        assert [s.text for s in up] == ["First.", "Second."]
        assert store.post_media(pub.delivery_id, 0, 2) == []  # the failed upload: not kept
        assert len(server.requests_to("POST", "/api/v2/media")) == 1  # not tried again


def test_an_upload_made_ahead_is_kept_when_the_thread_stops_and_attached_by_the_retry(
    root: Path, store: Store, profile: str
) -> None:
    with running_mastodon(profile=profile) as server:
        server.reject_posts_containing("Second", "Text contains a word this server does not allow")
        pub = last_with_card(store, root, ["First.", "Second.", "Third."])
        project = project_for(root, server)
        with pytest.raises(UserError, match="post 2 of 3 was rejected"):
            publisher(project, server.token).publish(pub, Ledger(store, pub.delivery_id))
        # The card's upload (if it had started when the thread stopped) is in the ledger.
        kept = store.post_media(pub.delivery_id, 0, 2)
        assert len(kept) == len(server.requests_to("POST", "/api/v2/media")) <= 1

        server.clear_faults()
        publisher(project, server.token).publish(pub, Ledger(store, pub.delivery_id))
        made = server.posts()
        assert [s.text for s in made] == ["First.", "Second.", "Third."]
        assert len(server.requests_to("POST", "/api/v2/media")) == 1  # uploaded once
        assert kept in ([], made[2].media_ids)
        assert [server.media[m].description for m in made[2].media_ids] == ["A card."]


def test_an_upload_rate_limit_met_ahead_is_waited_out_at_the_post_with_the_image(
    root: Path, store: Store, profile: str
) -> None:
    clock = [FIXED_NOW]  # 12:00:00: rack-attack's 30-minute period ends at 12:30:00
    with running_mastodon(profile=profile, clock=lambda: clock[0]) as server:
        server.spend_media_budget(30)  # no upload left in this period
        pub = last_with_card(store, root, ["First.", "Second.", "Third."])
        sleeps: list[float] = []

        def sleep(seconds: float) -> None:
            sleeps.append(seconds)
            clock[0] += dt.timedelta(seconds=seconds)

        project = project_for(root, server, ASPDIGEST_DELIVERY_RATE_LIMIT_WAIT="3600")
        publisher(project, server.token, sleep).publish(pub, Ledger(store, pub.delivery_id))
        assert sleeps == [1800.0]
        assert server.media_limited == 1
        assert len(server.requests_to("POST", "/api/v2/media")) == 2  # refused, then made
        made = server.posts()
        assert [s.text for s in made] == ["First.", "Second.", "Third."]
        assert [server.media[m].description for m in made[2].media_ids] == ["A card."]
        assert [s.in_reply_to_id for s in made] == [None, made[0].id, made[1].id]
