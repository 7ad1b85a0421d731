"""DKIM: digests and test sends signed relaxed/relaxed, verified by dkimpy against the public
key that `accounts check` tells the team to publish."""

from __future__ import annotations

import datetime as dt
import importlib
import re
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from typer.testing import CliRunner

from aspdigest.cli import app
from aspdigest.config import load_project
from aspdigest.deliver.dkim import SIGNED_HEADERS, signer
from aspdigest.deliver.email import send_digest, send_test
from aspdigest.errors import UserError
from aspdigest.store import open_project_store
from aspdigest.subscribers import import_csv, subscribers_path
from support.delivery_helpers import built_copy, environment, smtp_sink
from support.dkim_helpers import dkim_env, verify, write_key

dkim: Any = importlib.import_module("dkim")
DAY = dt.date(2024, 12, 2)
runner = CliRunner()


def published(root: Path, env: dict[str, str]) -> bytes:
    """The TXT record's value as `accounts check` prints it."""
    result = runner.invoke(app, ["accounts", "check", "--project", str(root)], env=env)
    assert result.exit_code == 0, result.stderr
    [line] = [ln for ln in result.stdout.splitlines() if ln.startswith("publish")]
    match = re.fullmatch(r'publish   digest2024\._domainkey\.example\.org\. TXT "(.+)"', line)
    assert match, line
    return match.group(1).encode()


def test_digests_and_test_sends_are_signed_and_verify(tmp_path: Path) -> None:
    root = built_copy(tmp_path)
    key = write_key(tmp_path / "dkim.pem")
    with smtp_sink() as (sink, port):
        env = environment(port, **dkim_env(key))
        record = published(root, env)
        assert record.startswith(b"v=DKIM1; k=rsa; p=")
        project = load_project(root, environ=env)
        send_test(project, "asp23", DAY, "me@example.org", env)
        with open_project_store(project) as store:
            import_csv(store, subscribers_path(project))
            d = store.ensure_delivery("asp23", DAY, "email")
            assert store.approve(d.id, {}, "tester") and store.claim(d.id)
            assert send_digest(store, d.id, project, environ=env).status == "sent"
        messages = [data for _, data in sink.messages]
    assert len(messages) == 1 + 5
    for data in messages:
        assert data.startswith(b"DKIM-Signature: ")
        assert verify(data, record)
        # CRLF lines only, signature included: the sender vouches for it (begin(crlf=True)).
        assert data.count(b"\r\n") == data.count(b"\n") == data.count(b"\r")
        header = data.split(b"\r\n\r\n", 1)[0].decode()
        fields = dict(
            f.strip().split("=", 1)
            for f in re.sub(r"\s+", "", header.split("\r\nFrom:")[0])
            .removeprefix("DKIM-Signature:")
            .split(";")
            if f.strip()
        )
        assert fields["c"] == "relaxed/relaxed"
        assert fields["d"] == "example.org" and fields["s"] == "digest2024"
        signed = [h.lower() for h in fields["h"].split(":")]
        assert set(signed) == {h.lower() for h in SIGNED_HEADERS}
        # A changed subject or a second List-Unsubscribe on the way breaks the signature.
        assert not verify(data.replace(b"Subject: ", b"Subject: Re: ", 1), record)
        extra = data.replace(
            b"\r\nList-Unsubscribe:",
            b"\r\nList-Unsubscribe: <https://evil.example>\r\nList-Unsubscribe:",
            1,
        )
        assert not verify(extra, record)


def test_partial_or_bad_dkim_setup_is_one_line(tmp_path: Path) -> None:
    root = built_copy(tmp_path)

    def problem(env: dict[str, str]) -> str:
        with pytest.raises(UserError) as err:
            signer(load_project(root, environ=env), env)
        return str(err.value)

    assert signer(load_project(root, environ={}), {}) is None
    assert problem({"ASPDIGEST_EMAIL_DKIM_DOMAIN": "example.org"}) == (
        "DKIM: ASPDIGEST_DKIM_KEY_FILE, email.dkim_selector not set; DKIM needs all three"
    )
    missing = tmp_path / "none.pem"
    assert problem(dkim_env(missing)) == (
        f"ASPDIGEST_DKIM_KEY_FILE: {missing}: No such file or directory"
    )
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    assert problem(dkim_env(junk)) == (
        f"ASPDIGEST_DKIM_KEY_FILE: {junk}: not a PEM RSA private key without a passphrase"
    )
    ed = write_key(tmp_path / "ed.pem", "ed25519")
    assert problem(dkim_env(ed)) == (
        f"ASPDIGEST_DKIM_KEY_FILE: {ed}: not a PEM RSA private key without a passphrase"
    )
    weak = tmp_path / "weak.pem"
    weak.write_bytes(
        rsa.generate_private_key(public_exponent=65537, key_size=1024).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    assert problem(dkim_env(weak)) == (
        f"ASPDIGEST_DKIM_KEY_FILE: {weak}: RSA keys under 2048 bits are refused"
    )
    # accounts check says the same, exit 1; the key's contents never appear.
    result = runner.invoke(app, ["accounts", "check", "--project", str(root)], env=dkim_env(junk))
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1].startswith("ASPDIGEST_DKIM_KEY_FILE: ")
