"""Group an event's records into conference days: the unit every renderer works on.

Second stage. `plan_days(content)` takes the validated `Content` and returns one frozen
`Day` per date from the event's start to its end (a day with no records still exists: the
schedule may plan nothing for it, but the review page shows it as empty).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from aspdigest.content import Content
from aspdigest.records import Event, Record


@dataclass(frozen=True)
class Day:
    """One conference day: its place in the event and its records in running order."""

    event: Event
    date: dt.date
    number: int  # 1 for the first conference day
    title: str
    intro: str | None
    records: tuple[Record, ...]
    hook: str | None = None  # days.<date>.hook: the opener's first line (else the title)

    @property
    def key(self) -> str:
        return self.date.isoformat()

    @property
    def is_last(self) -> bool:
        return self.date == self.event.end

    @property
    def language(self) -> str:
        return self.event.language

    @property
    def sources(self) -> dict[str, str]:
        """Source path → sha256 of everything this day's output depends on in content/."""
        out = {self.event.path: self.event.sha256}
        out.update({r.path: r.sha256 for r in self.records})
        return out


def plan_days(content: Content, only: dt.date | None = None) -> list[Day]:
    event = content.event
    days = []
    for number, date in enumerate(event.dates(), start=1):
        if only is not None and date != only:
            continue
        info = event.day_info(date)
        days.append(
            Day(
                event=event,
                date=date,
                number=number,
                title=info.title or f"{event.short_name} day {number}",
                intro=info.intro,
                records=tuple(r for r in content.records if r.date == date),
                hook=info.hook,
            )
        )
    return days
