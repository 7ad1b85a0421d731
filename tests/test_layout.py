"""The shape the design keeps (DESIGN.md), checked on the source itself.

`artifacts.py` is the one writer and the one reader of out/: no other module opens a
manifest or names the files a build leaves there. The renderers that produce those files
(render/) name what they make; everything after the build reads through `BuiltDay`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import aspdigest

SRC = Path(aspdigest.__file__).parent
BUILT_NAMES = ("manifest.json", "digest.eml")


def _literals(tree: ast.AST) -> list[tuple[int, str]]:
    """Every string constant of a module except docstrings, with its line."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def test_only_artifacts_reads_built_output() -> None:
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel == "artifacts.py" or rel.startswith("render/"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for line, text in _literals(tree):
            if any(name in text for name in BUILT_NAMES) or text.startswith("thread."):
                offenders.append(f"{rel}:{line}: {text!r}")
    assert offenders == []


def test_the_check_sees_a_module_that_names_a_built_file() -> None:
    # The check above must be able to fail: a literal like the old ones is found.
    tree = ast.parse('"""Reads manifest.json."""\nNAME = "digest.eml"\nf"thread.{p}.json"\n')
    found = [text for _, text in _literals(tree)]
    assert "digest.eml" in found
    assert "thread." in found
    assert "Reads manifest.json." not in found


HELP = """
import sys
from aspdigest.cli import app
sys.argv = ["aspdigest", "--help"]
try:
    app()
except SystemExit:
    pass
heavy = ("sqlalchemy", "pydantic", "PIL", "mjml", "apscheduler", "aspdigest.store", "aspdigest.config")
print(sorted(m for m in sys.modules if m.split(".")[0] in heavy or m.startswith(heavy)), file=sys.stderr)
"""


def test_help_imports_neither_the_store_nor_pydantic_nor_pillow_nor_mjml() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", HELP], capture_output=True, text=True, check=True, timeout=60
    )
    assert "Usage: aspdigest" in done.stdout
    assert done.stderr.strip().splitlines()[-1] == "[]"
