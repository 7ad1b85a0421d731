"""Subscriber CSV import, unsubscribe tokens and the `aspdigest subscribers` commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aspdigest.cli import app
from aspdigest.config import Project
from aspdigest.errors import UserError
from aspdigest.store import open_project_store
from aspdigest.subscribers import (
    import_csv,
    listing,
    read_csv,
    subscribers_path,
    unsubscribe,
)
from aspdigest.tokens import (
    TOKEN_LENGTH,
    Keys,
    check_key,
    key_bits,
    keys,
    make_token,
    new_id,
    verify_token,
)

KEY = b"known-answer-key-0123456789abcdef"
ID = "00112233445566778899aabbccddeeff"
LIST = "asp-digest.example.org"


def write(tmp_path: Path, text: str, name: str = "people.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(UserError) as err:
        read_csv(path, path.name)
    return err.value.lines()


def test_sample_subscribers_file_is_valid(sample_project: Project) -> None:
    rows = read_csv(subscribers_path(sample_project))
    assert len(rows) == 5
    assert all(r.address.endswith("@example.org") for r in rows)
    assert [r.language for r in rows].count("fr") == 1


def test_columns_may_be_in_any_order_and_name_language_optional(tmp_path: Path) -> None:
    path = write(tmp_path, "\ufeffLanguage, Email ,name\nfr,a@example.org,\n,b@example.org,Bo\n\n")
    rows = read_csv(path)
    assert [(r.address, r.name, r.language, r.line) for r in rows] == [
        ("a@example.org", None, "fr", 2),
        ("b@example.org", "Bo", None, 3),
    ]
    only = write(tmp_path, "email\nc@example.org\n", "only.csv")
    assert [r.address for r in read_csv(only)] == ["c@example.org"]


def test_every_bad_line_is_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        (
            "email,name,language\n"
            "not-an-address,X,en\n"
            ",Nobody,en\n"
            "a@example.org,A,klingon-xx\n"
            "A@example.org,A again,\n"
            'b@example.org,"Line\nbreak",\n'
            "c@example.org,C,en,extra\n"
            "evil@example.org\r\nBcc: x@example.org,E,\n"  # line 9 is fine, line 10 is not
        ),
    )
    assert problems(path) == [
        'people.csv: line 2: email: expected an address like name@example.org, got "not-an-address"',
        "people.csv: line 3: email: expected an address like name@example.org, got nothing",
        'people.csv: line 4: language: expected a language tag such as "en" or "fr", got "klingon-xx"',
        "people.csv: line 5: email: A@example.org is already on line 4",
        "people.csv: line 7: name: contains a line break, U+000A (LINE FEED); keep it on one line",
        "people.csv: line 8: 4 cells but the header names 3 columns "
        "(a comma in a name needs the name in double quotes)",
        'people.csv: line 10: email: expected an address like name@example.org, got "Bcc: x@example.org"',
    ]


def test_a_name_that_decodes_to_a_line_break_is_refused(tmp_path: Path) -> None:
    # Issue 19: such a name passed the import and stopped every send at its row.
    path = write(
        tmp_path,
        (
            "email,name\n"
            "ana@example.org,Ana\n"
            "carol@example.org,=?utf-8?q?Carol=0D=0AX-Injected:_name?=\n"
            "dan@example.org,Dan =?utf-8?b?RGFuIBs=?=\n"
            "eve@example.org,=?utf-8?q?=C3=88ve?=\n"
        ),
    )
    assert problems(path) == [
        'people.csv: line 3: name: contains the encoded word "=?utf-8?q?Carol=0D=0AX-Injected:_'
        'name?=", which decodes to U+000D (CARRIAGE RETURN); write the text itself',
        'people.csv: line 4: name: contains the encoded word "=?utf-8?b?RGFuIBs=?=", which '
        "decodes to U+001B (ESCAPE); write the text itself",
    ]


def test_header_problems(tmp_path: Path) -> None:
    assert problems(write(tmp_path, "mail,nmae\nx@example.org,X\n")) == [
        'people.csv: line 1: unknown column "mail"; did you mean "email"?',
        'people.csv: line 1: unknown column "nmae"; did you mean "name"?',
        'people.csv: line 1: no "email" column',
    ]
    assert problems(write(tmp_path, "")) == [
        "people.csv: line 1: expected a header row naming the columns: email, name, language"
    ]
    assert problems(tmp_path / "missing.csv") == ["missing.csv: file not found"]
    (tmp_path / "latin1.csv").write_bytes(b"email,name\nz@example.org,Z\xe9\n")
    assert problems(tmp_path / "latin1.csv") == [
        "latin1.csv: line 2: not valid UTF-8; save the file as UTF-8"
    ]


def test_tokens_known_answers() -> None:
    # Fixed key + fixed id → fixed token: a change of format breaks every link already sent.
    assert make_token(ID, KEY, "digest.example.org", "unsubscribe") == (
        "AQARIjNEVWZ3iJmqu8zd7v8AAAAAasiqV7vmLX3VBRws_1Ge8g"
    )
    assert make_token(ID, KEY, "digest.example.org", "confirm", 1733140800) == (
        "AQARIjNEVWZ3iJmqu8zd7v9nTaFAO8sJBsFjhLvwdQGN9qL6IA"
    )
    assert TOKEN_LENGTH == 50


def test_tokens_are_opaque_and_resist_tampering() -> None:
    good = Keys(KEY)
    token = make_token(ID, KEY, LIST, "unsubscribe")
    assert "@" not in token and all(c.isalnum() or c in "-_" for c in token)
    assert verify_token(token, good, LIST, "unsubscribe") == ID
    assert verify_token(token, Keys(b"x" * 32), LIST, "unsubscribe") is None
    assert verify_token(token, good, "other.example.org", "unsubscribe") is None
    assert verify_token(token, good, LIST, "confirm") is None  # another purpose
    assert verify_token(token[:-1], good, LIST, "unsubscribe") is None  # truncated
    flipped = token[:5] + ("A" if token[5] != "A" else "B") + token[6:]
    assert verify_token(flipped, good, LIST, "unsubscribe") is None  # another id
    assert verify_token("garbage", good, LIST, "unsubscribe") is None
    assert verify_token("!" * TOKEN_LENGTH, good, LIST, "unsubscribe") is None
    # Expiry: accepted up to the second it names, refused after.
    confirm = make_token(ID, KEY, LIST, "confirm", 1000)
    assert verify_token(confirm, good, LIST, "confirm", now=1000) == ID
    assert verify_token(confirm, good, LIST, "confirm", now=1001) is None
    # Rotation: a token signed with the old key still works while it is the _OLD key.
    rotated = Keys(b"new-key-abcdefghijklmnopqrstuvwxyz", old=KEY)
    assert verify_token(token, rotated, LIST, "unsubscribe") == ID
    assert make_token(ID, rotated.current, LIST, "unsubscribe") != token


def test_signing_key_is_required_and_strong() -> None:
    fix = '; make one with python3 -c "import secrets; print(secrets.token_urlsafe(32))"'

    def refused(env: dict[str, str]) -> str:
        with pytest.raises(UserError) as err:
            keys(env)
        return str(err.value)

    assert refused({}) == (
        "ASPDIGEST_UNSUBSCRIBE_KEY: not set; real sends sign each recipient's unsubscribe "
        "link with it" + fix
    )
    var = "ASPDIGEST_UNSUBSCRIBE_KEY"
    assert refused({var: "short-key-12345"}) == f"{var}: too short, under 128 bits{fix}"
    assert refused({var: "0123456789abcdef0123456789abcd"}) == (
        f"{var}: too short, under 128 bits{fix}"  # 30 hex digits: 120 bits
    )
    assert refused({var: " " * 16}) == f"{var}: holds spaces or line breaks{fix}"
    assert refused({var: "abcdefgh" * 4}) == f"{var}: made of repeated characters{fix}"
    assert refused({var: "s" * 40}) == f"{var}: made of repeated characters{fix}"
    assert refused({var: "a key with spaces in the middle of it"}) == (
        f"{var}: holds spaces or line breaks{fix}"
    )
    good = "0123456789abcdef0123456789abcdeF"  # 32 hex digits: 128 bits
    assert keys({var: good}).current == good.encode()
    assert refused({var: good, f"{var}_OLD": "tiny-old-key"}) == (
        f"{var}_OLD: too short, under 128 bits{fix}"
    )
    both = keys({var: good, f"{var}_OLD": "Zm9vYmFyYmF6cXV4cXV1eGNvcmdl"})
    assert both.accepted == (good.encode(), b"Zm9vYmFyYmF6cXV4cXV1eGNvcmdl")


def test_import_and_listing_keep_suppressions(sample_project: Project) -> None:
    with open_project_store(sample_project) as store:
        counts = import_csv(store, subscribers_path(sample_project))
        assert (counts.added, counts.removed) == (5, 0)
        first = store.subscribers()[0].address
        assert unsubscribe(store, first.upper(), "complained")
        assert not unsubscribe(store, first)
        assert unsubscribe(store, "gone@example.org", "bounced")
        with pytest.raises(UserError) as err:
            unsubscribe(store, "nope")
        assert str(err.value) == "nope: expected an address like name@example.org"
        # Importing the same file again does not undo an unsubscribe.
        import_csv(store, subscribers_path(sample_project))
        rows = listing(store)
    assert [(r.address, r.suppressed) for r in rows if r.suppressed] == [
        (first, "complained"),
        ("gone@example.org", "bounced"),
    ]
    assert len(rows) == 6


def test_subscribers_commands(sample_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(sample_root)
    runner = CliRunner()
    result = runner.invoke(app, ["subscribers", "import"])
    assert result.exit_code == 0, result.output
    assert result.output == "subscribers.csv: 5 added, 0 updated, 0 unchanged, 0 removed\n"
    (sample_root / "two.csv").write_text("email\nana.example@example.org\nnew@example.org\n")
    result = runner.invoke(app, ["subscribers", "import", "two.csv", "--replace", "--json"])
    assert json.loads(result.output) == {"added": 1, "updated": 1, "unchanged": 0, "removed": 4}
    result = runner.invoke(
        app, ["subscribers", "unsubscribe", "New@example.org", "--reason", "bounced"]
    )
    assert result.output == "New@example.org: suppressed (bounced)\n"
    result = runner.invoke(app, ["subscribers", "list"])
    assert result.output == (
        "address\tname\tlanguage\tstatus\n"
        "ana.example@example.org\nnew@example.org\t\t\tsuppressed: bounced\n"
    )
    result = runner.invoke(app, ["subscribers", "list", "--json"])
    listed = json.loads(result.output)
    assert listed[1] == {
        "address": "new@example.org",
        "name": None,
        "language": None,
        "suppressed": "bounced",
        "status": "suppressed",
        "subscribed_at": listed[1]["subscribed_at"],
        "confirmed_at": listed[1]["confirmed_at"],
    }
    # An imported subscriber consented when imported: both times are the import's.
    assert listed[0]["status"] == "active"
    assert listed[0]["subscribed_at"].endswith("Z")
    assert listed[0]["confirmed_at"] == listed[0]["subscribed_at"]
    result = runner.invoke(app, ["subscribers", "import", "missing.csv"])
    assert (result.exit_code, result.output) == (1, "missing.csv: file not found\n")
    result = runner.invoke(app, ["subscribers", "unsubscribe", "x@example.org", "--reason", "meh"])
    assert result.exit_code == 2


def test_import_command_refuses_an_encoded_line_break_and_imports_nothing(
    sample_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(sample_root)
    (sample_root / "subscribers.csv").write_text(
        "email,name\nana@example.org,Ana\ncarol@example.org,=?utf-8?q?Carol=0D=0AX-Injected:_name?=\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["subscribers", "import"])
    assert (result.exit_code, result.output) == (
        1,
        'subscribers.csv: line 3: name: contains the encoded word "=?utf-8?q?Carol=0D=0AX-Injected:'
        '_name?=", which decodes to U+000D (CARRIAGE RETURN); write the text itself\n',
    )
    result = CliRunner().invoke(app, ["subscribers", "list"])
    assert result.stdout == "address\tname\tlanguage\tstatus\n"


# -- the edges a mutation run found unwatched (issue 22) -------------------------------------------


def test_rows_after_blank_lines_are_read_with_their_own_line_numbers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "email,name,language\na@example.org,A,en\n\n , ,\nb@example.org,B\nc@example.org\n",
    )
    assert [(r.address, r.name, r.language, r.line) for r in read_csv(path)] == [
        ("a@example.org", "A", "en", 2),
        ("b@example.org", "B", None, 5),
        ("c@example.org", None, None, 6),
    ]


def test_a_short_row_is_read_with_what_it_has_or_named(tmp_path: Path) -> None:
    # fewer cells than columns: the missing ones are empty, and a missing address is said so
    assert problems(write(tmp_path, "name,email\nAna\nBo,b@example.org\n")) == [
        "people.csv: line 2: email: expected an address like name@example.org, got nothing"
    ]
    rows = read_csv(write(tmp_path, "email,name,language\nb@example.org\n", "short.csv"))
    assert [(r.address, r.name, r.language) for r in rows] == [("b@example.org", None, None)]


def test_an_unknown_column_without_a_close_name_lists_the_columns(tmp_path: Path) -> None:
    assert problems(write(tmp_path, "email,postcode\nx@example.org,1\n")) == [
        'people.csv: line 1: unknown column "postcode"; columns: email, name, language'
    ]
    # a trailing comma in the header is a column without a name, not one named ""
    assert problems(write(tmp_path, "email,name,\nx@example.org,X,\n")) == [
        "people.csv: line 1: column 3 has no name; name it or remove it"
    ]
    assert problems(write(tmp_path, " , \nx@example.org\n")) == [
        "people.csv: line 1: expected a header row naming the columns: email, name, language"
    ]


def test_every_problem_of_a_row_is_reported_and_the_rest_still_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "email,name,language\nbad,=?utf-8?q?A=0AB?=,xx-notreal-tag\nb@example.org,B,fr-CA\n",
    )
    assert problems(path) == [
        'people.csv: line 2: email: expected an address like name@example.org, got "bad"',
        'people.csv: line 2: name: contains the encoded word "=?utf-8?q?A=0AB?=", which decodes '
        "to U+000A (LINE FEED); write the text itself",
        'people.csv: line 2: language: expected a language tag such as "en" or "fr", got '
        '"xx-notreal-tag"',
    ]


def test_import_keeps_subscribers_missing_from_the_file_unless_told_to_replace(
    sample_project: Project, tmp_path: Path
) -> None:
    one = write(tmp_path, "email\nnew@example.org\n", "one.csv")
    with open_project_store(sample_project) as store:
        import_csv(store, subscribers_path(sample_project))
        counts = import_csv(store, one, shown="one.csv")
        assert (counts.added, counts.removed) == (1, 0)
        assert len(store.subscribers()) == 6
        counts = import_csv(store, one, replace=True)
        assert (counts.added, counts.removed) == (0, 5)
        assert [s.address for s in store.subscribers()] == ["new@example.org"]
    with pytest.raises(UserError) as err:
        import_csv(store, tmp_path / "nothing.csv", shown="shown.csv")
    assert err.value.lines() == ["shown.csv: file not found"]


def test_key_strength_estimates_and_edges() -> None:
    assert key_bits("0123456789ABCDEF") == 64  # hex, either case: 4 bits a character
    assert key_bits("Zm9vYmFy") == 48  # base64 and base64url: 6
    assert key_bits("Zm9v-_+/=") == 54
    assert key_bits("!@#$%^&*") == pytest.approx(8 * 6.569855608330948)  # printable: log2(95)
    # eight different characters are enough when the key is long and not a repeated run
    assert check_key("K", "abcdefghabcdefghhgfedcbaabcdefgh") == b"abcdefghabcdefghhgfedcbaabcdefgh"
    with pytest.raises(UserError, match=r"^K: made of repeated characters"):
        check_key("K", "abcdefgabcdefggfedcbaabcdefgabcdefg")  # seven
    assert check_key("K", "0123456789ABCDEF0123456789abcdeF") == b"0123456789ABCDEF0123456789abcdeF"


def test_new_ids_and_purposes() -> None:
    first, second = new_id(), new_id()
    assert len(first) == 32 and int(first, 16) >= 0 and first != second
    with pytest.raises(ValueError, match=r"^unknown token purpose 'resign'$"):
        make_token(ID, KEY, LIST, "resign")


def test_a_windows_line_break_inside_a_quoted_name_is_read_as_written(tmp_path: Path) -> None:
    # The CSV is read with newline="" as the csv module asks: "\r\n" inside quotes stays two
    # characters, and the first is the one named.
    path = tmp_path / "crlf.csv"
    path.write_bytes(b'email,name\r\na@example.org,"A\r\nB"\r\nb@example.org,B\r\n')
    assert problems(path) == [
        "crlf.csv: line 3: name: contains the control character U+000D (CARRIAGE RETURN); remove it"
    ]


def test_unsubscribe_keeps_the_note_and_listing_shows_times_in_utc(
    sample_project: Project,
) -> None:
    import datetime as dt

    from aspdigest.subscribers import _iso

    with open_project_store(sample_project) as store:
        assert unsubscribe(store, "x@example.org", "complained", note="via the ESP")
        assert [(s.address, s.reason, s.note) for s in store.suppressions()] == [
            ("x@example.org", "complained", "via the ESP")
        ]
    assert _iso(None) is None
    assert _iso(dt.datetime(2024, 12, 2, 9, 30, tzinfo=dt.UTC)) == "2024-12-02T09:30:00Z"


def test_old_mac_line_endings_are_read(tmp_path: Path) -> None:
    # Lines ended by a lone CR (as some spreadsheets still save): the file is opened with
    # newline="" so the csv module sees every line ending itself.
    path = tmp_path / "cr.csv"
    path.write_bytes(b"email,name\ra@example.org,A\rb@example.org,B\r")
    assert [(r.address, r.name, r.line) for r in read_csv(path)] == [
        ("a@example.org", "A", 2),
        ("b@example.org", "B", 3),
    ]
