"""The simplest renderer: `day.json`, the day's validated records as data.

Render stage. Takes a `Day`, returns one artifact other tools (and people debugging a
template) can read: exactly what the templates receive, in a stable JSON form.
"""

from __future__ import annotations

import json

from aspdigest.days import Day
from aspdigest.render import Artifact, RenderContext, Rendered


def day_data(day: Day) -> dict[str, object]:
    return {
        "event": day.event.id,
        "date": day.key,
        "number": day.number,
        "title": day.title,
        "intro": day.intro,
        "records": [r.model_dump(mode="json", exclude={"sha256"}) for r in day.records],
    }


def render(day: Day, ctx: RenderContext) -> Rendered:
    data = json.dumps(day_data(day), ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    return Rendered(
        artifacts=(
            Artifact(
                path="day.json", data=data.encode("utf-8"), sources=tuple(r.id for r in day.records)
            ),
        )
    )
