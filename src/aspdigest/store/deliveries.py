"""The store's deliveries, the event queues and the delivery log.

Schedule/outbox stage: `queue.plan` creates deliveries here, `queue.approval` and
`queue.actions` move them, the runner claims and marks them. One row per (event, date,
channel, platform), returned as a frozen `Delivery`. Status changes are single conditional
UPDATEs (`… WHERE status = 'approved'`) whose row count says whether this caller won, so two
processes racing for the same delivery cannot both send it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from aspdigest.store.base import StoreBase
from aspdigest.store.lifecycle import IllegalTransition
from aspdigest.store.lifecycle import Status as S
from aspdigest.store.schema import (
    Delivery,
    LogEntry,
    Queue,
    deliveries,
    delivery_log,
    queues,
)


def _delivery(row: sa.Row[Any]) -> Delivery:
    m = row._mapping
    return Delivery(**{c.name: m[c.name] for c in deliveries.columns})


class DeliveriesMixin(StoreBase):
    """Deliveries, their status changes, the queues and the status log."""

    def ensure_delivery(
        self,
        event: str,
        date: dt.date,
        channel: str,
        platform: str = "",
        *,
        send_at: dt.datetime | None = None,
        artifacts: Mapping[str, str] | None = None,
        actor: str | None = None,
        note: str | None = None,
    ) -> Delivery:
        """The delivery for (event, date, channel, platform), created as `planned` if new
        (with `actor`, its creation goes in its log, in the same transaction). A delivery
        still `planned` takes the given send time and artifact hashes; one already approved
        or further along keeps what was approved."""
        now = self.clock()
        key = (
            (deliveries.c.event == event)
            & (deliveries.c.date == date)
            & (deliveries.c.channel == channel)
            & (deliveries.c.platform == platform)
        )
        with self._tx() as c:
            existing = c.execute(sa.select(deliveries.c.id, deliveries.c.status).where(key)).first()
            if existing is None:
                try:
                    with c.begin_nested():
                        created = c.execute(
                            deliveries.insert().values(
                                event=event,
                                date=date,
                                channel=channel,
                                platform=platform,
                                send_at=send_at,
                                status="planned",
                                attempts=0,
                                artifacts=dict(artifacts or {}),
                                created_at=now,
                                updated_at=now,
                            )
                        )
                        if actor is not None:
                            new_id = int(created.inserted_primary_key[0])  # type: ignore[index]
                            self._log(c, new_id, S.PLANNED, None, actor, note)
                except sa.exc.IntegrityError:
                    pass  # another process created it first; fall through and read it
            elif existing.status == "planned" and (send_at is not None or artifacts is not None):
                values: dict[str, Any] = {"updated_at": now}
                if send_at is not None:
                    values["send_at"] = send_at
                if artifacts is not None:
                    values["artifacts"] = dict(artifacts)
                c.execute(
                    deliveries.update()
                    .where((deliveries.c.id == existing.id) & (deliveries.c.status == "planned"))
                    .values(**values)
                )
            row = c.execute(sa.select(deliveries).where(key)).one()
        return _delivery(row)

    def delivery(self, delivery_id: int) -> Delivery | None:
        with self._tx() as c:
            row = c.execute(sa.select(deliveries).where(deliveries.c.id == delivery_id)).first()
        return _delivery(row) if row is not None else None

    def deliveries(self, event: str | None = None, status: str | None = None) -> list[Delivery]:
        query = sa.select(deliveries).order_by(
            deliveries.c.date, deliveries.c.channel, deliveries.c.platform, deliveries.c.id
        )
        if event is not None:
            query = query.where(deliveries.c.event == event)
        if status is not None:
            query = query.where(deliveries.c.status == status)
        with self._tx() as c:
            return [_delivery(r) for r in c.execute(query)]

    def move(
        self,
        delivery_id: int,
        to: str,
        *,
        actor: str,
        note: str | None = None,
        expect: str | Iterable[str] | None = None,
        **values: Any,
    ) -> bool:
        """Change a delivery's status to `to` and write the change to its log, in one
        transaction; True if it moved. `expect` is the status (or statuses) the caller saw:
        the row moves only from one of them (None: from whatever it is now), so a caller that
        lost a race gets False. A move `lifecycle.TRANSITIONS` forbids raises
        `IllegalTransition`, as does an unknown status."""
        with self._tx() as c:
            return self._move_in(
                c, delivery_id, to, actor=actor, note=note, expect=expect, **values
            )

    def update_delivery(self, delivery_id: int, *, expect: str, **values: Any) -> bool:
        """Change a delivery's other columns (send time, hashes, grace), not its status, only
        while it is still `expect`; nothing is logged. True if the row was updated."""
        if "status" in values:
            raise IllegalTransition("update_delivery does not change a status; use move")
        with self._tx() as c:
            result = c.execute(
                deliveries.update()
                .where((deliveries.c.id == delivery_id) & (deliveries.c.status == expect))
                .values(updated_at=self.clock(), **values)
            )
        return result.rowcount == 1

    def approve(
        self, delivery_id: int, sha256s: Mapping[str, str], by: str, note: str | None = None
    ) -> bool:
        return self.move(
            delivery_id,
            S.APPROVED,
            actor=by,
            note=note,
            expect=(S.PLANNED, S.HELD, S.FAILED),
            approved=dict(sha256s),
            approved_by=by,
            approved_at=self.clock(),
        )

    def claim(self, delivery_id: int, *, actor: str = "runner") -> bool:
        """Atomically take an approved delivery for sending; False if someone else did."""
        return self.move(
            delivery_id,
            S.CLAIMED,
            actor=actor,
            expect=S.APPROVED,
            attempts=deliveries.c.attempts + 1,
            claimed_at=self.clock(),
            last_error=None,
        )

    def mark_sent(
        self,
        delivery_id: int,
        receipt: Mapping[str, Any] | None = None,
        *,
        actor: str = "runner",
        note: str | None = None,
    ) -> bool:
        return self.move(
            delivery_id,
            S.SENT,
            actor=actor,
            note=note,
            expect=S.CLAIMED,
            sent_at=self.clock(),
            receipt=dict(receipt or {}),
        )

    def mark_failed(
        self,
        delivery_id: int,
        error: str,
        receipt: Mapping[str, Any] | None = None,
        *,
        actor: str = "runner",
    ) -> bool:
        return self._end_claim(delivery_id, S.FAILED, error, receipt, actor)

    def mark_unknown(
        self,
        delivery_id: int,
        error: str,
        receipt: Mapping[str, Any] | None = None,
        *,
        actor: str = "runner",
    ) -> bool:
        return self._end_claim(delivery_id, S.UNKNOWN, error, receipt, actor)

    def _end_claim(
        self,
        delivery_id: int,
        to: S,
        error: str,
        receipt: Mapping[str, Any] | None,
        actor: str,
    ) -> bool:
        # A claimed delivery that did not go out: the error is both the log note and last_error.
        return self.move(
            delivery_id,
            to,
            actor=actor,
            note=error,
            expect=S.CLAIMED,
            last_error=error,
            receipt=dict(receipt or {}),
        )

    def set_queue(self, event: str, **values: Any) -> None:
        with self._tx() as c:
            if (
                c.execute(queues.update().where(queues.c.event == event).values(**values)).rowcount
                == 0
            ):
                c.execute(queues.insert().values(event=event, **values))

    def queue(self, event: str) -> Queue | None:
        with self._tx() as c:
            row = c.execute(sa.select(queues).where(queues.c.event == event)).first()
        return Queue(**row._mapping) if row is not None else None

    def history(self, delivery_id: int) -> list[LogEntry]:
        query = sa.select(delivery_log).where(delivery_log.c.delivery_id == delivery_id)
        with self._tx() as c:
            rows = c.execute(query.order_by(delivery_log.c.id))
            return [LogEntry(**{k: v for k, v in r._mapping.items() if k != "id"}) for r in rows]
