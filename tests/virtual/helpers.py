"""Raw-UDP helpers for talking to virtual boards in tests (pyspalloc.wire only)."""

from __future__ import annotations

import queue
import random
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from pyspalloc.geometry import builtin_machine
from pyspalloc.virtual import VirtualMachine
from pyspalloc.wire.boot import boot_messages
from pyspalloc.wire.consts import BOOT_PORT, SCP_PORT
from pyspalloc.wire.scp import SCPResponse, SCPResult, scp_request
from pyspalloc.wire.sdp import SDPFlag

#: A small fake boot image (8 KiB of words: 8 blocks).
IMAGE = bytes(range(256)) * 32


class ScpClient:
    """Send SCP requests to one address and wait for the matching reply."""

    def __init__(self, ip: str, port: int = SCP_PORT, timeout: float = 1.0) -> None:
        self.address = (ip, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(timeout)
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> ScpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendto(data, self.address)

    def request(
        self,
        x: int,
        y: int,
        p: int,
        command: int,
        arg1: int = 0,
        arg2: int = 0,
        arg3: int = 0,
        data: bytes = b"",
        *,
        flags: int = SDPFlag.REPLY_EXPECTED,
    ) -> SCPResponse:
        """Send one request; return its reply (raises socket.timeout if none)."""
        self.seq = (self.seq + 1) & 0xFFFF
        request = scp_request(
            x, y, p, command, arg1, arg2, arg3, data, sequence=self.seq, flags=flags
        )
        self.sock.sendto(request.to_bytes(), self.address)
        while True:
            reply, _ = self.sock.recvfrom(4096)
            response = SCPResponse.from_bytes(reply)
            if response.sequence == self.seq:
                return response

    def ok(self, *args: int, data: bytes = b"") -> SCPResponse:
        """Like :meth:`request` but asserts RC_OK."""
        response = self.request(*args, data=data)
        assert response.result == SCPResult.RC_OK, response.result
        return response

    def read(self, x: int, y: int, address: int, length: int) -> bytes:
        return self.ok(x, y, 0, 2, address, length, 0).payload

    def write(self, x: int, y: int, address: int, data: bytes) -> None:
        self.ok(x, y, 0, 3, address, len(data), 0, data=data)

    def word(self, x: int, y: int, address: int) -> int:
        (value,) = struct.unpack("<I", self.read(x, y, address, 4))
        return int(value)


def send_boot(ip: str, image: bytes = IMAGE, skip: int | None = None) -> None:
    """Send the boot packets for ``image`` to ``ip:54321`` (optionally leaving one out)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for index, message in enumerate(boot_messages(image)):
            if index != skip:
                sock.sendto(message.to_bytes(), (ip, BOOT_PORT))


@contextmanager
def client(ip: str, timeout: float = 1.0) -> Iterator[ScpClient]:
    with ScpClient(ip, timeout=timeout) as scp:
        yield scp


def p2p_chips(scp: ScpClient, width: int, height: int) -> set[tuple[int, int]]:
    """Chips listed in the root's P2P table (as spinnman discovers them)."""
    chips = set()
    words = (height + 7) // 8
    for x in range(width):
        column = scp.read(255, 255, 0xE1010000 + 128 * x, 4 * words)
        for y in range(height):
            word = struct.unpack_from("<I", column, 4 * (y // 8))[0]
            if (word >> (3 * (y % 8))) & 7 != 6:
                chips.add((x, y))
    return chips


def chip_info(scp: ScpClient, x: int, y: int) -> dict[str, int | bytes | tuple[int, int]]:
    """CMD_INFO of chip (x, y), decoded; ``source`` is the reply's SDP source chip."""
    response = scp.ok(x, y, 0, 31, 0x5F)
    flags, sdram, _, states, eth_y, eth_x, ip, parent = struct.unpack(
        "<3I18s2B4sH", response.payload
    )
    return {
        "cores": flags & 0x1F,
        "links": (flags >> 8) & 0x3F,
        "router": (flags >> 14) & 0x7FF,
        "ethernet": (flags >> 25) & 1,
        "sdram": sdram,
        "states": states,
        "eth": (eth_x, eth_y),
        "ip": socket.inet_ntoa(ip),
        "parent": parent,
        "source": (response.header.src_x, response.header.src_y),
    }


class LineReader:
    """Read a subprocess's text stream line by line in a thread; ``next(timeout)`` waits.

    (``select`` on a buffered text stream misses lines already buffered; a thread avoids
    that.)
    """

    def __init__(self, stream: IO[str]) -> None:
        self._lines: queue.Queue[str] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line)
        self._lines.put("")  # end of stream

    def next(self, timeout: float) -> str:
        """The next line ("" at end of stream); raises ``queue.Empty`` on timeout."""
        return self._lines.get(timeout=timeout)


def start_vm(name: str = "spin5", **options: object) -> VirtualMachine:
    """Start a built-in machine on a random free ``127.X.0.0`` base (X in 160-250)."""
    error: OSError | None = None
    for second in random.sample(range(160, 251), 40):
        definition = builtin_machine(name, f"127.{second}.0.0")
        vm = VirtualMachine(definition, **options)  # type: ignore[arg-type]
        try:
            return vm.start()
        except OSError as failure:  # address in use by another test run: try another
            error = failure
    assert error is not None
    raise error
