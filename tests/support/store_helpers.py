"""Store queries only the tests need: the product never asks them, so `Store` does not offer
them. Each runs in its own transaction over the store's engine, like a `Store` method."""

from __future__ import annotations

from collections.abc import Collection

import sqlalchemy as sa

from aspdigest.store import Recipient, Store, normalise_address
from aspdigest.store.schema import deliveries, recipients, suppressions


def next_pending(store: Store, delivery_id: int, skip: Collection[int] = ()) -> Recipient | None:
    """The first recipient still to send, leaving out the ids in `skip`."""
    query = sa.select(recipients).where(
        (recipients.c.delivery_id == delivery_id) & (recipients.c.status == "pending")
    )
    if skip:
        query = query.where(recipients.c.id.not_in(list(skip)))
    with store.engine.begin() as c:
        row = c.execute(query.order_by(recipients.c.id).limit(1)).first()
    if row is None:
        return None
    return Recipient(**{col.name: row._mapping[col.name] for col in recipients.columns})


def _recipient_to(store: Store, recipient_id: int, to: str, frm: str, **values: object) -> bool:
    with store.engine.begin() as c:
        result = c.execute(
            recipients.update()
            .where((recipients.c.id == recipient_id) & (recipients.c.status == frm))
            .values(status=to, updated_at=store.clock(), **values)
        )
    return result.rowcount == 1


def mark_recipient_sending(store: Store, recipient_id: int) -> bool:
    """`pending` → `sending` by hand, as a sender about to hand the message over would."""
    return _recipient_to(
        store, recipient_id, "sending", "pending", attempts=recipients.c.attempts + 1
    )


def mark_recipient_suppressed(store: Store, recipient_id: int, reason: str) -> bool:
    return _recipient_to(store, recipient_id, "suppressed", "pending", last_error=reason)


def is_suppressed(store: Store, address: str) -> bool:
    key = normalise_address(address)
    with store.engine.begin() as c:
        found = c.execute(sa.select(suppressions.c.id).where(suppressions.c.address == key))
        return found.first() is not None


def force_status(store: Store, delivery_id: int, to: str, **values: object) -> None:
    """Put a delivery in any status, past the lifecycle's checks and without a log row: a
    shortcut to set up a test, never something the product does."""
    with store.engine.begin() as c:
        c.execute(
            deliveries.update()
            .where(deliveries.c.id == delivery_id)
            .values(status=to, updated_at=store.clock(), **values)
        )
