"""Wall time of `aspdigest build` on the ASP23 sample (cold and unchanged) and of `aspdigest --help`.

Run: .venv/bin/python benchmarks/bench_build.py  (or `make bench` for every benchmark)
"""

from __future__ import annotations

import shutil

from common import median_seconds, row, run_cli, scratch_project

RUNS = 5


def main() -> None:
    root = scratch_project()
    try:
        cold, _ = median_seconds(lambda: run_cli("build", "asp23", "--force", cwd=root), RUNS)
        row("ASP23 build, every day rendered (`build --force`)", cold * 1000, "ms", RUNS)
        warm, _ = median_seconds(lambda: run_cli("build", "asp23", cwd=root), RUNS)
        row("ASP23 rebuild, nothing changed", warm * 1000, "ms", RUNS)
        record = root / "content/asp23/2024-12-04/the-veto.md"
        text = record.read_text()
        edits = iter(range(1000))

        def edit_and_build() -> None:
            record.write_text(text.replace("over lunch", f"over lunch {next(edits)}"))
            run_cli("build", "asp23", cwd=root)

        one, _ = median_seconds(edit_and_build, RUNS)
        row("ASP23 rebuild, one record edited", one * 1000, "ms", RUNS)
        helps, _ = median_seconds(lambda: run_cli("--help", cwd=root), 10)
        row("`aspdigest --help` wall time", helps * 1000, "ms", 10)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
