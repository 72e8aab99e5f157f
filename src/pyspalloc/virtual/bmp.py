"""A virtual BMP (BC&MP 2.x): board power and FPGA registers for one frame, on UDP 17893.

Faults that real hardware has and the service must survive can be injected (from any
thread): a silent BMP (:meth:`VirtualBMP.set_silent`), FPGAs that come up with wrong IDs
(:meth:`VirtualBMP.fail_fpga_ids`), a board whose power fails
(:meth:`VirtualBMP.fail_power`) and old firmware (:meth:`VirtualBMP.set_version`).
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections import deque
from typing import TYPE_CHECKING

from pyspalloc.geometry import (
    FPGA_BANK_STRIDE,
    FPGA_FLAG_REGISTER,
    FPGA_STOP_REGISTER,
    Direction,
    fpga_for,
)
from pyspalloc.virtual.net import UdpEndpoint
from pyspalloc.virtual.scamp import version_payload
from pyspalloc.wire.consts import SCP_PORT
from pyspalloc.wire.errors import WireFormatError
from pyspalloc.wire.scp import SCPCommand, SCPRequest, SCPResponse, SCPResult

if TYPE_CHECKING:
    from pyspalloc.virtual.board import VirtualBoard
    from pyspalloc.virtual.machine import VirtualMachine

__all__ = ["VirtualBMP"]

_NAME = b"BC&MP/Spin5-BMP\0"
#: what a FLAG register reads when its FPGA's ID is wrong (Java: "reload the firmware")
WRONG_FPGA_ID = 3
_U32 = struct.Struct("<I")
# (fpga, register address) -> the direction whose STOP register it is.
_STOP = {
    (fpga_for(d)[0], fpga_for(d)[1] * FPGA_BANK_STRIDE + FPGA_STOP_REGISTER): d for d in Direction
}


class VirtualBMP:
    """The BMP of frame ``(cabinet, frame)``, controlling ``boards`` by board number.

    Answers CMD_VER (``BC&MP/Spin5-BMP`` 2.1.0), CMD_BMP_POWER and FPGA register
    access through CMD_LINK_READ / CMD_LINK_WRITE (the SDP destination cpu is the board
    number; arg3 the FPGA). Writing 1 to a STOP register disables sending on that link.

    Attributes
    ----------
    power_log:
        The last power commands it received (answered or dropped), oldest first, as
        ``(time.monotonic(), on, board mask)`` (for tests).
    """

    def __init__(
        self,
        vm: VirtualMachine,
        cabinet: int,
        frame: int,
        ip: str,
        boards: dict[int, VirtualBoard],
    ) -> None:
        self.vm = vm
        self.cabinet = cabinet
        self.frame = frame
        self.ip = ip
        self.boards = boards
        self._endpoint: UdpEndpoint | None = None
        self.power_log: deque[tuple[float, bool, int]] = deque(maxlen=1000)
        self._silent = False
        self._version = (2, 1, 0)
        #: board -> power-ons still to come up with wrong FPGA IDs (None: every one)
        self._fpga_faults: dict[int, int | None] = {}
        #: boards whose FPGAs report wrong IDs since their last power-on
        self._fpga_wrong: set[int] = set()
        self._power_faults: set[int] = set()

    # -- fault injection (any thread) --------------------------------------------------
    def set_silent(self, silent: bool = True) -> None:
        """Drop every packet unanswered (a BMP that is off or unreachable)."""
        self._silent = silent

    def fail_fpga_ids(self, board: int, power_ons: int | None = None) -> None:
        """Make ``board``'s FPGAs report wrong IDs after each of its next ``power_ons``
        power-ons (None: after every one), as FPGAs that did not load do."""
        self._fpga_faults[board] = power_ons

    def fail_power(self, board: int, failing: bool = True) -> None:
        """Make power-ons of ``board`` fail: it stays off, and every power command that
        names it is answered RC_CPU (the other boards named still switch)."""
        if failing:
            self._power_faults.add(board)
        else:
            self._power_faults.discard(board)

    def set_version(self, major: int, minor: int = 0, patch: int = 0) -> None:
        """Report BMP firmware ``major.minor.patch`` to CMD_VER (before 2: no FPGAs)."""
        self._version = (major, minor, patch)

    def clear_faults(self) -> None:
        """Forget every injected fault (boards with wrong IDs keep them until power-on)."""
        self._silent = False
        self._version = (2, 1, 0)
        self._fpga_faults.clear()
        self._power_faults.clear()

    def open(self, loop: asyncio.AbstractEventLoop) -> None:
        """Bind ``ip:17893`` (called in the event loop)."""
        self._endpoint = UdpEndpoint(loop, self.ip, SCP_PORT, self._on_packet)

    def close(self) -> None:
        """Close the socket."""
        if self._endpoint is not None:
            self._endpoint.close()

    def _on_packet(self, data: bytes, sender: tuple[str, int]) -> None:
        try:
            request = SCPRequest.from_bytes(data)
        except WireFormatError:
            return
        if request.command == SCPCommand.BMP_POWER:
            self.power_log.append((time.monotonic(), bool(request.arg1 & 1), request.arg2))
        if self._silent:
            return
        if not request.header.flags & 0x80:
            return
        if len(data) < 26:
            self._reply(request, SCPResult.RC_LEN, b"", sender)
            return
        command = request.command
        if command == SCPCommand.BMP_POWER:
            self._power(request, sender)
            return
        if command == SCPCommand.VER:
            text = _NAME + ".".join(map(str, self._version)).encode() + b"\0"
            payload = version_payload(0, 0, request.header.dest_cpu, text)
            self._reply(request, SCPResult.RC_OK, payload, sender)
            return
        if command in (SCPCommand.LINK_READ, SCPCommand.LINK_WRITE):
            result, payload = self._fpga(request)
            self._reply(request, result, payload, sender)
            return
        self._reply(request, SCPResult.RC_CMD, b"", sender)

    def _power(self, request: SCPRequest, sender: tuple[str, int]) -> None:
        on = bool(request.arg1 & 1)
        result = SCPResult.RC_OK
        for number, board in self.boards.items():
            if not request.arg2 & (1 << number):
                continue
            if on and number in self._power_faults:
                board.reset(False)
                result = SCPResult.RC_CPU
                continue
            board.reset(on)
            if on:
                self._fpgas_come_up(number)
        delay = self.vm.power_on_delay if on else 0.0
        if delay > 0:
            self.vm.loop.call_later(delay, self._reply, request, result, b"", sender)
        else:
            self._reply(request, result, b"", sender)

    def _fpgas_come_up(self, number: int) -> None:
        if number not in self._fpga_faults:
            self._fpga_wrong.discard(number)
            return
        left = self._fpga_faults[number]
        self._fpga_wrong.add(number)
        if left is not None:
            if left <= 1:
                del self._fpga_faults[number]
            else:
                self._fpga_faults[number] = left - 1

    def _fpga(self, request: SCPRequest) -> tuple[SCPResult, bytes]:
        board = self.boards.get(request.header.dest_cpu)
        fpga, address, length = request.arg3, request.arg1 & ~3, request.arg2
        if board is None:
            return SCPResult.RC_CPU, b""
        if fpga > 2 or length != 4:
            return SCPResult.RC_ARG, b""
        direction = _STOP.get((fpga, address))
        if request.command == SCPCommand.LINK_WRITE:
            if len(request.data) < 4:
                return SCPResult.RC_ARG, b""
            (value,) = _U32.unpack_from(request.data)
            if direction is not None:
                board.links_enabled[direction] = not value & 1
            board.fpga_registers[(fpga, address)] = value
            return SCPResult.RC_OK, b""
        if address == FPGA_FLAG_REGISTER:
            value = WRONG_FPGA_ID if request.header.dest_cpu in self._fpga_wrong else fpga
        elif direction is not None:
            value = 0 if board.links_enabled[direction] else 1
        else:
            value = board.fpga_registers.get((fpga, address), 0)
        return SCPResult.RC_OK, _U32.pack(value)

    def _reply(
        self, request: SCPRequest, result: SCPResult, payload: bytes, sender: tuple[str, int]
    ) -> None:
        if self._endpoint is None:
            return
        header = request.header.reply_header(request.header.dest_x, request.header.dest_y)
        self._endpoint.send(
            SCPResponse(header, result, request.sequence, payload).to_bytes(), sender
        )
