"""Who and what a post names, and how each platform writes it: handles and hashtags.

Render stage, used by `threadsections.py` (thread items), `social.py` (LinkedIn) and the quote
posts: `handle(event, name, platform)` is a name's account as a post writes it (from
event.toml's `[handles]` and the registry's prefix), `hashtag_line` the event's hashtags as the
platform carries them (the registry says how many: Threads takes one topic tag), and `Mentions`
remembers who a thread has named so a person is mentioned by handle once per thread.
"""

from __future__ import annotations

from aspdigest.platforms import PLATFORMS
from aspdigest.records import Event, Record


def handle(event: Event, name: str, platform: str) -> str | None:
    """`name`'s handle on `platform` as written in a post, if event.toml gives one."""
    handles = event.handles.get(name)
    value: str | None = getattr(handles, platform, None) if handles else None
    if not value:
        return None
    return PLATFORMS[platform].handle_prefix + value


def hashtag_line(event: Event, platform: str) -> str:
    """The event's hashtags as a post on `platform` carries them (the registry says how many)."""
    most = PLATFORMS[platform].hashtags
    tags = event.hashtags if most is None else event.hashtags[:most]
    return " ".join("#" + tag for tag in tags)


class Mentions:
    """Who a thread has already named by handle: a person is mentioned once per thread."""

    def __init__(self, event: Event, platform: str) -> None:
        self.event, self.platform, self.seen = event, platform, set[str]()

    def name(self, name: str) -> str:
        """`name` as its handle on its first mention, else as written."""
        found = handle(self.event, name, self.platform)
        if found is None or name in self.seen:
            return name
        self.seen.add(name)
        return found

    def speakers(self, record: Record) -> list[str]:
        """The record's speakers with a handle here, not yet mentioned, as handles."""
        out = []
        for speaker in record.speakers:
            found = handle(self.event, speaker.name, self.platform)
            if found is not None and speaker.name not in self.seen:
                self.seen.add(speaker.name)
                out.append(found)
        return out
