"""Decoders and builders that need no network."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest

from pyspalloc.exceptions import SpinnmanInvalidParameterException, SpinnmanIOException
from pyspalloc.transceiver.boot import BOOT_IMAGE_SIZE, boot_image
from pyspalloc.transceiver.cpu import CPUInfo, Signal
from pyspalloc.transceiver.engine import EngineOptions
from pyspalloc.transceiver.machine_info import (
    ChipInfo,
    MachineInfo,
    decode_p2p_column,
    parse_chip_summary,
    parse_version,
)
from pyspalloc.transceiver.memory import access_type, checksum, write_data
from pyspalloc.transceiver.tags import ip_to_word
from pyspalloc.wire.boot import boot_messages
from pyspalloc.wire.consts import CPUState


def test_parse_scamp_version() -> None:
    payload = (
        struct.pack("<3I", (0x0102 << 16) | (3 << 8) | 0, 0xFFFF0000 | 256, 1234567)
        + b"SC&MP/SpiNNaker\x004.0.0\x00"
    )
    version = parse_version(payload)
    assert (version.x, version.y, version.p, version.physical_cpu) == (1, 2, 0, 3)
    assert (version.name, version.hardware, version.version) == ("SC&MP", "SpiNNaker", (4, 0, 0))
    assert version.buffer_size == 256 and version.build_date == 1234567
    assert version.version_string == "4.0.0"


def test_parse_old_style_version() -> None:
    payload = struct.pack("<3I", 0, (203 << 16) | 256, 0) + b"BC&MP/Spin5-BMP\x00"
    version = parse_version(payload)
    assert (version.name, version.hardware, version.version) == ("BC&MP", "Spin5-BMP", (2, 3, 0))


def test_parse_chip_summary() -> None:
    flags = 18 | (0b101011 << 8) | (1023 << 14) | (1 << 25)
    payload = (
        struct.pack("<3I", flags, 123469792, 5000)
        + bytes([7] + [15] * 17)
        + bytes([4, 8])
        + bytes([127, 1, 0, 1])
        + struct.pack("<H", 7)
    )
    summary = parse_chip_summary(8, 4, payload)
    assert summary.n_cores == 18
    assert summary.working_links == (0, 1, 3, 5)
    assert summary.largest_free_router_block == 1023
    assert summary.ethernet_up
    assert summary.largest_free_sdram == 123469792
    assert summary.core_states[0] == 7 and summary.core_states[1:] == (15,) * 17
    assert summary.nearest_ethernet == (8, 4)
    assert summary.ethernet_ip == "127.1.0.1"
    assert summary.parent_link is None


def test_p2p_column() -> None:
    entries = [7, 0, 1, 6, 6, 2, 3, 4, 5, 6]
    words = [0, 0]
    for y, entry in enumerate(entries):
        words[y >> 3] |= entry << (3 * (y & 7))
    assert decode_p2p_column(struct.pack("<2I", *words), len(entries)) == entries


def test_machine_info_neighbours_and_totals() -> None:
    def chip(x: int, y: int) -> ChipInfo:
        return ChipInfo(x, y, 18, tuple(range(1, 18)), (), 1, 1023, None, (0, 0), None)

    machine = MachineInfo(12, 12, (0, 0), {(0, 0): chip(0, 0), (11, 0): chip(11, 0)})
    assert machine.neighbour(0, 0, 3) == (11, 0)  # wraps west
    assert machine.neighbour(0, 0, 0) is None
    assert machine.n_chips == 2 and machine.total_cores == 36
    assert machine.total_available_user_cores == 34
    lone = MachineInfo(8, 8, (0, 0), {(0, 0): chip(0, 0), (7, 0): chip(7, 0)})
    assert lone.neighbour(0, 0, 3) is None


def test_boot_image_carries_system_variables() -> None:
    image = boot_image(now=0x12345678)
    assert len(image) == BOOT_IMAGE_SIZE
    sv = image[384:512]
    assert sv[0x0A] == 5  # hw_ver
    assert struct.unpack_from("<I", sv, 0x1C)[0] == 0x12345678  # unix_time
    assert struct.unpack_from("<I", sv, 0x5C)[0] == 0x12345678  # boot_sig
    assert sv[0x40] == 1  # root_chip
    assert struct.unpack_from("<I", sv, 0x30)[0] == 1  # led0
    assert struct.unpack_from("<2H", sv, 0x24) == (200, 130)
    assert struct.unpack_from("<I", sv, 0x50)[0] == 16384
    assert sv[0x65] == 0x3F
    assert image[:384] == bytes(384) and image[512:] == bytes(len(image) - 512)
    messages = boot_messages(image)
    assert len(messages) == 32 and messages[0].operand3 == 29
    with pytest.raises(SpinnmanInvalidParameterException):
        boot_image(100)


def test_checksum_is_the_little_endian_word_sum() -> None:
    data = struct.pack("<3I", 0xFFFFFFFF, 2, 0x80000000)
    assert checksum(data) == (0xFFFFFFFF + 2 + 0x80000000) & 0xFFFFFFFF
    assert checksum(b"\x01\x02") == 0x0201


def test_access_type() -> None:
    assert access_type(0x60000000, 256) == 2
    assert access_type(0x60000002, 2) == 1
    assert access_type(0x60000000, 6) == 1
    assert access_type(0x60000001, 4) == 0


def test_cpu_info_decoding() -> None:
    block = bytearray(128)
    block[44:48] = bytes([3, 5, CPUState.RUNNING, 17])
    block[72:80] = b"my_app\x00\x00"
    struct.pack_into("<4I", block, 112, 1, 2, 3, 4)
    info = CPUInfo.from_bytes(1, 2, 5, bytes(block))
    assert info.state == CPUState.RUNNING and info.app_id == 17
    assert info.app_name == "my_app" and info.run_time_error == 3 and info.physical_cpu == 5
    assert info.user == (1, 2, 3, 4)


def test_signal_types() -> None:
    assert Signal.STOP.signal_type == 2 and Signal.START.signal_type == 0


def test_ip_word() -> None:
    assert ip_to_word("127.0.0.1") == 0x0100007F


def test_engine_options_are_validated() -> None:
    with pytest.raises(SpinnmanInvalidParameterException):
        EngineOptions(window=0)
    with pytest.raises(SpinnmanInvalidParameterException):
        EngineOptions(retries=-1)


def test_write_data_takes_every_form(tmp_path: Path) -> None:
    data = bytes(range(256)) * 3
    name = tmp_path / "data.bin"
    name.write_bytes(data)

    def written(*args: object) -> tuple[int, bytes]:
        size, pieces = write_data(*args)  # type: ignore[arg-type]
        chunks = list(pieces)
        assert all(len(chunk) <= 256 for chunk in chunks)
        return size, b"".join(chunks)

    assert written(-1) == (4, b"\xff\xff\xff\xff")
    assert written(0x01020304) == (4, b"\x04\x03\x02\x01")
    assert written(data, 10, 5) == (10, data[5:15])
    assert written(bytearray(data), None, 700) == (68, data[700:])
    assert written(str(name)) == (768, data)
    assert written(str(name), 300) == (300, data[:300])
    assert written(io.BytesIO(data), 600) == (600, data[:600])
    for bad in [(True,), (1 << 32,), (data, 1000), (data, None, -1), (io.BytesIO(data),)]:
        with pytest.raises(SpinnmanInvalidParameterException):
            write_data(*bad)  # type: ignore[arg-type]
    with pytest.raises(SpinnmanIOException):
        list(write_data(io.BytesIO(data), 800)[1])
