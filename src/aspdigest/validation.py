"""Validation messages: pydantic's errors and the record-level checks, as one-line problems.

Used by the first stage (`content.py` reads the files; this module words what is wrong with
them) and by `queue/schedule.py` for schedule files. `problems_from(path, exc, model)` turns
a pydantic `ValidationError` into `Problem`s worded for the people who write the files
(`path: field: message`, with the fix where one is obvious); `attribution_problems` and
`excerpt_problem` check what a field's type cannot: that a quote names a speaker or source of
its own record, and that an excerpt is a verbatim span of its quote.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from aspdigest.errors import Problem
from aspdigest.platforms import PLATFORMS
from aspdigest.records import KINDS, RecordMeta, describe
from aspdigest.text.excerpt import find_span


def _loc(parts: Sequence[int | str]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            key = str(part)
            if not all(c.isalnum() or c in "-_" for c in key):
                key = f'"{key}"'
            out += f".{key}" if out else key
    return out


_PATTERN_HINTS = {
    "id": "expected a slug (lowercase letters, digits, hyphens)",
    "hashtags": "expected a hashtag without the #",
    **{p.id: p.handle_hint for p in PLATFORMS.values() if p.handle_hint},
}

_TYPE_WORDS = {
    "string_type": "text",
    "int_type": "a whole number",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a table of keys",
    "model_type": "a table of keys",
    "model_attributes_type": "a table of keys",
    "date_type": "a date like 2024-12-02 (unquoted)",
    "float_type": "a number",
}


def _message(err: Any, model: type[BaseModel]) -> str:
    kind = err["type"]
    loc = [p for p in err["loc"] if not isinstance(p, int)]
    if kind == "missing":
        return "required field missing"
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, err["loc"][:-1])
        close = difflib.get_close_matches(str(err["loc"][-1]), allowed, n=1, cutoff=0.6)
        if close:
            return f'unknown field; did you mean "{close[0]}"?'
        return f"unknown field; allowed: {', '.join(allowed)}"
    if kind == "literal_error" and loc and loc[-1] == "kind":
        return f"expected one of {', '.join(KINDS)}; got {describe(err['input'])}"
    if kind == "string_pattern_mismatch" and loc and loc[-1] == "hashtags":
        return _hashtag_message(err["input"])
    if kind == "string_pattern_mismatch" and loc:
        hint = _PATTERN_HINTS.get(str(loc[-1]))
        if hint:
            return f"{hint}, got {describe(err['input'])}"
    if kind == "greater_than_equal":
        return (
            f"expected a whole number of at least {err['ctx']['ge']}, got {describe(err['input'])}"
        )
    if kind in _TYPE_WORDS:
        message = f"expected {_TYPE_WORDS[kind]}, got {describe(err['input'])}"
        if kind == "list_type" and isinstance(err["input"], str):
            message += f' (write [{err["input"]}] or one "- item" line per item)'
        return message
    if kind.startswith("date_") and isinstance(err["input"], str):
        return f"expected a date like 2024-12-02 (unquoted), got {describe(err['input'])}"
    return str(err["msg"])


def _hashtag_message(value: Any) -> str:
    """Why a hashtag is refused: the # typed in, a space (two words), or another character."""
    text = str(value)
    if not text.startswith("#"):
        if " " in text:  # an ordinary space: two words typed as one tag
            joined = "".join(w[:1].upper() + w[1:] for w in text.split())
            return f'"{text}" has a space; a hashtag is one word, e.g. "{joined}"'
        other = next((c for c in text if not (c.isalnum() or c == "_")), None)
        if other is not None:
            joined = "".join(c for c in text if c.isalnum() or c == "_")
            return (
                f'"{text}" has "{other}"; a hashtag is one word of letters, digits and _, '
                f'e.g. "{joined}"'
            )
    return f"{_PATTERN_HINTS['hashtags']}, got {describe(value)}"


def _allowed_keys(model: type[BaseModel], parent: Sequence[int | str]) -> list[str]:
    current: Any = model
    for part in parent:
        if isinstance(part, int) or current is None:
            continue
        field = current.model_fields.get(str(part))
        if field is None:  # a dict key such as a date or a name
            continue
        current = _inner_model(field.annotation)
    return list(current.model_fields) if current is not None else []


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def problems_from(path: str, exc: ValidationError, model: type[BaseModel]) -> list[Problem]:
    problems = []
    for err in exc.errors():
        # For a union with None pydantic reports each branch; the first is the useful one.
        loc = [
            p
            for p in err["loc"]
            if not (isinstance(p, str) and p.startswith(("function-", "nullable")))
            and p != "[key]"  # a dict key's own problem is named by the key alone
        ]
        problems.append(Problem(path, _loc(loc), _message({**err, "loc": tuple(loc)}, model)))
    return list(dict.fromkeys(problems))


def _did_you_mean(name: str, known: list[str], what: str, fix: str) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.3)
    if close:
        return f'; did you mean "{close[0]}"?'
    if known:
        return f"; {what}: {', '.join(known)}"
    return fix


def attribution_problems(
    path: str, meta: RecordMeta, elsewhere: Mapping[str, str] | None = None
) -> list[Problem]:
    """Each quote names exactly one speaker (`by`) or one source (`from`) of its record.
    `elsewhere`: speaker name → another record (its path) where that name is a speaker, so a
    quote attributed to them says to add them here rather than guess another name."""
    elsewhere = elsewhere or {}
    problems = []
    names = [s.name for s in meta.speakers]
    titles = [s.title for s in meta.sources]
    for title in sorted({t for t in titles if titles.count(t) > 1}):
        problems.append(
            Problem(path, "sources", f'"{title}" is listed twice; give each source once')
        )
    for i, quote in enumerate(meta.quotes):
        where = f"quotes[{i}]"
        if quote.by is not None and quote.from_ is not None:
            problems.append(
                Problem(path, where, "give by (a speaker) or from (a source), not both")
            )
        elif quote.by is None and quote.from_ is None:
            problems.append(
                Problem(
                    path,
                    where,
                    "needs by (a speaker of this record) or from (a source of this record)",
                )
            )
        elif quote.by is not None and quote.by not in names and quote.by in elsewhere:
            problems.append(
                Problem(
                    path,
                    f"{where}.by",
                    f'"{quote.by}" is a speaker of {elsewhere[quote.by]}, not of this one; '
                    "add them to this record's speakers",
                )
            )
        elif quote.by is not None and quote.by not in names:
            fix = _did_you_mean(quote.by, names, "speakers", "; add them to speakers")
            problems.append(
                Problem(path, f"{where}.by", f'"{quote.by}" is not a speaker of this record{fix}')
            )
        elif quote.from_ is not None and quote.from_ not in titles:
            fix = _did_you_mean(
                quote.from_, titles, "sources", "; add it to sources (title, and url if any)"
            )
            problems.append(
                Problem(
                    path, f"{where}.from", f'"{quote.from_}" is not a source of this record{fix}'
                )
            )
    return problems


def every_attribution_problem(records: Sequence[tuple[str, RecordMeta]]) -> list[Problem]:
    """`attribution_problems` of each record (path, front matter) of an event, knowing who
    speaks in the others."""
    speaking: dict[str, list[str]] = {}
    for path, meta in records:
        for speaker in meta.speakers:
            speaking.setdefault(speaker.name, []).append(path)
    problems = []
    for path, meta in records:
        elsewhere = {
            name: others[0]
            for name, paths in speaking.items()
            if (others := [p for p in paths if p != path])
        }
        problems.extend(attribution_problems(path, meta, elsewhere))
    return problems


def excerpt_problem(text: str, excerpt: str, field: str) -> str | None:
    """Why `excerpt` is not a contiguous verbatim span of whole words of `text`, with the
    nearest span of the quote to copy from; None when it is one."""
    if find_span(text, excerpt) is not None:
        return None
    words = text.split()
    size = len(excerpt.split())
    spans = {
        " ".join(words[i : i + n])
        for n in (size - 1, size, size + 1)
        if n > 0
        for i in range(len(words) - n + 1)
    }
    nearest = difflib.get_close_matches(excerpt, sorted(spans), n=1, cutoff=0.0)
    hint = f'; nearest in the quote: "{nearest[0]}"' if nearest else ""
    return f"not a contiguous span of {field} in whole words, copied exactly{hint}"


# Quotation marks that can wrap a quote, in any script: the initial and final quote
# punctuation of Unicode (“ ” ‘ ’ « » ‹ ›, which also close or open in some languages), the
# quote marks filed as open/close punctuation („ ‚ 「 」 『 』 〝 〞 〟 ﹁ ﹂ ﹃ ﹄), the
# full-width ones and ASCII " and '.
_QUOTE_PUNCTUATION = frozenset("„‚「」『』〝〞〟﹁﹂﹃﹄＂＇\"'")


def _quote_mark(char: str) -> bool:
    return char in _QUOTE_PUNCTUATION or unicodedata.category(char) in ("Pi", "Pf")


def wrapped_problem(text: str) -> str | None:
    """Why a quote's text is refused as typed inside its own quotation marks (“…”, «…»,
    「…」, "…"), or None: aspdigest adds the marks of the quote's language everywhere, so
    they would show twice. A text that only starts and ends with marks belonging to two
    quoted phrases ("Yes," she said, "no.") is not wrapped: the interior repeats a mark."""
    body = text.strip()
    end = body.rstrip(".,;:!?…")
    if len(end) < 3 or not (_quote_mark(body[0]) and _quote_mark(end[-1])):
        return None
    opening, closing = body[0], end[-1]
    inner = end[1:-1]
    if opening in inner or closing in inner:
        return None
    return (
        f"wrapped in its own quotation marks ({opening}…{closing}); remove them: aspdigest "
        "adds the marks of the quote's language wherever it is shown"
    )
