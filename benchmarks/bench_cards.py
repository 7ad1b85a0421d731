"""Time the quote-card stage on the ASP23 sample: milliseconds per card and the stage's wall time.

Run: `.venv/bin/python benchmarks/bench_cards.py [--rounds N] [--json]`

Reports
- ms per card: median over all ASP23 cards (every quote with card: true, every size) of
  the time to lay out, draw and PNG-encode one card, with fonts already loaded (best of
  --rounds per card, then the median across cards); plus the slowest card, and the
  median with every cache emptied before each card (the worst case);
- card stage wall time: `render.cards.render` over every day of the event, from cold font
  caches (spec load, glyph checks, drawing, encoding), as `aspdigest build` runs it;
- the process pool: all 24 ASP23 cards as one batch drawn serially and through the pool
  `render.cards` uses for days with more than PARALLEL_ABOVE cards: once with the pool's
  start-up (workers forked from this process, which runs no other thread, or else a fork
  server; fonts) and then warm, as later days of a build find it (`carddraw.draw_all`,
  median of 7 runs: on a noisy 2-core machine a median of 3 swung from 1.3x to 1.7x).
  Issue 18's goal: the warm pool at least 1.6 times as fast as serial on 2 cores. CPU time
  of the pool run counts the workers only once they exit, so it is shown for serial only;
  a separate run a card at a time gives each worker's CPU seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from common import QUICK, cpu_seconds, row

from aspdigest.config import load_project
from aspdigest.content import load_content
from aspdigest.days import plan_days
from aspdigest.render import RenderContext, carddraw, cardlayout, fonts
from aspdigest.render import cards as cards_module
from aspdigest.render.templates import make_environment

REPO = Path(__file__).resolve().parents[1]


def _clear_caches() -> None:
    fonts.load.cache_clear()
    fonts.coverage.cache_clear()
    cardlayout.measure.cache_clear()


def timed_draw(job: carddraw.CardJob) -> tuple[int, float]:
    """draw_card in a worker: the worker's pid and the CPU seconds the card took."""
    started = time.process_time()
    carddraw.draw_card(job)
    return os.getpid(), time.process_time() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed draws per card (default 5)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--quick", action="store_true", help="one round per card")
    args = parser.parse_args()
    if args.quick or QUICK:
        args.rounds = 1

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
        carddraw.draw_card(job)
        cold.append((time.perf_counter() - t0) * 1000)
        best = float("inf")
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            carddraw.draw_card(job)
            best = min(best, time.perf_counter() - t0)
        per_card.append(best * 1000)

    serial_runs, pool_runs, serial_cpu = [], [], []
    pool_cpu_critical: list[float] = []
    carddraw.shutdown_card_pool()
    method = carddraw.start_method()
    t0 = time.perf_counter()
    pooled = carddraw.draw_all(jobs) if len(jobs) > carddraw.PARALLEL_ABOVE else []
    pool_cold_s = time.perf_counter() - t0
    serial: list[carddraw.CardResult] = []
    for _ in range(1 if QUICK else 7):  # a noisy machine: the median of more runs
        c0, t0 = cpu_seconds(), time.perf_counter()
        serial = [carddraw.draw_card(job) for job in jobs]
        serial_runs.append(time.perf_counter() - t0)
        serial_cpu.append(cpu_seconds() - c0)
        t0 = time.perf_counter()
        pooled = carddraw.draw_all(jobs)  # as a build draws a day of that many cards
        pool_runs.append(time.perf_counter() - t0)
        # Once more, a card at a time, for each worker's CPU seconds.
        per_worker: dict[int, float] = {}
        for pid, seconds in carddraw.card_pool().map(timed_draw, jobs, chunksize=1):
            per_worker[pid] = per_worker.get(pid, 0.0) + seconds
        # The busiest worker's CPU: what the pool's wall time would be with a core each.
        pool_cpu_critical.append(max(per_worker.values()))
    carddraw.shutdown_card_pool()
    serial_s, pool_s = statistics.median(serial_runs), statistics.median(pool_runs)
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
        "batch_pool_with_startup_s": round(pool_cold_s, 3),
        "batch_serial_cpu_s": round(statistics.median(serial_cpu), 3),
        "start_method": method,
        "cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    runs = len(serial_runs)
    row(
        f"ASP23 quote cards: ms per card, fonts loaded ({count} cards)",
        figures["ms_per_card_median"],
        "ms",
        f"best of {args.rounds}, median over cards",
    )
    row("  ms per card, cold caches", figures["ms_per_card_cold_median"], "ms", "median over cards")
    row("card stage wall time, cold (cards.render, all days)", stage * 1000, "ms", 1)
    row(
        f"{count} cards serially",
        serial_s * 1000,
        "ms",
        runs,
        cpu=f"{figures['batch_serial_cpu_s'] * 1000:,.0f} ms CPU",
    )
    row(
        f"{count} cards in the process pool, start-up included ({method})",
        pool_cold_s * 1000,
        "ms",
        1,
    )
    row(
        f"{count} cards in the warm process pool ({figures['cores']} cores)",
        pool_s * 1000,
        "ms",
        runs,
    )
    critical = statistics.median(pool_cpu_critical)
    cpu_speedup = statistics.median(serial_cpu) / critical
    # Each pool run against the serial run just before it, then the median: a neighbour's
    # burst that slows one pair slows both of its runs alike.
    speedup = statistics.median(s / p for s, p in zip(serial_runs, pool_runs, strict=True))
    row(
        f"{count} cards: warm pool speed-up over serial",
        speedup,
        "",
        runs,
        "≥ 1.6×",
        speedup >= 1.6,
        f"{serial_s / pool_cold_s:.2f}× with start-up",
    )
    row(
        f"{count} cards: serial CPU / busiest worker's CPU (the speed-up with idle cores)",
        cpu_speedup,
        "",
        runs,
        "≥ 1.6×",
        cpu_speedup >= 1.6,
        f"busiest worker {critical * 1000:,.0f} ms CPU",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
