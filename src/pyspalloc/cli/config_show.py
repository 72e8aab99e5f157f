"""Printing the service's effective settings (``pyspalloc config show``)."""

from __future__ import annotations

from pathlib import Path

import click

from pyspalloc.cli.output import print_json
from pyspalloc.server.config_file import DEFAULT, Shown
from pyspalloc.server.config_values import shown

FORMATS = ("text", "json")


def _plain(value: object) -> object:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def print_settings(rows: list[Shown], fmt: str) -> None:
    """Print settings as TOML with the default and source of each value in a comment
    (``text``: itself a usable configuration file), or as one JSON document."""
    if fmt == "json":
        print_json(
            {
                "settings": [
                    {
                        "table": r.setting.table,
                        "key": r.setting.key,
                        "value": _plain(r.value),
                        "default": _plain(r.default),
                        "source": r.source,
                        "meaning": r.setting.meaning,
                    }
                    for r in rows
                ]
            }
        )
        return
    table = None
    for row in rows:
        if row.setting.table != table:
            click.echo(f"[{row.setting.table}]" if table is None else f"\n[{row.setting.table}]")
            table = row.setting.table
        note = (
            row.source if row.source == DEFAULT else f"{row.source}; default {shown(row.default)}"
        )
        line = f"{row.setting.key} = {shown(row.value)}"
        if row.value is None:  # TOML has no null: leave the key out
            line = f"# {row.setting.key} = (unset)"
        click.echo(f"{line}  # {note}")
