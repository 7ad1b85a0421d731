"""The default social publisher: approved posts as ready-to-post files, optionally emailed.

Deliver stage. `HandoffPublisher.publish(publication)` writes one folder per delivery,
`<delivery.outbox>/<event>/<date>/<platform>/<thread|quotes>/` (default `outbox/…` at the
project root, outside `out/`, which every build replaces), holding each post's exact
text (`01.txt`, …), the cards it attaches (`01-1.png`) with their alt text (`01-1.alt.txt`),
`posts.md` for a person to read top to bottom and `posts.json` for a tool. A quotes delivery
has one sub-folder per quote post (`quote-1/…`). The folder is built aside and renamed into
place, so a second run (a retry) replaces it whole and never leaves half of each.

When `delivery.handoff_to` lists addresses, the same posts (with the cards attached) are then
emailed to each over the SMTP server in ASPDIGEST_SMTP_URL. A reply that leaves it unclear
whether the server took the message raises `PublishUncertain` (the delivery becomes
`unknown`); a refusal raises `UserError` (the delivery fails and may be retried).
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aspdigest.config import Project
from aspdigest.deliver import Ledger, Post, Publication, PublishUncertain
from aspdigest.deliver.smtp import SmtpSession, smtp_target
from aspdigest.errors import UserError
from aspdigest.platforms import display_name


class HandoffPublisher:
    name = "handoff"
    resumable = False  # it writes a whole folder again on a retry

    def __init__(
        self, project: Project, environ: Mapping[str, str] | None = None, outbox: Path | None = None
    ) -> None:
        self.project = project
        self.environ = environ
        self.outbox = outbox

    def folder(self, pub: Publication) -> Path:
        # Not under out/: every build replaces out/<event>/, and this folder is a record.
        root = self.outbox or (self.project.path(self.project.settings.delivery.outbox) / pub.event)
        return root / pub.date.isoformat() / pub.platform / pub.channel

    def account(self) -> str:
        root = self.outbox or self.project.path(self.project.settings.delivery.outbox)
        team = self.project.settings.delivery.handoff_to
        return f"files for people to post, in {self.project.relative(root)}/" + (
            f", emailed to {', '.join(team)}" if team else ""
        )

    def publish(
        self,
        publication: Publication,
        ledger: Ledger | None = None,
        halt: Callable[[], bool] | None = None,
    ) -> Mapping[str, Any]:
        target = self.folder(publication)
        if self.project.settings.delivery.handoff_to and not self.project.settings.email.from_:
            raise UserError(
                "aspdigest.toml: email.from: not set; the handoff emails to "
                "delivery.handoff_to need the address they come from"
            )
        files = write_folder(target, publication)
        receipt: dict[str, Any] = {
            "publisher": self.name,
            "folder": self.project.relative(target),
            "files": files,
        }
        team = self.project.settings.delivery.handoff_to
        if team:
            receipt["emailed"] = self._email(publication, target, team)
        return receipt

    def _email(self, pub: Publication, folder: Path, team: tuple[str, ...]) -> list[str]:
        settings = self.project.settings.email
        sender = email.utils.parseaddr(settings.return_path or settings.from_ or "")[1]
        session = SmtpSession(
            smtp_target(self.environ), timeout=settings.timeout, backoff=settings.retry_backoff
        )
        done: list[str] = []
        with session:
            for address in team:
                data = message(pub, folder, address, settings.from_ or "", settings.list_name)
                reply = session.send(sender, address, data)
                if reply.status == "unknown":
                    raise PublishUncertain(
                        f"handoff email to {address}: the connection dropped "
                        f"after the message was sent ({reply.describe()}); "
                        f"check the team's inbox; files are in "
                        f"{self.project.relative(folder)}"
                    )
                if reply.status != "sent":
                    raise UserError(
                        f"handoff email to {address}: refused: {reply.describe()}"
                        f"{'; also emailed ' + ', '.join(done) if done else ''}"
                    )
                done.append(address)
        return done


def _group_files(folder: Path, pub: Publication, posts: tuple[Post, ...]) -> list[dict[str, Any]]:
    folder.mkdir(parents=True, exist_ok=True)
    listed = []
    for n, post in enumerate(posts, start=1):
        name = f"{n:02d}"
        (folder / f"{name}.txt").write_text(post.text, encoding="utf-8")
        media = []
        for m, item in enumerate(post.media, start=1):
            source = pub.folder / item.path
            stem = f"{name}-{m}"
            copy = folder / f"{stem}{source.suffix}"
            shutil.copyfile(source, copy)
            (folder / f"{stem}.alt.txt").write_text(item.alt, encoding="utf-8")
            media.append({"file": copy.name, "alt": item.alt, "source": item.path})
        listed.append({"file": f"{name}.txt", "text": post.text, "media": media})
    return listed


def _markdown(pub: Publication, groups: list[tuple[str, list[dict[str, Any]]]]) -> str:
    platform = display_name(pub.platform)
    lines = [f"# {pub.event} {pub.date}: {pub.channel} for {platform}", ""]
    for title, posts in groups:
        if title:
            lines += [f"## {title}", ""]
        for i, post in enumerate(posts, start=1):
            lines += [f"### Post {i} of {len(posts)} ({post['file']})", "", post["text"], ""]
            for m in post["media"]:
                lines += [f"Image {m['file']}, alt text:", "", m["alt"], ""]
    return "\n".join(lines)


def write_folder(target: Path, pub: Publication) -> int:
    """Write the publication's folder in full beside `target`, then swap it in; returns the
    number of files written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.writing-", dir=target.parent))
    try:
        groups: list[tuple[str, list[dict[str, Any]]]] = []
        if pub.channel == "thread":
            groups.append(("", _group_files(tmp, pub, pub.groups[0])))
        else:
            for q, posts in enumerate(pub.groups, start=1):
                groups.append((f"Quote post {q}", _group_files(tmp / f"quote-{q}", pub, posts)))
        (tmp / "posts.md").write_text(_markdown(pub, groups), encoding="utf-8")
        data = {
            "event": pub.event,
            "date": pub.date.isoformat(),
            "channel": pub.channel,
            "platform": pub.platform,
            "delivery": pub.delivery_id,
            "groups": [{"title": t, "posts": p} for t, p in groups],
        }
        (tmp / "posts.json").write_text(
            json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        os.chmod(tmp, 0o755)
        count = sum(1 for p in tmp.rglob("*") if p.is_file())
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        if target.exists():
            target.rename(old)
        tmp.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return count


def message(pub: Publication, folder: Path, to: str, sender: str, list_id: str) -> bytes:
    """The handoff email: every post as text, every card attached with its alt text."""
    msg = EmailMessage()
    platform = display_name(pub.platform)
    msg["Subject"] = f"Ready to post: {pub.event} {pub.date} {pub.channel} for {platform}"
    msg["From"] = sender
    msg["To"] = to
    msg["Date"] = email.utils.formatdate(usegmt=True)
    key = hashlib.sha256(f"{pub.delivery_id}\0{to}".encode()).hexdigest()[:24]
    # The same id for the same delivery and person, so a resent handoff threads with the first.
    msg["Message-ID"] = f"<handoff.{pub.event}.{pub.date}.{key}@{list_id}>"
    msg.set_content((folder / "posts.md").read_text(encoding="utf-8"))
    for image in sorted(folder.rglob("*.png")):
        msg.add_attachment(
            image.read_bytes(),
            maintype="image",
            subtype="png",
            filename=image.relative_to(folder).as_posix().replace("/", "-"),
        )
    return msg.as_bytes()
