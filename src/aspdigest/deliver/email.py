"""Send a built email digest: one test copy, or every subscriber exactly once.

Deliver stage (… → schedule/outbox → deliver). Both functions read the `digest.eml` the
build wrote (`out/<event>/<date>/digest.eml`), personalise it per recipient (address,
opaque unsubscribe token, Message-ID, Date), sign it (`deliver.dkim`, when set up) and
hand it to `deliver.smtp`.

`send_test(project, event, date, address)` sends one copy with "[TEST] " before the
subject and records nothing. `send_digest(store, delivery_id, project)` sends a
delivery the caller has claimed to every subscriber not suppressed, returning a frozen
`SendReport`. Exactly once, also across crashes:

- the recipient list is fixed in the store the first time (later runs resume it);
- `email.connections` workers, each with its own SMTP connection, take recipients from
  the store one at a time with an atomic claim (`pending` → `sending`), so no two
  connections, and no two runners, ever hand over the same recipient;
- the claim is made at the last moment, after the rate limit's wait and with the
  connection up, right before MAIL FROM (a kill while waiting leaves the recipient
  `pending`, not in doubt); the recipient becomes `sent` after the server's 250, in the
  store, one transaction each;
- a run that finds a recipient still `sending` (the previous run died between those two
  steps) marks it `unknown` and does not resend it: the server may have taken that
  message, and a second copy is worse than a person checking the server's log;
- a connection lost before the final dot of DATA was written (nothing can have been
  accepted) reconnects and resends; lost after it, while waiting for the final reply,
  the recipient is `unknown`;
- 4xx replies are retried with backoff (the recipient waits its turn while others go);
  5xx replies mark that recipient `failed` and the send goes on.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aspdigest.artifacts import BuiltDay
from aspdigest.config import Project
from aspdigest.deliver.dkim import Signer, sign, signer
from aspdigest.deliver.smtp import Reply, SmtpSession, SmtpTarget, SmtpUnavailable, smtp_target
from aspdigest.errors import UserError
from aspdigest.readiness import built_without_sender, sender_problems
from aspdigest.render.message import Letter
from aspdigest.store import Delivery, Recipient, Store
from aspdigest.subscribers import is_address
from aspdigest.tokens import keys, make_token, new_id

CHANNEL = "email"
CHANNELS = (CHANNEL, "digest")  # "digest" is what schedules/<event>.toml and the queue call it
TEST_PREFIX = "[TEST] "
# done, total, address — called after each recipient; raising from it stops the send
# (the store keeps where it got to).
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class SendReport:
    delivery_id: int
    status: str  # the delivery's status afterwards
    counts: Mapping[str, int]  # recipients per status
    connections: int
    error: str | None = None


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


def load_letter(
    project: Project, event: str, date: dt.date, approved: Mapping[str, str] | None = None
) -> Letter:
    """The built digest, checked against the approved sha256 when one was recorded."""
    path = BuiltDay(project, event, date).eml
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(
            f"{project.relative(path)}: not built; run `aspdigest build {event}` first"
        ) from None
    for name, sha in (approved or {}).items():
        if name.endswith(path.name) and hashlib.sha256(data).hexdigest() != sha:
            raise UserError(
                f"{project.relative(path)}: changed since it was approved; "
                "approve the new build before sending"
            )
    letter = Letter.from_eml(data, project.relative(path))
    if built_without_sender(data):
        # Built while email.from or email.unsubscribe_url was unset: its marker addresses
        # reach nobody, whatever the settings say now.
        raise UserError(
            f"{project.relative(path)}: built without email.from or email.unsubscribe_url; "
            f"set them in aspdigest.toml, then run `aspdigest build {event}` and approve again"
        )
    return letter


def _sender(project: Project) -> str:
    """The envelope sender: email.return_path (where bounces go), else the From address."""
    settings = project.settings.email
    missing = sender_problems(project.settings)
    if missing:
        raise UserError(missing)
    name, value = (
        ("return_path", settings.return_path)
        if settings.return_path
        else ("from", settings.from_ or "")
    )
    _, address = email.utils.parseaddr(value)
    if not is_address(address):
        raise UserError(
            f"aspdigest.toml: email.{name}: expected an address like "
            f'"Digest <digest@example.org>", got "{value}"'
        )
    return address


def _message_id(event: str, date: dt.date, address: str, list_id: str) -> str:
    # The same for the same recipient and digest, so a client can drop a duplicate.
    digest = hashlib.sha256(f"{event}\0{date}\0{address}".encode()).hexdigest()[:24]
    return f"<{event}.{date.isoformat()}.{digest}@{list_id}>"


def _session(project: Project, target: SmtpTarget) -> SmtpSession:
    settings = project.settings.email
    return SmtpSession(target, timeout=settings.timeout, backoff=settings.retry_backoff)


def send_test(
    project: Project,
    event: str,
    date: dt.date,
    address: str,
    environ: Mapping[str, str] | None = None,
) -> Reply:
    """Send one test copy of the built digest to `address`; a UserError if it is refused.
    Nothing is recorded and the suppression list is not consulted: it goes to the team."""
    if not is_address(address):
        raise UserError(f'--test: expected an address like name@example.org, got "{address}"')
    if missing := sender_problems(project.settings):
        raise UserError(missing)
    letter = load_letter(project, event, date)
    key = keys(environ).current
    dkim_signer = signer(project, environ)
    target = smtp_target(environ)
    settings = project.settings.email
    # The team's copy carries a working-looking link that unsubscribes nobody.
    data = letter.message(
        date=dt.datetime.now(dt.UTC),
        message_id=f"<test.{uuid.uuid4().hex}@{settings.list_name}>",
        to=address,
        address=address,
        token=make_token(new_id(), key, settings.list_name, "unsubscribe"),
        subject_prefix=TEST_PREFIX,
    )
    data = sign(data, dkim_signer)
    with _session(project, target) as session:
        reply = Reply("temporary")
        for attempt in range(settings.max_attempts):
            if attempt:
                time.sleep(settings.retry_backoff * 2 ** (attempt - 1))
            reply = session.send(_sender(project).replace("{token}", "test"), address, data)
            if reply.status not in ("temporary", "retry"):
                break
    if reply.status != "sent":
        raise UserError(
            f"{address}: {target.safe} did not take the test message: {reply.describe()}"
        )
    return reply


def send_digest(
    store: Store,
    delivery_id: int,
    project: Project,
    *,
    environ: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    halt: Callable[[], bool] | None = None,
    actor: str = "runner",
) -> SendReport:
    """Send a claimed email delivery to every subscriber not suppressed, resuming any
    earlier run of it, over `email.connections` parallel SMTP connections; the delivery
    ends `sent`, `failed` or `unknown`. When `halt()` turns true (the runner lost its lock)
    no further recipient is taken and the delivery is left `claimed` for whoever resumes.
    Each status change goes in the delivery's log under `actor`."""
    delivery = store.delivery(delivery_id)
    if delivery is None:
        raise UserError(f"delivery {delivery_id}: no such delivery")
    if delivery.channel not in CHANNELS or delivery.status != "claimed":
        raise UserError(
            f"delivery {delivery_id}: is {delivery.channel} and {delivery.status}; "
            "send_digest sends a claimed email delivery"
        )
    try:
        if missing := sender_problems(project.settings):
            raise UserError(missing)
        letter = load_letter(project, delivery.event, delivery.date, delivery.approved)
        key = keys(environ).current
        dkim_signer = signer(project, environ)
        target = smtp_target(environ)
        sender = _sender(project)
        _prepare(store, delivery)
    except UserError as exc:
        store.mark_failed(delivery_id, exc.text, actor=actor)
        raise
    counts = store.recipient_counts(delivery_id)
    total = sum(counts.values())
    send = _Send(
        store,
        delivery,
        project,
        letter,
        key,
        dkim_signer,
        sender,
        progress,
        halt,
        done=total - counts["pending"],
        total=total,
    )
    workers = [
        threading.Thread(
            target=send.work, args=(_session(project, target),), name=f"smtp-{n}", daemon=True
        )
        for n in range(project.settings.email.connections)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if send.raised is not None:
        raise send.raised
    if send.unavailable is not None:
        store.mark_failed(
            delivery_id,
            send.unavailable,
            _receipt(store, delivery_id, send.connections),
            actor=actor,
        )
        return _report(store, delivery_id, send.connections, send.unavailable)
    if halt is not None and halt():
        return _report(
            store,
            delivery_id,
            send.connections,
            "stopped before the end; the next runner resumes it",
        )
    return _finish(store, delivery_id, send.connections, actor)


class _Send:
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
        *,
        done: int,
        total: int,
    ) -> None:
        self.store, self.delivery, self.letter = store, delivery, letter
        self.settings = project.settings.email
        self.key, self.sender, self.progress, self.halt = key, sender, progress, halt
        self.dkim_signer = dkim_signer
        self.token_ids = store.token_ids()  # the subscriber ids the links are made from
        self.done, self.total = done, total
        self.pacer = Pacer(self.settings.rate_per_second)
        self.deferred: dict[int, float] = {}  # recipient id → monotonic time of its 4xx retry
        self.reserved: set[int] = set()  # recipient ids a worker is preparing, not yet claimed
        self.lock = threading.Lock()
        self.connections = 0
        self.unavailable: str | None = None  # the server could not be reached at all
        self.raised: BaseException | None = None  # from progress, or a bug: re-raised

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

    def _next(self) -> Recipient | None:
        """The next recipient for this worker, reserved in memory only: the store still says
        `pending`, so a kill while the message is prepared, paced or connected for leaves
        nothing in doubt. Suppressed addresses are settled here without a message."""
        store, delivery_id = self.store, self.delivery.id
        while not self.stopped():
            now = time.monotonic()
            with self.lock:
                waiting = {rid for rid, at in self.deferred.items() if at > now}
                recipient = store.peek_recipient(delivery_id, skip=waiting | self.reserved)
                if recipient is not None and recipient.status == "pending":
                    self.reserved.add(recipient.id)
            if recipient is not None:
                if recipient.status == "pending":
                    return recipient
                self._count(recipient)  # suppressed: settled by the peek
                continue
            with self.lock:
                due = [at for rid, at in self.deferred.items() if rid in waiting]
            if due:
                time.sleep(max(0.0, min(min(due) - now, 0.5)))
            elif store.recipient_counts(delivery_id)["pending"]:
                time.sleep(0.01)  # the rest are with other workers right now
            else:
                return None
        return None

    def _release(self, recipient: Recipient) -> None:
        with self.lock:
            self.reserved.discard(recipient.id)
            self.deferred.pop(recipient.id, None)

    def _count(self, recipient: Recipient) -> None:
        with self.lock:
            self.done += 1
            if self.progress is not None:
                self.progress(self.done, self.total, recipient.address)

    def _claim(self, session: SmtpSession, recipient: Recipient) -> Recipient | None:
        """Mark the recipient `sending` at the last moment before MAIL FROM: after pacing
        and with the connection up. None when there is nothing to send to it (another
        runner took it, the address was suppressed meanwhile, or the server is gone)."""
        try:
            session.connection()
        except SmtpUnavailable as exc:
            self._release(recipient)
            with self.lock:
                self.unavailable = self.unavailable or exc.text
            return None
        claimed = self.store.claim_recipient(self.delivery.id, recipient_id=recipient.id)
        self._release(recipient)
        if claimed is not None and claimed.status == "suppressed":
            self._count(claimed)
            return None
        return claimed

    def _loop(self, session: SmtpSession) -> None:
        store, settings = self.store, self.settings
        delivery = self.delivery
        while (recipient := self._next()) is not None:
            token_id = self.token_ids.get(recipient.address) or store.token_ids().get(
                recipient.address
            )
            if token_id is None:  # removed from the subscribers since the list was fixed
                claimed = self._claim(session, recipient)
                if claimed is not None:
                    store.mark_recipient_failed(claimed.id, "no longer a subscriber")
                    self._count(claimed)
                elif self.unavailable is not None:
                    return
                continue
            data = self.letter.message(
                date=store.clock(),
                to=recipient.address,
                name=recipient.name,
                message_id=_message_id(
                    delivery.event, delivery.date, recipient.address, settings.list_name
                ),
                address=recipient.address,
                token=make_token(token_id, self.key, settings.list_name, "unsubscribe"),
            )
            data = sign(data, self.dkim_signer)
            self.pacer.wait()
            if self.stopped():
                self._release(recipient)
                return
            claimed = self._claim(session, recipient)
            if claimed is None:
                if self.unavailable is not None:
                    return
                continue
            try:
                reply = session.send(self._return_path(token_id), claimed.address, data)
            except SmtpUnavailable as exc:  # the reconnect after a drop failed
                store.release_recipient(claimed.id, exc.text)
                with self.lock:
                    self.unavailable = self.unavailable or exc.text
                return
            attempts = claimed.attempts  # the claim counted this attempt
            if reply.status == "sent":
                store.mark_recipient_sent(claimed.id)
            elif reply.status == "permanent":
                store.mark_recipient_failed(claimed.id, reply.describe())
            elif reply.status == "unknown":
                store.mark_recipient_unknown(claimed.id, reply.describe())
            elif attempts >= settings.max_attempts:
                store.mark_recipient_failed(
                    claimed.id, f"{reply.describe()} (gave up after {attempts} attempts)"
                )
            else:
                store.release_recipient(claimed.id, reply.describe())
                if reply.status == "temporary":
                    with self.lock:
                        self.deferred[claimed.id] = time.monotonic() + settings.retry_backoff * (
                            2 ** (attempts - 1)
                        )
                continue
            self._count(claimed)


def _prepare(store: Store, delivery: Delivery) -> None:
    # The audience is fixed the first time: a resumed run finishes the same list.
    if not sum(store.recipient_counts(delivery.id).values()):
        people = store.active_subscribers()
        if not people:
            raise UserError(
                "no subscribers in the state store; import them with `aspdigest subscribers import`"
            )
        store.add_recipients(delivery.id, ((p.address, p.name) for p in people))
    store.mark_interrupted(
        delivery.id,
        "interrupted while being handed to the server; check "
        "the server's log before sending this recipient a copy",
    )


def _receipt(store: Store, delivery_id: int, connections: int) -> dict[str, object]:
    return {"recipients": store.recipient_counts(delivery_id), "connections": connections}


def _report(
    store: Store, delivery_id: int, connections: int, error: str | None = None
) -> SendReport:
    delivery = store.delivery(delivery_id)
    assert delivery is not None
    return SendReport(
        delivery_id, delivery.status, store.recipient_counts(delivery_id), connections, error
    )


def _finish(store: Store, delivery_id: int, connections: int, actor: str) -> SendReport:
    counts = store.recipient_counts(delivery_id)
    receipt = _receipt(store, delivery_id, connections)
    if counts["unknown"]:
        error = (
            f"{counts['unknown']} recipient(s) may or may not have received the digest; "
            "check the SMTP server's log, then resolve them by hand"
        )
        store.mark_unknown(delivery_id, error, receipt, actor=actor)
        return _report(store, delivery_id, connections, error)
    if counts["failed"] and not counts["sent"]:
        error = f"every recipient failed ({counts['failed']})"
        store.mark_failed(delivery_id, error, receipt, actor=actor)
        return _report(store, delivery_id, connections, error)
    store.mark_sent(delivery_id, receipt, actor=actor)
    return _report(store, delivery_id, connections)
