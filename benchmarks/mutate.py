"""`make mutate`: mutation testing of the core modules, one table of how many mutants die.

Not part of `make test` (it takes many minutes). mutmut (pinned in the `test` extra) copies
src/ and tests/ into mutants/, changes one thing at a time in the modules `[tool.mutmut]` in
pyproject.toml names (an operator, a constant, a `continue` turned into `break`...) and runs
the focused tests that call the changed function; a mutant that no test notices "survived".
This script starts mutmut afresh (earlier results are thrown away: a survivor that new tests
would kill is otherwise never run again), then reads its results and prints, per module:

    | module | mutants | equivalent | killed | survived | not run | score |

The score is killed / (killed + survived): equivalents are left out. Equivalent mutants (a change no test can see,
such as `total = 1` where every weight is a multiple of 100) are listed, each with why, in
mutation-equivalents.toml; each entry names the mutant and a piece of its changed line, and
an entry whose line no longer matches (the code moved) is reported stale and not excluded.

    python benchmarks/mutate.py              # run mutmut afresh, then the table
    python benchmarks/mutate.py --report     # the table of the last run only
    python benchmarks/mutate.py --again      # re-run only the last run's survivors
    python benchmarks/mutate.py --only text/split.py records.py   # some modules only
    python benchmarks/mutate.py --diffs      # also print each survivor's diff

Exit status 1 when a module scores under --min (95 by default).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENTS = ROOT / "mutation-equivalents.toml"


# The rows of the table: a module, or every module of a package (text/).
def _modules() -> tuple[str, ...]:
    """The table's modules: what `[tool.mutmut]` in pyproject.toml mutates (one place for it),
    globs expanded, less its `do_not_mutate`, in the order listed."""
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]
    skip = set(settings["mutmut"].get("do_not_mutate", ()))
    found: list[str] = []
    for pattern in settings["mutmut"]["only_mutate"]:
        for path in sorted(ROOT.glob(pattern)) if "*" in pattern else [ROOT / pattern]:
            name = path.relative_to(ROOT).as_posix()
            if name.endswith(".py") and name not in skip and name not in found:
                found.append(name)
    return tuple(found)


MODULES = _modules()

# mutmut's exit codes of a mutant's test run (mutmut/stats.py): a failing test, a pytest
# internal error, a timeout (the mutant made a loop endless) and the type checker all kill.
KILLED = {1, 3, 24, -24, 36, 37, 152, 255}
SURVIVED = {0}
NOT_COVERED = {5, 33}  # no test calls the function: counted as survived


@dataclass(frozen=True)
class Equivalent:
    mutant: str
    line: str
    why: str


@dataclass
class Row:
    module: str
    mutants: int = 0
    equivalent: int = 0
    killed: int = 0
    survived: int = 0
    other: int = 0  # not run (interrupted) or suspicious: neither killed nor survived

    @property
    def score(self) -> float:
        """Killed of the mutants run, equivalents left out (a module with mutants not run yet
        fails the --min check all the same: its table is not complete)."""
        counted = self.killed + self.survived
        return 100.0 * self.killed / counted if counted else 100.0


def load_equivalents() -> list[Equivalent]:
    data = tomllib.loads(EQUIVALENTS.read_text(encoding="utf-8"))
    return [Equivalent(e["mutant"], e["line"], e["why"]) for e in data.get("equivalent", [])]


def diff_of(mutant: str, module: str) -> str:
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    return get_diff_for_mutant(mutant, path=Path(module))


def changed_lines(diff: str) -> str:
    lines = diff.splitlines()
    return "\n".join(
        line[1:] for line in lines if line.startswith("+") and not line.startswith("+++")
    )


def reset_survivors(modules: tuple[str, ...]) -> list[str]:
    """Mark the last run's survivors (not its equivalents) in ``modules`` as not yet run and
    return them with the mutants not run yet: mutmut runs just these again, with the tests as
    they are now, and keeps every other verdict (adding tests can only kill more mutants).
    After a change to a module's code, run it afresh instead."""
    listed = {e.mutant for e in load_equivalents()}
    names: list[str] = []
    for module in modules:
        meta = ROOT / "mutants" / f"{module}.meta"
        if not meta.exists():
            raise SystemExit(f"{meta.relative_to(ROOT)}: no results to run again")
        data = json.loads(meta.read_text())
        codes = data["exit_code_by_key"]
        for mutant, code in codes.items():
            if code is None or code in SURVIVED or code in NOT_COVERED:
                if mutant in listed and code is not None:
                    continue
                codes[mutant] = None
                names.append(mutant)
        meta.write_text(json.dumps(data, indent=4))
    return names


def run_mutmut(max_children: int | None, modules: tuple[str, ...], *, again: bool) -> float:
    command = [sys.executable, "-m", "mutmut", "run"]
    if again:
        names = reset_survivors(modules)
        print(f"running {len(names)} survivors and mutants not run yet again")
        if not names:
            return 0.0
        command += names
    else:
        shutil.rmtree(ROOT / "mutants", ignore_errors=True)
        if modules != MODULES:
            command += [_mutant_glob(m) for m in modules]
    if max_children:
        command += ["--max-children", str(max_children)]
    started = time.monotonic()
    # mutmut draws a spinner; its last lines say how far it got if it fails.
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        print(done.stdout[-4000:], done.stderr[-4000:], sep="\n", file=sys.stderr)
        raise SystemExit(f"mutmut run failed (exit {done.returncode})")
    return seconds


def _mutant_glob(module: str) -> str:
    """mutmut's names of a module's mutants: src/aspdigest/text/split.py -> aspdigest.text.split.*"""
    return module.removeprefix("src/").removesuffix(".py").replace("/", ".") + ".*"


def results(modules: tuple[str, ...]) -> tuple[list[Row], list[tuple[str, str]], list[str]]:
    """Rows of the table, the survivors (mutant, module), and stale equivalents."""
    equivalents = {e.mutant: e for e in load_equivalents()}
    used: set[str] = set()
    stale: list[str] = []
    rows: list[Row] = []
    survivors: list[tuple[str, str]] = []
    for module in modules:
        meta = ROOT / "mutants" / f"{module}.meta"
        if not meta.exists():
            raise SystemExit(f"{meta.relative_to(ROOT)}: no results; run without --report first")
        codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
        row = Row(module.removeprefix("src/aspdigest/"))
        for mutant, code in sorted(codes.items()):
            row.mutants += 1
            known = equivalents.get(mutant)
            if known is not None and code in SURVIVED:
                used.add(mutant)
                if known.line in changed_lines(diff_of(mutant, module)):
                    row.equivalent += 1
                    continue
                stale.append(f"{mutant}: its change no longer holds {known.line!r}")
            if code in KILLED:
                row.killed += 1
            elif code in SURVIVED or code in NOT_COVERED:
                row.survived += 1
                survivors.append((mutant, module))
            else:
                row.other += 1
        rows.append(row)
    # An equivalent that a test now kills, or that no longer exists, is worth removing.
    prefixes = tuple(_mutant_glob(m).removesuffix("*") for m in modules)
    for mutant in sorted(m for m in set(equivalents) - used if m.startswith(prefixes)):
        stale.append(f"{mutant}: listed as equivalent but not a survivor of this run")
    return rows, survivors, stale


def table(rows: list[Row]) -> str:
    lines = [
        "| module | mutants | equivalent | killed | survived | not run | score |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| `{r.module}` | {r.mutants} | {r.equivalent} | {r.killed} | {r.survived} "
            f"| {r.other} | {r.score:.1f}% |"
        )
    total = Row(
        "total",
        sum(r.mutants for r in rows),
        sum(r.equivalent for r in rows),
        sum(r.killed for r in rows),
        sum(r.survived for r in rows),
        sum(r.other for r in rows),
    )
    lines.append(
        f"| **total** | {total.mutants} | {total.equivalent} | {total.killed} | "
        f"{total.survived} | {total.other} | {total.score:.1f}% |"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", action="store_true", help="only read the last run's results")
    parser.add_argument("--again", action="store_true", help="re-run the last run's survivors")
    parser.add_argument("--diffs", action="store_true", help="print each survivor's diff")
    parser.add_argument("--min", type=float, default=95.0, help="lowest score that passes")
    parser.add_argument("--max-children", type=int, help="parallel mutants (default: CPUs)")
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="MODULE",
        help="run only these modules (as in the table, e.g. text/split.py records.py)",
    )
    args = parser.parse_args()

    import os

    os.chdir(ROOT)  # mutmut reads pyproject.toml and mutants/ from the working directory
    modules = MODULES
    if args.only:
        modules = tuple(f"src/aspdigest/{m}" for m in args.only)
        unknown = [m for m in modules if m not in MODULES]
        if unknown:
            parser.error(f"not a module of the table: {', '.join(unknown)}")
    seconds = None if args.report else run_mutmut(args.max_children, modules, again=args.again)
    rows, survivors, stale = results(modules)
    print(table(rows))
    excluded = sum(r.equivalent for r in rows)
    print(f"\n{excluded} equivalent mutants excluded (listed in {EQUIVALENTS.name}).")
    if seconds is not None:
        print(f"mutmut run: {seconds:.0f} s wall time.")
    for line in stale:
        print(f"stale equivalent: {line}")
    if survivors:
        counts = Counter(module for _, module in survivors)
        print(
            f"\n{len(survivors)} survivors ({', '.join(f'{m}: {n}' for m, n in counts.items())}):"
        )
        for mutant, module in survivors:
            print(f"  {mutant}")
            if args.diffs:
                print("    " + diff_of(mutant, module).replace("\n", "\n    "))
    failing = [r.module for r in rows if r.score < args.min or r.other]
    if failing:
        print(f"\nunder {args.min:g}%: {', '.join(failing)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
