"""Send a built email digest: one test copy, or every subscriber exactly once.

Deliver stage (… → schedule/outbox → deliver). Both functions read the `digest.eml` the
build wrote (`out/<event>/<date>/digest.eml`), personalise it per recipient (address,
signed unsubscribe link, Message-ID, Date) and hand it to `deliver.smtp`.

`send_test(project, event, date, address)` sends one copy with "[TEST] " before the
subject and records nothing. `send_digest(store, delivery_id, project)` sends a
delivery the caller has claimed to every subscriber not suppressed, returning a frozen
`SendReport`. Exactly once, also across crashes:

- the recipient list is fixed in the store the first time (later runs resume it);
- each recipient is marked `sending` before its message goes to the server and `sent`
  after the server's 250, in the store, one transaction each;
- a run that finds a recipient still `sending` (the previous run died between those two
  steps) marks it `unknown` and does not resend it: the server may have taken that
  message, and a second copy is worse than a person checking the server's log;
- a connection lost before the end of DATA (nothing can have been accepted) reconnects
  and resends; lost while waiting for the final reply, the recipient is `unknown`;
- 4xx replies are retried with backoff (the recipient waits its turn while others go);
  5xx replies mark that recipient `failed` and the send goes on.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from aspdigest.config import Project
from aspdigest.deliver.smtp import Reply, SmtpSession, SmtpTarget, SmtpUnavailable, smtp_target
from aspdigest.errors import UserError
from aspdigest.outbox import Delivery, Store
from aspdigest.render.message import Letter
from aspdigest.subscribers import is_address, make_token, unsubscribe_key

CHANNEL = "email"
CHANNELS = (CHANNEL, "digest")  # "digest" is what schedules/<event>.toml and the queue call it
EML = "digest.eml"
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

    def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        if self.next > now:
            time.sleep(self.next - now)
            now = self.next
        self.next = now + self.interval


def eml_path(project: Project, event: str, date: dt.date) -> Path:
    return project.output_dir / event / date.isoformat() / EML


def load_letter(project: Project, event: str, date: dt.date,
                approved: Mapping[str, str] | None = None) -> Letter:
    """The built digest, checked against the approved sha256 when one was recorded."""
    path = eml_path(project, event, date)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{project.relative(path)}: not built; run "
                        f"`aspdigest build {event}` first") from None
    for name, sha in (approved or {}).items():
        if name.endswith(EML) and hashlib.sha256(data).hexdigest() != sha:
            raise UserError(f"{project.relative(path)}: changed since it was approved; "
                            "approve the new build before sending")
    return Letter.from_eml(data)


def _sender(project: Project) -> str:
    """The envelope sender: email.return_path (where bounces go), else the From address."""
    settings = project.settings.email
    name, value = ("return_path", settings.return_path) if settings.return_path \
        else ("from", settings.from_)
    _, address = email.utils.parseaddr(value)
    if not is_address(address):
        raise UserError(f"aspdigest.toml: email.{name}: expected an address like "
                        f'"Digest <digest@example.org>", got "{value}"')
    return address


def _message_id(event: str, date: dt.date, address: str, list_id: str) -> str:
    # The same for the same recipient and digest, so a client can drop a duplicate.
    digest = hashlib.sha256(f"{event}\0{date}\0{address}".encode()).hexdigest()[:24]
    return f"<{event}.{date.isoformat()}.{digest}@{list_id}>"


def _session(project: Project, target: SmtpTarget) -> SmtpSession:
    settings = project.settings.email
    return SmtpSession(target, timeout=settings.timeout, backoff=settings.retry_backoff)


def send_test(project: Project, event: str, date: dt.date, address: str,
              environ: Mapping[str, str] | None = None) -> Reply:
    """Send one test copy of the built digest to `address`; a UserError if it is refused.
    Nothing is recorded and the suppression list is not consulted: it goes to the team."""
    if not is_address(address):
        raise UserError(f'--test: expected an address like name@example.org, got "{address}"')
    letter = load_letter(project, event, date)
    key = unsubscribe_key(environ)
    target = smtp_target(environ)
    settings = project.settings.email
    data = letter.message(
        date=dt.datetime.now(dt.UTC), message_id=f"<test.{uuid.uuid4().hex}@{settings.list_id}>",
        to=address, address=address, token=make_token(address, key, settings.list_id),
        subject_prefix=TEST_PREFIX,
    )
    with _session(project, target) as session:
        reply = Reply("temporary")
        for attempt in range(settings.max_attempts):
            if attempt:
                time.sleep(settings.retry_backoff * 2 ** (attempt - 1))
            reply = session.send(_sender(project), address, data)
            if reply.status not in ("temporary", "retry"):
                break
    if reply.status != "sent":
        raise UserError(f"{address}: {target.safe} did not take the test message: "
                        f"{reply.describe()}")
    return reply


def send_digest(store: Store, delivery_id: int, project: Project, *,
                environ: Mapping[str, str] | None = None,
                progress: Progress | None = None) -> SendReport:
    """Send a claimed email delivery to every subscriber not suppressed, resuming any
    earlier run of it; the delivery ends `sent`, `failed` or `unknown`."""
    delivery = store.delivery(delivery_id)
    if delivery is None:
        raise UserError(f"delivery {delivery_id}: no such delivery")
    if delivery.channel not in CHANNELS or delivery.status != "claimed":
        raise UserError(f"delivery {delivery_id}: is {delivery.channel} and {delivery.status}; "
                        "send_digest sends a claimed email delivery")
    try:
        letter = load_letter(project, delivery.event, delivery.date, delivery.approved)
        key = unsubscribe_key(environ)
        target = smtp_target(environ)
        sender = _sender(project)
        _prepare(store, delivery)
    except UserError as exc:
        store.mark_failed(delivery_id, exc.text)
        raise
    settings = project.settings.email
    pacer = Pacer(settings.rate_per_second)
    deferred: dict[int, float] = {}  # recipient id → monotonic time of its next 4xx retry
    total = sum(store.recipient_counts(delivery_id).values())
    done = total - len(store.recipients(delivery_id, "pending"))
    with _session(project, target) as session:
        while True:
            now = time.monotonic()
            waiting = {rid for rid, at in deferred.items() if at > now}
            recipient = store.next_pending(delivery_id, skip=waiting)
            if recipient is None:
                if not waiting:
                    break
                time.sleep(max(0.0, min(deferred[r] for r in waiting) - now))
                continue
            deferred.pop(recipient.id, None)
            if store.is_suppressed(recipient.address):
                store.mark_recipient_suppressed(recipient.id, "on the suppression list")
            elif store.mark_recipient_sending(recipient.id):
                data = letter.message(
                    date=store.clock(), to=email.utils.formataddr((recipient.name or "",
                                                                   recipient.address)),
                    message_id=_message_id(delivery.event, delivery.date, recipient.address,
                                           settings.list_id),
                    address=recipient.address,
                    token=make_token(recipient.address, key, settings.list_id),
                )
                pacer.wait()
                try:
                    reply = session.send(sender, recipient.address, data)
                except SmtpUnavailable as exc:
                    store.release_recipient(recipient.id, exc.text)
                    store.mark_failed(delivery_id, exc.text, _receipt(store, delivery_id, session))
                    return _report(store, delivery_id, session, exc.text)
                attempts = recipient.attempts + 1
                if reply.status == "sent":
                    store.mark_recipient_sent(recipient.id)
                elif reply.status == "permanent":
                    store.mark_recipient_failed(recipient.id, reply.describe())
                elif reply.status == "unknown":
                    store.mark_recipient_unknown(recipient.id, reply.describe())
                elif attempts >= settings.max_attempts:
                    store.mark_recipient_failed(recipient.id, f"{reply.describe()} (gave up "
                                                f"after {attempts} attempts)")
                else:
                    store.release_recipient(recipient.id, reply.describe())
                    if reply.status == "temporary":
                        deferred[recipient.id] = time.monotonic() + settings.retry_backoff * (
                            2 ** (attempts - 1))
                    continue
            done += 1
            if progress is not None:
                progress(done, total, recipient.address)
    return _finish(store, delivery_id, session)


def _prepare(store: Store, delivery: Delivery) -> None:
    # The audience is fixed the first time: a resumed run finishes the same list.
    if not sum(store.recipient_counts(delivery.id).values()):
        people = store.subscribers()
        if not people:
            raise UserError("no subscribers in the state store; import them with "
                            "`aspdigest subscribers import`")
        store.add_recipients(delivery.id, ((p.address, p.name) for p in people))
    store.mark_interrupted(delivery.id, "interrupted while being handed to the server; check "
                           "the server's log before sending this recipient a copy")


def _receipt(store: Store, delivery_id: int, session: SmtpSession) -> dict[str, object]:
    return {"recipients": store.recipient_counts(delivery_id), "connections": session.connections}


def _report(store: Store, delivery_id: int, session: SmtpSession,
            error: str | None = None) -> SendReport:
    delivery = store.delivery(delivery_id)
    assert delivery is not None
    return SendReport(delivery_id, delivery.status, store.recipient_counts(delivery_id),
                      session.connections, error)


def _finish(store: Store, delivery_id: int, session: SmtpSession) -> SendReport:
    counts = store.recipient_counts(delivery_id)
    receipt = _receipt(store, delivery_id, session)
    if counts["unknown"]:
        error = (f"{counts['unknown']} recipient(s) may or may not have received the digest; "
                 "check the SMTP server's log, then resolve them by hand")
        store.mark_unknown(delivery_id, error, receipt)
        return _report(store, delivery_id, session, error)
    if counts["failed"] and not counts["sent"]:
        error = f"every recipient failed ({counts['failed']})"
        store.mark_failed(delivery_id, error, receipt)
        return _report(store, delivery_id, session, error)
    store.mark_sent(delivery_id, receipt)
    return _report(store, delivery_id, session)
