"""Raw-UDP helpers for talking to virtual boards in tests (pyspalloc.wire only)."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from contextlib import contextmanager

from pyspalloc.wire.boot import BOOT_PORT, boot_messages
from pyspalloc.wire.scp import SCP_PORT, SCPResponse, SCPResult, scp_request
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
