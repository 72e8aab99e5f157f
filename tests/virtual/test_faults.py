"""Fault injection and robustness against malformed datagrams."""

from __future__ import annotations

import socket
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyspalloc.wire.scp import SCPResult
from tests.virtual.helpers import ScpClient, start_vm


def test_latency_and_loss_are_observable(make_vm) -> None:
    vm = make_vm(booted=True)
    board = next(iter(vm.boards.values()))
    with ScpClient(board.ip, timeout=2.0) as scp:
        start = time.monotonic()
        scp.ok(0, 0, 0, 0)
        fast = time.monotonic() - start
        board.set_fault(latency_ms=200)
        start = time.monotonic()
        scp.ok(0, 0, 0, 0)
        slow = time.monotonic() - start
        assert slow >= 0.19 > fast
        board.set_fault(loss=1.0)
        scp.sock.settimeout(0.3)
        with pytest.raises(socket.timeout):
            scp.request(0, 0, 0, 0)
        board.set_fault(loss=0.5)
        scp.sock.settimeout(0.1)
        answered = 0
        for _ in range(40):
            try:
                scp.request(0, 0, 0, 0)
                answered += 1
            except TimeoutError:
                pass
        assert 0 < answered < 40  # ~25% expected (loss both ways)
        board.set_fault()
        scp.sock.settimeout(1.0)
        scp.ok(0, 0, 0, 0)
    with pytest.raises(ValueError):
        board.set_fault(loss=2.0)


def test_machine_wide_fault_options(make_vm) -> None:
    vm = make_vm(booted=True, latency_ms=100.0)
    board = next(iter(vm.boards.values()))
    with ScpClient(board.ip) as scp:
        start = time.monotonic()
        scp.ok(0, 0, 0, 0)
        assert time.monotonic() - start >= 0.09


@pytest.fixture(scope="module")
def fuzz_target():
    vm = start_vm("spin24", powered=True)
    root = vm.boards[(0, 0, 0)]
    root.boot_here()
    with ScpClient(root.ip) as scp:  # reverse tag 3 on port 40123, to core (1, 1, 2)
        scp.ok(0, 0, 0, 26, (1 << 29) | (1 << 16) | (2 << 8) | 3, (1 << 24) | (1 << 16) | 40123)
    yield vm
    vm.stop()


def _scp_like() -> st.SearchStrategy[bytes]:
    header = st.binary(min_size=2, max_size=2).map(lambda pad: pad + b"\x87\xff")
    return st.tuples(
        header,
        st.binary(min_size=0, max_size=6),
        st.integers(0, 0xFFFF),
        st.binary(min_size=0, max_size=300),
    ).map(lambda t: t[0] + t[1] + t[2].to_bytes(2, "little") + t[3])


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.one_of(st.binary(max_size=1100), _scp_like()),
    port=st.sampled_from(["scp", "boot", "bmp", "unbooted", "reverse"]),
)
def test_malformed_datagrams_never_break_a_board(fuzz_target, data: bytes, port: str) -> None:
    vm = fuzz_target
    root = vm.boards[(0, 0, 0)]
    address = {
        "scp": (root.ip, 17893),
        "boot": (root.ip, 54321),
        "bmp": (next(iter(vm.bmps.values())).ip, 17893),
        "unbooted": (vm.boards[(3, 1, 2)].ip, 17893),
        "reverse": (root.ip, 40123),
    }[port]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.02)
        sock.sendto(data, address)
        try:
            reply, _ = sock.recvfrom(4096)
        except TimeoutError:
            reply = None
    if reply is not None:
        assert len(reply) >= 14 and 0x80 <= reply[10] <= 0x8F and reply[11] == 0
        assert reply[2] in (0x07, 0x27) or data[2] not in (0x87, 0xA7)
    if not root.booted:  # a fuzzed CMD_BMP_POWER may legitimately have reset the board
        root.power_on()
        root.boot_here()
    with ScpClient(root.ip) as scp:
        assert scp.request(255, 255, 0, 0).result == SCPResult.RC_OK
