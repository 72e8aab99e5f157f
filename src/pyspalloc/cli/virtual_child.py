"""Virtual machines as child processes of a command (``serve``, ``demo``).

Each ``virtual:`` machine spec runs as ``python -m pyspalloc virtual --exit-on-eof`` with
the same interpreter, so nothing done to a virtual board can take memory or CPU from the
service's own process. The child takes a free address range by itself (or the spec's
``@BASE``); the command passes the service the spec with the base the child reports, so
the service knows the boards only by address. The child stops when its standard input
ends, so it dies with its parent however the parent ends.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from types import TracebackType
from typing import IO

from pyspalloc.geometry import MachineSpec, parse_machine_spec

__all__ = ["VirtualChild", "VirtualChildError", "VirtualChildren"]

#: seconds a child may take to bind its sockets and say ``ready``
START_TIMEOUT = 60.0
#: seconds a child may take to stop before it is killed
STOP_TIMEOUT = 10.0


class VirtualChildError(RuntimeError):
    """A virtual machine child process failed to start."""


class VirtualChild:
    """One ``pyspalloc virtual`` child process serving one ``virtual:`` spec.

    Parameters
    ----------
    spec:
        The machine spec (``virtual:NAME``, ``virtual:NAME@BASE`` or ``virtual:FILE``).
    memory_mib:
        The child machine's memory budget in MiB (None: its default).
    """

    def __init__(self, spec: str, memory_mib: int | None = None) -> None:
        self.spec = parse_machine_spec(spec)
        self.memory_mib = memory_mib
        self.process: subprocess.Popen[str] | None = None
        #: the boards the child reported (one dict per board)
        self.boards: list[dict[str, object]] = []
        #: the spec the service is given: the child's address base made explicit
        self.service_spec: MachineSpec = self.spec

    @property
    def pid(self) -> int | None:
        """The child's process id, once started."""
        return None if self.process is None else self.process.pid

    def start(self, timeout: float = START_TIMEOUT) -> VirtualChild:
        """Start the child and wait until its machine answers (all sockets bound).

        Raises
        ------
        VirtualChildError
            If it exits or does not say ``ready`` within ``timeout`` seconds.
        """
        command = [sys.executable, "-m", "pyspalloc", "virtual", "--exit-on-eof"]
        command += ["--machine", self.spec.source]
        command += ["--address-base", self.spec.address_base or "auto"]
        if self.memory_mib is not None:
            command += ["--memory-mib", str(self.memory_mib)]
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,  # a terminal's Ctrl-C goes to the parent, which stops it
        )
        try:
            self._await_ready(self.process, timeout)
        except BaseException:
            self.stop()
            raise
        # the standard IP plan puts the BMP of cabinet 0, frame 0 at the base
        base = next(
            (b.get("bmp_ip") for b in self.boards if b.get("cabinet") == b.get("frame") == 0),
            None,
        )
        if self.spec.builtin and isinstance(base, str):
            self.service_spec = self.spec.at(base)
        return self

    def _await_ready(self, process: subprocess.Popen[str], timeout: float) -> None:
        lines: queue.Queue[str | None] = queue.Queue()
        assert process.stdout is not None
        threading.Thread(
            target=_pump, args=(process.stdout, lines), name="virtual-child-out", daemon=True
        ).start()
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise VirtualChildError(
                    f"virtual machine {self.spec} not ready after {timeout:.0f} s"
                ) from None
            if line is None:
                code = process.wait(STOP_TIMEOUT)
                raise VirtualChildError(f"virtual machine {self.spec} exited ({code})")
            if line.strip() == "ready":
                return
            try:
                board = json.loads(line)
            except ValueError:
                continue
            if isinstance(board, dict):
                self.boards.append(board)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the child (end of input, then SIGTERM, then SIGKILL); wait for it."""
        process = self.process
        if process is None:
            return
        if process.stdin is not None:
            try:
                process.stdin.close()
            except OSError:
                pass
        try:
            process.wait(timeout / 2)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(timeout / 2)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        if process.stdout is not None:
            process.stdout.close()


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    """Copy lines of ``stream`` to ``lines`` until the ``ready`` line or its end."""
    for line in stream:
        lines.put(line)
        if line.strip() == "ready":
            return
    lines.put(None)


class VirtualChildren:
    """The virtual machine children for a list of machine specs.

    Parameters
    ----------
    specs:
        Machine specs; each ``virtual:`` one gets a child.
    memory_mib:
        Memory budget of each child machine in MiB (None: the default).
    """

    def __init__(self, specs: list[str], memory_mib: int | None = None) -> None:
        self.specs = list(specs)
        self.children = [
            VirtualChild(spec, memory_mib) for spec in specs if parse_machine_spec(spec).virtual
        ]

    def start(self) -> list[str]:
        """Start every child; return the specs to give the service (with bases made explicit).

        Raises
        ------
        VirtualChildError
            If a child fails (the ones started are stopped).
        """
        try:
            for child in self.children:
                child.start()
        except BaseException:
            self.stop()
            raise
        given = {str(child.spec): str(child.service_spec) for child in self.children}
        return [given.get(str(parse_machine_spec(spec)), spec) for spec in self.specs]

    def stop(self) -> None:
        """Stop every child."""
        for child in self.children:
            child.stop()

    def __enter__(self) -> VirtualChildren:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
