"""Output of the command-line tools: rich tables for people, ``--json`` for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console(soft_wrap=True)
error_console = Console(stderr=True, soft_wrap=True)


def print_json(value: Any) -> None:
    """Write ``value`` as one JSON document on standard output."""
    json.dump(value, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")


def print_table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a table with one row per item; None shows as a dash."""
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("-" if cell is None else str(cell) for cell in row))
    console.print(table)


def print_fields(fields: Mapping[str, Any]) -> None:
    """Print ``name: value`` lines, aligned."""
    width = max((len(name) for name in fields), default=0)
    for name, value in fields.items():
        console.print(f"[bold]{name.ljust(width)}[/bold]  {'-' if value is None else value}")
