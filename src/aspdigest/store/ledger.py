"""The store's social-post ledger: each post an API publisher (Bluesky, Mastodon) started.

Deliver stage: `deliver.Ledger` wraps these calls for a publisher, which records a post's key
before the request goes out (`post_sending`) and the server's id once it is up
(`post_posted`); an interrupted thread resumes after its last post. `posted_counts` feeds
`aspdigest status`; `forget_sending` is what `schedule resolve --not-sent` does to the posts
in doubt. Rows come back as frozen `SocialPost`s keyed by (group, index).
"""

from __future__ import annotations

import sqlalchemy as sa

from aspdigest.store.base import StoreBase
from aspdigest.store.schema import SocialPost, deliveries, social_media, social_posts


class LedgerMixin(StoreBase):
    """Per-post progress of API publishers (0003)."""

    def social_posts(self, delivery_id: int) -> dict[tuple[int, int], SocialPost]:
        """Every post started for a delivery, by (group, index)."""
        query = sa.select(social_posts).where(social_posts.c.delivery_id == delivery_id)
        with self._tx() as c:
            return {
                (r.grp, r.idx): SocialPost(
                    r.grp,
                    r.idx,
                    r.status,
                    r.key,
                    r.remote_id,
                    r.cid,
                    r.url,
                    r.started_at,
                    r.posted_at,
                )
                for r in c.execute(query)
            }

    def post_sending(self, delivery_id: int, group: int, index: int, key: str) -> None:
        """Record, before the request goes out, the key a post is about to be sent under."""
        with self._tx() as c:
            c.execute(
                social_posts.insert().values(
                    delivery_id=delivery_id,
                    grp=group,
                    idx=index,
                    status="sending",
                    key=key,
                    started_at=self.clock(),
                )
            )

    def post_posted(
        self,
        delivery_id: int,
        group: int,
        index: int,
        *,
        remote_id: str,
        cid: str | None = None,
        url: str | None = None,
    ) -> None:
        with self._tx() as c:
            c.execute(
                social_posts.update()
                .where(
                    (social_posts.c.delivery_id == delivery_id)
                    & (social_posts.c.grp == group)
                    & (social_posts.c.idx == index)
                )
                .values(
                    status="posted", remote_id=remote_id, cid=cid, url=url, posted_at=self.clock()
                )
            )

    def posted_counts(self, event: str) -> dict[int, int]:
        """How many posts each of the event's deliveries has up (one query for `status`)."""
        query = (
            sa.select(social_posts.c.delivery_id, sa.func.count())
            .join(deliveries, deliveries.c.id == social_posts.c.delivery_id)
            .where((deliveries.c.event == event) & (social_posts.c.status == "posted"))
            .group_by(social_posts.c.delivery_id)
        )
        with self._tx() as c:
            return {int(row[0]): int(row[1]) for row in c.execute(query)}

    def post_media(self, delivery_id: int, group: int, index: int) -> list[str]:
        """The media ids uploaded so far for one post (0004), in the post's image order."""
        query = (
            sa.select(social_media.c.media_id)
            .where(
                (social_media.c.delivery_id == delivery_id)
                & (social_media.c.grp == group)
                & (social_media.c.idx == index)
            )
            .order_by(social_media.c.position)
        )
        with self._tx() as c:
            return [str(r[0]) for r in c.execute(query)]

    def post_media_uploaded(
        self, delivery_id: int, group: int, index: int, position: int, media_id: str
    ) -> None:
        """Record one finished upload (replacing an earlier one for the same image)."""
        where = (
            (social_media.c.delivery_id == delivery_id)
            & (social_media.c.grp == group)
            & (social_media.c.idx == index)
            & (social_media.c.position == position)
        )
        with self._tx() as c:
            c.execute(social_media.delete().where(where))
            c.execute(
                social_media.insert().values(
                    delivery_id=delivery_id,
                    grp=group,
                    idx=index,
                    position=position,
                    media_id=media_id,
                    uploaded_at=self.clock(),
                )
            )

    def forget_post_media(self, delivery_id: int, group: int, index: int) -> int:
        """Drop a post's recorded uploads (the server refused them or no longer has them)."""
        with self._tx() as c:
            return int(
                c.execute(
                    social_media.delete().where(
                        (social_media.c.delivery_id == delivery_id)
                        & (social_media.c.grp == group)
                        & (social_media.c.idx == index)
                    )
                ).rowcount
            )

    def forget_sending(self, delivery_id: int) -> int:
        """A person decided the posts in doubt did not go out: the next try sends them anew."""
        with self._tx() as c:
            return int(
                c.execute(
                    social_posts.delete().where(
                        (social_posts.c.delivery_id == delivery_id)
                        & (social_posts.c.status == "sending")
                    )
                ).rowcount
            )
