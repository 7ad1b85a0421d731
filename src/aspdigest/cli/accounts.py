"""`aspdigest accounts check`: the accounts the queue would post as, checked without posting."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer

from aspdigest.cli import (
    JsonOpt,
    ProjectOpt,
    app,
    fail,
    resolve,
)

accounts_app = typer.Typer(
    help="The social accounts the queue posts to (credentials from the environment).",
    no_args_is_help=True,
)
app.add_typer(accounts_app, name="accounts")


@accounts_app.command("check")
def accounts_check(
    platform: Annotated[
        list[str] | None,
        typer.Option(
            "--platform", "-p", help="Only this platform (repeatable).", show_default=False
        ),
    ] = None,
    as_json: JsonOpt = False,
    project_path: ProjectOpt = None,
) -> None:
    """Log in with each publisher's credentials and print the account it will post as.

    Nothing is posted. Bluesky reads ASPDIGEST_BLUESKY_PASSWORD (an app password), Mastodon
    ASPDIGEST_MASTODON_TOKEN; platforms handed to people show where their files go. Exits 1
    when any account cannot be used, with one line per problem.
    """
    from aspdigest.config import PLATFORMS
    from aspdigest.deliver import check_accounts

    project = resolve(project_path, with_event=False).project
    unknown = [p for p in platform or [] if p not in PLATFORMS]
    if unknown:
        fail(
            [f'--platform: unknown platform "{p}"; known: {", ".join(PLATFORMS)}' for p in unknown]
        )
    checks = check_accounts(project, os.environ, tuple(platform) if platform else None)
    if as_json:
        typer.echo(json.dumps([c.__dict__ for c in checks], ensure_ascii=False, indent=2))
    else:
        for c in checks:
            if c.account is not None:
                typer.echo(f"{c.platform:<9} {c.publisher:<9} {c.account}")
    problems = [f"{c.platform}: {c.error}" for c in checks if c.error is not None]
    if not as_json and not platform:
        problems.extend(_dkim_lines(project))
    if problems:
        fail(problems)


def _dkim_lines(project: object) -> list[str]:
    """Print how mail is signed and the DNS record to publish; the problems, if any."""
    from aspdigest.config import Project
    from aspdigest.deliver.dkim import signer
    from aspdigest.errors import UserError

    assert isinstance(project, Project)
    try:
        dkim = signer(project, os.environ)
    except UserError as exc:
        return [exc.text]
    if dkim is None:
        typer.echo("dkim      not set up: messages go unsigned (see README, DKIM)")
        return []
    typer.echo(f"dkim      {dkim.algorithm}  d={dkim.domain}  s={dkim.selector}")
    typer.echo(f"publish   {dkim.txt_record()}")
    return []
