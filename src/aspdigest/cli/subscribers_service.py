"""`aspdigest serve` and `aspdigest bounces ingest`: the subscriber side of the project.

The edge of the flow for what comes back from readers: `serve` runs the subscriber service
(`aspdigest.serve`: unsubscribe, sign-up, confirm) under uvicorn on the project's store;
`bounces ingest` reads bounce and complaint reports into the suppression list
(`aspdigest.bounces`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from aspdigest.cli import EventArg, JsonOpt, ProjectOpt, app, fail, opened, resolve, run

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
    proj, _ = resolve(project, with_event=False)
    try:
        run(lambda: serve_forever(proj, event, host, port, forwarded_allow_ips=forwarded_allow_ips))
    except OSError as exc:
        fail([f"--port: cannot listen on {host}:{port}: {exc.strerror or exc}"])
    except KeyboardInterrupt:
        pass


@bounces_app.command("ingest")
def bounces_ingest(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Message files, Maildirs or mbox files holding DSNs and ARF reports."),
    ],
    as_json: JsonOpt = False,
    project: ProjectOpt = None,
) -> None:
    """Read bounces (RFC 3464 and other formats) and complaints (RFC 5965) into the
    suppression list: hard bounces and complaints at once, soft bounces after
    email.soft_bounce_limit within 30 days."""
    from aspdigest.bounces import ingest
    from aspdigest.tokens import keys

    signing = run(keys)
    with opened(project, with_event=False) as (proj, _, store):
        report = run(lambda: ingest(store, proj, list(paths), signing))
    if as_json:
        print(
            json.dumps(
                {
                    "messages": report.messages,
                    "hard": report.findings["hard"],
                    "soft": report.findings["soft"],
                    "complaints": report.findings["complaint"],
                    "suppressed": dict(sorted(report.suppressed.items())),
                    "ignored": report.ignored,
                    "not_understood": report.not_understood,
                },
                indent=2,
            )
        )
        return
    print(
        f"{report.messages} messages: {report.findings['hard']} hard bounces, "
        f"{report.findings['soft']} soft bounces, {report.findings['complaint']} complaints; "
        f"suppressed {report.suppressed['bounced']} as bounced, "
        f"{report.suppressed['complained']} as complained; "
        f"{report.ignored} about non-subscribers ignored, {report.not_understood} not understood"
    )
