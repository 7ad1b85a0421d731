"""Where aspdigest keeps caches that only make runs faster: compiled patterns and templates.

Used by text/regexcache.py (compiled URL patterns) and render/templates.py (Jinja2 bytecode).
Nothing here is an input of a build: deleting the folder costs the next run some time, never
changes an output. The folder is ``$ASPDIGEST_CACHE_DIR`` if set, else
``$XDG_CACHE_HOME/aspdigest``, else ``~/.cache/aspdigest``.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The cache folder (see the module's docstring); it may not exist yet."""
    explicit = os.environ.get("ASPDIGEST_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "aspdigest"
