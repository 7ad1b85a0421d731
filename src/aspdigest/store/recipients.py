"""The store's per-recipient progress of an email delivery.

Deliver stage: `deliver.email` adds a delivery's recipients, reads them in batches
(`reserve_recipients`: a suppressed address is settled there, never sent), claims each one
right before the final dot of its message and records what the server said
(`store.claims.Claims`: the previous message's outcome and the next claim together);
`queue.actions.resolve` settles those in doubt. Rows come back as frozen `Recipient`s.
Status: pending → sending → sent | failed | unknown; or suppressed. The one-at-a-time
methods (`claim_recipient`, `mark_recipient_*`) stay for tools and tests.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import replace
from typing import Any

import sqlalchemy as sa

from aspdigest.store.base import StoreBase, normalise_address
from aspdigest.store.claims import HELD, Claims, Outcome, recipient_row, settle
from aspdigest.store.schema import (
    RECIPIENT_STATUSES,
    Recipient,
    deliveries,
    recipients,
    suppressions,
)

_RESERVE = (
    sa.select(recipients, HELD.label("held"))
    .where(
        (recipients.c.delivery_id == sa.bindparam("delivery_id"))
        & (recipients.c.id > sa.bindparam("after"))
        & (recipients.c.status == "pending")
    )
    .order_by(recipients.c.id)
    .limit(sa.bindparam("limit"))
)
_SUPPRESS = (
    recipients.update()
    .where((recipients.c.id == sa.bindparam("rid")) & (recipients.c.status == "pending"))
    .values(
        status="suppressed", last_error="on the suppression list", updated_at=sa.bindparam("now")
    )
)


_COLUMNS = tuple(c.name for c in recipients.columns)


class RecipientsMixin(StoreBase):
    """Who a digest goes to, and how far its send got for each of them."""

    def add_recipients(self, delivery_id: int, people: Iterable[tuple[str, str | None]]) -> int:
        """Add (address, name) pairs not yet on the delivery, in order; returns how many."""
        now = self.clock()
        with self._tx() as c:
            have = set(
                c.execute(
                    sa.select(recipients.c.address).where(recipients.c.delivery_id == delivery_id)
                ).scalars()
            )
            rows = []
            for address, name in people:
                key = normalise_address(address)
                if key in have:
                    continue
                have.add(key)
                rows.append(
                    {
                        "delivery_id": delivery_id,
                        "address": key,
                        "name": name,
                        "status": "pending",
                        "attempts": 0,
                        "updated_at": now,
                    }
                )
            if rows:
                c.execute(recipients.insert(), rows)
        return len(rows)

    def recipients(self, delivery_id: int, status: str | None = None) -> list[Recipient]:
        query = sa.select(recipients).where(recipients.c.delivery_id == delivery_id)
        if status is not None:
            query = query.where(recipients.c.status == status)
        with self._tx() as c:
            return [recipient_row(r) for r in c.execute(query.order_by(recipients.c.id))]

    def recipient_counts(self, delivery_id: int) -> dict[str, int]:
        query = (
            sa.select(recipients.c.status, sa.func.count())
            .where(recipients.c.delivery_id == delivery_id)
            .group_by(recipients.c.status)
        )
        with self._tx() as c:
            counts = {str(status): int(n) for status, n in c.execute(query)}
        return {s: counts.get(s, 0) for s in RECIPIENT_STATUSES}

    def peek_recipient(self, delivery_id: int, skip: Collection[int] = ()) -> Recipient | None:
        """The first `pending` recipient (leaving out `skip`) as `reserve_recipients` reads
        it, without taking it: `claim_recipient(recipient_id=…)` takes it. A suppressed
        address is settled on the way and comes back `suppressed`, not to be sent."""
        found = self.reserve_recipients(delivery_id, limit=1, skip=skip)
        return found[0] if found else None

    def claim_recipient(
        self, delivery_id: int, skip: Collection[int] = (), *, recipient_id: int | None = None
    ) -> Recipient | None:
        """Atomically move the first `pending` recipient (leaving out `skip`; or the one with
        `recipient_id`) to `sending` and return it, or None when none is left (or that one is
        no longer pending); one whose address is on the suppression list comes back
        `suppressed` instead, not to be sent. One statement: on PostgreSQL the row is picked
        with FOR UPDATE SKIP LOCKED, so parallel senders (threads or runners) each get their
        own; SQLite runs writers one at a time, so the same statement is enough."""
        suppressed = sa.exists().where(suppressions.c.address == recipients.c.address)
        pick = sa.select(recipients.c.id).where(
            (recipients.c.delivery_id == delivery_id) & (recipients.c.status == "pending")
        )
        if recipient_id is not None:
            pick = pick.where(recipients.c.id == recipient_id)
        if skip:
            pick = pick.where(recipients.c.id.not_in(list(skip)))
        # No ORDER BY: with it PostgreSQL sorts every pending row on each claim (8 ms at
        # 50,000 recipients instead of 1.5); the (delivery_id, status) index hands them out
        # in the order they were added anyway, and the order is no part of the contract.
        pick = pick.limit(1).with_for_update(skip_locked=True)
        with self._tx() as c:
            row = c.execute(
                recipients.update()
                .where(
                    (recipients.c.id == pick.scalar_subquery()) & (recipients.c.status == "pending")
                )
                .values(
                    status=sa.case((suppressed, "suppressed"), else_="sending"),
                    last_error=sa.case(
                        (suppressed, "on the suppression list"), else_=recipients.c.last_error
                    ),
                    attempts=recipients.c.attempts + sa.case((suppressed, 0), else_=1),
                    updated_at=self.clock(),
                )
                .returning(*recipients.columns)
            ).first()
        return recipient_row(row) if row is not None else None

    def reserve_recipients(
        self,
        delivery_id: int,
        *,
        after: int = 0,
        upto: int | None = None,
        only: Collection[int] | None = None,
        limit: int = 64,
        skip: Collection[int] = (),
    ) -> list[Recipient]:
        """Up to `limit` `pending` recipients with ids above `after` (and at most `upto`, or
        among `only`), in id order, leaving out `skip`, to prepare messages for: nothing is
        taken (`settle_and_claim` claims each one at the last moment). One whose address
        is on the suppression list is settled here and comes back `suppressed`, not to be
        sent. Walking the ids from `after` keeps each batch a short range scan of the
        primary key, however long the list."""
        now = self.clock()
        query = _RESERVE
        if upto is not None:
            query = query.where(recipients.c.id <= upto)
        if only is not None:
            query = query.where(recipients.c.id.in_(list(only)))
        found: list[Recipient] = []
        with self._tx() as c:
            while len(found) < limit:
                rows = c.execute(
                    query, {"delivery_id": delivery_id, "after": after, "limit": limit}
                ).all()
                for row in rows:
                    after = row.id
                    if row.id in skip:
                        continue
                    recipient = Recipient(**{k: row._mapping[k] for k in _COLUMNS})
                    if row.held:
                        if not c.execute(_SUPPRESS, {"rid": row.id, "now": now}).rowcount:
                            continue  # taken meanwhile by someone else: not ours to settle
                        recipient = replace(
                            recipient, status="suppressed", last_error="on the suppression list"
                        )
                    found.append(recipient)
                if len(rows) < limit:
                    break
        return found

    def pending_ids(self, delivery_id: int) -> list[int]:
        """The ids of a delivery's `pending` recipients, in order."""
        with self._tx() as c:
            return list(
                c.execute(
                    sa.select(recipients.c.id)
                    .where(
                        (recipients.c.delivery_id == delivery_id)
                        & (recipients.c.status == "pending")
                    )
                    .order_by(recipients.c.id)
                ).scalars()
            )

    def claims(self) -> Claims:
        """A held connection for one sending worker's `settle_and_claim` calls (close it)."""
        return Claims(self.engine, self.clock)

    def _recipient_to(
        self, recipient_id: int, to: str, allowed_from: Sequence[str], **values: Any
    ) -> bool:
        with self._tx() as c:
            result = c.execute(
                recipients.update()
                .where(
                    (recipients.c.id == recipient_id) & recipients.c.status.in_(list(allowed_from))
                )
                .values(status=to, updated_at=self.clock(), **values)
            )
        return result.rowcount == 1

    def _settle_one(self, outcome: Outcome) -> bool:
        with self._tx() as c:
            return settle(c, self.clock(), outcome)

    def mark_recipient_sent(self, recipient_id: int) -> bool:
        return self._settle_one(Outcome(recipient_id, "sent"))

    def mark_recipient_failed(self, recipient_id: int, error: str) -> bool:
        return self._settle_one(Outcome(recipient_id, "failed", error, attempted=False))

    def mark_recipient_unknown(self, recipient_id: int, error: str) -> bool:
        return self._settle_one(Outcome(recipient_id, "unknown", error))

    def release_recipient(self, recipient_id: int, error: str) -> bool:
        """Back to `pending`: the server certainly did not take the message (it failed
        before the end of DATA), so sending it again cannot make a second copy."""
        return self._recipient_to(recipient_id, "pending", ("sending",), last_error=error)

    def mark_interrupted(self, delivery_id: int, error: str) -> int:
        """Every recipient left `sending` by an earlier run becomes `unknown`: the server may
        or may not have taken their message, and a person decides, not a resend."""
        with self._tx() as c:
            result = c.execute(
                recipients.update()
                .where(
                    (recipients.c.delivery_id == delivery_id) & (recipients.c.status == "sending")
                )
                .values(status="unknown", last_error=error, updated_at=self.clock())
            )
        return int(result.rowcount)

    def resolve_recipients(self, delivery_id: int, to: str, note: str) -> int:
        """Every `unknown` recipient of a delivery becomes `to` (a person checked the server)."""
        with self._tx() as c:
            return int(
                c.execute(
                    recipients.update()
                    .where(
                        (recipients.c.delivery_id == delivery_id)
                        & (recipients.c.status == "unknown")
                    )
                    .values(status=to, last_error=note, updated_at=self.clock())
                ).rowcount
            )

    def resolve_recipient_addresses(
        self, delivery_id: int, addresses: Sequence[str], to: str, *, actor: str, note: str
    ) -> str | None:
        """A person decided these `unknown` recipients (by address): each becomes `to` (`sent`
        or `pending`) with `note`, and each decision goes to the delivery's log. When none is
        left in doubt, an `unknown` delivery follows: `sent` when nobody is left pending, else
        `failed` (then `retry` sends to those only). One transaction; nothing is written if
        any of them is no longer `unknown` (LookupError). Returns the delivery's new status
        when it moved, else None."""
        now = self.clock()
        with self._tx() as c:
            current = c.execute(
                sa.select(deliveries.c.status).where(deliveries.c.id == delivery_id)
            ).scalar_one()
            for address in addresses:
                done = c.execute(
                    recipients.update()
                    .where(
                        (recipients.c.delivery_id == delivery_id)
                        & (recipients.c.address == address)
                        & (recipients.c.status == "unknown")
                    )
                    .values(status=to, last_error=note, updated_at=now)
                ).rowcount
                if done != 1:
                    raise LookupError(address)  # rolls the whole decision back
                self._log(c, delivery_id, current, current, actor, f"{address}: {note}")
            left: dict[str, int] = dict(
                c.execute(
                    sa.select(recipients.c.status, sa.func.count())
                    .where(recipients.c.delivery_id == delivery_id)
                    .group_by(recipients.c.status)
                ).all()
            )
            if current != "unknown" or left.get("unknown", 0):
                return None
            pending = int(left.get("pending", 0))
            values: dict[str, Any]
            if pending:
                status, log_note = "failed", f"recipients in doubt resolved; {pending} left"
                values = {
                    "last_error": f"{pending} recipient(s) resolved as not sent; "
                    f"`aspdigest schedule retry {delivery_id}` sends to them"
                }
            else:
                status, log_note = "sent", "recipients in doubt resolved; none left"
                values = {"last_error": None, "sent_at": now}
            if not self._move_in(
                c, delivery_id, status, actor=actor, note=log_note, expect="unknown", **values
            ):
                raise LookupError(delivery_id)
        return status
