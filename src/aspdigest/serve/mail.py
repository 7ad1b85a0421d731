"""The service's own mail: the confirmation link of a sign-up or a resubscription.

Part of the subscriber service (`aspdigest.serve`): `app.py` calls `send_confirmation`
after it has answered the person (as a background task, so the answer takes as long whether
or not a mail goes, and says nothing about the address). The message is plain text in the
subscriber's language, from `email.from`, DKIM-signed by the same `deliver.dkim.sign` as
the digests, and goes over ASPDIGEST_SMTP_URL through `deliver.smtp`.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import uuid
from email.message import EmailMessage

from aspdigest.config import Project
from aspdigest.deliver.dkim import Signer, sign
from aspdigest.deliver.smtp import SmtpSession, SmtpTarget
from aspdigest.render.message import SMTP_POLICY
from aspdigest.serve.pages import texts

log = logging.getLogger("aspdigest.serve")


def confirmation(
    project: Project, list_name: str, address: str, language: str | None, link: str
) -> bytes:
    words = texts(language)
    settings = project.settings.email
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["From"] = settings.sender(list_name)
    msg["To"] = address  # checked by is_address: no name, nothing a header could split on
    msg["Subject"] = words["mail_subject"].format(list=list_name)
    msg["Date"] = email.utils.format_datetime(dt.datetime.now(dt.UTC))
    msg["Message-ID"] = f"<confirm.{uuid.uuid4().hex}@{settings.list_name}>"
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(words["mail_body"].format(list=list_name, link=link))
    return msg.as_bytes()


def send_confirmation(
    project: Project,
    target: SmtpTarget,
    dkim_signer: Signer | None,
    sender: str,
    address: str,
    data: bytes,
) -> None:
    """Hand one confirmation mail to the server; a failure is logged (without the
    address), never shown to the person, who was already told to check their inbox."""
    settings = project.settings.email
    try:
        with SmtpSession(target, timeout=settings.timeout, backoff=0.5) as session:
            reply = session.send(sender, address, sign(data, dkim_signer))
    except Exception as exc:  # a background task: nobody else would see it
        log.warning("confirmation mail not sent: %s", type(exc).__name__)
        return
    if reply.status != "sent":
        log.warning("confirmation mail refused: %s", reply.describe())
