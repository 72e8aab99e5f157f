"""Hypothesis strategies that build every wire message kind."""

from __future__ import annotations

from hypothesis import strategies as st

from pyspalloc.wire import proxy
from pyspalloc.wire.boot import BootMessage, BootOpCode
from pyspalloc.wire.eieio import EIEIOCommandMessage, EIEIODataMessage, EIEIOType
from pyspalloc.wire.scp import SCPRequest, SCPResponse, SCPResult
from pyspalloc.wire.sdp import SDPHeader, SDPMessage

u32 = st.integers(0, 0xFFFFFFFF)
u16 = st.integers(0, 0xFFFF)
u8 = st.integers(0, 0xFF)
ports = st.integers(1, 65535)
ipv4 = st.tuples(u8, u8, u8, u8).map(lambda t: ".".join(map(str, t)))

client_frames = st.one_of(
    st.builds(proxy.OpenRequest, u32, u32, u32, ports),
    st.builds(proxy.CloseRequest, u32, u32),
    st.builds(proxy.OpenUnboundRequest, u32),
    st.builds(proxy.Message, u32, st.binary(max_size=300)),
    st.builds(proxy.MessageTo, u32, u32, u32, ports, st.binary(max_size=300)),
)
server_frames = st.one_of(
    st.builds(proxy.OpenReply, u32, u32),
    st.builds(proxy.CloseReply, u32, u32),
    st.builds(proxy.Message, u32, st.binary(max_size=300)),
    st.builds(proxy.OpenUnboundReply, u32, u32, ipv4, u32),
    st.builds(proxy.ErrorReply, u32, st.text(max_size=200)),
)

sdp_headers = st.builds(
    SDPHeader,
    flags=u8,
    tag=u8,
    dest_port=st.integers(0, 7),
    dest_cpu=st.integers(0, 31),
    src_port=st.integers(0, 7),
    src_cpu=st.integers(0, 31),
    dest_x=u8,
    dest_y=u8,
    src_x=u8,
    src_y=u8,
)
sdp_messages = st.builds(SDPMessage, sdp_headers, st.binary(max_size=272))
scp_requests = st.builds(SCPRequest, sdp_headers, u16, u16, u32, u32, u32, st.binary(max_size=256))
scp_responses = st.builds(
    SCPResponse, sdp_headers, st.sampled_from(SCPResult), u16, st.binary(max_size=256)
)
boot_messages = st.builds(
    BootMessage,
    st.sampled_from(BootOpCode),
    u32,
    u32,
    u32,
    st.integers(0, 256).flatmap(lambda n: st.binary(min_size=4 * n, max_size=4 * n)),
)


@st.composite
def eieio_data_messages(draw: st.DrawFn) -> EIEIODataMessage:
    """Any encodable EIEIO data message."""
    eieio_type = draw(st.sampled_from(EIEIOType))
    width = eieio_type.key_bytes
    top = (1 << (8 * width)) - 1
    prefix = draw(st.none() | u16)
    base = draw(st.none() | st.integers(0, top))
    header = 2 + (2 if prefix is not None else 0) + (width if base is not None else 0)
    element = width * (2 if eieio_type.has_payload else 1)
    count = draw(st.integers(0, (256 - header) // element))
    keys = tuple(draw(st.lists(st.integers(0, top), min_size=count, max_size=count)))
    payloads: tuple[int, ...] = ()
    if eieio_type.has_payload:
        payloads = tuple(draw(st.lists(st.integers(0, top), min_size=count, max_size=count)))
    return EIEIODataMessage(
        eieio_type,
        keys,
        payloads,
        tag=draw(st.integers(0, 3)),
        prefix=prefix,
        prefix_upper=draw(st.booleans()) if prefix is not None else False,
        payload_base=base,
        payloads_are_timestamps=draw(st.booleans()),
    )


eieio_commands = st.builds(EIEIOCommandMessage, st.integers(0, 0x3FFF), st.binary(max_size=254))
