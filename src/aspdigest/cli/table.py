"""How listings look: a table with headers on a terminal, tab-separated lines when piped.

Presentation only, for the thin CLI (`schedule plan|list`, `status`, `subscribers list`…):
`print_table(headers, rows, empty=…)` takes strings and writes them to standard output. On a
terminal it draws a rich table; piped, it writes one header line then one tab-separated line
per row (every field escaped by `cell`, so a tab or newline in a title cannot shift a
column), which `cut`, spreadsheets and scripts read. An empty listing says so (`empty`) on a
terminal, and on standard error when piped so that the piped output stays only the header.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from aspdigest.safetext import terminal_safe


def cell(text: str) -> str:
    """One field of a tab-separated listing, printable: controls, tabs and newlines escaped."""
    return terminal_safe(text).replace("\t", "\\t").replace("\n", "\\n")


def is_terminal() -> bool:
    return sys.stdout.isatty()


def print_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], *, empty: str | None = None
) -> None:
    if not rows and empty:
        if is_terminal():
            print(empty)
            return
        sys.stderr.write(empty + "\n")
    if not is_terminal():
        print("\t".join(headers))
        for row in rows:
            print("\t".join(cell(field) for field in row).rstrip())
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(*headers, box=None, header_style="bold", pad_edge=False)
    for row in rows:
        # Text, not markup: a title with [brackets] is shown as written
        table.add_row(*(Text(terminal_safe(field)) for field in row))
    Console(markup=False, highlight=False, soft_wrap=False).print(table)
