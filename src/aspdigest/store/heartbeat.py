"""The store's record of the runner process, for `aspdigest status`.

Schedule/outbox → deliver: `queue.runner.Runner` writes its heartbeat here at start, at
every poll and at a clean stop; `aspdigest status` reads it back as a frozen `RunnerHeartbeat` to say
whether a runner is serving the store. The lock that keeps runners apart is `store/lock.py`.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from aspdigest.store.base import StoreBase
from aspdigest.store.schema import RunnerHeartbeat, runners


class HeartbeatMixin(StoreBase):
    """The runner's heartbeat row."""

    def runner_seen(
        self, pid: int, host: str, *, started: bool = False, stopped: bool = False
    ) -> None:
        """Record the runner's heartbeat (and its start or clean stop) for `status`."""
        now = self.clock()
        values: dict[str, Any] = {"pid": pid, "host": host, "seen_at": now}
        if started:
            values.update(started_at=now, stopped_at=None)
        if stopped:
            values["stopped_at"] = now
        with self._tx() as c:
            if (
                c.execute(
                    runners.update().where(runners.c.name == "runner").values(**values)
                ).rowcount
                == 0
            ):
                c.execute(runners.insert().values(name="runner", **{"started_at": now, **values}))

    def runner(self) -> RunnerHeartbeat | None:
        with self._tx() as c:
            row = c.execute(sa.select(runners).where(runners.c.name == "runner")).first()
        return (
            None
            if row is None
            else RunnerHeartbeat(row.pid, row.host, row.started_at, row.seen_at, row.stopped_at)
        )
