"""decode(encode(x)) == x for every wire message kind."""

from __future__ import annotations

from hypothesis import given

from pyspalloc.wire import proxy
from pyspalloc.wire.boot import BootMessage
from pyspalloc.wire.eieio import (
    EIEIOCommandMessage,
    EIEIODataMessage,
    decode_eieio,
)
from pyspalloc.wire.scp import SCPRequest, SCPResponse
from pyspalloc.wire.sdp import SDPMessage
from tests.wire import strategies as s


@given(s.client_frames)
def test_client_frames_round_trip(frame: proxy.ClientFrame) -> None:
    assert proxy.decode_client_frame(frame.to_bytes()) == frame


@given(s.server_frames)
def test_server_frames_round_trip(frame: proxy.ServerFrame) -> None:
    decoded = proxy.decode_server_frame(frame.to_bytes())
    if isinstance(frame, proxy.ErrorReply):
        assert isinstance(decoded, proxy.ErrorReply)
        assert decoded.correlation_id == frame.correlation_id
        assert frame.message.startswith(decoded.message)
        assert len(decoded.message.encode()) <= proxy.MAX_ERROR_BYTES
    else:
        assert decoded == frame


@given(s.sdp_messages)
def test_sdp_round_trip(message: SDPMessage) -> None:
    assert SDPMessage.from_bytes(message.to_bytes()) == message
    assert SDPMessage.from_bytes(message.to_bytes(pad=False), pad=False) == message


@given(s.scp_requests)
def test_scp_request_round_trip(request: SCPRequest) -> None:
    assert SCPRequest.from_bytes(request.to_bytes()) == request


@given(s.scp_responses)
def test_scp_response_round_trip(response: SCPResponse) -> None:
    assert SCPResponse.from_bytes(response.to_bytes()) == response


@given(s.boot_messages)
def test_boot_round_trip(message: BootMessage) -> None:
    assert BootMessage.from_bytes(message.to_bytes()) == message


@given(s.eieio_data_messages())
def test_eieio_data_round_trip(message: EIEIODataMessage) -> None:
    assert EIEIODataMessage.from_bytes(message.to_bytes()) == message
    assert decode_eieio(message.to_bytes()) == message


@given(s.eieio_commands)
def test_eieio_command_round_trip(message: EIEIOCommandMessage) -> None:
    assert decode_eieio(message.to_bytes()) == message
