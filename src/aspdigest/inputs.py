"""What a build reads from disk, and the no-change rebuild that only hashes it.

Beside the build stage (build.py), and imported by the CLI before it: this module must stay
light (no content models, no renderer, no Jinja2), because a rebuild with nothing changed
should cost little more than Python's start-up. It names the build's inputs on disk: the
event's folder under content/, the template folders (project first, then the package's),
aspdigest's own code and data, the settings and the event's schedule file. :func:`quick_key`
hashes their raw bytes into one key; a full build stores it in the event manifest (under
``quick``, with what the CLI reports: days, artifact count, warnings), and :func:`unchanged`
finds a later build with the same key and the output still intact, so the CLI can say
"nothing changed" without loading content or importing a renderer. Any doubt (a symlink in
the content folder, an unreadable file, a damaged output) answers "not known unchanged" and
the full build decides, as before.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aspdigest import __version__, cachedir
from aspdigest.errors import UserError

if TYPE_CHECKING:
    from aspdigest.config import Project

PACKAGE = Path(__file__).resolve().parent
DEFAULT_TEMPLATES = PACKAGE / "templates"
QUICK = "quick"  # the event manifest's key for the no-change facts
EVENT_FILE = "event.toml"


def list_events(project: Project) -> list[str]:
    folder = project.content_dir
    if not folder.is_dir():
        return []
    # lexists, not is_file: an event.toml that is a FIFO or a bad symlink is reported by check
    # rather than making the event vanish.
    return sorted(p.name for p in folder.iterdir() if os.path.lexists(p / EVENT_FILE))


def resolve_event(project: Project, event_id: str | None) -> str:
    """The event a command means: the one named, or the only one there is."""
    events = list_events(project)
    where = project.relative(project.content_dir)
    if event_id is None:
        if len(events) == 1:
            return events[0]
        if not events:
            raise UserError(f"{where}: no events found (each needs <event>/{EVENT_FILE})")
        raise UserError(f"{where}: several events ({', '.join(events)}); name one")
    if event_id not in events:
        known = f"; events here: {', '.join(events)}" if events else ""
        raise UserError(f"{where}/{event_id}: no such event (no {EVENT_FILE}){known}")
    return event_id


def template_dirs(project: Project | None) -> list[Path]:
    dirs = []
    if project is not None and project.templates_dir.is_dir():
        dirs.append(project.templates_dir)
    dirs.append(DEFAULT_TEMPLATES)
    return dirs


def templates_digest(project: Project | None) -> dict[str, str]:
    """sha256 of every template that would be used (after overrides), for the manifest."""
    seen: dict[str, str] = {}
    for folder in template_dirs(project):
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                name = path.relative_to(folder).as_posix()
                seen.setdefault(name, hashlib.sha256(path.read_bytes()).hexdigest())
    return dict(sorted(seen.items()))


@functools.cache
def code_digest() -> str:
    """Hash of aspdigest's own code and data (fonts, default templates), so a change to any of
    them invalidates days reused from the previous build.

    Reading and hashing its 4 MB took ~20 ms of every build, a no-change rebuild included;
    the hash is kept in the cache folder under the path, size and modification time of
    every file (what Python itself checks to know a .pyc is stale, ~1 ms to read), so it
    is computed again whenever any file changes."""
    stats = hashlib.sha256(__version__.encode())
    for here, dirs, files in os.walk(PACKAGE):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            path = os.path.join(here, name)
            info = os.stat(path)
            line = f"{os.path.relpath(path, PACKAGE)}\0{info.st_size}\0{info.st_mtime_ns}\n"
            stats.update(line.encode())
    cached = cachedir.cache_dir() / "code" / stats.hexdigest()
    known = cachedir.read(cached)
    if known is not None and len(known) == 64:
        return known.decode("ascii")
    digest = _hash_code()
    cachedir.write(cached, digest.encode("ascii"))
    return digest


def _hash_code() -> str:
    digest = hashlib.sha256(__version__.encode())
    for path in sorted(PACKAGE.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        digest.update(path.relative_to(PACKAGE).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def settings_json(project: Project) -> str:
    """The settings a build depends on: all but the state store's location (a pure build)."""
    return project.settings.model_dump_json(by_alias=True, exclude={"state"})


def schedule_file(project: Project, event_id: str) -> Path:
    return project.schedules_dir / f"{event_id}.toml"


def quick_key(project: Project, event_id: str) -> str | None:
    """One hash of every input file's bytes, or None when the content folder holds anything
    but plain files and folders (a symlink may lead anywhere: the full build decides)."""
    digest = hashlib.sha256()

    def feed(label: str, data: bytes) -> None:
        digest.update(f"{label}\0{len(data)}\0".encode())
        digest.update(data)

    feed("code", code_digest().encode())
    feed("settings", settings_json(project).encode())
    feed("templates", json.dumps(templates_digest(project), sort_keys=True).encode())
    folder = project.content_dir / event_id
    try:
        for here, dirs, files in os.walk(folder):
            dirs.sort()
            base = Path(here)
            for name in [*dirs, *files]:
                if (base / name).is_symlink():
                    return None
            for name in sorted(files):
                path = base / name
                feed("content:" + path.relative_to(folder).as_posix(), path.read_bytes())
        schedule = schedule_file(project, event_id)
        if schedule.is_file():
            feed("schedule", schedule.read_bytes())
    except OSError:
        return None
    return digest.hexdigest()


@dataclass(frozen=True)
class Unchanged:
    """What the previous build reported, for a build that finds nothing to do."""

    event_dir: Path
    days: tuple[str, ...]
    artifacts: int
    warnings: tuple[str, ...]
    blocked: tuple[dict[str, str], ...]  # {"date", "path", "reason"}, as the build said them


def quick_facts(
    key: str, days: list[str], artifacts: int, warnings: list[str], blocked: list[dict[str, str]]
) -> dict[str, Any]:
    """The event manifest's ``quick`` entry a full build writes."""
    return {
        "inputs": key,
        "days": days,
        "artifacts": artifacts,
        "warnings": warnings,
        "blocked": blocked,
    }


def unchanged(project: Project, event_id: str) -> Unchanged | None:
    """The previous build's report when none of its inputs changed and its output is intact."""
    key = quick_key(project, event_id)
    if key is None:
        return None
    from aspdigest.artifacts import MANIFEST, intact_event_manifest

    event_dir = project.output_dir / event_id
    try:
        # The key first: after an edit it differs, and checking every output file's hash
        # (megabytes of cards) would only be wasted on the way to the full build.
        last = json.loads((event_dir / MANIFEST).read_text(encoding="utf-8"))
        if not isinstance(last, dict) or not isinstance(last.get(QUICK), dict):
            return None
        if last[QUICK].get("inputs") != key:
            return None
        manifest = intact_event_manifest(event_dir)
        facts = manifest.get(QUICK) if manifest is not None else None
        if manifest is None or not isinstance(facts, dict) or facts.get("inputs") != key:
            return None
        if set(manifest["days"]) != set(facts["days"]):
            return None
        return Unchanged(
            event_dir,
            tuple(str(d) for d in facts["days"]),
            int(facts["artifacts"]),
            tuple(str(w) for w in facts["warnings"]),
            tuple({k: str(b[k]) for k in ("date", "path", "reason")} for b in facts["blocked"]),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
