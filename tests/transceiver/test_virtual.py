"""The Transceiver against virtual SpiNN-5 boards and BMPs on 127.1.x.y."""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Iterator

import pytest

from pyspalloc.exceptions import SpinnmanTimeoutException
from pyspalloc.geometry import Direction, builtin_machine
from pyspalloc.transceiver import (
    CPUState,
    IPTag,
    ReverseIPTag,
    Signal,
    Transceiver,
    UDPConnection,
    bmp,
    create_transceiver,
)
from pyspalloc.transceiver.engine import EngineOptions
from pyspalloc.transceiver.router import MulticastRoute
from pyspalloc.virtual import VirtualMachine
from pyspalloc.wire.sdp import SDPFlag, SDPHeader, SDPMessage

SDRAM = 0x60240000


@pytest.fixture(scope="module")
def spin5() -> Iterator[VirtualMachine]:
    with VirtualMachine(builtin_machine("spin5", "127.1.170.0"), booted=True) as vm:
        yield vm


@pytest.fixture
def board_ip(spin5: VirtualMachine) -> str:
    return next(iter(spin5.boards.values())).ip


@pytest.fixture
def txrx(board_ip: str) -> Iterator[Transceiver]:
    with create_transceiver(board_ip, timeout=0.5) as transceiver:
        yield transceiver


def test_version(txrx: Transceiver) -> None:
    version = txrx.get_scamp_version()
    assert (version.name, version.version) == ("SC&MP", (4, 0, 0))
    assert (version.x, version.y) == (0, 0)
    assert txrx.get_scamp_version(3, 2).y == 2


@pytest.mark.parametrize("size", [1 << 20, pytest.param(4 << 20, marks=pytest.mark.slow)])
def test_big_write_read_is_byte_exact(txrx: Transceiver, size: int) -> None:
    data = os.urandom(size)
    written, total = txrx.write_memory(1, 1, SDRAM, data, get_sum=True)
    assert written == size
    words = struct.unpack(f"<{size // 4}I", data)
    assert total == sum(words) & 0xFFFFFFFF
    assert txrx.read_memory(1, 1, SDRAM, size) == data


@pytest.mark.parametrize(("offset", "size"), [(1, 1), (3, 255), (2, 257), (5, 1000), (255, 4099)])
def test_unaligned(txrx: Transceiver, offset: int, size: int) -> None:
    data = os.urandom(size)
    span = offset + size + 16
    txrx.write_memory(0, 0, SDRAM + 0x10000, bytes(span))
    txrx.write_memory(0, 0, SDRAM + 0x10000 + offset, data)
    back = txrx.read_memory(0, 0, SDRAM + 0x10000, span)
    assert back[offset : offset + size] == data
    assert back[:offset] == bytes(offset)
    assert back[offset + size :] == bytes(16)
    assert txrx.read_memory(0, 0, SDRAM + 0x10000 + offset + 1, size - 1) == data[1:]


def test_words_and_fill(txrx: Transceiver) -> None:
    txrx.write_word(2, 2, SDRAM, 0x12345678)
    assert txrx.read_word(2, 2, SDRAM) == 0x12345678
    txrx.fill_memory(2, 2, SDRAM + 256, 0xA5A5F00D, 10_000)
    assert txrx.read_memory(2, 2, SDRAM + 256, 10_000) == b"\x0d\xf0\xa5\xa5" * 2500


def test_machine_discovery(txrx: Transceiver) -> None:
    machine = txrx.get_machine_details()
    assert (machine.width, machine.height) == (8, 8)
    assert machine.n_chips == 48
    assert machine.total_cores == 864
    root = machine.chips[(0, 0)]
    assert root.ethernet_ip is not None and root.parent_link is None
    assert root.links == (0, 1, 2)
    assert machine.chips[(4, 4)].links == (0, 1, 2, 3, 4, 5)
    assert all(chip.nearest_ethernet == (0, 0) for chip in machine)
    assert root.sdram == 123469792 and root.router_entries == 1023
    assert len(root.usable_cores) == 17


def test_ip_tags(txrx: Transceiver) -> None:
    with UDPConnection(local_host="127.0.0.1") as listener:
        txrx.set_ip_tag(1, "127.0.0.1", listener.local_port, strip_sdp=True)
        txrx.set_reverse_ip_tag(2, 12345, 1, 1, 3, sdp_port=1)
        found = {tag.tag: tag for tag in txrx.get_tags()}
        forward = found[1]
        assert isinstance(forward, IPTag)
        assert (forward.ip_address, forward.port, forward.strip_sdp) == (
            "127.0.0.1",
            listener.local_port,
            True,
        )
        reverse = found[2]
        assert isinstance(reverse, ReverseIPTag)
        assert (reverse.port, reverse.dest_x, reverse.dest_y, reverse.dest_p) == (12345, 1, 1, 3)
        txrx.clear_ip_tag(1)
        txrx.clear_ip_tag(2)
        assert not {1, 2} & {tag.tag for tag in txrx.get_tags()}


def test_traffic_through_tags(spin5: VirtualMachine, txrx: Transceiver) -> None:
    board = next(iter(spin5.boards.values()))
    with UDPConnection(local_host="127.0.0.1") as listener:
        txrx.set_ip_tag(4, "127.0.0.1", listener.local_port, strip_sdp=True)
        board.send_from_core(1, 1, 2, 4, b"spikes!")
        assert listener.receive(2.0) == b"spikes!"
    txrx.set_reverse_ip_tag(5, 23456, 1, 1, 7)
    with UDPConnection(board.ip, 23456) as injector:
        injector.send(b"\x01\x02payload")
        deadline = time.monotonic() + 2
        while not board.reverse_tag_packets and time.monotonic() < deadline:
            time.sleep(0.01)
    message = board.reverse_tag_packets[-1]
    assert message.data == b"\x01\x02payload"
    assert (message.header.dest_x, message.header.dest_y, message.header.dest_cpu) == (1, 1, 7)
    txrx.clear_ip_tag(4)
    txrx.clear_ip_tag(5)


def test_send_sdp_message_to_a_core(spin5: VirtualMachine, txrx: Transceiver) -> None:
    board = next(iter(spin5.boards.values()))
    header = SDPHeader(
        flags=SDPFlag.REPLY_NOT_EXPECTED, dest_port=1, dest_cpu=3, dest_x=2, dest_y=1
    )
    txrx.send_sdp_message(SDPMessage(header, b"hello core"))
    deadline = time.monotonic() + 2
    while not board.core_packets and time.monotonic() < deadline:
        time.sleep(0.01)
    message = board.core_packets[-1]
    assert message.data == b"hello core" and message.header.dest_cpu == 3


def test_update_tag_to_this_connection(txrx: Transceiver, board_ip: str) -> None:
    with UDPConnection(board_ip, 17893) as listener:
        txrx.update_tag_to_this_connection(3, listener)
        (tag,) = [t for t in txrx.get_tags() if t.tag == 3]
        assert isinstance(tag, IPTag)
        assert tag.port == listener.local_port
    txrx.clear_ip_tag(3)
    old = txrx.get_tags()
    txrx.set_ip_tag_timeout(9)
    assert txrx.get_tags() == old


def test_router_diagnostics(txrx: Transceiver) -> None:
    txrx.set_router_diagnostic_filter(1, 2, 12, 0x01234567)
    txrx.clear_router_diagnostic_counters(1, 2)
    diagnostics = txrx.get_router_diagnostics(1, 2)
    assert diagnostics.counters == (0,) * 16
    assert len(diagnostics.user_counters) == 4


def test_multicast_routes(txrx: Transceiver) -> None:
    txrx.clear_multicast_routes(3, 3)
    routes = [MulticastRoute(0x1000 + i, 0xFFFFFFF0, 1 << (6 + i)) for i in range(5)]
    txrx.load_multicast_routes(3, 3, routes, app_id=30)
    back = txrx.get_multicast_routes(3, 3, app_id=30)
    assert [(r.key, r.mask, r.route) for r in back] == [(r.key, r.mask, r.route) for r in routes]
    txrx.clear_multicast_routes(3, 3)
    assert txrx.get_multicast_routes(3, 3) == []


def test_cpu_infos(txrx: Transceiver) -> None:
    infos = txrx.get_cpu_infos([(0, 0, 0), (0, 0, 1), (4, 4, 17)])
    assert infos[0].state == CPUState.RUNNING and infos[0].app_name.startswith("scamp")
    assert infos[1].state == CPUState.IDLE and infos[2].state == CPUState.IDLE
    assert (infos[2].x, infos[2].y, infos[2].p) == (4, 4, 17)
    everything = txrx.get_cpu_infos()
    assert len(everything) == 864


def test_signals_and_stop(txrx: Transceiver) -> None:
    app = 42
    address = txrx.malloc_sdram(2, 3, 1000, app, tag=5)
    assert address >= SDRAM
    txrx.start_application(2, 3, [1, 2, 3], app, wait=True)
    assert txrx.get_core_state_count(app, CPUState.READY) == 3
    txrx.send_signal(app, Signal.START)
    assert txrx.get_core_state_count(app, CPUState.RUNNING) == 3
    txrx.stop_application(app)
    assert txrx.get_core_state_count(app, CPUState.RUNNING) == 0
    states = txrx.get_cpu_infos([(2, 3, 1)])
    assert states[0].state == CPUState.IDLE and states[0].app_id == 0
    assert txrx.get_clock_drift(1, 1) == 0.0


def test_lossy_board_stays_byte_exact(spin5: VirtualMachine, board_ip: str) -> None:
    board = next(iter(spin5.boards.values()))
    board.set_fault(0, 0.05)
    try:
        with create_transceiver(board_ip, timeout=0.5, retries=20) as txrx:
            data = os.urandom(256 * 1024 + 7)
            start = time.monotonic()
            txrx.write_memory(5, 5, SDRAM + 3, data)
            assert txrx.read_memory(5, 5, SDRAM + 3, len(data)) == data
            assert time.monotonic() - start < 30
            assert txrx.get_machine_details().n_chips == 48
            assert len(txrx.get_cpu_infos()) == 864
    finally:
        board.set_fault(0, 0.0)


def test_boot_of_an_unbooted_board() -> None:
    definition = builtin_machine("spin5", "127.1.171.0")
    with VirtualMachine(definition, powered=True, netinit=0.3) as vm:
        ip = next(iter(vm.boards.values())).ip
        with create_transceiver(ip, timeout=0.2, ensure_ready=False) as txrx:
            with pytest.raises(SpinnmanTimeoutException):
                txrx.get_scamp_version()
            version = txrx.ensure_board_is_ready()
            assert (version.x, version.y) == (0, 0)
            assert txrx.get_machine_details().n_chips == 48


def test_bmp_power_cycle_and_fpga_registers() -> None:
    definition = builtin_machine("spin5", "127.1.172.0")
    with VirtualMachine(definition, booted=True) as vm:
        board = next(iter(vm.boards.values()))
        (bmp_ip,) = definition.bmp_ips.values()
        with bmp.bmp_connection(bmp_ip) as connection:
            version = bmp.read_bmp_version(connection, 0)
            assert version.name == "BC&MP"
            assert bmp.check_fpga_ids(connection, 0)
            bmp.set_link_enabled(connection, 0, Direction.NORTH, False)
            assert not bmp.link_enabled(connection, 0, Direction.NORTH)
            fpga, bank = 2, 0
            assert bmp.read_fpga_register(connection, fpga, bank * 0x10000 + 0x5C, 0) == 1
            bmp.set_link_enabled(connection, 0, (fpga, bank), True)
            assert bmp.link_enabled(connection, 0, Direction.NORTH)

            bmp.power_off(connection, [0])
            with UDPConnection(board.ip, 17893) as probe:
                quiet = Transceiver(probe, timeout=0.1, retries=1)
                with pytest.raises(SpinnmanTimeoutException):
                    quiet.get_scamp_version()
        bmp.power_on(bmp_ip, [0])  # by address: a connection is opened for the call
        assert bmp.read_fpga_register(bmp_ip, 2, 0x5C, 0) == 0  # power-on resets the FPGAs
        with create_transceiver(board.ip, timeout=0.2) as txrx:
            assert txrx.get_machine_details().n_chips == 48


def test_booted_triad_has_144_chips() -> None:
    definition = builtin_machine("spin24", "127.1.173.0")
    with VirtualMachine(definition) as vm:
        (bmp_ip,) = definition.bmp_ips.values()
        with bmp.bmp_connection(bmp_ip) as connection:
            bmp.power_on(connection, [0, 1, 2])
        root = vm.boards[(0, 0, 0)]
        with create_transceiver(root.ip, timeout=0.3) as txrx:
            machine = txrx.get_machine_details()
            assert machine.n_chips == 144
            assert machine.total_cores == 144 * 18
            assert sorted((c.x, c.y) for c in machine.ethernet_chips) == [(0, 0), (4, 8), (8, 4)]
            added = txrx.discover_scamp_connections()
            assert sorted((c.chip_x, c.chip_y) for c in added) == [(4, 8), (8, 4)]
            # Chips on the other boards now go through their own board's connection.
            far = txrx.connection_for(9, 6)
            assert (far.chip_x, far.chip_y) == (8, 4)
            data = os.urandom(70_000)
            txrx.write_memory(9, 6, SDRAM, data)
            assert txrx.read_memory(9, 6, SDRAM, len(data)) == data
            assert txrx.get_core_state_count(0, CPUState.IDLE) == 144 * 17


def test_engine_options_pass_through(board_ip: str) -> None:
    with create_transceiver(board_ip, window=1, timeout=0.5) as txrx:
        assert txrx.options == EngineOptions(1, 0.5, 10, 0.02)
        assert len(txrx.read_memory(0, 0, SDRAM, 3000)) == 3000


def test_threads_share_one_transceiver(txrx: Transceiver) -> None:
    import threading

    blobs = {n: os.urandom(20_000 + n) for n in range(4)}
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            x, y = n, n
            txrx.write_memory(x, y, SDRAM + 0x200000, blobs[n])
            assert txrx.read_memory(x, y, SDRAM + 0x200000, len(blobs[n])) == blobs[n]
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
