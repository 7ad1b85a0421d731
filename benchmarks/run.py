"""`make bench`: run every benchmarks/bench_*.py in turn and print one table.

Figures are medians of several runs; the machine is small and shared, so compare ratios
measured in one run rather than numbers from different days.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    print("| benchmark | value | runs |")
    print("|---|---|---|", flush=True)
    failed = 0
    for script in sorted(HERE.glob("bench_*.py")):
        proc = subprocess.run([sys.executable, str(script)], cwd=HERE, check=False)
        if proc.returncode != 0:
            print(f"| {script.name} | FAILED (exit {proc.returncode}) | |", flush=True)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
