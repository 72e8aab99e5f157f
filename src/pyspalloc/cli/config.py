"""``pyspalloc config``: the service's configuration."""

from __future__ import annotations

import click

from pyspalloc.cli.serve import serve


@click.group()
def config() -> None:
    """The Spalloc service's settings (see ``pyspalloc serve --config``)."""


@config.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.argument("serve_options", nargs=-1, type=click.UNPROCESSED)
def show(as_json: bool, serve_options: tuple[str, ...]) -> None:
    """Print the effective settings of ``pyspalloc serve SERVE_OPTIONS`` (e.g.
    ``--config site.toml --port 9000``): each value, its default and where it came from
    (default, file, command line or environment)."""
    fmt = "json" if as_json else "text"
    serve.main([*serve_options, "--print-config", fmt], prog_name="pyspalloc serve")
