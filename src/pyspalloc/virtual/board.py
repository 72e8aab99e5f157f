"""A virtual SpiNN-5 board: SC&MP on UDP 17893, the boot ROM on 54321, IP tags, faults."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import struct
import time
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from pyspalloc.geometry import BOARD_CHIP_SET, BoardDefinition, Chip
from pyspalloc.geometry.chip_description import BoardLayout
from pyspalloc.virtual.chip import CORES, ChipState
from pyspalloc.virtual.memory import MemoryBudgetExceeded
from pyspalloc.virtual.net import UdpEndpoint
from pyspalloc.virtual.scamp import Call, handle_sark, handle_scamp, needs_state, version_payload
from pyspalloc.virtual.sdp_buffers import SdpBuffers
from pyspalloc.virtual.tags import TagTable
from pyspalloc.wire.boot import BootMessage, BootOpCode
from pyspalloc.wire.consts import BOOT_PORT, SCP_PORT
from pyspalloc.wire.errors import WireFormatError
from pyspalloc.wire.scp import (
    MAX_SCP_DATA,
    SCPCommand,
    SCPRequest,
    SCPResponse,
    SCPResult,
)
from pyspalloc.wire.sdp import (
    MAX_SDP_DATA,
    SDP_HEADER_SIZE,
    UDP_PAD,
    SDPFlag,
    SDPHeader,
    SDPMessage,
)

if TYPE_CHECKING:
    from pyspalloc.virtual.machine import VirtualMachine
    from pyspalloc.virtual.topology import BootedMachine

__all__ = ["VirtualBoard"]

_log = logging.getLogger(__name__)
#: Packets kept for inspection per board (oldest dropped first).
KEPT_PACKETS = 65536
_BOOTING_VERSION = b"SC&MP/SpiNNaker\0" + b"4.0.0\0"
_SDP_MIN = 10
_SEQ = struct.Struct("<H")
_PREFIX_CACHE = 4096
_REPLY_PREFIXES: dict[tuple[bytes, tuple[int, int], SCPResult], bytes] = {}
#: Where the SDP header sits in a datagram on port 17893 (after the pad).
_HEADER = slice(len(UDP_PAD), len(UDP_PAD) + SDP_HEADER_SIZE)
_MAX_UDP = 2 + 8 + MAX_SDP_DATA + 8


class VirtualBoard:
    """One SpiNN-5 board of a :class:`~pyspalloc.virtual.VirtualMachine`.

    Attributes
    ----------
    ip:
        The Ethernet chip's address (the board listens on ``ip:17893`` and ``ip:54321``).
    triad:
        Logical coordinates.
    powered:
        Whether the board is powered (a powered-off board never answers).
    links_enabled:
        Per :class:`~pyspalloc.geometry.Direction`: whether this end sends on the link
        (cleared by the BMP FPGA STOP register).
    reverse_tag_packets:
        SDP messages delivered to cores through reverse IP tags (data = the UDP payload).
    core_packets:
        SDP messages sent to application cores on port 17893 (no reply is made).
    layout:
        The board's chips as recorded on real hardware (missing chips, fewer cores,
        dead links), or None for a perfect board.
    sdp:
        SC&MP's SDP buffers: requests on port 17893 beyond them are dropped.
    """

    def __init__(self, vm: VirtualMachine, definition: BoardDefinition) -> None:
        self.vm = vm
        self.definition = definition
        self.ip = definition.ip
        self.ip_bytes = socket.inet_aton(definition.ip)
        self.triad = definition.triad
        self.powered = False
        self.machine: BootedMachine | None = None
        self.links_enabled = [True] * 6
        self.fpga_registers: dict[tuple[int, int], int] = {}
        self.chips: dict[Chip, ChipState] = {}
        self.tags = TagTable()
        self.latency_ms = 0.0
        self.loss = 0.0
        self.reverse_tag_packets: deque[SDPMessage] = deque(maxlen=KEPT_PACKETS)
        self.core_packets: deque[SDPMessage] = deque(maxlen=KEPT_PACKETS)
        self.layout: BoardLayout | None = None
        self.sdp = SdpBuffers(vm.sdp_buffers, vm.sdp_service_s)
        self._scp: UdpEndpoint | None = None
        self._boot: UdpEndpoint | None = None
        self._reverse: dict[int, UdpEndpoint] = {}
        self._boot_blocks: int | None = None
        self._boot_seen: set[int] = set()

    def __repr__(self) -> str:
        state = "booted" if self.booted else "powered" if self.powered else "off"
        return f"VirtualBoard({self.triad}, {self.ip}, {state})"

    @property
    def booted(self) -> bool:
        """Whether the board runs (virtual) SC&MP."""
        return self.machine is not None

    def chip_cores(self, local: Chip) -> int:
        """Cores (monitor included) of board-local chip ``local``; 0 if it is missing."""
        if self.layout is None:
            return CORES if local in BOARD_CHIP_SET else 0
        return self.layout.cores.get(local, 0)

    def dead_links(self, local: Chip) -> frozenset[int]:
        """The chip links of board-local chip ``local`` that do not work."""
        if self.layout is None:
            return frozenset()
        return self.layout.dead_links.get(local, frozenset())

    # -- sockets --------------------------------------------------------------------

    def open(self, loop: asyncio.AbstractEventLoop) -> None:
        """Bind the SCP and boot sockets (called in the event loop)."""
        self._scp = UdpEndpoint(
            loop, self.ip, SCP_PORT, self._on_scp, timestamps=self.sdp.capacity > 0
        )
        self._scp.replying = self._replies_sent
        self._boot = UdpEndpoint(loop, self.ip, BOOT_PORT, self._on_boot)

    def close(self) -> None:
        """Close every socket."""
        for endpoint in (self._scp, self._boot, *self._reverse.values()):
            if endpoint is not None:
                endpoint.close()
        self._reverse.clear()

    def open_reverse(self, number: int, port: int) -> None:
        """Listen on ``port`` for reverse IP tag ``number``."""
        if port in (SCP_PORT, BOOT_PORT) or not 0 < port < 65536:
            return
        try:
            self._reverse[number] = UdpEndpoint(
                self.vm.loop,
                self.ip,
                port,
                lambda d, a: self._incoming(partial(self._reverse_packet, number), d, a),
            )
        except OSError as error:
            _log.warning("board %s: cannot listen on reverse tag port %d: %s", self.ip, port, error)

    def close_reverse(self, number: int) -> None:
        """Stop listening for reverse IP tag ``number``."""
        endpoint = self._reverse.pop(number, None)
        if endpoint is not None:
            endpoint.close()

    # -- faults ---------------------------------------------------------------------

    def set_fault(self, latency_ms: float = 0.0, loss: float = 0.0) -> None:
        """Add ``latency_ms`` of round-trip delay and drop packets with probability ``loss``.

        Applies to SCP, boot and IP-tag traffic in both directions; takes effect at once.
        """
        if latency_ms < 0 or not 0.0 <= loss <= 1.0:
            raise ValueError("latency must be >= 0 and loss in [0, 1]")
        self.latency_ms = float(latency_ms)
        self.loss = float(loss)

    def _incoming(
        self,
        handler: Callable[[bytes, tuple[str, int]], None],
        data: bytes,
        sender: tuple[str, int],
    ) -> None:
        if not self.powered:
            return
        if self.loss and random.random() < self.loss:
            return
        if self.latency_ms:
            self.vm.loop.call_later(self.latency_ms / 2000.0, handler, data, sender)
        else:
            handler(data, sender)

    def _send(self, endpoint: UdpEndpoint | None, data: bytes, address: tuple[str, int]) -> None:
        if endpoint is None or (self.loss and random.random() < self.loss):
            return
        if self.latency_ms:
            self.vm.loop.call_later(
                self.latency_ms / 2000.0, self._late_send, endpoint, data, address
            )
        else:
            endpoint.send(data, address)

    def _late_send(self, endpoint: UdpEndpoint, data: bytes, address: tuple[str, int]) -> None:
        if self.powered:
            endpoint.send(data, address)

    # -- power and boot -------------------------------------------------------------

    def reset(self, powered: bool) -> None:
        """Power the board on or off: forget all state (memory, tags, boot, links)."""
        for number in list(self._reverse):
            self.close_reverse(number)
        self.powered = powered
        self.machine = None
        for chip in self.chips.values():
            chip.release()
        self.chips = {}
        self.tags = TagTable()
        self.links_enabled = [True] * 6
        self.fpga_registers = {}
        self._boot_blocks = None
        self._boot_seen = set()
        self.sdp.clear()

    def power_on(self) -> None:
        """Power on (or reset): the board comes up unbooted with cleared memory."""
        self.vm.call(self.reset, True)

    def power_off(self) -> None:
        """Power off: the board goes silent."""
        self.vm.call(self.reset, False)

    def boot_here(self) -> None:
        """Boot as if a complete set of boot packets had arrived at this board."""
        self.vm.call(self.vm.boot_from, self)

    # -- test hooks -----------------------------------------------------------------

    def read_memory(self, x: int, y: int, address: int, length: int) -> bytes:
        """Read chip memory directly (chip in the booted machine's coordinates).

        Raises
        ------
        ValueError
            If the board is not booted, the chip is absent or the range not modelled.
        """
        return self.vm.call(self._access, x, y, address, length, None)

    def write_memory(self, x: int, y: int, address: int, data: bytes) -> None:
        """Write chip memory directly (see :meth:`read_memory`)."""
        self.vm.call(self._access, x, y, address, len(data), bytes(data))

    def set_core_state(self, x: int, y: int, p: int, state: int, app_id: int | None = None) -> None:
        """Set core ``p`` of chip (x, y) to a :class:`~pyspalloc.wire.consts.CPUState`.

        Stands in for an application changing state (e.g. finishing), since no real
        code runs on the virtual cores.
        """
        if not 0 < p < CORES:
            raise ValueError(f"core {p} is not an application core")
        self.vm.call(self._set_core, x, y, p, state, app_id)

    def _chip(self, x: int, y: int, create: bool) -> ChipState:
        machine = self.machine
        chip = machine.state(x, y, create=create) if machine is not None else None
        if chip is None:
            raise ValueError(f"no chip ({x}, {y}) in the machine booted with board {self.ip}")
        return chip

    def _access(self, x: int, y: int, address: int, length: int, data: bytes | None) -> bytes:
        chip = self._chip(x, y, create=data is not None)
        if data is None:
            memory = chip.read(address, length)
        else:
            memory = b"" if chip.write(address, data) else None
        if memory is None:
            raise ValueError(f"address range 0x{address:08x}+{length} is not modelled")
        return memory

    def _set_core(self, x: int, y: int, p: int, state: int, app_id: int | None) -> None:
        self._chip(x, y, create=True).set_core(p, state, app_id)

    def _on_boot(self, data: bytes, sender: tuple[str, int]) -> None:
        self._incoming(self._boot_packet, data, sender)

    def _boot_packet(self, data: bytes, sender: tuple[str, int]) -> None:
        if not self.powered or self.booted:
            return
        try:
            message = BootMessage.from_bytes(data)
        except WireFormatError:
            return
        if message.opcode == BootOpCode.FLOOD_FILL_START:
            self._boot_blocks = message.operand3 + 1
            self._boot_seen = set()
        elif message.opcode == BootOpCode.FLOOD_FILL_BLOCK and self._boot_blocks is not None:
            self._boot_seen.add(message.operand1 & 0xFF)
        elif message.opcode == BootOpCode.FLOOD_FILL_CONTROL and self._boot_blocks is not None:
            complete = self._boot_seen >= set(range(self._boot_blocks))
            self._boot_blocks = None
            self._boot_seen = set()
            if complete:
                self.vm.boot_from(self)

    # -- SCP ------------------------------------------------------------------------

    def _on_scp(self, data: bytes, sender: tuple[str, int]) -> None:
        if self.machine is None:
            return
        if self.loss or self.latency_ms:
            self._incoming(self._scp_packet, data, sender)
        else:
            self._scp_packet(data, sender)

    def _replies_sent(self) -> None:
        self.sdp.sent(time.time())

    def _scp_packet(self, data: bytes, sender: tuple[str, int]) -> None:
        machine = self.machine
        if machine is None or len(data) < _SDP_MIN or len(data) > _MAX_UDP:
            return
        if self.sdp.capacity:
            # SC&MP's buffers fill as packets arrive (the kernel's arrival time), not as
            # this thread gets round to them.
            scp = self._scp
            batch = scp is not None and scp.in_batch
            due = self.sdp.admit(scp.arrival if batch and scp else time.time())
            if due is None:
                return  # every SDP buffer is taken: dropped, as SC&MP would
            if not batch:
                # Delayed by injected latency, so handled on its own: its reply takes
                # that latency to reach the sender, who cannot answer before SC&MP would
                # have finished, so the buffer stays held until then.
                self.sdp.sent(due)
        self._handle_scp(machine, data, sender)

    def _handle_scp(self, machine: BootedMachine, data: bytes, sender: tuple[str, int]) -> None:
        try:
            request: SCPRequest | None = SCPRequest.from_bytes(data)
        except WireFormatError:
            request = None
        if request is None or request.header.dest_port != 0:
            self._sdp_packet(data, request, sender)
            return
        header = request.header
        expects_reply = header.flags & 0x80
        if machine.ready_at and self.vm.loop.time() < machine.ready_at:
            if expects_reply and request.command == SCPCommand.VER:
                payload = version_payload(255, 255, 0, _BOOTING_VERSION)
                self._reply(request, data, SCPResult.RC_OK, payload, (0, 0), sender)
            return
        try:
            result, payload, source = self._execute(machine, request, sender, len(data))
        except MemoryBudgetExceeded:  # the virtual machine holds all it may
            result, payload = SCPResult.RC_BUF, b""
            source = (
                (0, 0) if header.dest_x == header.dest_y == 255 else (header.dest_x, header.dest_y)
            )
        if expects_reply:
            self._reply(request, data, result, payload, source, sender)

    def _execute(
        self, machine: BootedMachine, request: SCPRequest, sender: tuple[str, int], size: int
    ) -> tuple[SCPResult, bytes, tuple[int, int]]:
        header = request.header
        x, y = header.dest_x, header.dest_y
        if x == 255 and y == 255:
            x = y = 0
        if size < 26:
            return SCPResult.RC_LEN, b"", (x, y)
        found = machine.locate(x, y)
        if found is None:
            return SCPResult.RC_ROUTE, b"", (x, y)
        if header.dest_cpu >= CORES:
            return SCPResult.RC_CPU, b"", (x, y)
        command = request.command
        target, local = found
        chip = target.chips.get(local)
        if chip is None:
            chip = machine.state(x, y, create=needs_state(command))
            assert chip is not None
        if not header.dest_cpu and request.arg2 <= MAX_SCP_DATA and request.arg3 <= 2:
            # Fast paths for the bulk of the traffic; anything odd takes the full handler.
            if command == SCPCommand.READ:
                memory = chip.read(request.arg1, request.arg2)
                if memory is not None:
                    return SCPResult.RC_OK, memory, (x, y)
            elif (
                command == SCPCommand.WRITE
                and len(request.data) == request.arg2
                and chip.write(request.arg1, request.data)
            ):
                return SCPResult.RC_OK, b"", (x, y)
        call = Call(request, machine, self, target, sender, x, y, chip)
        if header.dest_cpu:
            result, payload = handle_sark(call, header.dest_cpu)
        else:
            result, payload = handle_scamp(call)
        return result, payload, (x, y)

    def _reply(
        self,
        request: SCPRequest,
        data: bytes,
        result: SCPResult,
        payload: bytes,
        source: tuple[int, int],
        sender: tuple[str, int],
    ) -> None:
        key = (data[_HEADER], source, result)
        prefix = _REPLY_PREFIXES.get(key)
        if prefix is None:
            # pad + SDP reply header + rc, encoded once per distinct request header
            header = request.header.reply_header(*source)
            prefix = SCPResponse(header, result, 0, b"").to_bytes()[:-2]
            if len(_REPLY_PREFIXES) >= _PREFIX_CACHE:
                _REPLY_PREFIXES.clear()
            _REPLY_PREFIXES[key] = prefix
        self._send(self._scp, prefix + _SEQ.pack(request.sequence) + payload, sender)

    def _sdp_packet(self, data: bytes, request: SCPRequest | None, sender: tuple[str, int]) -> None:
        """SDP that is not SCP for core 0: keep it for its core, or answer RC_PORT."""
        try:
            message = SDPMessage.from_bytes(data)
        except WireFormatError:
            return
        header = message.header
        if header.dest_cpu != 0:
            self.core_packets.append(message)
        elif request is not None and header.flags & 0x80:
            source = (
                (0, 0) if header.dest_x == header.dest_y == 255 else (header.dest_x, header.dest_y)
            )
            self._reply(request, data, SCPResult.RC_PORT, b"", source, sender)

    # -- IP tags --------------------------------------------------------------------

    def _reverse_packet(self, number: int, data: bytes, sender: tuple[str, int]) -> None:
        machine = self.machine
        tag = self.tags.tags[number]
        if machine is None or not (tag.valid and tag.reverse) or len(data) > MAX_SDP_DATA:
            return
        tag.ip, tag.tx_port = sender
        ex, ey = machine.eth[self.triad]
        header = SDPHeader(
            flags=SDPFlag.REPLY_NOT_EXPECTED,
            tag=number,
            dest_port=tag.dest_port_cpu >> 5,
            dest_cpu=tag.dest_port_cpu & 0x1F,
            dest_x=tag.dest_x,
            dest_y=tag.dest_y,
            src_x=ex,
            src_y=ey,
        )
        self.reverse_tag_packets.append(SDPMessage(header, data))

    def send_from_core(
        self, x: int, y: int, p: int, tag: int, payload: bytes, *, port: int = 1
    ) -> None:
        """Send SDP ``payload`` from core (x, y, p) to the host through IP tag ``tag``.

        The packet leaves this board's Ethernet chip as a real board's would: from
        ``ip:17893`` (or the tag's rx_port for a reverse tag that has seen a sender) to
        the tag's host address; with the tag's strip flag only ``payload`` is sent,
        otherwise the two pad bytes and the SDP header come first.

        Parameters
        ----------
        x, y, p:
            The sending core, in the booted machine's coordinates.
        tag:
            The IP tag number (0-15).
        payload:
            SDP data, at most 272 bytes.
        port:
            The sending SDP port.

        Raises
        ------
        ValueError
            If the board is not booted, the tag is not set, or the payload is too long.
        """
        self.vm.call(self._send_from_core, x, y, p, tag, bytes(payload), port)

    def _send_from_core(
        self, x: int, y: int, p: int, number: int, payload: bytes, port: int
    ) -> None:
        machine = self.machine
        if machine is None:
            raise ValueError(f"board {self.ip} is not booted")
        if not 0 <= number < len(self.tags.tags) or not self.tags.tags[number].valid:
            raise ValueError(f"IP tag {number} is not set on board {self.ip}")
        if len(payload) > MAX_SDP_DATA:
            raise ValueError(f"SDP data is {len(payload)} bytes; at most {MAX_SDP_DATA}")
        tag = self.tags.tags[number]
        ex, ey = machine.eth[self.triad]
        header = SDPHeader(
            flags=SDPFlag.REPLY_NOT_EXPECTED,
            tag=number,
            dest_port=7,
            dest_cpu=31,
            src_port=port,
            src_cpu=p,
            dest_x=ex,
            dest_y=ey,
            src_x=x,
            src_y=y,
        )
        data = payload if tag.strip else SDPMessage(header, payload).to_bytes()
        endpoint = self._reverse.get(number) if tag.reverse else self._scp
        if tag.reverse and not tag.tx_port:
            raise ValueError(f"reverse IP tag {number} has not seen a sender yet")
        tag.count += 1
        self._send(endpoint, data, (tag.ip, tag.tx_port))
        if number >= 8:
            self.tags.tags[number].flags = 0
