"""Output of the command-line tools: rich tables for people, ``--json`` for scripts."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

console = Console(soft_wrap=True)
error_console = Console(stderr=True, soft_wrap=True)


def print_json(value: Any) -> None:
    """Write ``value`` as one JSON document on standard output."""
    json.dump(value, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")


def make_table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    """A table with one row per item; None shows as a dash."""
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(_cell(cell) for cell in row))
    return table


def _cell(value: Any) -> RenderableType:
    if value is None:
        return "-"
    return value if isinstance(value, Text) else str(value)


def print_table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a table with one row per item; None shows as a dash."""
    console.print(make_table(title, columns, rows))


def watch(render: Callable[[], RenderableType], interval: float) -> None:
    """Show ``render()`` and redraw it every ``interval`` seconds until Ctrl-C."""
    from rich.live import Live

    first = render()
    error_console.print(f"[dim]Redrawing every {interval:g} s; press Ctrl-C to stop.[/]")
    with Live(first, console=console, auto_refresh=False) as live:
        try:
            while True:
                time.sleep(interval)
                live.update(render(), refresh=True)
        except KeyboardInterrupt:
            pass


def print_fields(fields: Mapping[str, Any]) -> None:
    """Print ``name: value`` lines, aligned."""
    width = max((len(name) for name in fields), default=0)
    for name, value in fields.items():
        console.print(f"[bold]{name.ljust(width)}[/bold]  {'-' if value is None else value}")
