"""Helpers of the reliability (and security) tests: proxy websockets, socket counts.

Addresses, waiting, the REST client and logins live in :mod:`tests.support`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

from pyspalloc.wire.consts import BOOT_PORT, SCP_PORT
from pyspalloc.wire.proxy import decode_server_frame
from pyspalloc.wire.scp import SCPCommand, scp_request
from tests.support.http_client import Http

__all__ = [
    "BOOT_PORT",
    "SCP_PORT",
    "fd_count",
    "open_ws",
    "recv_frame",
    "udp_socket_count",
    "ver_request",
]


def open_ws(client: Http, proxy_url: str, **kw: Any) -> ClientConnection:
    """Open the proxy websocket of a job with ``client``'s session cookie."""
    headers = {"Origin": "127.0.0.1"}
    if client.session_id:
        headers["Cookie"] = f"JSESSIONID={client.session_id}"
    if client.bearer:
        headers["Authorization"] = f"Bearer {client.bearer}"
    ws = connect(
        proxy_url,
        additional_headers=headers,
        open_timeout=10,
        close_timeout=5,
        max_size=2**20,
        **kw,
    )
    return ws.__enter__()  # entered: usable directly or as a context manager


def recv_frame(ws: ClientConnection, timeout: float = 10.0) -> Any:
    data = ws.recv(timeout=timeout)
    assert isinstance(data, bytes)
    return decode_server_frame(data)


def ver_request(sequence: int, x: int = 0, y: int = 0) -> bytes:
    return scp_request(x, y, 0, SCPCommand.VER, sequence=sequence).to_bytes()


# ---- file descriptors ------------------------------------------------------------------
def _socket_inodes(pid: int | str) -> set[str]:
    out: set[str] = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for entry in os.listdir(fd_dir):
        try:
            target = os.readlink(fd_dir / entry)
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(target[8:-1])
    return out


def _udp_inodes(pid: int | str) -> set[str]:
    inodes: set[str] = set()
    for table in ("udp", "udp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if len(fields) > 9:
                inodes.add(fields[9])
    return inodes


def udp_socket_count(pid: int | str = "self") -> int:
    """How many UDP sockets process ``pid`` holds open (from /proc)."""
    return len(_socket_inodes(pid) & _udp_inodes(pid))


def fd_count(pid: int | str = "self") -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))
