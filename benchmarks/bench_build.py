"""Wall and CPU time of `aspdigest build` on the ASP23 sample (cold, unchanged, one record
edited) and of `aspdigest --help`, with Python's own start-up as the reference.

Run: .venv/bin/python benchmarks/bench_build.py [--quick]  (or `make bench` for every benchmark)

Each figure is the median over several runs of the real console script in a fresh process,
on a scratch copy of the sample. The first cold build warms the user cache (compiled URL
patterns and templates, see aspdigest.cachedir), as any earlier run on the machine would.
"""

from __future__ import annotations

import shutil

from common import measure, python_startup, rounds, run_cli, scratch_project, timed_row

RUNS = rounds(5, 2)


def main() -> None:
    root = scratch_project()
    try:
        timed_row("Python start-up (`python -c pass`), reference", python_startup(RUNS * 2), None)
        run_cli("build", "asp23", "--force", cwd=root)  # warm-up: the user cache, the OS's
        cold = measure(lambda: run_cli("build", "asp23", "--force", cwd=root), RUNS)
        timed_row("ASP23 cold build (`build --force`)", cold, 1.0)
        warm = measure(lambda: run_cli("build", "asp23", cwd=root), RUNS)
        timed_row("ASP23 no-change rebuild", warm, 0.25)
        record = root / "content/asp23/2024-12-04/the-veto.md"
        text = record.read_text()
        edits = iter(range(1000))

        def edit_and_build() -> None:
            record.write_text(text.replace("over lunch", f"over lunch {next(edits)}"))
            run_cli("build", "asp23", cwd=root)

        one = measure(edit_and_build, RUNS)
        timed_row("ASP23 one record edited", one, 0.45)
        helps = measure(lambda: run_cli("--help", cwd=root), RUNS * 2)
        timed_row("`aspdigest --help`", helps, 0.1)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
