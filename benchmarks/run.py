"""`make bench`: run every benchmarks/bench_*.py in turn and print one table.

Run: .venv/bin/python benchmarks/run.py [--quick] [NAME ...]  (NAME: e.g. `build` for
bench_build.py; default all). `--quick` runs fewer rounds and smaller sizes (a smoke test).

Each row: what was measured, the goal of issue 18 where there is one, the median wall-clock
figure, whether it meets the goal, the CPU time (user + system, this process and its
children) beside it, and the number of runs. Wall time depends on the machine's load, CPU
time much less: on a busy machine judge by the CPU column and by the ratios measured in one
run (pool vs serial, ours vs Postfix's smtp-source, Mastodon vs Bluesky).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    args = [a for a in sys.argv[1:] if a != "--quick"]
    env = dict(os.environ)
    if "--quick" in sys.argv[1:]:
        env["BENCH_QUICK"] = "1"
    scripts = sorted(HERE.glob("bench_*.py"))
    if args:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in args]
    print(f"# aspdigest benchmarks, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs,")
    print(f"# load average {', '.join(f'{x:.2f}' for x in os.getloadavg())} at the start\n")
    print("| what | goal | measured (median) | met | CPU time | runs |")
    print("|---|---|---|---|---|---|", flush=True)
    failed = 0
    for script in scripts:
        proc = subprocess.run([sys.executable, str(script)], cwd=HERE, env=env, check=False)
        if proc.returncode != 0:
            print(f"| {script.name} | | FAILED (exit {proc.returncode}) | | | |", flush=True)
            failed += 1
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\n# load average {load} at the end")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
