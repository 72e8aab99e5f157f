"""Listening connections through the proxy: unbound channels that hear every board.

:class:`SpallocUDPListener` is what ``SpallocJob.open_udp_listener_connection()``
returns and :class:`SpallocEIEIOListener` what ``open_eieio_listener_connection()``
returns. Both receive datagrams from all the job's boards (without their source
address: the proxy protocol does not carry it) and send only to a named board.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pyspalloc.client.proxy.channels import UnboundChannel
from pyspalloc.client.proxy.proxied import (
    EIEIOMessage,
    SpallocProxiedConnection,
    await_tag_reply,
    eieio_to_core,
    receive_eieio,
    update_tag_request,
)
from pyspalloc.exceptions import SpinnmanInvalidParameterException, SpinnmanIOException
from pyspalloc.wire.consts import SCP_PORT

__all__ = ["SpallocEIEIOListener", "SpallocUDPListener"]


class SpallocUDPListener(SpallocProxiedConnection):
    """A proxied UDP socket on the server that hears all the job's boards.

    Parameters
    ----------
    channel:
        An unbound channel (from :meth:`ProxyConnection.open_unbound`).
    boards:
        The job's boards: Ethernet chip (x, y) -> IP address (``job.get_connections()``),
        to turn an address into a board for :meth:`send_to` and
        :meth:`update_tag_by_ip`.
    """

    chip_x = 0
    chip_y = 0

    def __init__(self, channel: UnboundChannel, boards: Mapping[tuple[int, int], str]) -> None:
        super().__init__(channel)
        self._unbound = channel
        self._boards = dict(boards)
        self._by_ip = {ip: xy for xy, ip in self._boards.items()}
        self._tags: set[tuple[int, int, int]] = set()
        channel.add_reopen_hook(self._retag)

    @property
    def local_ip_address(self) -> str:
        """The IP address on the server to which the connection is bound."""
        return self._unbound.ip

    @property
    def local_port(self) -> int:
        """The port on the server to which the connection is bound."""
        return self._unbound.port

    def send(self, data: bytes) -> None:
        """Not allowed: this connection has no board to send to.

        Raises
        ------
        SpinnmanIOException
            Always; use :meth:`send_to` or :meth:`send_to_chip`.
        """
        raise SpinnmanIOException("a listener connection can only send to a named board")

    def send_to_chip(self, message: bytes, x: int, y: int, port: int = SCP_PORT) -> None:
        """Send a message to UDP ``port`` of the board whose Ethernet chip is (x, y).

        Raises
        ------
        SpinnmanIOException
            If the connection is closed.
        """
        self._unbound.send_to(message, x, y, port)

    def send_to(self, data: bytes, address: tuple[str, int]) -> None:
        """Send a message to ``address``, the (IP, port) of one of the job's boards.

        Raises
        ------
        SpinnmanInvalidParameterException
            If the IP is not one of the job's boards.
        """
        ip, port = address
        x, y = self._board_at(ip)
        self._unbound.send_to(data, x, y, port)

    def _board_at(self, ip: str) -> tuple[int, int]:
        try:
            return self._by_ip[ip]
        except KeyError:
            raise SpinnmanInvalidParameterException(
                "ip_address", ip, "is not the address of a board of the job"
            ) from None

    def update_tag(self, x: int, y: int, tag: int, do_receive: bool = True) -> None:
        """Point IP tag ``tag`` of Ethernet chip (x, y) at this connection.

        Parameters
        ----------
        x, y:
            The Ethernet-enabled chip's coordinates.
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
        data = update_tag_request(x, y, tag).to_bytes()
        self._tags.add((x, y, tag))
        if not do_receive:
            self.send_to_chip(data, x, y)
            return
        await_tag_reply(
            lambda: self.send_to_chip(data, x, y), self.receive, f"update of tag {tag} on {x}, {y}"
        )

    def update_tag_by_ip(self, ip_address: str, tag: int) -> None:
        """Point ``tag`` of the board at ``ip_address`` at this connection.

        Raises
        ------
        SpinnmanInvalidParameterException
            If the IP is not one of the job's boards.
        """
        x, y = self._board_at(ip_address)
        self.update_tag(x, y, tag)

    def _retag(self) -> None:
        # After a reconnection the server-side socket (and port) is new.
        for x, y, tag in sorted(self._tags):
            self.send_to_chip(update_tag_request(x, y, tag).to_bytes(), x, y)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.local_ip_address}:{self.local_port})"


class SpallocEIEIOListener(SpallocUDPListener):
    """A proxied EIEIO listener: EIEIO packets from any board of the job."""

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
        self, eieio_message: EIEIOMessage, x: int, y: int, p: int, ip_address: str
    ) -> None:
        """Send an EIEIO message (one way) to core (x, y, p) via the board at ``ip_address``.

        Raises
        ------
        SpinnmanInvalidParameterException
            If the IP is not one of the job's boards.
        """
        self.send_to(eieio_to_core(eieio_message, x, y, p), (ip_address, SCP_PORT))

    def get_receive_method(self) -> Callable[..., object]:
        """The method that receives on this connection."""
        return self.receive_eieio_message
