"""SC&MP 4.0.0 command handlers of a virtual chip (and SARK's few for cores 1-17).

Each handler takes a :class:`Call` and returns ``(result, payload)``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyspalloc.geometry import BOARD_CHIPS
from pyspalloc.virtual.chip import SDRAM_SYS, ChipState
from pyspalloc.virtual.tags import IPTag
from pyspalloc.wire.consts import (
    CMD_COUNT,
    IPTAG_REVERSE,
    IPTAG_SET_FLAGS_SHIFT,
    IPTAG_STRIP,
    IPTAG_USE_SENDER,
    IPTAG_VALID,
    N_IPTAGS,
    CPUState,
    IPTagCommand,
)
from pyspalloc.wire.scp import MAX_SCP_DATA, SCPCommand, SCPRequest, SCPResult

if TYPE_CHECKING:
    from pyspalloc.virtual.board import VirtualBoard
    from pyspalloc.virtual.topology import BootedMachine

__all__ = ["Call", "apply_signal", "handle_sark", "handle_scamp", "version_payload"]

Reply = tuple[SCPResult, bytes]
OK: Reply = (SCPResult.RC_OK, b"")
_ARG: Reply = (SCPResult.RC_ARG, b"")
_U32 = struct.Struct("<I")
_BUILD_DATE = 1_700_000_000
_SCAMP_VERSION = b"SC&MP/SpiNNaker\0" + b"4.0.0\0"
_SARK_VERSION = b"SARK/SpiNNaker\0" + b"4.0.0\0"


@dataclass(slots=True)
class Call:
    """One SCP request being handled on chip (x, y) of ``machine``.

    ``board`` is the board whose Ethernet chip received the request, ``target`` the
    board holding the addressed chip, ``sender`` the host address the request came
    from, ``chip`` the addressed chip's state.
    """

    request: SCPRequest
    machine: BootedMachine
    board: VirtualBoard
    target: VirtualBoard
    sender: tuple[str, int]
    x: int
    y: int
    chip: ChipState


def version_payload(x: int, y: int, p: int, text: bytes) -> bytes:
    """CMD_VER reply payload: args then the NUL-terminated name and version strings."""
    return struct.pack("<4BHHI", p, p, y, x, MAX_SCP_DATA, 0xFFFF, _BUILD_DATE) + text


def _ver(call: Call) -> Reply:
    return SCPResult.RC_OK, version_payload(call.x, call.y, 0, _SCAMP_VERSION)


def _read(call: Call) -> Reply:
    request = call.request
    if request.arg2 > MAX_SCP_DATA or request.arg3 > 2:
        return _ARG
    data = call.chip.read(request.arg1, request.arg2)
    return _ARG if data is None else (SCPResult.RC_OK, data)


def _write(call: Call) -> Reply:
    request = call.request
    if request.arg2 > MAX_SCP_DATA or request.arg3 > 2 or len(request.data) < request.arg2:
        return _ARG
    data = request.data if len(request.data) == request.arg2 else request.data[: request.arg2]
    return OK if call.chip.write(request.arg1, data) else _ARG


def _fill(call: Call) -> Reply:
    request = call.request
    if request.arg3 % 4 or request.arg1 % 4:
        return _ARG
    return OK if call.chip.fill(request.arg1, request.arg2, request.arg3) else _ARG


def _info(call: Call) -> Reply:
    info = call.chip.info
    chip = call.chip
    flags = info.cores | (info.links << 8) | (chip.router.largest_free() << 14)
    if info.is_ethernet:
        flags |= 1 << 25
    payload = struct.pack(
        "<3I18s2B4sH",
        flags,
        chip.heap.largest_free(),
        0x7000,
        chip.states(),
        info.eth_y,
        info.eth_x,
        info.ip,
        info.parent_link,
    )
    return SCPResult.RC_OK, payload


def _iptag(call: Call) -> Reply:
    request = call.request
    number = request.arg1 & 0xFF
    op = (request.arg1 >> 16) & 0xFF
    table = call.target.tags
    if op > IPTagCommand.TTO or (number >= N_IPTAGS and op != IPTagCommand.NEW):
        return _ARG
    if op == IPTagCommand.TTO:
        old = table.tto
        if request.arg2 < 16:
            table.tto = request.arg2
        return SCPResult.RC_OK, _U32.pack((8 << 24) | (8 << 16) | (32 << 8) | old)
    if op == IPTagCommand.GET:
        count = request.arg2
        if count * 32 > MAX_SCP_DATA or number + count > N_IPTAGS:
            return _ARG
        return SCPResult.RC_OK, table.entries(number, count)
    if op == IPTagCommand.CLEAR:
        call.target.close_reverse(number)
        table.tags[number] = IPTag()
        return OK
    if op == IPTagCommand.NEW:
        free = table.free_pool_tag()
        if free is None:
            return SCPResult.RC_OK, _U32.pack(255)
        number = free
    return _set_tag(call, number)


def _set_tag(call: Call, number: int) -> Reply:
    request = call.request
    arg1 = request.arg1
    flags = (
        (arg1 >> IPTAG_SET_FLAGS_SHIFT) & (IPTAG_STRIP | IPTAG_REVERSE | IPTAG_USE_SENDER)
    ) | IPTAG_VALID
    timeout = (arg1 >> 24) & 0xF
    board = call.target
    board.close_reverse(number)
    if flags & IPTAG_REVERSE:
        rx_port = request.arg2 & 0xFFFF
        tag = IPTag(
            flags=IPTAG_VALID | IPTAG_REVERSE | IPTAG_STRIP,
            timeout=timeout,
            rx_port=rx_port,
            dest_x=(request.arg2 >> 24) & 0xFF,
            dest_y=(request.arg2 >> 16) & 0xFF,
            dest_port_cpu=(arg1 >> 8) & 0xFF,
        )
        board.tags.tags[number] = tag
        board.open_reverse(number, rx_port)
    else:
        ip, port = call.sender
        if not flags & IPTAG_USE_SENDER:
            port = request.arg2 & 0xFFFF
            if request.arg3:
                ip = ".".join(str(b) for b in _U32.pack(request.arg3))
        board.tags.tags[number] = IPTag(
            ip=ip, tx_port=port, flags=flags, timeout=timeout, dest_port_cpu=(arg1 >> 8) & 0xFF
        )
    return SCPResult.RC_OK, _U32.pack(number)


def _alloc(call: Call) -> Reply:
    request = call.request
    op = request.arg1 & 0xFF
    app_id = (request.arg1 >> 8) & 0xFF
    heap, router = call.chip.heap, call.chip.router
    if op == 0:
        retry = bool((request.arg1 >> 16) & 4)
        return SCPResult.RC_OK, _U32.pack(
            heap.alloc(request.arg2, app_id, request.arg3 & 0xFF, retry)
        )
    if op == 1:
        heap.free(request.arg2)
        return OK
    if op == 2:
        return SCPResult.RC_OK, _U32.pack(heap.free_app(app_id))
    if op == 3:
        return SCPResult.RC_OK, _U32.pack(router.alloc(request.arg2, app_id))
    if op == 4:
        router.free(request.arg2, bool(request.arg3))
        return OK
    if op == 5:
        return SCPResult.RC_OK, _U32.pack(router.free_app(app_id, bool(request.arg2)))
    if op == 6:
        return SCPResult.RC_OK, struct.pack("<2I", heap.free_bytes(), heap.largest_free())
    if op == 7:
        return SCPResult.RC_OK, _U32.pack(heap.tag_address(app_id, request.arg2 & 0xFF))
    return _ARG


def _rtr(call: Call) -> Reply:
    request = call.request
    op = request.arg1 & 0xFF
    count = request.arg1 >> 16
    app_id = (request.arg1 >> 8) & 0xFF
    chip = call.chip
    if op == 0:
        chip.router.reset()
        return OK
    if op == 1:
        chip.router.clear(request.arg2, count)
        return OK
    if op == 2:
        data = chip.read(request.arg2, 16 * count)
        if data is None:
            return _ARG
        for index in range(count):
            entry, _, route, key, mask = struct.unpack_from("<2H3I", data, 16 * index)
            if entry + request.arg3 >= 1024:
                return _ARG
            chip.router.set(entry + request.arg3, key, mask, route, app_id)
        return OK
    if op == 3:
        if request.arg2 & 0x80000000:
            return SCPResult.RC_OK, _U32.pack(chip.fixed_route)
        chip.fixed_route = request.arg2
        return OK
    return _ARG


def _count(call: Call) -> Reply:
    app_id, state = call.request.arg1 & 0xFF, call.request.arg2 & 0xFF
    board = call.target
    total = 0
    for local in BOARD_CHIPS:
        cores = board.chip_cores(local)
        chip = board.chips.get(local)
        if chip is not None:
            total += chip.count(app_id, state)
        elif cores and app_id == 0 and state == CPUState.IDLE:
            total += cores - 1
    return SCPResult.RC_OK, _U32.pack(total)


def apply_signal(machine: BootedMachine, signal: int, app_id: int, mask: int) -> None:
    """Apply a signal to every matching core of the booted machine (scripted effects)."""
    moves: dict[int, tuple[set[int] | None, int]] = {
        3: ({CPUState.READY, CPUState.SYNC0, CPUState.SYNC1, CPUState.C_MAIN}, CPUState.RUNNING),
        4: ({CPUState.SYNC0}, CPUState.RUNNING),
        5: ({CPUState.SYNC1}, CPUState.RUNNING),
        6: ({CPUState.RUNNING}, CPUState.PAUSED),
        7: ({CPUState.PAUSED}, CPUState.RUNNING),
        8: (None, CPUState.FINISHED),
    }
    stop = signal in (0, 2)
    for chip in machine.live_states():
        touched = False
        for p in range(1, chip.info.cores):
            state, core_app = chip.core(p)
            if state == CPUState.IDLE or (core_app & mask) != app_id:
                continue
            if stop:
                chip.set_core(p, CPUState.IDLE, 0)
                touched = True
            elif signal in moves:
                sources, target = moves[signal]
                if sources is None or state in sources:
                    chip.set_core(p, target)
        if stop or touched:
            chip.heap.free_app(app_id)
            chip.router.free_app(app_id, True)


def _sig(call: Call) -> Reply:
    request = call.request
    kind = request.arg1
    if kind not in (0, 2) or (kind == 0 and (call.x, call.y) != (0, 0)):
        return _ARG
    arg2 = request.arg2
    apply_signal(call.machine, (arg2 >> 16) & 0xFF, arg2 & 0xFF, (arg2 >> 8) & 0xFF)
    return OK


def _nnp(call: Call) -> Reply:
    arg2 = call.request.arg2
    if arg2 >> 28 == 5:
        apply_signal(call.machine, (arg2 >> 16) & 0xFF, arg2 & 0xFF, (arg2 >> 8) & 0xFF)
    return OK


def _start_args(word: int) -> tuple[int, int, bool]:
    return word >> 24, word & 0x3FFFF, bool((word >> 18) & 1)


def _ar(call: Call) -> Reply:
    app_id, mask, wait = _start_args(call.request.arg1)
    if mask & 1:
        return _ARG
    call.chip.start_app(app_id, mask, wait)
    return OK


def _app_copy_run(call: Call) -> Reply:
    request = call.request
    link, checksum, size = request.arg1 & 7, request.arg1 >> 3, request.arg2
    app_id, mask, wait = _start_args(request.arg3)
    if size % 4 or link > 5 or mask & 1 or size > 0x800000:
        return _ARG
    source_xy = call.machine.neighbour(call.x, call.y, link)
    source = call.machine.state(*source_xy, create=False) if source_xy else None
    if source is None:
        return SCPResult.RC_ROUTE, b""
    data = source.read(SDRAM_SYS, size) or b""
    total = sum(struct.unpack(f"<{size // 4}I", data)) & 0xFFFFFFFF
    if total & 0x1FFFFFFF != checksum:
        return SCPResult.RC_SUM, _U32.pack(total)
    call.chip.write(SDRAM_SYS, data)
    call.chip.start_app(app_id, mask, wait)
    return OK


def _link(call: Call) -> Reply:
    request = call.request
    length, link = request.arg2, request.arg3
    if link > 5 or length > MAX_SCP_DATA or length % 4:
        return _ARG
    target = call.machine.neighbour(call.x, call.y, link)
    if target is None:
        return SCPResult.RC_TIMEOUT, b""
    is_write = request.command == SCPCommand.LINK_WRITE
    chip = call.machine.state(*target, create=is_write)
    if chip is None:
        return SCPResult.RC_TIMEOUT, b""
    if is_write:
        if len(request.data) < length:
            return _ARG
        return OK if chip.write(request.arg1, request.data[:length]) else _ARG
    data = chip.read(request.arg1, length)
    return _ARG if data is None else (SCPResult.RC_OK, data)


def _ok(call: Call) -> Reply:
    return OK


#: command -> (handler, whether it changes chip state)
HANDLERS: dict[int, tuple[Callable[[Call], Reply], bool]] = {
    SCPCommand.VER: (_ver, False),
    SCPCommand.READ: (_read, False),
    SCPCommand.WRITE: (_write, True),
    SCPCommand.FILL: (_fill, True),
    SCPCommand.INFO: (_info, False),
    SCPCommand.IPTAG: (_iptag, False),
    SCPCommand.ALLOC: (_alloc, True),
    SCPCommand.RTR: (_rtr, True),
    CMD_COUNT: (_count, False),
    SCPCommand.SIG: (_sig, False),
    SCPCommand.NNP: (_nnp, False),
    SCPCommand.AR: (_ar, True),
    SCPCommand.APP_COPY_RUN: (_app_copy_run, True),
    SCPCommand.SYNC: (_ok, False),
    SCPCommand.LED: (_ok, False),
    SCPCommand.LINK_READ: (_link, False),
    SCPCommand.LINK_WRITE: (_link, False),
}
_SARK: dict[int, Callable[[Call], Reply]] = {
    SCPCommand.READ: _read,
    SCPCommand.WRITE: _write,
    SCPCommand.FILL: _fill,
}


def needs_state(command: int) -> bool:
    """Whether ``command`` changes the addressed chip (so its state must be kept)."""
    entry = HANDLERS.get(command)
    return entry is not None and entry[1]


def handle_scamp(call: Call) -> Reply:
    """Run an SCP command addressed to core 0 (SC&MP)."""
    entry = HANDLERS.get(call.request.command)
    if entry is None:
        return SCPResult.RC_CMD, b""
    return entry[0](call)


def handle_sark(call: Call, p: int) -> Reply:
    """Run an SCP command addressed to application core ``p`` (SARK: VER, READ, WRITE, FILL)."""
    command = call.request.command
    if command == SCPCommand.VER:
        return SCPResult.RC_OK, version_payload(call.x, call.y, p, _SARK_VERSION)
    handler = _SARK.get(command)
    if handler is None:
        return SCPResult.RC_CMD, b""
    return handler(call)
