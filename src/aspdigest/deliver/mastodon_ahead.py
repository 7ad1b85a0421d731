"""Uploading a Mastodon thread's images ahead of the posts that carry them.

Deliver stage, used by `deliver.mastodon.MastodonApi.post`. Mastodon answers an upload
before the image is processed and a status may attach it only once it is; waiting for that
post by post cost most of a thread's time (issue 18: three cards, ~75 ms each on the local
test server, against ~5 ms for a text post). `UploadsAhead` starts the uploads of the next
few posts with images (`DEPTH`) in background threads, each with its own HTTP session, while
the posts before them go out; when the walk reaches such a post, `take` waits for its
uploads, hands their ids to the ledger and returns them.

The exactly-once walk is unchanged: only the main thread writes the ledger or posts a status,
and an upload's error (a rate limit, a refused image, no answer) is raised by `take` at the
post it belongs to, as if that post had uploaded it itself, so `posting.post_all` handles it
the same way (the retry then uploads in the main thread). Uploads are recorded when the walk
reaches a post and when publishing ends, however it ends (`finish`, which stops the threads);
an upload finished since the last of these is lost if the process is killed, as one whose
answer was in flight always was, and the server removes unattached media itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from aspdigest.deliver import Publication
from aspdigest.deliver.posting import Sleep

DEPTH = 4  # posts with images uploaded ahead at most: a few, within the 30-per-30-minutes limit


class Uploader(Protocol):
    """One HTTP session's worth of the Mastodon API: what a background upload needs."""

    wait_for_media: Sleep  # the pause between looks at an upload being processed

    def send_file(self, path: Path, alt: str) -> Mapping[str, Any]:
        """POST /api/v2/media; the answer (its url is null while the server processes)."""
        ...

    def processed(self, media: Mapping[str, Any], name: str) -> None:
        """Wait until the server has processed the upload (or raise why not)."""
        ...


Where = tuple[int, int]  # (group, index) of a post
Record = Callable[[Where, int, str], None]  # writes one finished upload to the ledger


class _Stopped(Exception):
    """Publishing ended: a background upload stops waiting."""


@dataclass
class _Job:
    where: Where
    files: list[tuple[Path, str]]  # each image's path and alt text, in the post's order
    ids: dict[int, str] = field(default_factory=dict)  # position → media id, once uploaded
    error: BaseException | None = None
    thread: threading.Thread | None = None


class UploadsAhead:
    """The uploads of one publish(): started ahead, taken by the post that attaches them."""

    def __init__(
        self,
        publication: Publication,
        skip: Callable[[Where], bool],
        uploader: Callable[[], Uploader],
        record: Record,
        idle: list[Uploader],
    ) -> None:
        self.publication = publication
        self._uploader = uploader
        self._record = record
        self._stop = threading.Event()
        # Sessions not in use, kept by the caller across publishes: each new one first asks
        # the server its version (Mastodon.py, two requests), and opens a connection.
        self._idle = idle
        self._lock = threading.Lock()
        self._running: dict[Where, _Job] = {}  # started, not yet taken
        # Posts with images, in walk order, that have neither been posted nor uploaded for.
        self._queue: list[_Job] = [
            _Job((g, i), [(publication.folder / m.path, m.alt) for m in post.media])
            for g, group in enumerate(publication.groups)
            for i, post in enumerate(group)
            if post.media and not skip((g, i))
        ]

    def start_after(self, where: Where) -> None:
        """Start uploading for the next posts after `where` (up to DEPTH running)."""
        self._queue = [j for j in self._queue if j.where > where]
        while self._queue and len(self._running) < DEPTH and not self._stop.is_set():
            job = self._queue.pop(0)
            job.thread = threading.Thread(target=self._run, args=(job,), daemon=True)
            self._running[job.where] = job
            job.thread.start()

    def take(self, where: Where) -> dict[int, str]:
        """The uploads started ahead for this post (position → media id), recorded; raises
        the error one of them met. Empty when none were started (or taken already)."""
        self._queue = [j for j in self._queue if j.where != where]
        job = self._running.pop(where, None)
        if job is None:
            return {}
        assert job.thread is not None
        job.thread.join()
        self._keep(job)
        if job.error is not None:
            raise job.error
        return job.ids

    def finish(self) -> None:
        """Publishing ended: stop the uploads, record those that were made. Waits for the
        requests in flight (each within `delivery.timeout`), not for processing: an upload
        recorded unprocessed is looked at again by the post that attaches it."""
        self._stop.set()
        self._queue = []
        jobs, self._running = list(self._running.values()), {}
        for job in jobs:
            assert job.thread is not None
            job.thread.join()
            self._keep(job)

    def _keep(self, job: _Job) -> None:
        with self._lock:
            made = dict(job.ids)
        # The ledger keeps a post's uploads in image order from the first: a gap would shift
        # the positions a retry reads back, so only the unbroken start is recorded.
        position = 0
        while position in made:
            self._record(job.where, position, made[position])
            position += 1

    def _wait(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise _Stopped

    def _run(self, job: _Job) -> None:
        with self._lock:
            api = self._idle.pop() if self._idle else self._uploader()
        api.wait_for_media = self._wait
        try:
            # All of the post's images first, then their processing: the waits overlap.
            sent = []
            for position, (path, alt) in enumerate(job.files):
                if self._stop.is_set():
                    return
                media = api.send_file(path, alt)
                with self._lock:
                    job.ids[position] = str(media["id"])
                sent.append((position, path, media))
            for position, path, media in sent:
                try:
                    api.processed(media, path.name)
                except _Stopped:
                    return  # kept: the server goes on processing it; a retry looks again
                except BaseException:
                    with self._lock:  # unusable, and the later ones are not recorded
                        for later in [p for p in job.ids if p >= position]:
                            del job.ids[later]
                    raise
        except BaseException as exc:  # raised in the main thread by take()
            job.error = exc
        finally:
            with self._lock:
                self._idle.append(api)
