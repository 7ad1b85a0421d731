"""Time the quote-card stage on the ASP23 sample: milliseconds per card and the stage's wall time.

Run: `.venv/bin/python benchmarks/bench_cards.py [--rounds N] [--json]`

Reports
- ms per card: median over all ASP23 cards (every quote with card: true, every size) of
  the time to lay out, draw and PNG-encode one card, with fonts already loaded (best of
  --rounds per card, then the median across cards); plus the slowest card, and the
  median with every cache emptied before each card (the worst case);
- card stage wall time: `render.cards.render` over every day of the event, from cold font
  caches (spec load, glyph checks, drawing, encoding), as `aspdigest build` runs it;
- the process pool: all ASP23 cards as one batch drawn serially and through the pool
  `render.cards` uses for days with more than PARALLEL_ABOVE cards.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from aspdigest.config import load_project
from aspdigest.content import load_content
from aspdigest.days import plan_days
from aspdigest.render import RenderContext, cardlayout, fonts
from aspdigest.render import cards as cards_module
from aspdigest.render.templates import make_environment

REPO = Path(__file__).resolve().parents[1]


def _clear_caches() -> None:
    fonts.load.cache_clear()
    fonts.coverage.cache_clear()
    cardlayout.measure.cache_clear()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed draws per card (default 5)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    project = load_project(REPO, environ={})
    content = load_content(project, "asp23")
    ctx = RenderContext(project=project, content=content, env=make_environment(project))
    days = plan_days(content)

    # The whole stage, cold: what a build spends on cards.
    _clear_caches()
    started = time.perf_counter()
    rendered = [cards_module.render(day, ctx) for day in days]
    stage = time.perf_counter() - started
    count = sum(len(r.artifacts) for r in rendered)
    sizes = [len(a.data) for r in rendered for a in r.artifacts]

    # Per card, warm: layout + drawing + encoding.
    jobs = [job for day in days for job in cards_module.plan(day, ctx).jobs]
    per_card, cold = [], []
    for job in jobs:
        _clear_caches()
        t0 = time.perf_counter()
        cards_module.draw_card(job)
        cold.append((time.perf_counter() - t0) * 1000)
        best = float("inf")
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            cards_module.draw_card(job)
            best = min(best, time.perf_counter() - t0)
        per_card.append(best * 1000)

    t0 = time.perf_counter()
    serial = [cards_module.draw_card(job) for job in jobs]
    serial_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    pooled = cards_module.draw_all(jobs)
    pool_s = time.perf_counter() - t0
    assert [r.png for r in pooled] == [r.png for r in serial], "pool and serial bytes differ"

    figures = {
        "cards": count,
        "ms_per_card_median": round(statistics.median(per_card), 1),
        "ms_per_card_max": round(max(per_card), 1),
        "ms_per_card_cold_median": round(statistics.median(cold), 1),
        "card_stage_wall_s": round(stage, 3),
        "png_bytes_max": max(sizes),
        "batch_serial_s": round(serial_s, 3),
        "batch_pool_s": round(pool_s, 3),
        "cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"ASP23 quote cards:        {count} ({count // 4} quotes × 4 sizes)")
    print(
        f"ms per card (median):     {figures['ms_per_card_median']} ms "
        f"(slowest {figures['ms_per_card_max']} ms; layout + draw + PNG, fonts loaded)"
    )
    print(
        f"ms per card, cold:        {figures['ms_per_card_cold_median']} ms median "
        "(font faces and word widths loaded afresh for each card)"
    )
    print(
        f"card stage wall time:     {figures['card_stage_wall_s']} s "
        "(cards.render over all 5 days, cold font caches)"
    )
    print(f"largest PNG:              {figures['png_bytes_max']} bytes")
    print(
        f"all {count} cards as one batch: serial {figures['batch_serial_s']} s, "
        f"process pool {figures['batch_pool_s']} s on {figures['cores']} cores "
        "(pool start-up included)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
