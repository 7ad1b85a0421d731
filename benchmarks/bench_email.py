"""Time to render the five ASP23 email digests, and each digest's HTML size.

Run: .venv/bin/python benchmarks/bench_email.py  (or `make bench` for every benchmark)

Renders every day with the email renderer alone (Jinja2 → MJML → lint → mjml-python,
the archive page, the text part and the .eml), in one process after a warm-up, so the
figure is the renderer's own cost, not Python's start-up or other renderers'.
"""

from __future__ import annotations

import shutil

from common import median_seconds, rounds, row, scratch_project

RUNS = rounds(5, 1)


def main() -> None:
    from aspdigest.config import load_project
    from aspdigest.content import load_content
    from aspdigest.days import plan_days
    from aspdigest.render import RenderContext
    from aspdigest.render.email import render
    from aspdigest.render.templates import make_environment

    root = scratch_project()
    try:
        project = load_project(root, environ={})
        content = load_content(project, "asp23")
        days = plan_days(content)
        ctx = RenderContext(project, content, make_environment(project))
        outputs = [render(day, ctx) for day in days]  # warm-up: imports, template compilation
        seconds, _ = median_seconds(lambda: [render(day, ctx) for day in days], RUNS)
        row(f"Email digests, all {len(days)} ASP23 days rendered", seconds * 1000, "ms", RUNS)
        for day, output in zip(days, outputs, strict=True):
            html = next(a for a in output.artifacts if a.path == "digest.html")
            row(
                f"  digest.html {day.key} ({len(day.records)} items)",
                len(html.data) / 1024,
                "KB",
                "size",
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
