"""The store's audience: the imported subscribers and the suppression list.

Feeds the deliver stage: `aspdigest subscribers import` (`aspdigest.subscribers`) writes the
list here, bounces and unsubscribes add suppressions, and `deliver.email` reads both when it
adds a digest's recipients. Addresses are kept normalised (`normalise_address`); rows come
back as frozen `Subscriber`s and `Suppression`s.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from aspdigest.store.base import StoreBase, normalise_address
from aspdigest.store.schema import (
    SUPPRESSION_REASONS,
    ImportCounts,
    Subscriber,
    Suppression,
    subscribers,
    suppressions,
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
                            address=key, name=name, language=language, imported_at=now
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
            return [Subscriber(r.address, r.name, r.language, r.imported_at) for r in rows]

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
