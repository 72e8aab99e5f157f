"""Interop fixtures: real peer packages (spinnman, spalloc, ...) in cached virtual envs.

Reuse in any interop test::

    def test_something(interop_python):
        python = interop_python("spinnman==1!7.3.0")   # path to that venv's python
        subprocess.run([str(python), "-c", "import spinnman"], check=True, timeout=60)

* Each distinct set of requirements gets one venv under ``$PYSPALLOC_INTEROP_VENVS``
  (default ``<repo>/.interop-venvs/``, git-ignored), created once from the package index
  with pip and reused by later runs (see :mod:`tests.interop.venvs`).
* If the venv cannot be created (no index reachable), the test is skipped, unless
  ``PYSPALLOC_INTEROP_REQUIRED=1`` is set, which makes it fail instead.
* ``run_interop_script(python, script, *args, timeout=...)`` (a fixture too) starts a
  script with that interpreter and returns the ``subprocess.Popen`` with text pipes.

spinnman needs ``[Machine] version = 5`` before creating a transceiver; in scripts use
``from spinnman.config_setup import unittest_setup; unittest_setup()`` then
``from spinn_utilities.config_holder import set_config;
set_config("Machine", "version", "5")``. Never give spinnman the host name 127.0.0.1
(it switches to a virtual transceiver that invents answers): use 127.1.x.y addresses.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.interop.venvs import ensure_venv


@pytest.fixture(scope="session")
def interop_python() -> Callable[..., Path]:
    """Return a function ``(*requirements) -> Path`` of a venv python with them installed."""

    def get(*requirements: str) -> Path:
        try:
            return ensure_venv(*requirements)
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
            if os.environ.get("PYSPALLOC_INTEROP_REQUIRED") == "1":
                raise
            pytest.skip(f"cannot create interop venv for {requirements}: {error}")

    return get


@pytest.fixture
def run_interop_script() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start ``python -c script *args`` with text pipes; killed at test end if still running."""
    started: list[subprocess.Popen[str]] = []

    def run(python: Path, script: str, *args: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [str(python), "-u", "-c", script, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        return process

    yield run
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
