"""Time to build every ASP23 social thread: 5 days × 5 platforms, with quote posts.

Run: .venv/bin/python benchmarks/bench_threads.py  (or `make bench` for every benchmark)

Times `render.social.render` over all five days as `aspdigest build` runs it: templates,
packing and splitting, numbering, quote posts, the cards plan and layout check that decide
which card goes with which quote, and the JSON and text artifacts. Content is read once,
before timing. "cold" starts each run with a new template environment and empty font and
layout caches (what a fresh `aspdigest build` pays); "warm" keeps them. Median of 5 each.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from common import rounds, row

from aspdigest.config import load_project
from aspdigest.content import load_content
from aspdigest.days import plan_days
from aspdigest.render import RenderContext, cardlayout, fonts, social
from aspdigest.render.templates import make_environment

REPO = Path(__file__).resolve().parents[1]
RUNS = rounds(5, 1)


def main() -> None:
    project = load_project(REPO, environ={})
    content = load_content(project, "asp23")
    days = plan_days(content)

    def once(cold: bool) -> float:
        if cold:
            fonts.load.cache_clear()
            fonts.coverage.cache_clear()
            cardlayout.measure.cache_clear()
        started = time.perf_counter()
        ctx = RenderContext(project=project, content=content, env=make_environment(project))
        for day in days:
            social.render(day, ctx)
        return time.perf_counter() - started

    cold = statistics.median(once(True) for _ in range(RUNS))
    row(
        "ASP23 threads, all 5 days × 5 platforms + quote posts (cold caches)",
        cold * 1000,
        "ms",
        RUNS,
    )
    warm = statistics.median(once(False) for _ in range(RUNS))
    row(
        "ASP23 threads, all 5 days × 5 platforms + quote posts (warm caches)",
        warm * 1000,
        "ms",
        RUNS,
    )


if __name__ == "__main__":
    main()
