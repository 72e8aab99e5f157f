"""``pyspalloc serve`` in a subprocess on a SQLite file, with its output captured."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from pyspalloc.server.auth import hash_password
from pyspalloc.server.store import Store, TrustLevel
from tests.support.addresses import free_port
from tests.support.http_client import PASSWORDS

#: runs the ``pyspalloc`` command line with this interpreter
PYSPALLOC = [sys.executable, "-c", "from pyspalloc.cli.main import main; main()"]

TRUST = {"alice": TrustLevel.USER, "bob": TrustLevel.USER, "root": TrustLevel.ADMIN,
         "rita": TrustLevel.READER}  # fmt: skip


def make_users(database: str) -> None:
    store = Store(database)
    try:
        for name, password in PASSWORDS.items():
            store.create_user(name, hash_password(password), TRUST[name])
    finally:
        store.close()


class ServeProcess:
    """One ``pyspalloc serve --controller instant`` process; ``kill9()`` or ``stop()``."""

    machine_args: tuple[str, ...] = ("--machine", "spin24", "--controller", "instant")

    def __init__(self, data_dir: Path, database: str, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.database = database
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/spalloc/"
        self.lines: list[str] = []
        self.proc: subprocess.Popen[str] | None = None

    def start(self, *extra: str, timeout: float = 30.0) -> ServeProcess:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [*PYSPALLOC, "serve", "--port", str(self.port),
             "--data-dir", str(self.data_dir), "--database", self.database,
             *self.machine_args, *extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )  # fmt: skip
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("serve exited:\n" + "\n".join(self.lines[-30:]))
            try:
                if requests.get(self.url + "system/login.html", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError("serve did not start:\n" + "\n".join(self.lines[-30:]))

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class VirtualServeProcess(ServeProcess):
    """``pyspalloc serve --machine virtual:SPEC --controller bmp``: the service runs its
    virtual machine as a child process; ``child_pids()`` finds it."""

    def __init__(self, data_dir: Path, database: str, spec: str = "virtual:spin24") -> None:
        from pyspalloc.transceiver.boot import boot_image

        super().__init__(data_dir, database)
        # the service boots each job's root board (with our synthetic image: virtual boards
        # only), so tests can talk SCP to it at once
        image = data_dir.parent / f"{data_dir.name}-scamp.boot"
        image.write_bytes(boot_image())
        self.machine_args = ("--machine", spec, "--controller", "bmp", "--boot-image", str(image))

    def child_pids(self) -> list[int]:
        """The service's child processes now."""
        return child_pids(self.pid)


def child_pids(pid: int) -> list[int]:
    """The live (not zombie) child processes of ``pid``."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return [c for c in found if process_alive(c)]


def process_alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")
