"""Byte for byte with spinnman: every packet our service and client send to a board or a
BMP, against what spinnman 1!7.3.0's message classes make for the same operation.

Our side runs for real: each operation goes through :mod:`pyspalloc.transceiver` over
UDP to a recording relay in front of a virtual BMP and a virtual board (which answer, so
multi-packet operations run to the end), and the relay keeps the datagrams. spinnman's
side is built in its venv from its ``SCPRequest`` classes, with the header defaults its
connections apply before sending (``update_for_send``), and printed as hex. Sequence
numbers aside (bytes 12..13 of an SCP datagram), the two must be equal (the table is
in docs/compatibility.md, "Byte comparison with spinnman"). The boot flood-fill is of
the same image: spinnman's ``scamp.boot`` with its system variables, as spinnman sends it.
"""

from __future__ import annotations

import json
import select
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pyspalloc.client.proxy.proxied import update_tag_request
from pyspalloc.geometry import FPGA_FLAG_REGISTER, Triad, builtin_machine
from pyspalloc.transceiver import UDPConnection, bmp, cpu, discovery, memory, router, sdram, tags
from pyspalloc.transceiver.boot import boot_board
from pyspalloc.transceiver.engine import EngineOptions
from pyspalloc.virtual import VirtualMachine
from pyspalloc.wire.boot import boot_messages
from pyspalloc.wire.consts import BOOT_PORT, SCP_PORT
from tests.support.addresses import free_virtual_base

pytestmark = [pytest.mark.interop, pytest.mark.slow]

SPINNMAN = ("spinnman==1!7.3.0", "packaging")
APP = 30
SDRAM = 0x60000000
OPTIONS = EngineOptions(window=1, timeout=1.0, retries=2)

#: What spinnman builds, per operation (same parameters as ``our_operations``).
SCRIPT = r"""
import array, json, sys
from spinnman.config_setup import unittest_setup
unittest_setup()
from spinn_utilities.config_holder import set_config
set_config("Machine", "version", "5")
from spinn_machine import MulticastRoutingEntry, RoutingEntry
from spinnman.messages.scp.enums import PowerCommand, Signal
from spinnman.messages.scp.impl import (
    AppStop, ApplicationRun, BMPGetVersion, FillRequest, GetVersion, IPTagClear, IPTagGet,
    IPTagGetInfo, IPTagSet, IPTagSetTTO, ReadFPGARegister, ReadMemory, ReverseIPTagSet,
    RouterAlloc, RouterClear, RouterInit, SDRAMAlloc, SDRAMDeAlloc, SendSignal, SetPower,
    WriteFPGARegister, WriteMemory)
from spinnman.messages.spinnaker_boot import SpinnakerBootMessages
from spinnman.constants import IPTAG_TIME_OUT_WAIT_TIMES
from spinn_machine import Router

p = json.loads(sys.argv[1])
APP, SDRAM = p["app"], p["sdram"]

def scp(*requests):
    # what SCAMPConnection / BMPConnection.get_scp_data do: update_for_send, 2 pad bytes
    out = []
    for request in requests:
        request.sdp_header.update_for_send(0, 0)
        request.scp_request_header.sequence = 0
        out.append((b"\0\0" + request.bytestring).hex())
    return out

if p["phase"] == "boot":
    boot = SpinnakerBootMessages()
    image = array.array("I", boot._boot_data)
    image.byteswap()
    print(json.dumps({"image": image.tobytes().hex(),
                      "boot": [m.bytestring.hex() for m in boot.messages]}))
    sys.exit(0)

route = MulticastRoutingEntry(0x12340000, 0xFFFF0000, RoutingEntry(
    processor_ids=[1, 2], link_ids=[0, 3]))
table = bytearray(32)
import struct
struct.pack_into("<H2xIII", table, 0, 0,
                 Router.convert_routing_table_entry_to_spinnaker_route(route),
                 route.key, route.mask)
struct.pack_into("<IIII", table, 16, *([0xFFFFFFFF] * 4))
from spinnman.messages.sdp import SDPFlag
proxied = IPTagSet(0, 0, [0, 0, 0, 0], 0, 3, strip=True, use_sender=True)
proxied.sdp_header.flags = SDPFlag.REPLY_EXPECTED_NO_P2P  # as its Spalloc connections do
ops = {
    "bmp version": scp(BMPGetVersion(0)),
    "power on one board": scp(SetPower(PowerCommand.POWER_ON, [0])),
    "power off one board": scp(SetPower(PowerCommand.POWER_OFF, [0])),
    "power on several boards with a delay": scp(
        SetPower(PowerCommand.POWER_ON, [0, 1, 2], delay=0.25)),
    "power off several boards with a delay": scp(
        SetPower(PowerCommand.POWER_OFF, [3, 4], delay=0.5)),
    "fpga register read": scp(ReadFPGARegister(1, 0x40004, 0)),
    "fpga register write": scp(WriteFPGARegister(2, 0x1005C, 1, 0)),
    "VER": scp(GetVersion(0, 0, 0)),
    "READ aligned": scp(ReadMemory((0, 0, 0), SDRAM, 256)),
    "READ unaligned": scp(ReadMemory((0, 0, 0), SDRAM + 1, 3)),
    "WRITE aligned": scp(WriteMemory((0, 0, 0), SDRAM, bytes(range(256)))),
    "WRITE halfwords": scp(WriteMemory((0, 0, 0), SDRAM + 2, b"\x01\x02")),
    "FILL": scp(FillRequest(0, 0, SDRAM + 0x100, 0xDEADBEEF, 64)),
    "IPTAG set": scp(IPTagSet(0, 0, [10, 11, 12, 13], 12345, 3, strip=True)),
    "IPTAG set to sender": scp(IPTagSet(0, 0, [0, 0, 0, 0], 0, 1, strip=True,
                                        use_sender=True)),
    "IPTAG set to sender through the proxy": scp(proxied),
    "IPTAG reverse set": scp(ReverseIPTagSet(0, 0, 0, 0, 3, 17900, 4, 1)),
    "IPTAG timeout": scp(IPTagSetTTO(0, 0, IPTAG_TIME_OUT_WAIT_TIMES.TIMEOUT_160_ms)),
    "IPTAG get": scp(IPTagGetInfo(0, 0), *[IPTagGet(0, 0, t) for t in range(p["n_tags"])]),
    "IPTAG clear": scp(IPTagClear(0, 0, 3)),
    "ALLOC sdram": scp(SDRAMAlloc(0, 0, APP, 1024)),
    "ALLOC sdram with tag": scp(SDRAMAlloc(0, 0, APP, 1024, tag=5)),
    "free sdram": scp(SDRAMDeAlloc(0, 0, base_address=p["block"])),
    "free sdram of app": scp(SDRAMDeAlloc(0, 0, app_id=APP)),
    "router clear": scp(RouterClear(0, 0)),
    "router load": scp(WriteMemory((0, 0, 0), 0x67800000, bytes(table)),
                       RouterAlloc(0, 0, APP, 1),
                       RouterInit(0, 0, 1, 0x67800000, p["rtr_base"], APP)),
    "SIG": scp(SendSignal(APP, Signal.SYNC0)),
    "AR": scp(ApplicationRun(APP, 0, 0, [1, 2, 3], wait=True)),
    "app stop": scp(AppStop(APP)),
}
print(json.dumps(ops))
"""


class Relay:
    """A UDP relay to ``target`` that keeps every datagram sent through it."""

    def __init__(self, host: str, target: tuple[str, int]) -> None:
        self.target = target
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.address: tuple[str, int] = self.sock.getsockname()
        self.sent: list[bytes] = []
        self._client: tuple[str, int] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.sock], [], [], 0.05)
            if not ready:
                continue
            data, sender = self.sock.recvfrom(65536)
            if sender == self.target:
                if self._client is not None:
                    self.sock.sendto(data, self._client)
                continue
            self._client = sender
            self.sent.append(data)
            self.sock.sendto(data, self.target)

    def take(self) -> list[bytes]:
        """The datagrams sent since the last take, once the relay has caught up."""
        count = -1
        while count != len(self.sent):  # bounded: senders have finished
            count = len(self.sent)
            time.sleep(0.1)
        taken, self.sent = self.sent, []
        return taken

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture
def rig() -> Iterator[tuple[VirtualMachine, Relay, Relay, Relay]]:
    definition = builtin_machine("spin24", free_virtual_base())
    root = definition.boards[Triad(0, 0, 0)]
    net = root.ip.rsplit(".", 1)[0]
    with VirtualMachine(definition) as vm:
        relays = (
            Relay(f"{net}.250", (root.bmp_ip, SCP_PORT)),
            Relay(f"{net}.251", (root.ip, BOOT_PORT)),
            Relay(f"{net}.252", (root.ip, SCP_PORT)),
        )
        try:
            yield (vm, *relays)
        finally:
            for relay in relays:
                relay.close()


def _spinnman(python: Path, **params: Any) -> dict[str, Any]:
    result = subprocess.run(
        [str(python), "-c", SCRIPT, json.dumps(params)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    out: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return out


def _run(relay: Relay, action: Callable[[], object]) -> list[bytes]:
    """Run one of our operations; return the datagrams it sent (errors are not the point
    here: a virtual board may refuse, as long as we sent the packet)."""
    relay.take()
    try:
        action()
    except Exception as error:
        print(f"{action}: {error}")
    return relay.take()


def _without_sequence(packet: bytes) -> bytes:
    return packet[:12] + b"\0\0" + packet[14:] if len(packet) >= 14 else packet


def test_bytes_match_spinnman(
    interop_python: Callable[..., Path], rig: tuple[VirtualMachine, Relay, Relay, Relay]
) -> None:
    python = interop_python(*SPINNMAN)
    vm, bmp_relay, boot_relay, scp_relay = rig
    theirs_boot = _spinnman(python, phase="boot", app=APP, sdram=SDRAM)
    image = bytes.fromhex(theirs_boot["image"])

    ours: dict[str, list[bytes]] = {}
    with UDPConnection(*bmp_relay.address) as b:
        ours["bmp version"] = _run(bmp_relay, lambda: bmp.read_bmp_version(b, 0))
        ours["power on one board"] = _run(bmp_relay, lambda: bmp.power_on(b, [0], retries=0))
        ours["power off one board"] = _run(bmp_relay, lambda: bmp.power_off(b, [0], retries=0))
        ours["power on several boards with a delay"] = _run(
            bmp_relay, lambda: bmp.power_on(b, [0, 1, 2], delay=0.25, retries=0)
        )
        ours["power off several boards with a delay"] = _run(
            bmp_relay, lambda: bmp.power_off(b, [3, 4], delay=0.5, retries=0)
        )
        ours["fpga register read"] = _run(
            bmp_relay, lambda: bmp.read_fpga_register(b, 1, FPGA_FLAG_REGISTER, 0)
        )
        ours["fpga register write"] = _run(
            bmp_relay, lambda: bmp.write_fpga_register(b, 2, 0x1005C, 1, 0)
        )
    board = vm.boards[Triad(0, 0, 0)]
    assert board.powered and not board.booted
    with UDPConnection(*boot_relay.address) as boot:
        ours["boot"] = _run(boot_relay, lambda: boot_board(boot, image=image, delay=0.0))
    assert ours["boot"] == [m.to_bytes() for m in boot_messages(image)]

    block: list[int] = []
    with UDPConnection(*scp_relay.address, chip_x=0, chip_y=0) as c:
        discovery_done = _run(scp_relay, lambda: _wait_booted(c))
        assert discovery_done and board.booted
        o = OPTIONS
        ours["VER"] = _run(scp_relay, lambda: discovery.get_version(c, 0, 0, 0, o))
        ours["READ aligned"] = _run(
            scp_relay, lambda: memory.read_memory(c, 0, 0, SDRAM, 256, options=o)
        )
        ours["READ unaligned"] = _run(
            scp_relay, lambda: memory.read_memory(c, 0, 0, SDRAM + 1, 3, options=o)
        )
        ours["WRITE aligned"] = _run(
            scp_relay, lambda: memory.write_memory(c, 0, 0, SDRAM, bytes(range(256)), options=o)
        )
        ours["WRITE halfwords"] = _run(
            scp_relay, lambda: memory.write_memory(c, 0, 0, SDRAM + 2, b"\x01\x02", options=o)
        )
        ours["FILL"] = _run(
            scp_relay, lambda: memory.fill_memory(c, 0, 0, SDRAM + 0x100, 0xDEADBEEF, 64, o)
        )
        ours["IPTAG set"] = _run(
            scp_relay, lambda: tags.set_ip_tag(c, 0, 0, 3, "10.11.12.13", 12345, options=o)
        )
        ours["IPTAG set to sender"] = _run(
            scp_relay, lambda: tags.update_tag_to_connection(c, 1, options=o)
        )
        # the proxied client's request, which the service's proxy forwards as it is
        ours["IPTAG set to sender through the proxy"] = [update_tag_request(0, 0, 3).to_bytes()]
        ours["IPTAG reverse set"] = _run(
            scp_relay, lambda: tags.set_reverse_ip_tag(c, 0, 0, 4, 17900, 0, 0, 3, options=o)
        )
        ours["IPTAG timeout"] = _run(scp_relay, lambda: tags.set_ip_tag_timeout(c, 0, 0, 5, o))
        ours["IPTAG get"] = _run(scp_relay, lambda: tags.get_tags(c, 0, 0, o))
        ours["IPTAG clear"] = _run(scp_relay, lambda: tags.clear_ip_tag(c, 0, 0, 3, o))
        ours["ALLOC sdram"] = _run(
            scp_relay, lambda: block.append(sdram.malloc_sdram(c, 0, 0, 1024, APP, options=o))
        )
        ours["ALLOC sdram with tag"] = _run(
            scp_relay, lambda: sdram.malloc_sdram(c, 0, 0, 1024, APP, tag=5, options=o)
        )
        assert block and block[0]
        ours["free sdram"] = _run(scp_relay, lambda: sdram.free_sdram(c, 0, 0, block[0], o))
        ours["free sdram of app"] = _run(
            scp_relay, lambda: sdram.free_sdram_by_app_id(c, 0, 0, APP, o)
        )
        ours["router clear"] = _run(scp_relay, lambda: router.clear_multicast_routes(c, 0, 0, o))
        route = router.MulticastRoute(0x12340000, 0xFFFF0000, (1 << 0) | (1 << 3) | (3 << 7))
        ours["router load"] = _run(
            scp_relay, lambda: router.load_multicast_routes(c, 0, 0, [route], APP, o)
        )
        ours["SIG"] = _run(scp_relay, lambda: cpu.send_signal(c, APP, cpu.Signal.SYNC0, o))
        ours["AR"] = _run(
            scp_relay, lambda: cpu.start_application(c, 0, 0, [1, 2, 3], APP, True, o)
        )
        ours["app stop"] = _run(scp_relay, lambda: cpu.stop_application(c, APP, o))

    n_tags = len(ours["IPTAG get"]) - 1
    rtr_base = int.from_bytes(ours["router load"][-1][22:26], "little")
    theirs = _spinnman(
        python, phase="ops", app=APP, sdram=SDRAM, n_tags=n_tags, block=block[0],
        rtr_base=rtr_base,
    )  # fmt: skip
    theirs["boot"] = theirs_boot["boot"]
    assert set(theirs) == set(ours)

    differences = {}
    for name, packets in ours.items():
        mine = [_without_sequence(p).hex() for p in packets]
        other = [_without_sequence(bytes.fromhex(p)).hex() for p in theirs[name]]
        if mine != other:
            differences[name] = (mine, other)
    assert not differences, json.dumps(differences, indent=1)[:8000]


def _wait_booted(connection: UDPConnection) -> bool:
    from pyspalloc.transceiver.boot import wait_until_booted

    wait_until_booted(connection, 15.0)
    return True
