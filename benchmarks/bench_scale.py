"""Scale figures: a 1,000-record synthetic conference, per-card and per-digest cost, and
messages per second over parallel SMTP connections.

Run: .venv/bin/python benchmarks/bench_scale.py  (or `make bench` for every benchmark)

- cold build: `aspdigest build synth --force` on the conference `generate.py` writes
  (BENCH_RECORDS records, default 1,000, over 50 days so each digest stays under Gmail's
  clipping limit; 400 quotes in English, French, Ukrainian and Arabic);
- ms per card and ms per digest: `render.cards.render` and `render.email.render` for every
  day of that conference in this process, divided by the cards / digests made;
- messages per second: `send_digest` of BENCH_SMTP_MESSAGES (default 3,000) personalised
  ASP23 digests with per-recipient progress in a SQLite store, to an aiosmtpd server in a
  separate process, over 1 and over BENCH_CONNECTIONS (default 4) connections.
Every figure is the median of several runs.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench_smtp import send_rate
from common import QUICK, measure, rounds, row, run_cli, scratch_project, timed_row
from generate import EVENT, generate

RECORDS = int(os.environ.get("BENCH_RECORDS", "1000"))
# bench_smtp.py measures sending against Postfix; here only with BENCH_SMTP_MESSAGES set.
MESSAGES = int(os.environ.get("BENCH_SMTP_MESSAGES", "0"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "4"))
BUILD_RUNS = rounds(3, 1)
RENDER_RUNS = rounds(3, 1)
SMTP_RUNS = rounds(3, 1)


def per_item(root: Path) -> tuple[float, float, int, int]:
    """Median ms per card and per digest over every day of the synthetic conference."""
    from aspdigest.config import load_project
    from aspdigest.content import load_content
    from aspdigest.days import plan_days
    from aspdigest.render import RenderContext
    from aspdigest.render import cards as cards_render
    from aspdigest.render import email as email_render
    from aspdigest.render.templates import make_environment

    project = load_project(root, environ={})
    content = load_content(project, EVENT)
    days = plan_days(content)
    ctx = RenderContext(project, content, make_environment(project))
    email_render.render(days[0], ctx)  # warm-up: imports, template compilation
    card_ms, digest_ms = [], []
    cards = 0
    for _ in range(RENDER_RUNS):
        started = time.perf_counter()
        cards = sum(len(cards_render.render(day, ctx).artifacts) for day in days)
        card_ms.append((time.perf_counter() - started) * 1000 / max(1, cards))
        started = time.perf_counter()
        for day in days:
            email_render.render(day, ctx)
        digest_ms.append((time.perf_counter() - started) * 1000 / len(days))
    return statistics.median(card_ms), statistics.median(digest_ms), cards, len(days)


def main() -> None:
    synth = Path(tempfile.mkdtemp(prefix="aspdigest-synth-")) / "project"
    sample = scratch_project()
    try:
        generate(synth, days=50, records=RECORDS, quotes=RECORDS * 2 // 5)
        run_cli("check", EVENT, cwd=synth)  # warm-up: the OS's file cache, the user cache
        cold = measure(lambda: run_cli("build", EVENT, "--force", cwd=synth), BUILD_RUNS)
        timed_row(
            f"{RECORDS:,}-record conference (50 days), cold build (`build --force`)",
            cold,
            7.0 if RECORDS == 1000 else None,
            unit="s",
        )
        if QUICK:
            return
        card, digest, cards, digests = per_item(synth)
        row(f"ms per card ({cards} cards, {RECORDS:,}-record conference)", card, "ms", RENDER_RUNS)
        row(
            f"ms per digest ({digests} digests, {RECORDS:,}-record conference)",
            digest,
            "ms",
            RENDER_RUNS,
        )
        for connections in sorted({1, CONNECTIONS}) if MESSAGES else ():
            rates = [
                send_rate(sample, run, messages=MESSAGES, connections=connections)
                for run in range(SMTP_RUNS)
            ]
            row(
                f"SMTP send, {MESSAGES:,} messages to local aiosmtpd, {connections} connection(s)",
                statistics.median(rates),
                "msgs/s",
                SMTP_RUNS,
            )
    finally:
        shutil.rmtree(synth.parent, ignore_errors=True)
        shutil.rmtree(sample, ignore_errors=True)


if __name__ == "__main__":
    main()
