"""Connections to a job's boards through the proxy websocket (the seed's names).

Each class wraps one :class:`~pyspalloc.client.proxy.channels.Channel` and satisfies the
:class:`pyspalloc.transceiver.connections.Connection` protocol (``send``,
``receive(timeout)``, ``close``, ``chip_x``, ``chip_y``), so a
:class:`~pyspalloc.transceiver.Transceiver` runs over them unchanged.

The listening (unbound) connections are in :mod:`pyspalloc.client.proxy.listeners`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from pyspalloc.client.proxy.channels import Channel
from pyspalloc.client.proxy.proxied import (
    EIEIOMessage,
    SpallocProxiedConnection,
    await_tag_reply,
    eieio_to_core,
    receive_eieio,
    update_tag_request,
)
from pyspalloc.exceptions import SpinnmanInvalidPacketException
from pyspalloc.wire.boot import BootMessage
from pyspalloc.wire.errors import WireFormatError
from pyspalloc.wire.scp import SCPRequest, SCPResponse, SCPResult
from pyspalloc.wire.sdp import CPU_ETHERNET, PORT_ETHERNET, TAG_NONE, SDPMessage

__all__ = [
    "SpallocBootConnection",
    "SpallocEIEIOConnection",
    "SpallocSCPConnection",
]


class _BoardConnection(SpallocProxiedConnection):
    """A proxied connection bound to one board's Ethernet chip."""

    def __init__(self, channel: Channel, remote_ip: str | None = None) -> None:
        super().__init__(channel)
        self.chip_x = channel.x
        self.chip_y = channel.y
        #: The board's IP address, when the job told us.
        self.remote_ip = remote_ip

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(chip=({self.chip_x}, {self.chip_y}), "
            f"port={self._channel.port}, ip={self.remote_ip})"
        )


class SpallocSCPConnection(_BoardConnection):
    """The proxied SCAMP connection to a board (emulates a ``SCAMPConnection``).

    Parameters
    ----------
    channel:
        A channel to the board's UDP port 17893.
    remote_ip:
        The board's IP address (used to name the board), if known.
    """

    def send_sdp_message(self, sdp_message: SDPMessage) -> None:
        """Send an SDP message down this connection.

        Raises
        ------
        SpinnmanIOException
            If the connection is closed.
        """
        self.send(sdp_message.to_bytes())

    def receive_sdp_message(self, timeout: float | None = None) -> SDPMessage:
        """Receive an SDP message from this connection.

        Raises
        ------
        SpinnmanTimeoutException
            If nothing arrived in time.
        SpinnmanInvalidPacketException
            If the datagram is not SDP.
        """
        data = self.receive(timeout)
        try:
            return SDPMessage.from_bytes(data)
        except WireFormatError as error:
            raise SpinnmanInvalidPacketException(f"not an SDP message: {error}") from error

    def get_scp_data(
        self, scp_request: SCPRequest, x: int | None = None, y: int | None = None
    ) -> bytes:
        """The datagram of an SCP request as it would be sent down this connection.

        The source chip becomes (x, y) (this connection's chip by default) and the
        source port/cpu and tag those of a host (7, 31, 0xFF).
        """
        header = replace(
            scp_request.header,
            tag=TAG_NONE,
            src_port=PORT_ETHERNET,
            src_cpu=CPU_ETHERNET,
            src_x=(self.chip_x if x is None else x) & 0xFF,
            src_y=(self.chip_y if y is None else y) & 0xFF,
        )
        return replace(scp_request, header=header).to_bytes()

    def send_scp_request(self, scp_request: SCPRequest) -> None:
        """Send an SCP request (see :meth:`get_scp_data`)."""
        self.send(self.get_scp_data(scp_request))

    def receive_scp_response(
        self, timeout: float | None = 1.0
    ) -> tuple[SCPResult, int, bytes, int]:
        """Receive an SCP response from this connection.

        Returns
        -------
        tuple
            The SCP result, the sequence number, the whole datagram and the offset at
            which the SDP header starts in it (2).

        Raises
        ------
        SpinnmanTimeoutException
            If nothing arrived in time.
        SpinnmanInvalidPacketException
            If the datagram is not an SCP response.
        """
        data = self.receive(timeout)
        try:
            response = SCPResponse.from_bytes(data)
        except WireFormatError as error:
            raise SpinnmanInvalidPacketException(f"not an SCP response: {error}") from error
        return response.result, response.sequence, data, 2

    def get_receive_method(self) -> Callable[..., object]:
        """The method that receives on this connection."""
        return self.receive_sdp_message


class SpallocBootConnection(_BoardConnection):
    """The proxied boot connection to the root board's port 54321."""

    def send_boot_message(self, boot_message: BootMessage) -> None:
        """Send a SpiNNaker boot message using this connection.

        Raises
        ------
        SpinnmanIOException
            If the connection is closed.
        """
        self.send(boot_message.to_bytes())

    def receive_boot_message(self, timeout: float | None = None) -> BootMessage:
        """Receive a boot message from this connection.

        Raises
        ------
        SpinnmanTimeoutException
            If nothing arrived in time.
        SpinnmanInvalidPacketException
            If the datagram is not a boot message.
        """
        data = self.receive(timeout)
        try:
            return BootMessage.from_bytes(data)
        except WireFormatError as error:
            raise SpinnmanInvalidPacketException(f"not a boot message: {error}") from error

    def get_receive_method(self) -> Callable[..., object]:
        """The method that receives on this connection."""
        return self.receive_boot_message


class SpallocEIEIOConnection(_BoardConnection):
    """A proxied EIEIO connection bound to a board (emulates an ``EIEIOConnection``).

    The channel goes to the board's port 17893; :meth:`update_tag` points an IP tag at
    the channel's server-side socket, so packets the board sends through that tag come
    back here. After a websocket reconnection the tags set this way are set again,
    because the channel's server-side socket (and so its port) is new.
    """

    def __init__(self, channel: Channel, remote_ip: str | None = None) -> None:
        super().__init__(channel, remote_ip)
        self._tags: set[int] = set()
        channel.add_reopen_hook(self._retag)

    def _retag(self) -> None:
        for tag in sorted(self._tags):
            self.send(update_tag_request(self.chip_x, self.chip_y, tag).to_bytes())

    def send_eieio_message(self, eieio_message: EIEIOMessage) -> None:
        """Send an EIEIO message down this connection (raw, to the board's port).

        Raises
        ------
        SpinnmanIOException
            If the connection is closed.
        """
        self.send(eieio_message.to_bytes())

    def receive_eieio_message(self, timeout: float | None = None) -> EIEIOMessage:
        """Receive an EIEIO message from this connection.

        Late replies to :meth:`update_tag` are skipped.

        Raises
        ------
        SpinnmanTimeoutException
            If nothing arrived in time.
        SpinnmanInvalidPacketException
            If the datagram is not EIEIO.
        """
        return receive_eieio(self.receive, timeout)

    def send_eieio_message_to_core(
        self, eieio_message: EIEIOMessage, x: int, y: int, p: int
    ) -> None:
        """Send an EIEIO message (one way) to core (x, y, p), wrapped in SDP."""
        self.send(eieio_to_core(eieio_message, x, y, p))

    def update_tag(self, tag: int, do_receive: bool = True) -> None:
        """Point IP tag ``tag`` of the connected Ethernet chip at this connection.

        Parameters
        ----------
        tag:
            The tag ID to update.
        do_receive:
            Whether to wait for the board's reply (resending up to 3 times).

        Raises
        ------
        SpinnmanTimeoutException
            If the board did not answer.
        SpinnmanUnexpectedResponseCodeException
            If the board refused.
        """
        data = update_tag_request(self.chip_x, self.chip_y, tag).to_bytes()
        self._tags.add(tag)
        if not do_receive:
            self.send(data)
            return
        await_tag_reply(
            lambda: self.send(data),
            self.receive,
            f"update of tag {tag} on {self.chip_x}, {self.chip_y}",
        )

    def get_receive_method(self) -> Callable[..., object]:
        """The method that receives on this connection."""
        return self.receive_eieio_message
