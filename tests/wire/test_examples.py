"""Byte-exact examples from the specs, and the errors bad input gets."""

from __future__ import annotations

import pytest

from pyspalloc.wire import WireFormatError, proxy
from pyspalloc.wire.boot import BootMessage, BootOpCode, boot_messages
from pyspalloc.wire.consts import BOOT_PORT
from pyspalloc.wire.eieio import (
    EIEIOCommandMessage,
    EIEIODataMessage,
    EIEIOType,
    decode_eieio,
)
from pyspalloc.wire.scp import (
    SCPCommand,
    SCPRequest,
    SCPResponse,
    SCPResult,
    reply_to,
    scp_request,
)
from pyspalloc.wire.sdp import SDPFlag


def test_proxy_hex_examples() -> None:
    assert proxy.OpenRequest(7, 8, 4, 17893).to_bytes() == bytes.fromhex(
        "00000000 07000000 08000000 04000000 e5450000"
    )
    assert proxy.decode_server_frame(bytes.fromhex("00000000 07000000 2a000000")) == (
        proxy.OpenReply(7, 42)
    )
    assert proxy.OpenUnboundReply(8, 43, "10.0.0.5", 40000).to_bytes() == bytes.fromhex(
        "03000000 08000000 2b000000 0a000005 409c0000"
    )
    assert proxy.MessageTo(43, 0, 0, 17893, b"").to_bytes() == bytes.fromhex(
        "04000000 2b000000 00000000 00000000 e5450000"
    )
    error = proxy.decode_server_frame(bytes.fromhex("05000000 09000000") + b"unrecognised")
    assert error == proxy.ErrorReply(9, "unrecognised")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "too short"),
        (bytes.fromhex("06000000 01000000"), "unknown proxy opcode 6"),
        (bytes.fromhex("05000000 01000000"), "not sent by clients"),
        (bytes.fromhex("00000000 01000000 00000000"), "exactly 20 bytes"),
        (bytes.fromhex("02000000"), "too short"),
    ],
)
def test_bad_client_frames_say_what_is_wrong(data: bytes, message: str) -> None:
    with pytest.raises(WireFormatError, match=message):
        proxy.decode_client_frame(data)


def test_proxy_refuses_bad_port() -> None:
    with pytest.raises(WireFormatError, match="port"):
        proxy.OpenRequest(1, 0, 0, 0).to_bytes()


def test_error_text_is_cut_to_1000_bytes() -> None:
    encoded = proxy.ErrorReply(1, "é" * 800).to_bytes()
    assert len(encoded) - 8 <= 1000
    decoded = proxy.ErrorReply.from_bytes(encoded)
    assert decoded.message == "é" * 500


def test_scp_version_request_bytes() -> None:
    request = scp_request(255, 255, 0, SCPCommand.VER)
    assert request.to_bytes() == bytes.fromhex("0000 87ff00ff ffff0000 0000 0000") + bytes(12)


def test_scp_iptag_request_bytes() -> None:
    request = scp_request(
        0, 0, 0, SCPCommand.IPTAG, 0x10010001, 0xCDFC, 0x0100007F, sequence=0x206D
    )
    assert request.to_bytes() == bytes.fromhex(
        "0000 87ff00ff00000000 1a00 6d20 01000110 fccd0000 7f000001"
    )


def test_reply_header_swaps_ports_and_clears_reply_bit() -> None:
    request = scp_request(255, 255, 0, SCPCommand.VER, sequence=5)
    reply = reply_to(request, SCPResult.RC_OK, b"\x01\x02\x03\x04", 0, 0)
    raw = reply.to_bytes()
    assert raw[:10] == bytes.fromhex("0000 07ff ff00 0000 0000")
    decoded = SCPResponse.from_bytes(raw)
    assert decoded.sequence == 5
    assert decoded.header.flag is SDPFlag.REPLY_NOT_EXPECTED
    assert decoded.args(1) == (0x04030201,)


def test_unknown_result_code_is_a_wire_error() -> None:
    with pytest.raises(WireFormatError, match="result code 0x7f"):
        SCPResponse.from_bytes(bytes(10) + b"\x7f\x00\x00\x00")


def test_short_scp_request_reads_missing_args_as_zero() -> None:
    full = scp_request(0, 0, 0, SCPCommand.VER, 1, 2, 3).to_bytes()
    assert SCPRequest.from_bytes(full[:18]).arg1 == 1
    assert SCPRequest.from_bytes(full[:18]).arg2 == 0


def test_boot_sequence_matches_the_protocol() -> None:
    image = bytes(range(256)) * 116 + bytes(172)  # 29 868 bytes, as spinnman's image
    messages = boot_messages(image)
    assert len(messages) == 32
    assert messages[0] == BootMessage(BootOpCode.FLOOD_FILL_START, 0, 0, 29)
    assert [m.operand1 for m in messages[1:-1]] == [0xFF00 | i for i in range(30)]
    assert len(messages[-2].to_bytes()) == 190
    assert messages[-1] == BootMessage(BootOpCode.FLOOD_FILL_CONTROL, 1)
    block = messages[1].to_bytes()
    assert block[:6] == bytes.fromhex("0001 00000003")
    assert block[18:22] == bytes([3, 2, 1, 0])  # first image word, byte-swapped
    assert b"".join(m.data for m in messages[1:-1]) == image
    assert BOOT_PORT == 54321


def test_eieio_data_prefix_and_payloads() -> None:
    message = EIEIODataMessage(
        EIEIOType.KEY_PAYLOAD_16,
        (1, 2),
        (10, 20),
        prefix=0x7,
        prefix_upper=True,
        payload_base=0x100,
    )
    raw = message.to_bytes()
    assert raw[:2] == bytes([2, 0x80 | 0x40 | 0x20 | (1 << 2)])
    decoded = decode_eieio(raw)
    assert isinstance(decoded, EIEIODataMessage)
    assert decoded.decoded_keys() == (0x70001, 0x70002)
    assert decoded.decoded_payloads() == (0x10A, 0x114)


def test_eieio_command_classification() -> None:
    stop = EIEIOCommandMessage(3).to_bytes()
    assert stop == bytes.fromhex("0340")
    decoded = decode_eieio(stop)
    assert isinstance(decoded, EIEIOCommandMessage)
    assert decoded.command is not None and decoded.command.name == "EVENT_STOP"


def test_eieio_length_must_match_count() -> None:
    raw = EIEIODataMessage(EIEIOType.KEY_32, (1, 2, 3)).to_bytes()
    with pytest.raises(WireFormatError, match="must be 14 bytes, not 13"):
        decode_eieio(raw[:-1])
