"""Tools of the HTTP attacks: raw-socket bodies, service memory, a timed bystander."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import requests

MIB = 1024 * 1024
_PIECE = b"[" * MIB  # also the start of a very deep JSON document


def rss_kib(pid: int) -> int:
    """Resident memory of process ``pid`` (KiB)."""
    return _status_kib(pid, "VmRSS")


def peak_kib(pid: int) -> int:
    """Peak resident memory of process ``pid`` so far (KiB)."""
    return _status_kib(pid, "VmHWM")


def _status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {key} for {pid}")


@dataclass
class BodyResult:
    """What one oversize POST got: the status (0: none) and how much the service took."""

    status: int
    sent: int
    seconds: float
    head: str = ""


def post_body(
    host: str,
    port: int,
    path: str,
    size: int,
    headers: dict[str, str] | None = None,
    *,
    chunked: bool = False,
    timeout: float = 60.0,
) -> BodyResult:
    """POST ``size`` bytes of ``[`` to ``path`` over a raw socket, sending while the
    service answers; return the status line's code once the service answers or closes.

    The body goes in 1 MiB pieces (chunked if ``chunked``, else with Content-Length)
    from a thread that stops at the first send error (the service closed).
    """
    started = time.monotonic()
    sock = socket.create_connection((host, port), timeout=timeout)
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: keep-alive"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    sent = [0]
    answered = threading.Event()

    def send() -> None:
        try:
            while sent[0] < size and not answered.is_set():
                piece = _PIECE[: min(MIB, size - sent[0])]
                if chunked:
                    sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                else:
                    sock.sendall(piece)
                sent[0] += len(piece)
            if chunked and not answered.is_set():
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    reply = b""
    try:
        while b"\r\n\r\n" not in reply:
            data = sock.recv(65536)
            if not data:
                break
            reply += data
    except OSError:
        pass
    answered.set()
    sock.close()
    sender.join(timeout)
    head = reply.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    parts = head.split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    return BodyResult(status, sent[0], time.monotonic() - started, head)


@dataclass
class Bystander:
    """Another user's GETs of ``url``, one every ``period`` s, timed, in a thread."""

    url: str
    http: requests.Session = field(default_factory=requests.Session)
    period: float = 0.1
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                status = self.http.get(self.url, timeout=10).status_code
                if status != 200:
                    self.failures.append(f"status {status}")
            except requests.RequestException as error:
                self.failures.append(repr(error))
            self.latencies.append(time.monotonic() - started)
            self._stop.wait(self.period)

    @property
    def worst(self) -> float:
        """The slowest answer (s)."""
        return max(self.latencies, default=0.0)

    def __enter__(self) -> Bystander:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(15)
