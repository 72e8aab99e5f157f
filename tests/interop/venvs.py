"""Cached virtual environments holding real peer packages (spinnman, spalloc, ...).

Each set of requirements gets its own venv under ``$PYSPALLOC_INTEROP_VENVS`` (default
``<repo>/.interop-venvs/``, git-ignored). A venv is created once, marked complete with a
``.ready`` file, and reused afterwards; a lock file serialises concurrent creation.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import subprocess
import sys
import venv
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

#: Seconds a venv creation (pip install from the package index) may take.
INSTALL_TIMEOUT = 900


def venvs_root() -> Path:
    """Directory holding the cached venvs."""
    return Path(os.environ.get("PYSPALLOC_INTEROP_VENVS", REPO_ROOT / ".interop-venvs"))


def venv_dir(*requirements: str) -> Path:
    """Directory of the venv for ``requirements`` (readable name plus a short hash)."""
    key = " ".join(sorted(requirements))
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", key)[:60].strip("-")
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    return venvs_root() / f"{name}-{digest}"


def venv_python(path: Path) -> Path:
    """The interpreter inside the venv at ``path``."""
    return path / "bin" / "python"


def ensure_venv(*requirements: str) -> Path:
    """Create (once) a venv with ``requirements`` pip-installed; return its python.

    Raises
    ------
    RuntimeError
        If the installation fails; the pip output is in the message.
    """
    path = venv_dir(*requirements)
    ready = path / ".ready"
    python = venv_python(path)
    if ready.exists():
        return python
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(str(path) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ready.exists():
            return python
        venv.EnvBuilder(with_pip=True, clear=True).create(path)
        result = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *requirements],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"pip install {requirements} failed:\n{result.stdout}\n{result.stderr}"
            )
        ready.write_text(" ".join(requirements) + "\n")
    return python


if __name__ == "__main__":  # pragma: no cover - manual use: python -m tests.interop.venvs REQ...
    print(ensure_venv(*sys.argv[1:]))
