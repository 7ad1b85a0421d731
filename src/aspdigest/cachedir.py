"""Where aspdigest keeps caches that only make runs faster: compiled patterns and templates.

Used by text/regexcache.py (compiled URL patterns), text/emojichars.py (the code points of
emoji), inputs.py (the hash of aspdigest's own files) and render/templates.py (Jinja2
bytecode); `read` and `write` are the first three's way in and out.
Nothing here is an input of a build: deleting the folder costs the next run some time, never
changes an output. The folder is ``$ASPDIGEST_CACHE_DIR`` if set, else
``$XDG_CACHE_HOME/aspdigest``, else ``~/.cache/aspdigest``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def cache_dir() -> Path:
    """The cache folder (see the module's docstring); it may not exist yet."""
    explicit = os.environ.get("ASPDIGEST_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "aspdigest"


def read(path: Path) -> bytes | None:
    """The file's bytes, or None when it cannot be read (not there yet, or unreadable)."""
    try:
        return path.read_bytes()
    except OSError:
        return None


def write(path: Path, data: bytes) -> None:
    """Write `data` to `path`, creating its folder; a failure (a read-only or full disk)
    is ignored: it only costs the next run the work the cache would have saved."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written to a temporary file and renamed: a concurrent run reads the old file or the
        # whole new one, never half of it.
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError:
        pass
