"""The subscriber service: the web side of every digest's links (DESIGN.md: serve/).

At the end of the flow, beside the runner, on the same state store: `build_app(project,
event)` opens the store and returns the ASGI app of `app.py` (unsubscribe, sign-up,
confirm, health); `run(project, event, host, port, …)` serves it with uvicorn for `aspdigest
serve`. `app` is the same service as an ASGI object any server can import (`uvicorn
aspdigest.serve:app --workers 4`): it reads the project from ASPDIGEST_PROJECT (or the
current folder) and the event from ASPDIGEST_EVENT (optional when there is one) when the
server starts it.
"""

from __future__ import annotations

import email.utils
import logging
import os
import socket
import sys
from collections.abc import Mapping

from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from aspdigest.config import Project, load_project
from aspdigest.content import load_content
from aspdigest.inputs import resolve_event
from aspdigest.store import open_project_store

EVENT_VARIABLE = "ASPDIGEST_EVENT"


def build_app(
    project: Project, event: str | None, environ: Mapping[str, str] | None = None
) -> Starlette:
    from aspdigest.serve.app import create_app

    meta = load_content(project, resolve_event(project, event)).event
    # The list as readers know it: the From name their digest arrives under.
    list_name = email.utils.parseaddr(project.settings.email.from_ or "")[0] or meta.name
    store = open_project_store(project)
    return create_app(project, store, list_name, meta.language, meta.publisher, environ=environ)


class _LazyApp:
    """Builds the service on the first ASGI call, in the worker process that serves it."""

    def __init__(self) -> None:
        self.app: Starlette | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.app is None:
            # load_project reads ASPDIGEST_PROJECT, else looks up from the current folder.
            self.app = build_app(load_project(), os.environ.get(EVENT_VARIABLE) or None)
        await self.app(scope, receive, send)


app = _LazyApp()


def run(
    project: Project,
    event: str | None,
    host: str,
    port: int,
    *,
    forwarded_allow_ips: str | None = None,
) -> None:
    """Serve until stopped, printing the URL first (port 0 picks a free one)."""
    import uvicorn

    service = build_app(project, event)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    print(f"serving subscribers on http://{shown}:{bound}/", flush=True)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    config = uvicorn.Config(
        service,
        access_log=False,  # ours (serve/guard.py) leaves the tokens out
        log_level="warning",
        proxy_headers=forwarded_allow_ips is not None,
        forwarded_allow_ips=forwarded_allow_ips,
        server_header=False,
    )
    uvicorn.Server(config).run(sockets=[sock])
