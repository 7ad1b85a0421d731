"""`aspdigest preview`: serve the review site, rebuild it as files change, approve from it.

At the end of the flow, beside the CLI (content → … → build → review site → approve). `start(
config)` builds the event, serves out/<event>/ over HTTP (stdlib ThreadingHTTPServer) and
watches content/, templates/, schedules/ and aspdigest.toml with watchfiles; every change
rebuilds through `aspdigest.build.build` and bumps a version that open pages poll at
`/_version`, so they reload. When a rebuild fails, every review page shows the same one-line
messages the CLI prints instead of stale drafts. The pages are built without the state store;
`GET /_status.json[?date=YYYY-MM-DD]` reads it live (`aspdigest.livestatus`) for review.js to
show each delivery's approval and the Approve buttons. `POST /approve` calls
`aspdigest.queue.approval.approve`, the code behind `aspdigest approve`; nothing is rebuilt, as no
page depends on the store. It returns a running `Preview`; `serve(config)` blocks until Ctrl-C.

Safety: bound to 127.0.0.1 unless told otherwise, and then only requests naming a loopback
Host are answered (no DNS rebinding). Bound anywhere else, or with `--token`, every request
needs the token (ASPDIGEST_PREVIEW_TOKEN, else a generated one printed once), given once as
`?token=` and then kept in an HttpOnly cookie. Approvals also need the page's per-server
form key and the version the page showed, so a cross-site form or a stale page cannot
approve anything.
"""

from __future__ import annotations

import datetime as dt
import secrets
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aspdigest.build import build
from aspdigest.config import CONFIG_FILE, Project, load_project, secret
from aspdigest.errors import UserError
from aspdigest.inputs import resolve_event
from aspdigest.records import Event
from aspdigest.render.templates import make_environment

if TYPE_CHECKING:
    from aspdigest.preview_http import PreviewServer

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
TOKEN_VARIABLE = "ASPDIGEST_PREVIEW_TOKEN"
COOKIE = "aspdigest_preview"
MAX_BODY = 10_000  # bytes of an approval form; it is a few short fields
STATIC_MARK = b'<meta name="aspdigest-mode" content="static">'
ASSETS = {
    "/_review/review.css": "review/static/review.css",
    "/_review/review.js": "review/static/review.js",
}
TEXT_TYPES = {
    ".txt": "text/plain",
    ".mjml": "text/plain",
    ".json": "application/json",
    ".atom": "application/atom+xml",
    ".eml": "text/plain",
    ".html": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
}
Log = Callable[[str], None]


@dataclass(frozen=True)
class PreviewConfig:
    root: Path  # the project folder; settings are read again at every rebuild
    event: str | None
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None  # required on every request when set
    by: str = "preview"  # the approver's name recorded by /approve
    watch: bool = True


def needs_token(host: str, force: bool = False) -> bool:
    return force or host not in LOOPBACK


def choose_token(
    host: str, force: bool, environ: Mapping[str, str] | None = None
) -> tuple[str | None, bool]:
    """The token to require (None when not needed) and whether it was generated here."""
    if not needs_token(host, force):
        return None, False
    given = secret(TOKEN_VARIABLE, environ)
    if given:
        return given, False
    return secrets.token_urlsafe(24), True


def url_for(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


class Site:
    """What the server shows: the latest build of the event, or the lines that stopped it."""

    def __init__(self, config: PreviewConfig, log: Log) -> None:
        self.config = config
        self.log = log
        self.lock = threading.RLock()  # one build at a time; no reads mid-swap
        self.boot = secrets.token_hex(4)
        self.count = 0
        self.errors: tuple[str, ...] = ()
        self.project: Project | None = None
        self.event_id = config.event or ""
        self.event: Event | None = None  # the last good build's event: its zone and language
        self.csrf = secrets.token_urlsafe(24)

    @property
    def version(self) -> str:
        return f"{self.boot}.{self.count}"

    @property
    def event_dir(self) -> Path | None:
        if self.project is None or not self.event_id:
            return None
        return self.project.output_dir / self.event_id

    def rebuild(self, why: str = "start") -> None:
        with self.lock:
            started = time.monotonic()
            try:
                self.project = load_project(self.config.root)
                self.event_id = resolve_event(self.project, self.config.event)
                result = build(self.project, self.event_id)
                self.event = result.days[0].day.event if result.days else None
                self.errors = ()
                fresh = len(result.days) - len(result.reused)
                self.log(
                    f"{why}: rebuilt {self.event_id} ({fresh} day(s) rendered) in "
                    f"{time.monotonic() - started:.2f}s"
                )
            except UserError as exc:
                self.errors = tuple(exc.lines())
                self.log(f"{why}: build failed:")
                for line in self.errors:
                    self.log(f"  {line}")
            except Exception as exc:  # a bug: keep serving, show it, and keep the traceback
                traceback.print_exc(file=sys.stderr)
                self.errors = (f"internal error: {type(exc).__name__}: {exc}",)
            self.count += 1

    def live_status(self, date: dt.date | None) -> dict[str, Any]:
        from aspdigest.livestatus import live_status

        with self.lock:
            if self.project is None or self.event is None:
                return {
                    "state": "error",
                    "message": "the build failed; fix the problems shown first",
                }
            return live_status(
                self.project, self.event_id, self.event.tz, self.event.language, date
            )

    def approve(self, fields: Mapping[str, str]) -> dict[str, Any]:
        from aspdigest.queue.approval import approve_day
        from aspdigest.store import open_project_store

        with self.lock:
            if fields.get("version") != self.version:
                raise UserError(
                    "the drafts changed since this page loaded; it reloads now, then approve again"
                )
            if self.errors or self.project is None:
                raise UserError("the build failed; fix the problems shown first")
            try:
                date = dt.date.fromisoformat(fields.get("date", ""))
            except ValueError:
                raise UserError(
                    f'date: expected a date like 2024-12-02, got "{fields.get("date", "")}"'
                ) from None
            channel = fields.get("channel") or None
            platform = fields.get("platform") or None
            with open_project_store(self.project) as store:
                # The whole day, as `aspdigest approve DATE`: a digest the settings cannot
                # send yet is held and named, the rest approved.
                result = approve_day(
                    self.project,
                    store,
                    self.event_id,
                    date,
                    channel=channel,
                    platform=platform,
                    by=self.config.by,
                    hold_unready=channel is None and platform is None,
                )
            approved = result.approved
            self.log(f"approved {len(approved)} delivery(ies) of {date} as {self.config.by}")
            held = "".join(f" {line}." for line in result.held)
            return {
                "approved": [a.delivery_id for a in approved],
                "message": f"Approved {len(approved)} deliver"
                f"{'y' if len(approved) == 1 else 'ies'}.{held}",
            }

    def error_page(self) -> bytes:
        env = make_environment(self.project)
        html = env.get_template("review/error.html.j2").render(
            lines=self.errors, event_id=self.event_id or "aspdigest", version=self.version
        )
        return html.encode("utf-8")

    def asset(self, path: str) -> bytes | None:
        env = make_environment(self.project)
        assert env.loader is not None
        source, _, _ = env.loader.get_source(env, ASSETS[path])
        return source.encode("utf-8")


def watch_paths(project: Project) -> list[Path]:
    paths = [
        p for p in (project.content_dir, project.templates_dir, project.schedules_dir) if p.is_dir()
    ]
    config = project.root / CONFIG_FILE
    if config.is_file():
        paths.append(config)
    return paths


@dataclass
class Preview:
    """A running preview: its URL, and how to stop it."""

    site: Site
    server: PreviewServer
    url: str
    stop_event: threading.Event
    threads: tuple[threading.Thread, ...]

    def stop(self) -> None:
        self.stop_event.set()
        self.server.shutdown()
        self.server.server_close()
        for thread in self.threads:
            thread.join(timeout=5)


def editor_temp(path: str | Path) -> bool:
    """A file an editor writes beside the one being edited, never content: Emacs locks and
    autosaves (`.#x`, `#x#`), backups (`x~`), Vim swap files (`.x.swp`) and its write test
    `4913`, `x.tmp`, and any other hidden file (`.x`). Saving a record must rebuild once, and
    the log must name the record, not these."""
    name = Path(path).name
    return (
        name.startswith(".")
        or name.endswith(("~", ".tmp", ".swp", ".swx"))
        or (name.startswith("#") and name.endswith("#"))
        or name.isdigit()  # Vim's 4913 (and its 4914, 4915… when taken)
    )


def worth_rebuilding(_change: object, path: str) -> bool:
    """The watcher's filter: changes to editor temp files (`editor_temp`) start no rebuild."""
    return not editor_temp(path)


def _watch(site: Site, paths: list[Path], stop: threading.Event) -> None:
    import watchfiles

    for changes in watchfiles.watch(
        *paths,
        watch_filter=worth_rebuilding,
        stop_event=stop,
        debounce=300,
        step=50,
        raise_interrupt=False,
    ):
        names = sorted({Path(p).name for _, p in changes if not editor_temp(p)})
        if not names:
            continue
        site.rebuild(f"changed {', '.join(names[:3])}{' …' if len(names) > 3 else ''}")


def start(config: PreviewConfig, log: Log = print) -> Preview:
    """Build, then serve and watch in background threads."""
    site = Site(config, log)
    site.rebuild()
    try:
        from aspdigest.preview_http import PreviewServer

        server = PreviewServer(site)
    except OSError as exc:
        raise UserError(
            f"--port {config.port}: cannot listen on {config.host}: {exc.strerror or exc}"
        ) from None
    stop = threading.Event()
    threads = [threading.Thread(target=server.serve_forever, name="preview-http", daemon=True)]
    if config.watch and site.project is not None:
        threads.append(
            threading.Thread(
                target=_watch,
                name="preview-watch",
                daemon=True,
                args=(site, watch_paths(site.project), stop),
            )
        )
    for thread in threads:
        thread.start()
    return Preview(site, server, url_for(config.host, server.port), stop, tuple(threads))


def serve(config: PreviewConfig, log: Log = print, generated_token: bool = False) -> None:
    """Run until Ctrl-C (or SIGTERM)."""
    import signal

    preview = start(config, log)
    shown = preview.url
    if config.token is not None:
        shown += (
            f"?token={config.token}"
            if generated_token
            else f"  (add ?token=… from {TOKEN_VARIABLE} once)"
        )
    log(f"preview: {shown}")
    log("watching content, templates and schedules; Ctrl-C stops")

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        preview.stop()
