"""Write rendered artifacts and their manifests to out/<event>/, all or nothing.

Fourth stage. Takes every `DayOutput` (and the event-wide `Rendered`) and writes them
into a temporary folder beside the output, then swaps it into place, so a failed build
leaves the previous output untouched. Each day folder gets a `manifest.json` that depends
only on the inputs (byte-identical for the same inputs); the event folder's
`manifest.json` is the only file holding the build time.
Also reads a previous day back (`read_day`), so unchanged days need not be rendered again, and
the previous event-wide files (`read_event`), so a build where nothing changed renders nothing.

`BuiltDay` is the one reader of a built day for the later stages (plan, approval, status,
export, delivery): its manifest and sha256s, the digest's .eml, the thread file of each
platform, what a delivery carries and which files changed since they were approved. No other
module names the files a build writes or opens a manifest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from aspdigest.config import Project
from aspdigest.errors import UserError

if TYPE_CHECKING:  # at run time imported where used: the no-change build loads no renderer
    from aspdigest.render import Artifact, DayOutput, Rendered

MANIFEST = "manifest.json"
DIGEST_EML = "digest.eml"
DIGEST_FILES = (DIGEST_EML, "digest.html", "digest.txt")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dumps(data: Any) -> bytes:
    """The one JSON form we write: sorted keys, UTF-8, trailing newline."""
    return (json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _entry(artifact: Artifact) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "path": artifact.path,
        "sha256": sha256(artifact.data),
        "bytes": len(artifact.data),
        "sources": list(artifact.sources),
    }
    if artifact.alt is not None:
        entry["alt"] = artifact.alt
    if artifact.meta:
        entry["meta"] = dict(artifact.meta)
    return entry


def day_manifest(output: DayOutput, inputs: str) -> dict[str, Any]:
    day = output.day
    return {
        "event": day.event.id,
        "date": day.key,
        "inputs": inputs,
        "sources": dict(sorted(day.sources.items())),
        "artifacts": sorted(
            (_entry(a) for a in output.rendered.artifacts), key=lambda e: e["path"]
        ),
        "warnings": list(output.rendered.warnings),
    }


@dataclass(frozen=True)
class PreviousDay:
    inputs: str
    rendered: Rendered


def _read_back(folder: Path, key: str) -> PreviousDay | None:
    """The files a manifest in folder lists, with its `key` inputs hash, if all are intact."""
    from aspdigest.render import Artifact, Rendered

    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        artifacts = []
        for entry in manifest["artifacts"]:
            data = (folder / _safe(entry["path"])).read_bytes()
            if sha256(data) != entry["sha256"]:
                return None
            artifacts.append(
                Artifact(
                    path=entry["path"],
                    data=data,
                    sources=tuple(entry["sources"]),
                    alt=entry.get("alt"),
                    meta=entry.get("meta", {}),
                )
            )
        return PreviousDay(manifest[key], Rendered(tuple(artifacts), tuple(manifest["warnings"])))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_day(event_dir: Path, date: str) -> PreviousDay | None:
    """A day as an earlier build left it, if its files are all still intact."""
    return _read_back(event_dir / date, "inputs")


def read_event(event_dir: Path) -> PreviousDay | None:
    """The event-wide files (feed, review site) as an earlier build left them, if intact;
    `inputs` is the hash of every day's inputs they were rendered from (`event_inputs`)."""
    return _read_back(event_dir, "event_inputs")


def intact_event_manifest(event_dir: Path) -> dict[str, Any] | None:
    """The last build's event manifest when it, its day manifests and every file they list
    are as that build wrote them (the no-change build trusts nothing less); else None."""
    try:
        manifest: dict[str, Any] = json.loads((event_dir / MANIFEST).read_text(encoding="utf-8"))
        entries = [(event_dir, a) for a in manifest["artifacts"]]
        for day, digest in manifest["days"].items():
            day_manifest = event_dir / _safe(day) / MANIFEST
            if sha256(day_manifest.read_bytes()) != digest:
                return None
            listed = json.loads(day_manifest.read_text(encoding="utf-8"))["artifacts"]
            entries += [(event_dir / day, a) for a in listed]
        for folder, entry in entries:
            if sha256((folder / _safe(entry["path"])).read_bytes()) != entry["sha256"]:
                return None
        return manifest
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _safe(path: str) -> PurePosixPath:
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        raise ValueError(f"renderer produced an unsafe artifact path: {path!r}")
    return pure


def _write(folder: Path, artifact: Artifact, previous: Path | None = None) -> None:
    """Write one artifact; or, when `previous` holds the same file from the last build (a day
    reused unchanged), link to it: the bytes are those `read_day` checked against that build's
    manifest, and rewriting megabytes of cards for one record edited cost more than its
    rendering. Anything but a regular file of the right size there is written instead."""
    target = folder / _safe(artifact.path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if previous is not None:
        source = previous / _safe(artifact.path)
        try:
            info = os.lstat(source)
            if stat.S_ISREG(info.st_mode) and info.st_size == len(artifact.data):
                os.link(source, target, follow_symlinks=False)
                return
        except OSError:
            pass  # no such file, or links not supported here: write it
    target.write_bytes(artifact.data)


@dataclass(frozen=True)
class Written:
    event_dir: Path
    day_manifests: dict[str, Path]
    manifest: Path


def write_output(
    output_root: Path,
    event_id: str,
    days: Sequence[tuple[DayOutput, str]],
    event_rendered: Rendered,
    event_facts: dict[str, Any],
    built_at: dt.datetime,
    reused: Collection[str] = (),
    event_reused: bool = False,
) -> Written:
    """Write every day and the event-wide files, then swap the new folder into place.

    `reused` names the days (and `event_reused` the event-wide files) that come unchanged from
    the output being replaced: their files are linked from it rather than written again."""
    output_root.mkdir(parents=True, exist_ok=True)
    final = output_root / event_id
    tmp = Path(tempfile.mkdtemp(prefix=f".{event_id}.building-", dir=output_root))
    try:
        # Day folders the build did not touch (outside --day) are carried over unchanged.
        built = {out.day.key for out, _ in days}
        if final.is_dir():
            for child in final.iterdir():
                if child.is_dir() and child.name not in built and _is_date(child.name):
                    shutil.copytree(child, tmp / child.name)
        day_manifests: dict[str, Path] = {}
        for out, inputs in days:
            folder = tmp / out.day.key
            folder.mkdir(parents=True, exist_ok=True)
            previous = final / out.day.key if out.day.key in reused else None
            for artifact in out.rendered.artifacts:
                _write(folder, artifact, previous)
            (folder / MANIFEST).write_bytes(dumps(day_manifest(out, inputs)))
            day_manifests[out.day.key] = final / out.day.key / MANIFEST
        for artifact in event_rendered.artifacts:
            _write(tmp, artifact, final if event_reused else None)
        summary: dict[str, Any] = {
            **event_facts,
            "built_at": built_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
            "days": {
                name: sha256((tmp / name / MANIFEST).read_bytes())
                for name in sorted(p.name for p in tmp.iterdir() if p.is_dir() and _is_date(p.name))
                if (tmp / name / MANIFEST).exists()
            },
            "artifacts": sorted(
                (_entry(a) for a in event_rendered.artifacts), key=lambda e: e["path"]
            ),
            "warnings": list(event_rendered.warnings),
        }
        (tmp / MANIFEST).write_bytes(dumps(summary))
        os.chmod(tmp, 0o755)
        _swap(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Written(final, day_manifests, final / MANIFEST)


def _is_date(name: str) -> bool:
    try:
        dt.date.fromisoformat(name)
    except ValueError:
        return False
    return len(name) == 10


def _swap(new: Path, final: Path) -> None:
    if not final.exists():
        new.rename(final)
        return
    if not final.is_dir():
        raise UserError(f"{final}: exists and is not a folder; move it away")
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    final.rename(old)
    try:
        new.rename(final)
    except BaseException:
        old.rename(final)
        raise
    shutil.rmtree(old, ignore_errors=True)


# -- reading a built day back (plan, approval, status, export, delivery) -----------------------


def manifest_hashes(manifest: Mapping[str, Any]) -> dict[str, str]:
    """Day-relative path → sha256 of every artifact a day manifest lists."""
    return {
        str(a["path"]): str(a["sha256"])
        for a in manifest.get("artifacts") or []
        if isinstance(a, dict) and "path" in a and "sha256" in a
    }


@dataclass(frozen=True)
class BuiltDay:
    """out/<event>/<date>/ as the last build left it. Creating one reads nothing; each method
    reads what it says, so a caller sees the files as they are now."""

    project: Project
    event: str
    date: dt.date

    @property
    def folder(self) -> Path:
        return self.project.output_dir / self.event / self.date.isoformat()

    def path(self, name: str) -> Path:
        """A day-relative artifact path (as the manifest lists it) on disk."""
        return self.folder / _safe(name)

    def shown(self, name: str | None = None) -> str:
        """The folder, or one of its files, as messages show it (project-relative)."""
        return self.project.relative(self.path(name) if name else self.folder)

    @property
    def eml(self) -> Path:
        return self.folder / DIGEST_EML

    @staticmethod
    def thread_name(platform: str) -> str:
        return f"thread.{platform}.json"

    def thread_path(self, platform: str) -> Path:
        return self.folder / self.thread_name(platform)

    def posts(self, platform: str) -> dict[str, Any]:
        """The platform's thread file for publishing, or a UserError saying why it is unreadable."""
        path = self.thread_path(platform)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            shown = self.project.relative(path)
            raise UserError(f"{shown}: cannot read the posts ({exc})") from None
        if not isinstance(data, dict):
            raise UserError(f"{self.project.relative(path)}: cannot read the posts (not an object)")
        return data

    def exists(self) -> bool:
        return (self.folder / MANIFEST).is_file()

    def manifest_or_none(self) -> dict[str, Any] | None:
        """The manifest, or None when it is missing or not JSON."""
        try:
            data = json.loads((self.folder / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def manifest(self) -> dict[str, Any]:
        """The day's manifest as the build wrote it, or a UserError saying to build."""
        file = self.folder / MANIFEST
        shown = self.project.relative(file)
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(
                f"{shown}: not built; run `aspdigest build {self.event}` first"
            ) from None
        except (OSError, ValueError) as exc:
            raise UserError(
                f"{shown}: unreadable ({exc}); run `aspdigest build {self.event}` again"
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("artifacts"), list):
            raise UserError(
                f"{shown}: not a day manifest; run `aspdigest build {self.event}` again"
            )
        return data

    def blocked(self) -> dict[str, str]:
        """Platform → why the build could not make its thread today (the manifest's
        `meta.blocked` of thread.<platform>.json); empty when nothing is blocked or not built."""
        manifest = self.manifest_or_none() or {}
        out: dict[str, str] = {}
        for entry in manifest.get("artifacts") or []:
            meta = entry.get("meta") if isinstance(entry, dict) else None
            if not (isinstance(meta, dict) and meta.get("blocked") and meta.get("platform")):
                continue
            if entry.get("path") == self.thread_name(str(meta["platform"])):
                out[str(meta["platform"])] = str(meta["blocked"])
        return out

    def hashes(self) -> dict[str, str]:
        """Artifact path → sha256 from the manifest (a UserError when not built)."""
        return manifest_hashes(self.manifest())

    def thread(self, platform: str) -> dict[str, Any] | None:
        """The platform's thread file (posts and quote posts), or None when unreadable."""
        try:
            data = json.loads(self.thread_path(platform).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def carries(
        self, hashes: Mapping[str, str], channel: str, platform: str
    ) -> dict[str, str] | None:
        """Day-relative path → sha256 (from the manifest) of what a delivery sends, or None
        when the build made nothing for it (no digest, no thread, or a day without quote
        posts). Threads and quote posts carry the cards their posts attach (images, and the
        thumbnail of a Bluesky link card)."""
        if channel == "digest":
            if DIGEST_EML not in hashes:
                return None
            return {name: hashes[name] for name in DIGEST_FILES if name in hashes}
        name = self.thread_name(platform)
        if name not in hashes:
            return None
        data = self.thread(platform)
        if data is None:
            return None
        if channel == "thread":
            posts = data.get("posts") or []
            files = [name, f"thread.{platform}.txt"]
        else:
            posts = [p for qp in data.get("quote_posts") or [] for p in qp.get("posts") or []]
            if not posts:
                return None
            files = [name]
        files += sorted(
            {m["path"] for p in posts for m in p.get("media") or [] if "path" in m}
            | {str(e["thumb"]) for p in posts if (e := p.get("embed")) and e.get("thumb")}
        )
        return {f: hashes[f] for f in files if f in hashes}

    def changed(self, expected: Mapping[str, str]) -> list[str]:
        """The files whose bytes no longer have the expected sha256 (or are gone)."""
        changed = []
        for name, digest in sorted(expected.items()):
            try:
                data = self.path(name).read_bytes()
            except (OSError, ValueError):
                changed.append(name)
                continue
            if sha256(data) != digest:
                changed.append(name)
        return changed


def event_built(project: Project, event_id: str) -> bool:
    """Whether a build of the event finished (its event-wide manifest is there)."""
    return (project.output_dir / event_id / MANIFEST).is_file()


def built_days(project: Project, event_id: str) -> list[BuiltDay]:
    """Every day folder of the event's build that has a manifest, in date order."""
    event_dir = project.output_dir / event_id
    if not event_dir.is_dir():
        return []
    return [
        BuiltDay(project, event_id, dt.date.fromisoformat(p.name))
        for p in sorted(event_dir.iterdir())
        if p.is_dir() and _is_date(p.name) and (p / MANIFEST).is_file()
    ]
