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
- `email.connections` workers (`deliver.mailworkers`), each with its own SMTP connection,
  read recipients from the store in batches and claim each one with an atomic update
  (`pending` → `sending`), so no two connections, and no two runners, ever hand over the
  same recipient; without a rate limit, a long list is shared with helper processes
  (`deliver.emailprocs`), one per core, by recipient id;
- the claim is made at the last moment: after the rate limit's wait, MAIL, RCPT, DATA and
  the message itself, right before the final dot (a kill any earlier leaves the recipient
  `pending`, not in doubt); the recipient becomes `sent` after the server's 250, written
  with the next recipient's claim (`store.recipients.Claims`) or before any wait;
- a run that finds a recipient still `sending` (the previous run died between the claim
  and recording the reply) marks it `unknown` and does not resend it: the server may
  have taken that message, and a second copy is worse than a person checking its log;
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
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aspdigest.artifacts import BuiltDay
from aspdigest.config import Project
from aspdigest.deliver import emailprocs
from aspdigest.deliver.dkim import sign, signer
from aspdigest.deliver.mailworkers import Progress, Workers, smtp_session
from aspdigest.deliver.smtp import Reply, smtp_target
from aspdigest.errors import UserError
from aspdigest.readiness import built_without_sender, sender_problems
from aspdigest.render.message import Letter
from aspdigest.store import Delivery, Store
from aspdigest.subscribers import is_address
from aspdigest.tokens import keys, make_token, new_id

CHANNEL = "email"
CHANNELS = (CHANNEL, "digest")  # "digest" is what schedules/<event>.toml and the queue call it
TEST_PREFIX = "[TEST] "


@dataclass(frozen=True)
class SendReport:
    delivery_id: int
    status: str  # the delivery's status afterwards
    counts: Mapping[str, int]  # recipients per status
    connections: int
    error: str | None = None


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
    with smtp_session(project, target) as session:
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
        send = _materials(store, delivery, project, environ, progress, halt)
        _prepare(store, delivery)
    except UserError as exc:
        store.mark_failed(delivery_id, exc.text, actor=actor)
        raise
    counts = store.recipient_counts(delivery_id)
    send.done, send.total = sum(counts.values()) - counts["pending"], sum(counts.values())
    settings = project.settings.email
    shares = emailprocs.shares(settings.connections, settings.rate_per_second, counts["pending"])
    helpers = None
    if len(shares) > 1:
        url = store.engine.url.render_as_string(hide_password=False)
        spans = emailprocs.spans(store.pending_ids(delivery_id))
        helpers = emailprocs.start(send, project, environ, url, delivery_id, shares[1:], spans)
        send.share(helpers.take_span)
    send.run(shares[0], smtp_target(environ))
    if helpers is not None:
        send.connections += helpers.join()
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


def run_share(
    store: Store,
    delivery_id: int,
    project: Project,
    *,
    environ: Mapping[str, str] | None,
    more: Callable[[], tuple[int, int] | None],
    connections: int,
    progress: Progress | None,
    halt: Callable[[], bool] | None,
) -> tuple[int, str | None]:
    """A helper process's part of `send_digest` (see `deliver.emailprocs`): the spans of
    recipient ids `more()` hands out, over `connections` connections; returns the
    connections made and why the server could not be reached, if it could not. Errors
    raise."""
    delivery = store.delivery(delivery_id)
    if delivery is None:
        raise UserError(f"delivery {delivery_id}: no such delivery")
    send = _materials(store, delivery, project, environ, progress, halt)
    send.share(more)
    send.run(connections, smtp_target(environ))
    if send.raised is not None:
        raise send.raised
    return send.connections, send.unavailable


def _materials(
    store: Store,
    delivery: Delivery,
    project: Project,
    environ: Mapping[str, str] | None,
    progress: Progress | None,
    halt: Callable[[], bool] | None,
) -> Workers:
    """Everything a send needs but its recipients, checked: UserError if anything is off."""
    if missing := sender_problems(project.settings):
        raise UserError(missing)
    smtp_target(environ)  # a missing ASPDIGEST_SMTP_URL stops the send before it starts
    return Workers(
        store,
        delivery,
        project,
        load_letter(project, delivery.event, delivery.date, delivery.approved),
        keys(environ).current,
        signer(project, environ),
        _sender(project),
        progress,
        halt,
    )


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
