"""Errors every stage raises and only the CLI prints.

A stage that finds problems in the user's input collects all of them as `Problem`s and
raises one `UserError`; `cli.py` prints each problem as one line (`path: field: message`)
and exits 1. Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, order=True)
class Problem:
    """One problem in one file, printed as `path: field: message`."""

    path: str
    field: str
    message: str

    def __str__(self) -> str:
        if self.field:
            return f"{self.path}: {self.field}: {self.message}"
        return f"{self.path}: {self.message}"


class UserError(Exception):
    """Bad input, missing files or settings: the user can fix it; no traceback."""

    def __init__(self, problems: Iterable[Problem] | str) -> None:
        if isinstance(problems, str):
            self.problems: tuple[Problem, ...] = ()
            self.text = problems
        else:
            self.problems = tuple(problems)
            self.text = "\n".join(str(p) for p in self.problems)
        super().__init__(self.text)

    def lines(self) -> list[str]:
        # One line per problem even when a message quotes a value holding a line break
        # (str.splitlines would also break at U+000B, U+001C, U+0085, U+2028…).
        if self.problems:
            return [str(p) for p in self.problems]
        return self.text.removesuffix("\n").split("\n")


class ContentError(UserError):
    """Records or event.toml failed validation."""


class ConfigError(UserError):
    """aspdigest.toml or an ASPDIGEST_* variable is invalid."""


class RenderError(UserError):
    """A renderer met content it cannot publish faithfully (e.g. an unsplittable clause)."""


def read_toml(path: str, raw: bytes) -> dict[str, Any]:
    """A TOML file's bytes (UTF-8, a BOM allowed) as a table; one `Problem` (raised as a
    UserError) when it is not UTF-8 or not TOML. Used for aspdigest.toml and schedules."""
    import tomllib

    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(
            [Problem(path, "encoding", "not valid UTF-8; save the file as UTF-8")]
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError([toml_problem(path, exc, text)]) from None


def toml_problem(path: str, exc: Exception, text: str) -> Problem:
    """A TOML file's parse error as one problem: a time written without quotes (TOML has no
    HH:MM value, so `time = 07:30` fails mid-line) says to quote it; anything else is
    `toml_message`."""
    import re

    m = re.search(r"\(at line (\d+), column \d+\)$", str(exc))
    if m:
        number = int(m.group(1))
        lines = text.splitlines()
        line = lines[number - 1] if 0 < number <= len(lines) else ""
        unquoted = re.match(
            r"^\s*([A-Za-z0-9_.-]+)\s*=\s*(?:\d{4}-\d{2}-\d{2}[T ])?(\d{1,2}):(\d{2})(?::\d{2})?\s*(?:#.*)?$",
            line,
        )
        if unquoted:
            key, hours, minutes = unquoted.groups()
            return Problem(
                path,
                f"line {number}",
                f"{line.strip()} is not valid TOML; write times in quotes, e.g. "
                f'{key} = "{int(hours):02d}:{minutes}"',
            )
    return Problem(path, "", toml_message(exc))


def toml_message(exc: Exception) -> str:
    """tomllib's error, reworded: where first, then what (and the likely cause of the usual one)."""
    import re

    text = str(exc)
    m = re.match(r"^(.*) \(at line (\d+), column (\d+)\)$", text)
    if not m:
        return f"invalid TOML: {text}"
    what, line, column = m.groups()
    if what == "Illegal character '\\n'":
        what = "line ends inside a value (an unclosed quote?)"
    return f"invalid TOML at line {line}, column {column}: {what}"
