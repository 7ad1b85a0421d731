"""Bounces and complaints: what comes back after a digest goes out, into the suppression list.

After the deliver stage: `aspdigest bounces ingest PATH...` calls `ingest(store, project,
paths, keys)`. Each path is one message file, a Maildir or an mbox. Each message is read as:
- an ARF complaint report (RFC 5965, report-type=feedback-report): the reader marked the
  digest as spam → suppressed as `complained`;
- a DSN (RFC 3464, report-type=delivery-status): per recipient, Action failed with a 5.x.x
  status is a hard bounce (suppressed as `bounced` at once), 4.x.x or Action delayed a soft
  one (suppressed once `email.soft_bounce_limit` soft bounces fall within 30 days);
- anything else through `flufl.bounce`, which knows the many non-standard formats (Exim,
  qmail, Exchange, Yahoo, …) and says which failures are permanent.
Who bounced is taken, most exact first, from a VERP return path (`email.return_path =
"bounces+{token}@…"`: the token names the subscriber), from our own unsubscribe token in the
returned original's List-Unsubscribe, then from the addresses the report names. Only
subscribers are ever suppressed: a report about any other address is counted as ignored, so a
forged report cannot silence the list for strangers.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import email.utils
import importlib
import mailbox
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

from aspdigest.config import Project
from aspdigest.errors import Problem, UserError
from aspdigest.store import Store, normalise_address
from aspdigest.tokens import TOKEN_LENGTH, Keys, verify_token

# flufl.bounce ships no type information; imported by name so mypy treats it as Any.
flufl: Any = importlib.import_module("flufl.bounce")
SOFT_WINDOW = dt.timedelta(days=30)
_TOKEN = re.compile(rf"[A-Za-z0-9_\-]{{{TOKEN_LENGTH}}}")


@dataclass(frozen=True)
class Finding:
    address: str
    kind: str  # hard | soft | complaint
    note: str


@dataclass
class Report:
    messages: int = 0
    findings: Counter[str] = field(default_factory=Counter)  # hard, soft, complaint
    suppressed: Counter[str] = field(default_factory=Counter)  # bounced, complained
    ignored: int = 0  # about addresses that are not subscribers
    not_understood: int = 0


def messages(path: Path) -> Iterator[Message]:
    """Every message in a file, an mbox or a Maildir."""
    if path.is_dir():
        if not all((path / sub).is_dir() for sub in ("cur", "new", "tmp")):
            raise UserError([Problem(path.as_posix(), "", "not a Maildir (no cur/, new/, tmp/)")])
        box: mailbox.Mailbox[Any] = mailbox.Maildir(path, factory=None, create=False)
        for key in sorted(box.keys()):
            yield email.message_from_bytes(box.get_bytes(key), policy=email.policy.compat32)
        return
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError([Problem(path.as_posix(), "", exc.strerror or "cannot be read")]) from None
    if data.startswith(b"From "):
        for message in mailbox.mbox(path, create=False):
            yield email.message_from_bytes(message.as_bytes(), policy=email.policy.compat32)
        return
    yield email.message_from_bytes(data, policy=email.policy.compat32)


def _parts(msg: Message, content_type: str) -> list[Message]:
    return [p for p in msg.walk() if p.get_content_type() == content_type]


def _text(part: Message) -> str:
    payload = part.get_payload()
    if isinstance(payload, list):  # message/delivery-status parses into header blocks
        return "\n\n".join(str(p) for p in payload)
    raw = part.get_payload(decode=True)
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(payload)


def _fields(block: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in re.sub(r"\r?\n[ \t]+", " ", block).splitlines():
        name, colon, value = line.partition(":")
        if colon:
            out.setdefault(name.strip().lower(), value.strip())
    return out


def _address(value: str) -> str:
    """`rfc822; ana@example.org`, `<ana@example.org>` or `Ana <ana@…>` → ana@example.org."""
    bare = value.split(";", 1)[-1].strip()
    return normalise_address(email.utils.parseaddr(bare)[1] or bare.strip("<>"))


def _returned_tokens(msg: Message) -> list[str]:
    """Our tokens in the returned original (its List-Unsubscribe) or the VERP address the
    report was sent to."""
    found: list[str] = []
    for name in ("To", "Delivered-To", "X-Original-To", "Envelope-To"):
        for value in msg.get_all(name) or []:
            found += re.findall(rf"\+({_TOKEN.pattern})@", str(value))
    for part in msg.walk():
        kind = part.get_content_type()
        if kind in ("message/rfc822", "text/rfc822-headers"):
            text = str(part) if kind == "message/rfc822" else _text(part)
            found += re.findall(rf"List-Unsubscribe:[^\n]*?[/=]({_TOKEN.pattern})", text)
    return found


def _original_to(msg: Message) -> str | None:
    """The To of the original message a report returns (whole or headers only)."""
    for part in msg.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            inner = part.get_payload()
            original = inner[0] if isinstance(inner, list) and inner else None
        elif kind == "text/rfc822-headers":
            original = email.message_from_string(_text(part))
        else:
            continue
        if isinstance(original, Message) and original.get("To"):
            return str(original["To"])
    return None


def classify(msg: Message) -> tuple[list[Finding], list[str]]:
    """What a report says (address, kind) and the tokens that name its recipient exactly."""
    report_type = (msg.get_param("report-type") or "") if msg.is_multipart() else ""
    tokens = _returned_tokens(msg)
    if isinstance(report_type, str) and report_type.lower() == "feedback-report":
        fields: dict[str, str] = {}
        for part in _parts(msg, "message/feedback-report"):
            fields.update(_fields(_text(part)))
        kind = fields.get("feedback-type", "abuse")
        recipient = fields.get("original-rcpt-to")
        if recipient is None:
            recipient = _original_to(msg)
        found = [Finding(_address(recipient), "complaint", f"ARF {kind}")] if recipient else []
        return found, tokens
    if isinstance(report_type, str) and report_type.lower() == "delivery-status":
        findings = []
        for part in _parts(msg, "message/delivery-status"):
            blocks = [_fields(b) for b in re.split(r"\r?\n\s*\r?\n", _text(part)) if b.strip()]
            for block in blocks[1:] or blocks:
                action = block.get("action", "").lower()
                status = block.get("status", "")
                who = block.get("original-recipient") or block.get("final-recipient")
                if not who or action not in ("failed", "delayed"):
                    continue
                hard = action == "failed" and status.startswith("5")
                kind = "hard" if hard else "soft"
                findings.append(Finding(_address(who), kind, f"DSN {action} {status}".strip()))
        if findings:
            return findings, tokens
    temporary, permanent = flufl.all_failures(msg)
    found = [Finding(_address(a.decode()), "hard", "bounce") for a in sorted(permanent)]
    found += [Finding(_address(a.decode()), "soft", "bounce") for a in sorted(temporary)]
    return found, tokens


def ingest(store: Store, project: Project, paths: list[Path], keys: Keys) -> Report:
    """Read every report under `paths` into the store; what was done, in counts."""
    report = Report()
    settings = project.settings.email
    subscribers = store.token_ids()
    by_token = {token_id: address for address, token_id in subscribers.items()}
    for path in paths:
        for msg in messages(path):
            report.messages += 1
            findings, tokens = classify(msg)
            exact = [
                by_token.get(tid or "")
                for purpose in ("bounce", "unsubscribe")
                for t in tokens
                if (tid := verify_token(t, keys, settings.list_name, purpose))
            ]
            named = [a for a in exact if a]
            if named and findings:
                # The token names the recipient; the report only says what happened.
                findings = [Finding(named[0], findings[0].kind, findings[0].note)]
            elif named:
                findings = [Finding(named[0], "hard", "VERP bounce")]
            if not findings:
                report.not_understood += 1
                continue
            for finding in findings:
                _apply(store, finding, subscribers, settings.soft_bounce_limit, report)
    return report


def _apply(
    store: Store, finding: Finding, subscribers: dict[str, str], limit: int, report: Report
) -> None:
    if finding.address not in subscribers:
        report.ignored += 1
        return
    report.findings[finding.kind] += 1
    store.record_bounce(finding.address, finding.kind, finding.note)
    if finding.kind == "complaint":
        reason = "complained"
    elif (
        finding.kind == "hard"
        or store.bounce_count(finding.address, "soft", store.clock() - SOFT_WINDOW) >= limit
    ):
        reason = "bounced"
    else:
        return
    if store.suppress(finding.address, reason, finding.note):
        report.suppressed[reason] += 1
