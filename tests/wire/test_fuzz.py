"""Random and mutated bytes never raise anything but WireFormatError."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyspalloc.wire import WireFormatError, proxy
from pyspalloc.wire.boot import BootMessage
from pyspalloc.wire.eieio import decode_eieio
from pyspalloc.wire.scp import SCPRequest, SCPResponse
from pyspalloc.wire.sdp import SDPMessage
from tests.wire import strategies as s

DECODERS: dict[str, Callable[[bytes], object]] = {
    "client frame": proxy.decode_client_frame,
    "server frame": proxy.decode_server_frame,
    "sdp": SDPMessage.from_bytes,
    "scp request": SCPRequest.from_bytes,
    "scp response": SCPResponse.from_bytes,
    "boot": BootMessage.from_bytes,
    "eieio": decode_eieio,
}


def _decode_or_wire_error(decoder: Callable[[bytes], object], data: bytes) -> None:
    try:
        decoder(data)
    except WireFormatError as error:
        assert str(error), "a WireFormatError must say what was wrong"


@pytest.mark.parametrize("name", sorted(DECODERS))
@settings(max_examples=400)
@given(data=st.binary(max_size=1100))
def test_random_bytes(name: str, data: bytes) -> None:
    _decode_or_wire_error(DECODERS[name], data)


@st.composite
def mutated(draw: st.DrawFn, messages: st.SearchStrategy[bytes]) -> bytes:
    """A valid encoding with bytes flipped, cut off or appended."""
    data = bytearray(draw(messages))
    for _ in range(draw(st.integers(0, 4))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    data = data[: draw(st.integers(0, len(data)))]
    return bytes(data) + draw(st.binary(max_size=8))


ENCODED = st.one_of(
    s.client_frames.map(lambda m: m.to_bytes()),
    s.server_frames.map(lambda m: m.to_bytes()),
    s.scp_requests.map(lambda m: m.to_bytes()),
    s.scp_responses.map(lambda m: m.to_bytes()),
    s.boot_messages.map(lambda m: m.to_bytes()),
    s.eieio_data_messages().map(lambda m: m.to_bytes()),
    s.eieio_commands.map(lambda m: m.to_bytes()),
)


@pytest.mark.parametrize("name", sorted(DECODERS))
@settings(max_examples=300)
@given(data=mutated(ENCODED))
def test_mutated_bytes(name: str, data: bytes) -> None:
    _decode_or_wire_error(DECODERS[name], data)
