"""The base of every proxied connection, and the SDP/SCP helpers they share.

:class:`SpallocProxiedConnection` wraps one :class:`~pyspalloc.client.proxy.channels.Channel`;
the board connections are in :mod:`pyspalloc.client.proxy.connections` and the listeners in
:mod:`pyspalloc.client.proxy.listeners`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from pyspalloc.client.proxy.channels import Channel
from pyspalloc.exceptions import (
    SpinnmanInvalidPacketException,
    SpinnmanIOException,
    SpinnmanTimeoutException,
    SpinnmanUnexpectedResponseCodeException,
)
from pyspalloc.wire.consts import IPTAG_SET_STRIP, IPTAG_SET_USE_SENDER, IPTagCommand
from pyspalloc.wire.eieio import EIEIOCommandMessage, EIEIODataMessage, decode_eieio
from pyspalloc.wire.errors import WireFormatError
from pyspalloc.wire.scp import (
    RETRY_RESULTS,
    SCPCommand,
    SCPRequest,
    SCPResponse,
    SCPResult,
    scp_request,
)
from pyspalloc.wire.sdp import CPU_ETHERNET, PORT_ETHERNET, SDPFlag, SDPHeader, SDPMessage

__all__ = [
    "EIEIO_SDP_PORT",
    "EIEIOMessage",
    "SpallocProxiedConnection",
    "await_tag_reply",
    "eieio_to_core",
    "is_tag_reply",
    "receive_eieio",
    "update_tag_request",
]

log = logging.getLogger(__name__)

#: SDP port that EIEIO messages sent to a core use.
EIEIO_SDP_PORT = 1
#: Attempts and per-attempt wait of an ``update_tag`` that waits for its reply.
TAG_ATTEMPTS = 3
TAG_TIMEOUT = 1.0

EIEIOMessage = EIEIODataMessage | EIEIOCommandMessage


def update_tag_request(x: int, y: int, tag: int) -> SCPRequest:
    """The IPTAG SET that points ``tag`` of chip (x, y) at whoever sends it.

    Strip-SDP and use-sender set, IP and port 0, flags 0xA7, sequence 0
    (``spinnaker-wire.md`` §2.5): the board records the request's source address.
    """
    arg1 = IPTAG_SET_USE_SENDER | IPTAG_SET_STRIP | (IPTagCommand.SET << 16) | (tag & 0xFF)
    return scp_request(x, y, 0, SCPCommand.IPTAG, arg1, 0, 0, flags=SDPFlag.REPLY_EXPECTED_NO_P2P)


def eieio_to_core(message: EIEIOMessage, x: int, y: int, p: int) -> bytes:
    """A padded SDP datagram carrying ``message`` to core (x, y, p), SDP port 1.

    Flags 0x07 (no reply), tag 0, source port/cpu 0 and chip (0, 0), as spalloc's
    helper sends it (``spinnaker-wire.md`` §4.3).
    """
    header = SDPHeader(
        flags=SDPFlag.REPLY_NOT_EXPECTED,
        tag=0,
        dest_port=EIEIO_SDP_PORT,
        dest_cpu=p,
        src_port=0,
        src_cpu=0,
        dest_x=x,
        dest_y=y,
        src_x=0,
        src_y=0,
    )
    return SDPMessage(header, message.to_bytes()).to_bytes()


def is_tag_reply(data: bytes) -> SCPResponse | None:
    """``data`` decoded if it is the answer to :func:`update_tag_request`, else None."""
    try:
        response = SCPResponse.from_bytes(data)
    except WireFormatError:
        return None
    header = response.header
    if response.sequence != 0 or header.dest_port != PORT_ETHERNET:
        return None
    if header.dest_cpu != CPU_ETHERNET:
        return None
    return response


def await_tag_reply(
    resend: Callable[[], None],
    receive: Callable[[float], bytes],
    what: str,
    attempts: int = TAG_ATTEMPTS,
    timeout: float = TAG_TIMEOUT,
) -> None:
    """Send an IPTAG SET with ``resend`` and wait for RC_OK, resending on silence.

    Datagrams that are not the reply are dropped.

    Raises
    ------
    SpinnmanTimeoutException
        If no reply came in ``attempts`` tries.
    SpinnmanUnexpectedResponseCodeException
        If the board refused.
    """
    for _ in range(attempts):
        resend()
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                data = receive(remaining)
            except SpinnmanTimeoutException:
                break
            response = is_tag_reply(data)
            if response is None:
                log.debug("%s: dropped a datagram that is not the tag reply", what)
                continue
            if response.result == SCPResult.RC_OK:
                return
            if response.result in RETRY_RESULTS:
                break
            raise SpinnmanUnexpectedResponseCodeException(what, "IPTAG", response.result.name)
    raise SpinnmanTimeoutException(what, timeout * attempts)


class SpallocProxiedConnection:
    """Base class for connections proxied via Spalloc: raw datagrams on one channel.

    Parameters
    ----------
    channel:
        The proxy channel (from :meth:`ProxyConnection.open_channel`).
    """

    #: The SCP window a :class:`~pyspalloc.transceiver.Transceiver` uses over this
    #: connection unless told otherwise. The proxy adds a websocket hop (and, for a
    #: remote user, the Internet's round trip) to every request, so more requests are
    #: kept in flight than over plain UDP; the board sees them one by one from the
    #: service, and the engine resends any it drops.
    preferred_window: int = 32

    def __init__(self, channel: Channel) -> None:
        self._channel = channel

    @property
    def channel(self) -> Channel:
        """The proxy channel under this connection."""
        return self._channel

    def send(self, data: bytes) -> None:
        """Send a message on an open socket.

        Parameters
        ----------
        data:
            The UDP payload to send.

        Raises
        ------
        SpinnmanIOException
            If the connection is closed.
        """
        self._channel.send(data)

    def send_many(self, datas: list[bytes]) -> None:
        """Send several messages, in order (one websocket write for them all).

        Raises
        ------
        SpinnmanIOException
            If the connection is closed.
        """
        self._channel.send_many(datas)

    def has_input(self) -> bool:
        """Whether a received message is waiting (:meth:`receive` would not block)."""
        return self._channel.has_input()

    def receive(self, timeout: float | None = None) -> bytes:
        """Receive a message on an open socket.

        Parameters
        ----------
        timeout:
            Seconds to wait; None waits until a message comes or the connection closes.

        Returns
        -------
        bytes
            The received UDP payload.

        Raises
        ------
        SpinnmanTimeoutException
            If a timeout happens.
        SpinnmanIOException
            If the connection is closed.
        """
        return self._channel.receive(timeout)

    def is_connected(self) -> bool:
        """Whether the connection can still be used."""
        return self._channel.is_open

    def is_ready_to_receive(self, timeout: float = 0.0) -> bool:
        """Whether a message arrives within ``timeout`` seconds (it is not consumed)."""
        return self._channel.peek(timeout)

    def get_receive_method(self) -> Callable[..., object]:
        """The method that receives on this connection."""
        return self.receive

    def close(self) -> None:
        """Close the channel on the server; later use raises SpinnmanIOException."""
        try:
            self._channel.close()
        except (SpinnmanIOException, SpinnmanTimeoutException) as error:
            log.info("closing proxied connection: %s", error)

    def __enter__(self) -> SpallocProxiedConnection:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def receive_eieio(receive: Callable[[float | None], bytes], timeout: float | None) -> EIEIOMessage:
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        data = receive(remaining)
        if data[:2] == b"\x00\x00" and is_tag_reply(data) is not None:
            continue  # a (late or repeated) answer to update_tag, not EIEIO
        try:
            return decode_eieio(data)
        except WireFormatError as error:
            raise SpinnmanInvalidPacketException(f"not an EIEIO message: {error}") from error
