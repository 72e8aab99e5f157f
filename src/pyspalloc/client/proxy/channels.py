"""The channels of a proxy websocket: what a proxied connection sends and receives on.

A :class:`Channel` is a connected UDP socket on the service, reached through a
:class:`ChannelHost` (the :class:`~pyspalloc.client.proxy.connection.ProxyConnection`);
an :class:`UnboundChannel` is a listening one. Received payloads wait in a per-channel
queue that the host's receiver thread fills through :attr:`Channel.deliver`; the host
finds the channel of a server channel id in its :class:`ChannelTable`.

A channel knows its host only through :class:`ChannelHost`; the host drives the channel
through its public lifecycle methods (:meth:`~Channel.open_request`,
:meth:`~Channel.attach`, :meth:`~Channel.detach`, :meth:`~Channel.reopened`,
:meth:`~Channel.kill`). This module imports nothing else of the proxy package.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Final, Protocol

from pyspalloc.exceptions import SpinnmanIOException, SpinnmanTimeoutException
from pyspalloc.wire.proxy import (
    Message,
    MessageTo,
    OpenReply,
    OpenRequest,
    OpenUnboundReply,
    OpenUnboundRequest,
    ServerFrame,
)

__all__ = ["Channel", "ChannelHost", "ChannelTable", "UnboundChannel"]

log = logging.getLogger(__name__)

#: What is put in a channel queue to wake the readers of a dead channel.
DEAD: Final = None


class ChannelHost(Protocol):
    """What a channel needs of the websocket that carries it."""

    @property
    def failure(self) -> str | None:
        """Why the websocket is dead for good (None while it is usable)."""

    def send_frames(self, frames: list[bytes]) -> None:
        """Send proxy frames in order, in one write; dropped while reconnecting.

        Raises
        ------
        SpinnmanIOException
            If the websocket is dead for good.
        """

    def close_channel(self, channel: Channel, timeout: float | None) -> None:
        """Forget ``channel``, :meth:`~Channel.kill` it and close it on the server."""


class Channel:
    """One channel of a proxy websocket: a connected UDP socket on the server.

    Made by :meth:`ProxyConnection.open_channel`; not made directly. ``send`` and
    ``receive`` carry raw UDP payloads (including the two SDP pad bytes, which the proxy
    neither adds nor strips).
    """

    __slots__ = (
        "_closed",
        "_held",
        "_host",
        "_prefix",
        "_queue",
        "_reopen_hooks",
        "channel_id",
        "deliver",
        "port",
        "x",
        "y",
    )

    def __init__(self, host: ChannelHost, x: int, y: int, port: int) -> None:
        self._host = host
        self.x = x
        self.y = y
        self.port = port
        #: The server's current id for this channel; None while (re)opening.
        self.channel_id: int | None = None
        #: The MSG frame header for the current channel id (None while detached).
        self._prefix: bytes | None = None
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        #: The host's receiver hands each payload received for the channel to this
        #: (the queue's own ``put``: one call per packet on the hot path).
        self.deliver: Callable[[bytes], None] = self._queue.put
        self._closed = False
        self._held: bytes | None = None  # a payload taken out by peek()
        self._reopen_hooks: list[Callable[[], None]] = []

    @property
    def is_open(self) -> bool:
        """Whether the channel can still be used (it may be reopening)."""
        return not self._closed and self._host.failure is None

    @property
    def is_closed(self) -> bool:
        """Whether the channel was closed or killed (it will not be reopened)."""
        return self._closed

    # ------------------------------------------------------- driven by the host

    def open_request(self, correlation_id: int) -> bytes:
        """The OPEN frame that opens (or reopens) this channel on the server."""
        return OpenRequest(correlation_id, self.x, self.y, self.port).to_bytes()

    def attach(self, reply: ServerFrame) -> None:
        """Take the channel id (and address) from an OPEN or OPEN_UNBOUND reply."""
        assert isinstance(reply, OpenReply)
        self._attach(reply.channel_id)

    def _attach(self, channel_id: int) -> None:
        self._prefix = Message(channel_id, b"").to_bytes()
        self.channel_id = channel_id

    def detach(self) -> None:
        """Forget the server's channel id (the websocket dropped; sends are dropped)."""
        self.channel_id = None
        self._prefix = None

    def reopened(self) -> None:
        """Run the reopen hooks (on the receiver thread), logging any that fail."""
        for hook in self._reopen_hooks:
            try:
                hook()
            except Exception:
                log.exception("proxy channel reopen hook failed")

    def kill(self) -> None:
        """Mark closed and wake all readers (receiver thread or closer)."""
        self._closed = True
        self.detach()
        self._queue.put(DEAD)

    # ------------------------------------------------------------- user API

    def add_reopen_hook(self, hook: Callable[[], None]) -> None:
        """Call ``hook()`` (on the receiver thread; it must not block) after a reopen."""
        self._reopen_hooks.append(hook)

    def send(self, data: bytes) -> None:
        """Send one UDP payload on the channel.

        While the websocket is being reconnected the payload is dropped, as UDP would.

        Raises
        ------
        SpinnmanIOException
            If the channel or the proxy is closed.
        """
        prefix = self._prefix  # the encoded MSG header of the current channel id
        if prefix is None:
            self._check_usable()
            return
        self._host.send_frames([prefix + data])

    def send_many(self, datas: list[bytes]) -> None:
        """Send several UDP payloads on the channel, in order, in one websocket write.

        Raises
        ------
        SpinnmanIOException
            If the channel or the proxy is closed.
        """
        prefix = self._prefix
        if prefix is None:
            self._check_usable()
            return
        self._host.send_frames([prefix + data for data in datas])

    def has_input(self) -> bool:
        """Whether a received payload is waiting (a receive would not block)."""
        return self._held is not None or not self._queue.empty()

    def receive(self, timeout: float | None = None) -> bytes:
        """Wait for the next UDP payload received on the channel.

        Parameters
        ----------
        timeout:
            Seconds to wait; None waits until a payload arrives or the channel closes.

        Raises
        ------
        SpinnmanTimeoutException
            If nothing arrived in time.
        SpinnmanIOException
            If the channel or the proxy is closed.
        """
        held = self._held
        if held is not None:
            self._held = None
            return held
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            raise SpinnmanTimeoutException("a message on a proxy channel", timeout) from None
        if item is DEAD:
            self._queue.put(DEAD)  # wake any other reader too
            self._check_usable()
            raise SpinnmanIOException("proxy channel closed")
        return item

    def peek(self, timeout: float = 0.0) -> bool:
        """Whether a payload is ready within ``timeout`` seconds (it stays unread)."""
        if self._held is not None:
            return True
        try:
            self._held = self.receive(timeout)
        except SpinnmanTimeoutException:
            return False
        except SpinnmanIOException:
            return True  # the next receive reports it
        return True

    def _check_usable(self) -> None:
        if self._closed:
            raise SpinnmanIOException("proxy channel is closed")
        failure = self._host.failure
        if failure is not None:
            raise SpinnmanIOException(f"proxy websocket is closed: {failure}")

    def close(self, timeout: float | None = None) -> None:
        """Close the channel on the server (a second close does nothing).

        Parameters
        ----------
        timeout:
            Time limit of the CLOSE call; the proxy's default if None.
        """
        if self._closed:
            return
        self._host.close_channel(self, timeout)


class UnboundChannel(Channel):
    """An unbound (listen-only) channel: it receives from every board of the job.

    Sending needs a target: :meth:`send_to`. :attr:`ip` and :attr:`port` are the
    server-side address of the channel's UDP socket (for programming IP tags).
    """

    __slots__ = ("ip",)

    def __init__(self, host: ChannelHost) -> None:
        super().__init__(host, 0, 0, 0)
        #: The server-side IPv4 address of the channel's socket.
        self.ip = "0.0.0.0"

    def open_request(self, correlation_id: int) -> bytes:
        """The OPEN_UNBOUND frame that opens (or reopens) this channel on the server."""
        return OpenUnboundRequest(correlation_id).to_bytes()

    def attach(self, reply: ServerFrame) -> None:
        """Take the channel id and server-side address from an OPEN_UNBOUND reply."""
        assert isinstance(reply, OpenUnboundReply)
        self.ip = reply.ip
        self.port = reply.port
        self._attach(reply.channel_id)

    def send(self, data: bytes) -> None:
        """Unbound channels cannot send without a target; use :meth:`send_to`.

        Raises
        ------
        SpinnmanIOException
            Always.
        """
        raise SpinnmanIOException("an unbound proxy channel can only send with send_to")

    def send_many(self, datas: list[bytes]) -> None:
        """Unbound channels cannot send without a target; use :meth:`send_to`.

        Raises
        ------
        SpinnmanIOException
            Always.
        """
        raise SpinnmanIOException("an unbound proxy channel can only send with send_to")

    def send_to(self, data: bytes, x: int, y: int, port: int) -> None:
        """Send one UDP payload to ``port`` of the board whose Ethernet chip is (x, y).

        Raises
        ------
        SpinnmanIOException
            If the channel or the proxy is closed.
        """
        channel_id = self.channel_id
        if channel_id is None:
            self._check_usable()
            return
        self._host.send_frames([MessageTo(channel_id, x, y, port, data).to_bytes()])


class ChannelTable:
    """The open channels of one host, by server channel id and all together.

    Thread-safe; a channel is in it from its OPEN answer until it is closed, killed or
    the host dies, and stays in it (detached) while its websocket is replaced.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[int, Channel] = {}
        self._open: dict[int, Channel] = {}  # keyed by id(channel)
        #: The channel with a server channel id, or None (the receiver's hot path).
        self.get: Callable[[int], Channel | None] = self._by_id.get

    def add(self, channel: Channel) -> None:
        """Add an attached ``channel`` under its (new) server channel id."""
        with self._lock:
            assert channel.channel_id is not None
            self._by_id[channel.channel_id] = channel
            self._open[id(channel)] = channel

    def remove(self, channel: Channel) -> int | None:
        """Take ``channel`` out; its server channel id then (None if detached)."""
        with self._lock:
            self._open.pop(id(channel), None)
            channel_id = channel.channel_id
            if channel_id is not None:
                self._by_id.pop(channel_id, None)
        return channel_id

    def detach_all(self) -> list[Channel]:
        """Detach every channel (its websocket dropped) and list them, to reopen."""
        with self._lock:
            self._by_id.clear()
            channels = list(self._open.values())
            for channel in channels:
                channel.detach()
        return channels

    def clear(self) -> list[Channel]:
        """Take every channel out and list them (the host closed or gave up)."""
        with self._lock:
            channels = list(self._open.values())
            self._open.clear()
            self._by_id.clear()
        return channels

    def all(self) -> list[Channel]:
        """The channels in the table."""
        with self._lock:
            return list(self._open.values())
