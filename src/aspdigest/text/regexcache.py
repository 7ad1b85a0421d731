"""Compiled `regex` patterns kept on disk between runs.

text/ is used by the social renderer to measure and split posts. Its URL extractors embed
every top-level domain of the IANA root zone as one alternation; compiling those patterns
takes the `regex` module about half a second, on every run. :func:`compile_cached` takes
named pattern sources and returns them compiled, from a pickle in the user's cache folder
when one made by the same `regex` version, Python and sources is there (~15 ms), else by
compiling them and writing that pickle for next time. A `regex` pattern pickles as its
compiled code, so loading skips the parse; the pickle is only read from the user's own cache
folder (the same trust as Python's own bytecode caches), and each loaded pattern is checked
against its source before use. Any problem reading or writing the cache means "compile":
the cache can make a run faster, never different. The folder is `aspdigest.cachedir`'s.
"""

from __future__ import annotations

import hashlib
import pickle
import sys
from collections.abc import Mapping
from pathlib import Path

import regex

from aspdigest import cachedir


def _key(sources: Mapping[str, str]) -> str:
    digest = hashlib.sha256()
    for part in (regex.__version__, sys.version, *sorted(sources.items())):
        digest.update(repr(part).encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()[:20]


def _load(path: Path, sources: Mapping[str, str]) -> dict[str, regex.Pattern[str]] | None:
    data = cachedir.read(path)
    try:
        loaded = pickle.loads(data) if data is not None else None
    except Exception:  # a truncated or foreign file: compile instead
        return None
    if not isinstance(loaded, dict) or set(loaded) != set(sources):
        return None
    for name, pattern in loaded.items():
        if not isinstance(pattern, regex.Pattern) or pattern.pattern != sources[name]:
            return None
    return loaded


def compile_cached(name: str, sources: Mapping[str, str]) -> dict[str, regex.Pattern[str]]:
    """``sources`` compiled with `regex` (default flags), through the on-disk cache."""
    path = cachedir.cache_dir() / f"{name}-{_key(sources)}.pickle"
    loaded = _load(path, sources)
    if loaded is not None:
        return loaded
    compiled = {key: regex.compile(source) for key, source in sources.items()}
    cachedir.write(path, pickle.dumps(compiled, protocol=pickle.HIGHEST_PROTOCOL))
    return compiled
