"""Cores and applications: cpu information, state counts, signals, stopping apps."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import IntEnum

from pyspalloc.transceiver.connections import Connection
from pyspalloc.transceiver.engine import (
    DEFAULT_OPTIONS,
    EngineOptions,
    make_request,
    scp_call,
    scp_stream,
)
from pyspalloc.wire.consts import CMD_COUNT, VCPU_BASE, VCPU_SIZE, CPUState
from pyspalloc.wire.scp import SCPCommand, SCPRequest, SCPResponse

__all__ = [
    "CPUInfo",
    "Signal",
    "get_core_state_count",
    "get_cpu_infos",
    "send_signal",
    "start_application",
    "stop_application",
]


class Signal(IntEnum):
    """Signals for :func:`send_signal`."""

    INITIALISE = 0
    POWER_DOWN = 1
    STOP = 2
    START = 3
    SYNC0 = 4
    SYNC1 = 5
    PAUSE = 6
    CONTINUE = 7
    EXIT = 8
    TIMER = 9
    USER_0 = 10
    USER_1 = 11
    USER_2 = 12
    USER_3 = 13

    @property
    def signal_type(self) -> int:
        """0 = multicast, 2 = nearest-neighbour (how SC&MP spreads it)."""
        return 2 if self in (Signal.INITIALISE, Signal.POWER_DOWN, Signal.STOP) else 0


@dataclass(frozen=True)
class CPUInfo:
    """A core's VCPU block."""

    x: int
    y: int
    p: int
    state: CPUState
    app_id: int
    app_name: str
    run_time_error: int
    physical_cpu: int
    registers: tuple[int, ...]
    psr: int
    sp: int
    lr: int
    time: int
    iobuf_address: int
    software_version: int
    user: tuple[int, int, int, int]

    @classmethod
    def from_bytes(cls, x: int, y: int, p: int, data: bytes) -> CPUInfo:
        """Decode a 128-byte VCPU block."""
        registers = struct.unpack_from("<8I", data, 0)
        psr, sp, lr = struct.unpack_from("<3I", data, 32)
        rt_code, physical, state, app_id = data[44], data[45], data[46], data[47]
        (load_time,) = struct.unpack_from("<I", data, 68)
        name = bytes(data[72:88]).split(b"\0", 1)[0].decode("ascii", "replace")
        iobuf, sw_ver = struct.unpack_from("<2I", data, 88)
        user = struct.unpack_from("<4I", data, 112)
        return cls(
            x,
            y,
            p,
            CPUState(state & 0xF) if state <= 15 else CPUState.DEAD,
            app_id,
            name,
            rt_code,
            physical,
            tuple(registers),
            psr,
            sp,
            lr,
            load_time,
            iobuf,
            sw_ver,
            (user[0], user[1], user[2], user[3]),
        )


def get_cpu_infos(
    connection: Connection,
    cores: Iterable[tuple[int, int, int]],
    options: EngineOptions = DEFAULT_OPTIONS,
) -> list[CPUInfo]:
    """Read the VCPU block of each (x, y, p) in ``cores`` (all through ``connection``)."""
    core_list = list(cores)
    infos: dict[int, CPUInfo] = {}

    def requests() -> Iterator[SCPRequest]:
        for x, y, p in core_list:
            address = VCPU_BASE + VCPU_SIZE * p
            yield make_request(connection, x, y, 0, SCPCommand.READ, address, VCPU_SIZE, 2)

    def keep(index: int, reply: SCPResponse) -> None:
        x, y, p = core_list[index]
        infos[index] = CPUInfo.from_bytes(x, y, p, reply.payload)

    scp_stream(
        connection,
        requests(),
        keep,
        options,
    )
    return [infos[index] for index in range(len(core_list))]


def get_core_state_count(
    connection: Connection,
    x: int,
    y: int,
    app_id: int,
    state: CPUState | int,
    options: EngineOptions = DEFAULT_OPTIONS,
) -> int:
    """Cores of ``app_id`` in ``state`` on the board of Ethernet chip (x, y) (CMD_COUNT)."""
    request = make_request(connection, x, y, 0, CMD_COUNT, app_id, int(state))
    reply = scp_call(connection, request, options.slow(2.0))
    (count,) = reply.args(1)
    return int(count)


def send_signal(
    connection: Connection,
    app_id: int,
    signal: Signal,
    options: EngineOptions = DEFAULT_OPTIONS,
) -> None:
    """Send ``signal`` to every core running ``app_id`` (via the root chip)."""
    request = make_request(
        connection,
        255,
        255,
        0,
        SCPCommand.SIG,
        signal.signal_type,
        (int(signal) << 16) | (0xFF << 8) | app_id,
        0xFFFF,
    )
    scp_call(connection, request, options)


def start_application(
    connection: Connection,
    x: int,
    y: int,
    cores: Iterable[int],
    app_id: int,
    wait: bool = False,
    options: EngineOptions = DEFAULT_OPTIONS,
) -> None:
    """Start the executable staged at 0x67800000 of chip (x, y) on ``cores`` (CMD_AR).

    With ``wait`` the cores stop in READY until a START signal.
    """
    mask = 0
    for core in cores:
        mask |= 1 << core
    request = make_request(
        connection, x, y, 0, SCPCommand.AR, (app_id << 24) | (int(wait) << 18) | mask
    )
    scp_call(connection, request, options)


def stop_application(
    connection: Connection, app_id: int, options: EngineOptions = DEFAULT_OPTIONS
) -> None:
    """Stop ``app_id`` on every chip: cores go idle, its SDRAM and routes are freed."""
    request = make_request(
        connection,
        255,
        255,
        0,
        SCPCommand.NNP,
        0x003F0000,
        0x50000000 | (2 << 16) | (0xFF << 8) | app_id,
        0x80003F00,
    )
    scp_call(connection, request, options)
