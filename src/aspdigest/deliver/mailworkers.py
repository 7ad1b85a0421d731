"""The SMTP workers of one digest send: each takes recipients, builds and hands over their
messages, and records what the server said.

Deliver stage, under `deliver.email` (which prepares a send and reports on it) and beside
`deliver.emailprocs` (which runs more of these in helper processes). `Workers` is what the
threads of one process share: recipients read from the store in batches and reserved in
memory, the rate limit (`Pacer`), retries waiting their turn, and the first error, which
stops them all. Each thread has its own SMTP connection and its own store connection
(`_Writes`). Per recipient: build the message, pace, MAIL/RCPT/DATA and the message
(`SmtpSession.begin`), then claim the recipient in the store (`pending` → `sending`), then
the final dot (`SmtpSession.end`), then record the reply. Claimed any earlier, a kill would
leave a recipient in doubt whose message never left; the claim is the last thing before the
one write after which nobody can know whether the message arrived.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import hashlib
import threading
import time
from collections.abc import Callable
from typing import Literal

from aspdigest.config import Project
from aspdigest.deliver.dkim import Signer, sign
from aspdigest.deliver.smtp import Reply, SmtpSession, SmtpTarget, SmtpUnavailable
from aspdigest.render.message import Letter
from aspdigest.store import Delivery, Recipient, Store
from aspdigest.store.claims import Claims, Outcome
from aspdigest.tokens import make_token

BATCH = 64  # recipients read from the store at a time (each still claimed on its own)
# done, total, address — called after each recipient; raising from it stops the send
# (the store keeps where it got to).
Progress = Callable[[int, int, str], None]


class Pacer:
    """At most `rate` messages per second (0 or less: no limit); a pause is not made up
    for with a burst afterwards."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next = 0.0
        self.lock = threading.Lock()  # shared by the parallel connections

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            at = max(now, self.next)
            self.next = at + self.interval
        if at > now:
            time.sleep(at - now)


def message_id(event: str, date: dt.date, address: str, list_id: str) -> str:
    # The same for the same recipient and digest, so a client can drop a duplicate.
    digest = hashlib.sha256(f"{event}\0{date}\0{address}".encode()).hexdigest()[:24]
    return f"<{event}.{date.isoformat()}.{digest}@{list_id}>"


def smtp_session(project: Project, target: SmtpTarget) -> SmtpSession:
    settings = project.settings.email
    return SmtpSession(target, timeout=settings.timeout, backoff=settings.retry_backoff)


class Workers:
    """What the SMTP workers of one send_digest share: each claims its own recipients from
    the store (never the same one twice), and the first error stops them all."""

    def __init__(
        self,
        store: Store,
        delivery: Delivery,
        project: Project,
        letter: Letter,
        key: bytes,
        dkim_signer: Signer | None,
        sender: str,
        progress: Progress | None,
        halt: Callable[[], bool] | None,
    ) -> None:
        self.store, self.delivery, self.letter = store, delivery, letter
        self.project, self.settings = project, project.settings.email
        self.key, self.sender, self.progress, self.halt = key, sender, progress, halt
        self.dkim_signer = dkim_signer
        self.token_ids = store.token_ids()  # the subscriber ids the links are made from
        self.done = self.total = 0  # recipients settled so far, of all (for `progress`)
        self.pacer = Pacer(self.settings.rate_per_second)
        self.deferred: dict[int, float] = {}  # recipient id → monotonic time of its 4xx retry
        self.reserved: set[int] = set()  # read from the store and not yet settled or released
        self.batch: collections.deque[Recipient] = collections.deque()
        self.after = 0  # the highest recipient id read so far
        # The last id of the span being read (None: the whole list), and where the next
        # span comes from (see `share`).
        self.upto: int | None = None
        self.more: Callable[[], tuple[int, int] | None] | None = None
        self.lock = threading.Lock()
        self.connections = 0
        self.unavailable: str | None = None  # the server could not be reached at all
        self.raised: BaseException | None = None  # from progress, or a bug: re-raised

    def run(self, connections: int, target: SmtpTarget) -> None:
        """Send over `connections` parallel connections (threads) until none is left."""
        workers = [
            threading.Thread(
                target=self.work,
                args=(smtp_session(self.project, target),),
                name=f"smtp-{n}",
                daemon=True,
            )
            for n in range(connections)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    def share(self, more: Callable[[], tuple[int, int] | None]) -> None:
        """Send only the spans of recipient ids `more()` hands out (None: no more), when the
        list is shared with helper processes (see `deliver.emailprocs`)."""
        self.upto, self.more = -1, more

    def count_many(self, n: int) -> None:
        """Recipients settled by a helper process (see `deliver.emailprocs`)."""
        with self.lock:
            self.done += n
            if self.progress is not None:
                self.progress(self.done, self.total, "")

    def _return_path(self, token_id: str) -> str:
        # VERP (email.return_path = "bounces+{token}@…"): each bounce names its recipient.
        if "{token}" not in self.sender:
            return self.sender
        token = make_token(token_id, self.key, self.settings.list_name, "bounce")
        return self.sender.replace("{token}", token)

    def stopped(self) -> bool:
        return (
            self.unavailable is not None
            or self.raised is not None
            or (self.halt is not None and self.halt())
        )

    def work(self, session: SmtpSession) -> None:
        try:
            with session:
                try:
                    self._loop(session)
                finally:
                    with self.lock:
                        self.connections += session.connections
        except BaseException as exc:  # re-raised in the caller's thread after the join
            with self.lock:
                self.raised = self.raised or exc

    def _next(self, writes: _Writes) -> Recipient | None:
        """The next recipient for this worker, reserved in memory only: the store still says
        `pending`, so a kill while the message is prepared, paced or connected for leaves
        nothing in doubt. Suppressed addresses are settled (by the store) without a message.
        Before any wait, the worker's unsaved outcome is written (see `_loop`)."""
        while not self.stopped():
            now = time.monotonic()
            with self.lock:
                recipient = self._take(now)
            if recipient is not None:
                if recipient.status == "pending":
                    return recipient
                self._release(recipient)
                self._count(recipient)  # suppressed: settled by the read
                continue
            writes.flush()
            with self.lock:
                due = [at for rid, at in self.deferred.items() if rid not in self.reserved]
                busy = bool(self.reserved)
            if due:
                time.sleep(max(0.0, min(min(due) - now, 0.5)))
            elif busy:
                time.sleep(0.01)  # others hold the rest now, and a 4xx may bring one back
            else:
                return None
        return None

    def _take(self, now: float) -> Recipient | None:
        """(Under the lock.) The next recipient from the batch in memory, reading the next
        batch from the store when it is empty; at the end of the list, those a 4xx put
        back whose wait is over."""
        if not self.batch:
            waiting = {rid for rid, at in self.deferred.items() if at > now}
            rows = self._read(self.reserved | waiting)
            due = [rid for rid in self.deferred if rid not in waiting | self.reserved]
            if not rows and due:
                rows = self.store.reserve_recipients(
                    self.delivery.id, only=due, limit=BATCH, skip=self.reserved
                )
            for row in rows:
                self.deferred.pop(row.id, None)
                self.reserved.add(row.id)
            self.batch.extend(rows)
        return self.batch.popleft() if self.batch else None

    def _read(self, skip: set[int]) -> list[Recipient]:
        """The next batch of the list in id order: of the whole list, or, when the list is
        shared with helper processes, of the span of ids this process is working through,
        then of the next span `more()` hands out (see `deliver.emailprocs`)."""
        while True:
            if self.upto is None or self.after < self.upto:
                rows = self.store.reserve_recipients(
                    self.delivery.id, after=self.after, upto=self.upto, limit=BATCH, skip=skip
                )
                if rows:
                    self.after = rows[-1].id
                    return rows
                if self.upto is None:
                    return []
            span = self.more() if self.more is not None else None
            if span is None:
                self.more = None
                return []
            self.after, self.upto = span[0] - 1, span[1]

    def _release(self, recipient: Recipient) -> None:
        with self.lock:
            self.reserved.discard(recipient.id)

    def _count(self, recipient: Recipient) -> None:
        with self.lock:
            self.done += 1
            if self.progress is not None:
                self.progress(self.done, self.total, recipient.address)

    def _loop(self, session: SmtpSession) -> None:
        # Each worker its own store connection (see _Writes).
        writes = _Writes(self.store.claims())
        try:
            while (recipient := self._next(writes)) is not None:
                self._send_one(session, recipient, writes)
                if self.unavailable is not None:
                    return
        finally:
            try:
                writes.flush()
            finally:
                writes.claims.close()

    def _send_one(self, session: SmtpSession, recipient: Recipient, writes: _Writes) -> None:
        store, settings, delivery = self.store, self.settings, self.delivery
        token_id = self.token_ids.get(recipient.address) or store.token_ids().get(recipient.address)
        if token_id is None:  # removed from the subscribers since the list was fixed
            self._settle(recipient, writes, "failed", "no longer a subscriber", attempted=False)
            return
        data = self.letter.message(
            date=store.clock(),
            to=recipient.address,
            name=recipient.name,
            message_id=message_id(
                delivery.event, delivery.date, recipient.address, settings.list_name
            ),
            address=recipient.address,
            token=make_token(token_id, self.key, settings.list_name, "unsubscribe"),
        )
        data = sign(data, self.dkim_signer)
        if self.pacer.interval:
            writes.flush()  # a kill during the wait must find nothing unwritten
        self.pacer.wait()
        if self.stopped():
            self._release(recipient)
            return
        try:
            # Letter.message writes every line with CRLF, and so does DKIM's signature.
            sender = self._return_path(token_id)
            refused = session.begin(sender, recipient.address, data, crlf=True)
        except SmtpUnavailable as exc:  # no connection: nothing was sent, it stays pending
            self._release(recipient)
            with self.lock:
                self.unavailable = self.unavailable or exc.text
            return
        if refused is not None:  # before the final dot: the server cannot have taken it
            self._after(recipient, recipient.attempts + 1, refused, writes)
            return
        # The claim, durable before the one write after which nobody can know.
        claimed = writes.claim(recipient)
        if claimed is None or claimed.status == "suppressed":
            session.abandon()  # taken by another runner, or unsubscribed meanwhile
            self._release(recipient)
            if claimed is not None:
                self._count(claimed)
            return
        self._after(claimed, claimed.attempts, session.end(), writes)

    def _settle(
        self,
        recipient: Recipient,
        writes: _Writes,
        status: Literal["sent", "failed", "unknown", "pending"],
        error: str | None = None,
        *,
        attempted: bool = True,
        keep: bool = False,
    ) -> None:
        writes.unsaved.append(Outcome(recipient.id, status, error, attempted))
        if status != "sent":  # rare: written at once, before another worker reads it again
            writes.flush()
        if not keep:
            self._release(recipient)

    def _after(self, recipient: Recipient, attempts: int, reply: Reply, writes: _Writes) -> None:
        """Record the server's reply for `recipient` (`attempts` counting this one)."""
        settings = self.settings
        if reply.status == "sent":
            self._settle(recipient, writes, "sent")
        elif reply.status == "permanent":
            self._settle(recipient, writes, "failed", reply.describe())
        elif reply.status == "unknown":
            self._settle(recipient, writes, "unknown", reply.describe())
        elif attempts >= settings.max_attempts:
            self._settle(
                recipient,
                writes,
                "failed",
                f"{reply.describe()} (gave up after {attempts} attempts)",
            )
        else:
            again = reply.status != "temporary"  # dropped before the dot: next, over a new one
            self._settle(recipient, writes, "pending", reply.describe(), keep=again)
            with self.lock:
                if again:
                    self.batch.appendleft(dataclasses.replace(recipient, attempts=attempts))
                else:  # a 4xx: its turn comes again after the backoff
                    self.deferred[recipient.id] = time.monotonic() + settings.retry_backoff * (
                        2 ** (attempts - 1)
                    )
            return
        self._count(recipient)


class _Writes:
    """One worker's own connection to the store, and the outcome it has not written yet:
    at most the `sent` of its last message, which goes in with the next claim (one call,
    see `Claims`) or before any wait. Killed in between, that recipient is still
    `sending` and the next run marks it `unknown`: at most one per connection."""

    def __init__(self, claims: Claims) -> None:
        self.claims = claims
        self.unsaved: list[Outcome] = []

    def flush(self) -> None:
        if self.unsaved:
            self.claims.settle_and_claim(self.unsaved)
            self.unsaved.clear()

    def claim(self, recipient: Recipient) -> Recipient | None:
        claimed = self.claims.settle_and_claim(self.unsaved, recipient)
        self.unsaved.clear()
        return claimed
