"""The store's audience: the imported subscribers and the suppression list.

Feeds the deliver stage: `aspdigest subscribers import` (`aspdigest.subscribers`) writes the
list here, bounces and unsubscribes add suppressions, and `deliver.email` reads both when it
adds a digest's recipients. Addresses are kept normalised (`normalise_address`); rows come
back as frozen `Subscriber`s and `Suppression`s.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from aspdigest.store.base import StoreBase, normalise_address
from aspdigest.store.schema import (
    BOUNCE_KINDS,
    SUPPRESSION_REASONS,
    ImportCounts,
    Subscriber,
    Suppression,
    bounces,
    subscribers,
    suppressions,
)


def _subscriber(r: Any) -> Subscriber:
    return Subscriber(
        r.address,
        r.name,
        r.language,
        r.imported_at,
        r.token_id,
        r.status,
        r.source,
        r.subscribed_at,
        r.confirmed_at,
    )


class AudienceMixin(StoreBase):
    """Subscribers and suppressions."""

    def import_subscribers(
        self, people: Iterable[tuple[str, str | None, str | None]], *, replace: bool = False
    ) -> ImportCounts:
        """Add or update (address, name, language); with `replace`, also remove the
        subscribers not listed. Suppressions are untouched either way."""
        now = self.clock()
        added = updated = unchanged = removed = 0
        with self._tx() as c:
            current = {r.address: (r.name, r.language) for r in c.execute(sa.select(subscribers))}
            seen: set[str] = set()
            for address, name, language in people:
                key = normalise_address(address)
                seen.add(key)
                if key not in current:
                    c.execute(
                        subscribers.insert().values(
                            address=key,
                            name=name,
                            language=language,
                            imported_at=now,
                            token_id=secrets.token_hex(16),
                            subscribed_at=now,
                            confirmed_at=now,
                        )
                    )
                    current[key] = (name, language)
                    added += 1
                elif current[key] != (name, language):
                    c.execute(
                        subscribers.update()
                        .where(subscribers.c.address == key)
                        .values(name=name, language=language, imported_at=now)
                    )
                    updated += 1
                else:
                    unchanged += 1
            if replace:
                gone = [a for a in current if a not in seen]
                if gone:
                    c.execute(subscribers.delete().where(subscribers.c.address.in_(gone)))
                removed = len(gone)
        return ImportCounts(added, updated, unchanged, removed)

    def subscribers(self) -> list[Subscriber]:
        with self._tx() as c:
            rows = c.execute(sa.select(subscribers).order_by(subscribers.c.id))
            return [_subscriber(r) for r in rows]

    def active_subscribers(self) -> list[Subscriber]:
        """Who a digest goes to: confirmed subscribers (a sign-up awaiting its confirmation
        gets nothing). The runner, the rehearsal and the no-subscribers warnings ask this."""
        return [p for p in self.subscribers() if p.status == "active"]

    def subscriber(
        self, *, address: str | None = None, token_id: str | None = None
    ) -> Subscriber | None:
        """One subscriber by address or by the id its tokens carry."""
        column, value = (
            (subscribers.c.token_id, token_id)
            if token_id is not None
            else (subscribers.c.address, normalise_address(address or ""))
        )
        with self._tx() as c:
            row = c.execute(sa.select(subscribers).where(column == value)).first()
            return _subscriber(row) if row is not None else None

    def token_ids(self) -> dict[str, str]:
        """Address → token id of every subscriber (what the digest's links are made from)."""
        with self._tx() as c:
            rows = c.execute(sa.select(subscribers.c.address, subscribers.c.token_id))
            return {r.address: r.token_id for r in rows}

    def sign_up(self, address: str, name: str | None, language: str | None) -> Subscriber:
        """Record a sign-up from the form as `pending` (a new address) or refresh the
        details of a pending one; an active subscriber is left as it is. Returns the row."""
        key = normalise_address(address)
        now = self.clock()
        with self._tx() as c:
            row = c.execute(sa.select(subscribers).where(subscribers.c.address == key)).first()
            if row is None:
                try:
                    with c.begin_nested():
                        c.execute(
                            subscribers.insert().values(
                                address=key,
                                name=name,
                                language=language,
                                imported_at=now,
                                token_id=secrets.token_hex(16),
                                status="pending",
                                source="form",
                                subscribed_at=now,
                            )
                        )
                except sa.exc.IntegrityError:
                    pass  # a concurrent sign-up of the same address won
            elif row.status == "pending":
                c.execute(
                    subscribers.update()
                    .where(subscribers.c.address == key)
                    .values(name=name, language=language, subscribed_at=now)
                )
            row = c.execute(sa.select(subscribers).where(subscribers.c.address == key)).one()
            return _subscriber(row)

    def confirm(self, token_id: str, *, lift: tuple[str, ...] = ("unsubscribed", "bounced")) -> str:
        """A subscriber confirms by the link mailed to them: `active`, with the confirmation
        time, and a suppression for one of the reasons in `lift` removed (they asked again,
        from the address itself). Returns "confirmed", "complained" (a complaint is never
        lifted by a form) or "unknown"."""
        with self._tx() as c:
            row = c.execute(
                sa.select(subscribers).where(subscribers.c.token_id == token_id)
            ).first()
            if row is None:
                return "unknown"
            reason = c.execute(
                sa.select(suppressions.c.reason).where(suppressions.c.address == row.address)
            ).scalar()
            if reason == "complained":
                return "complained"
            if reason in lift:
                c.execute(suppressions.delete().where(suppressions.c.address == row.address))
            c.execute(
                subscribers.update()
                .where(subscribers.c.id == row.id)
                .values(status="active", confirmed_at=self.clock())
            )
        return "confirmed"

    def suppression(self, address: str) -> Suppression | None:
        with self._tx() as c:
            r = c.execute(
                sa.select(suppressions).where(suppressions.c.address == normalise_address(address))
            ).first()
            return Suppression(r.address, r.reason, r.at, r.note) if r is not None else None

    def record_bounce(self, address: str, kind: str, note: str | None = None) -> None:
        if kind not in BOUNCE_KINDS:
            raise ValueError(f"unknown bounce kind {kind!r}")
        with self._tx() as c:
            c.execute(
                bounces.insert().values(
                    address=normalise_address(address), kind=kind, at=self.clock(), note=note
                )
            )

    def bounce_count(self, address: str, kind: str, since: dt.datetime) -> int:
        with self._tx() as c:
            count = c.execute(
                sa.select(sa.func.count())
                .select_from(bounces)
                .where(
                    bounces.c.address == normalise_address(address),
                    bounces.c.kind == kind,
                    bounces.c.at >= since,
                )
            ).scalar()
            return int(count or 0)

    def suppress(self, address: str, reason: str, note: str | None = None) -> bool:
        """Put an address on the suppression list; False if it was already there."""
        if reason not in SUPPRESSION_REASONS:
            raise ValueError(f"unknown suppression reason {reason!r}")
        key = normalise_address(address)
        with self._tx() as c:
            if c.execute(sa.select(suppressions.c.id).where(suppressions.c.address == key)).first():
                return False
            try:
                with c.begin_nested():
                    c.execute(
                        suppressions.insert().values(
                            address=key, reason=reason, at=self.clock(), note=note
                        )
                    )
            except sa.exc.IntegrityError:
                return False
        return True

    def suppressions(self) -> list[Suppression]:
        with self._tx() as c:
            rows = c.execute(
                sa.select(suppressions).order_by(suppressions.c.at, suppressions.c.address)
            )
            return [Suppression(r.address, r.reason, r.at, r.note) for r in rows]
