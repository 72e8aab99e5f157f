"""Where the command-line tools find the service and the user's credentials.

Each value comes from the command-line option, else the environment
(``SPALLOC_SERVER``, ``SPALLOC_USER``, ``SPALLOC_PASSWORD``, ``SPALLOC_TOKEN``), else the
``[pyspalloc]`` section of the per-user config file
(``$XDG_CONFIG_HOME/pyspalloc/config.ini``, normally ``~/.config/pyspalloc/config.ini``).
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass
from pathlib import Path

import click

SECTION = "pyspalloc"
ENVIRONMENT = {
    "url": "SPALLOC_SERVER",
    "username": "SPALLOC_USER",
    "password": "SPALLOC_PASSWORD",
    "token": "SPALLOC_TOKEN",
    "machine": "SPALLOC_MACHINE",
}


def config_path() -> Path:
    """The per-user config file (it need not exist)."""
    override = os.environ.get("PYSPALLOC_CONFIG")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "pyspalloc" / "config.ini"


def _from_file(path: Path) -> dict[str, str]:
    parser = configparser.ConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error as error:
        raise click.ClickException(f"cannot read config file {path}: {error}") from error
    return dict(parser[SECTION]) if parser.has_section(SECTION) else {}


@dataclass(frozen=True)
class ServiceSettings:
    """How to reach and log in to a Spalloc service."""

    url: str
    username: str | None = None
    password: str | None = None
    token: str | None = None
    machine: str | None = None

    @classmethod
    def resolve(
        cls,
        url: str | None = None,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        machine: str | None = None,
    ) -> ServiceSettings:
        """Merge arguments, environment and config file, in that order of precedence.

        Raises
        ------
        click.UsageError
            If no service URL is given anywhere.
        """
        given = {
            "url": url,
            "username": username,
            "password": password,
            "token": token,
            "machine": machine,
        }
        stored = _from_file(config_path())
        merged: dict[str, str | None] = {}
        for key, value in given.items():
            merged[key] = value or os.environ.get(ENVIRONMENT[key]) or stored.get(key) or None
        if not merged["url"]:
            raise click.UsageError(
                "no service given: use --url, set SPALLOC_SERVER, or put url = ... in the "
                f"[{SECTION}] section of {config_path()}"
            )
        return cls(
            url=str(merged["url"]),
            username=merged["username"],
            password=merged["password"],
            token=merged["token"],
            machine=merged["machine"],
        )
