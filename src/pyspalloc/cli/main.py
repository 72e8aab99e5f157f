"""Entry point of the ``pyspalloc`` command.

Each sub-command lives in its own module and is imported only when it is used, so
``pyspalloc virtual`` does not pay for the web service's imports.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

#: sub-command name -> "module:attribute" of its click command
COMMANDS: dict[str, str] = {
    "virtual": "pyspalloc.cli.virtual:virtual",
    "serve": "pyspalloc.cli.serve:serve",
    "config": "pyspalloc.cli.config:config",
    "user": "pyspalloc.cli.user:user",
    "demo": "pyspalloc.cli.demo:demo",
    "machines": "pyspalloc.cli.machines:machines",
    "jobs": "pyspalloc.cli.jobs:jobs",
    "ps": "pyspalloc.cli.jobs:jobs",
    "alloc": "pyspalloc.cli.alloc:alloc",
    "job": "pyspalloc.cli.job:job",
    "where-is": "pyspalloc.cli.where_is:where_is",
    "machine": "pyspalloc.cli.machine_check:machine",
    "quota": "pyspalloc.cli.quota:quota",
    "admin": "pyspalloc.cli.admin:admin",
}


class LazyGroup(click.Group):
    """A click group whose commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        # a command's module that does not import is a broken install: fail, not hide it
        command: Any = getattr(importlib.import_module(module_name), attribute)
        return command  # type: ignore[no-any-return]


@click.group(cls=LazyGroup)
@click.version_option(package_name="pyspalloc")
def main() -> None:
    """pyspalloc: a Spalloc client, service and virtual SpiNNaker machine."""
