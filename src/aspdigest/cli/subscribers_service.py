"""`aspdigest serve` and `aspdigest bounces ingest`: the subscriber side of the project.

The edge of the flow for what comes back from readers: `serve` runs the subscriber service
(`aspdigest.serve`: unsubscribe, sign-up, confirm) under uvicorn on the project's store;
`bounces ingest` reads bounce and complaint reports into the suppression list
(`aspdigest.bounces`).
"""

from __future__ import annotations

from typing import Annotated

import typer

from aspdigest.cli import EventArg, ProjectOpt, _project, app, fail, run

bounces_app = typer.Typer(
    help="Bounce and complaint reports (DSN, ARF) read into the suppression list.",
    no_args_is_help=True,
)
app.add_typer(bounces_app, name="bounces")


@app.command()
def serve(
    event: EventArg = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", help="Port to listen on (0: any free one).")
    ] = 8080,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            "--forwarded-allow-ips",
            help="Reverse proxies (comma-separated IPs) whose X-Forwarded-For/-Proto to trust.",
            show_default=False,
        ),
    ] = None,
    project: ProjectOpt = None,
) -> None:
    """Serve the subscriber pages: one-click unsubscribe, sign-up, confirmation, /healthz."""
    from aspdigest.serve import run as serve_forever

    if not 0 <= port <= 65535:
        fail([f"--port: expected 0 to 65535, got {port}"])
    proj = _project(project)
    try:
        run(lambda: serve_forever(proj, event, host, port, forwarded_allow_ips=forwarded_allow_ips))
    except OSError as exc:
        fail([f"--port: cannot listen on {host}:{port}: {exc.strerror or exc}"])
    except KeyboardInterrupt:
        pass
