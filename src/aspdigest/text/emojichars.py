"""The code points that occur in emoji, kept on disk so that a build need not import `emoji`.

text/ is used by the social renderer to measure and split posts. `length.emoji_spans` answers
"no emoji here" for a text without any code point outside ASCII that occurs in an emoji
sequence the ``emoji`` package knows, which is nearly every post; only a text with one asks
``emoji.emoji_list``. Importing ``emoji`` loads its whole data file (~10-30 ms of every build),
so :func:`emoji_chars` keeps that set of code points in the user's cache folder
(`aspdigest.cachedir`), keyed by the size and modification time of the package's code and
data files and by Python's version; a missing or unreadable cache, or any doubt about the
package's files, means computing the set from ``emoji.EMOJI_DATA`` as before. The cache can
make a run faster, never different.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import sys
from pathlib import Path

from aspdigest import cachedir

# The files the package's EMOJI_DATA comes from (relative to its folder).
_SOURCES = ("__init__.py", "unicode_codes/__init__.py", "unicode_codes/emoji.json")


def compute() -> frozenset[str]:
    """Every code point outside ASCII in any emoji sequence of ``emoji.EMOJI_DATA``."""
    import emoji

    return frozenset(c for key in emoji.EMOJI_DATA for c in key if not c.isascii())


def _key() -> str | None:
    spec = importlib.util.find_spec("emoji")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent
    digest = hashlib.sha256(f"{sys.version}\0{folder}".encode())
    try:
        for name in _SOURCES:
            info = os.stat(folder / name)
            digest.update(f"\0{name}\0{info.st_size}\0{info.st_mtime_ns}".encode())
    except OSError:
        return None
    return digest.hexdigest()[:20]


def _load(path: Path) -> frozenset[str] | None:
    data = cachedir.read(path)
    try:
        points = json.loads(data) if data is not None else None
    except ValueError:
        return None
    if not isinstance(points, list) or not all(isinstance(p, int) for p in points):
        return None
    try:
        return frozenset(chr(p) for p in points)
    except (ValueError, OverflowError):
        return None


@functools.cache
def emoji_chars() -> frozenset[str]:
    """The set `compute` returns, through the on-disk cache."""
    key = _key()
    if key is None:
        return compute()
    path = cachedir.cache_dir() / f"emoji-chars-{key}.json"
    loaded = _load(path)
    if loaded is not None:
        return loaded
    chars = compute()
    cachedir.write(path, json.dumps(sorted(ord(c) for c in chars)).encode())
    return chars
