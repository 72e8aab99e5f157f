"""One proxy websocket: frames from the client to UDP channels and back (web-api.md §6)."""

from __future__ import annotations

import asyncio
import collections
import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from pyspalloc.server.controller import JobBoards
from pyspalloc.server.proxy.channels import (
    CHANNEL_IDS,
    MAX_DATAGRAM,
    Channel,
    local_address_towards,
    open_bound,
    open_unbound,
)
from pyspalloc.server.proxy.registry import ProxyRegistry
from pyspalloc.wire.errors import WireFormatError
from pyspalloc.wire.proxy import (
    CloseReply,
    CloseRequest,
    ErrorReply,
    MessageTo,
    OpenReply,
    OpenRequest,
    OpenUnboundReply,
    OpenUnboundRequest,
    decode_client_frame,
)

log = logging.getLogger(__name__)


_HEADER = struct.Struct("<2I")
_MSG = 2
_MSG_TO = 4
_MSG_TO_HEADER = struct.Struct("<5I")
_MAX_MSG = 8 + MAX_DATAGRAM
_MAX_MSG_TO = 20 + MAX_DATAGRAM

#: websocket close codes
CLOSE_NORMAL = 1000
CLOSE_UNSUPPORTED = 1003
CLOSE_BAD_DATA = 1007
CLOSE_POLICY = 1008
CLOSE_SERVER_ERROR = 1011


@dataclass(frozen=True)
class ProxyOptions:
    """Settings of the proxy.

    Parameters
    ----------
    local_host:
        Address to bind OPEN_UNBOUND channels to; empty means the local address the
        kernel uses to reach the job's boards.
    allow_unbound:
        Whether OPEN_UNBOUND is served.
    max_channels:
        Open channels allowed per websocket.
    max_queued:
        MSG frames allowed to wait for the client; more are dropped, as UDP would.
    send_timeout:
        Longest time (s) to push queued frames to a client before it is dropped.
    max_per_job, max_per_user:
        Websockets allowed per job and per user (None: no limit).
    recheck_period:
        Seconds between two calls of the session's ``still_valid`` check.
    """

    local_host: str = ""
    allow_unbound: bool = True
    max_channels: int = 64
    max_queued: int = 16384
    send_timeout: float = 10.0
    max_per_job: int | None = None
    max_per_user: int | None = None
    recheck_period: float = 1.5


def _close_reason(reason: str) -> str:
    """Cut a close reason to the 123 UTF-8 bytes a close frame can carry."""
    return reason.encode("utf-8")[:123].decode("utf-8", "ignore")


class ProxySession:
    """The proxy state of one websocket of one job.

    Parameters
    ----------
    websocket:
        The (accepted or not yet accepted) websocket; authorisation is already done.
    job_id:
        The job whose boards may be reached.
    boards:
        The job's boards: job-relative Ethernet chip -> IPv4 address (a snapshot).
    registry:
        Where the session registers so the job's end can close it.
    options:
        Proxy settings.
    user_id:
        The user the websocket belongs to (for the per-user limit).
    """

    def __init__(
        self,
        websocket: WebSocket,
        job_id: int,
        boards: JobBoards,
        registry: ProxyRegistry,
        options: ProxyOptions | None = None,
        user_id: int | None = None,
    ) -> None:
        self.websocket = websocket
        self.job_id = job_id
        self.user_id = user_id
        self.boards = dict(boards)
        self.registry = registry
        self.options = options or ProxyOptions()
        self.loop = asyncio.get_running_loop()
        self.channels: dict[int, Channel] = {}
        self.dropped = 0
        self._sources = frozenset(self.boards.values())
        self._queue: collections.deque[bytes] = collections.deque()
        self._wakeup = asyncio.Event()
        self._ended = asyncio.Event()
        self._close: tuple[int, str] | None = None
        self._unbound_host: str | None = None

    # ---- lifetime ------------------------------------------------------------------
    async def run(
        self,
        job_alive: Callable[[], bool] | None = None,
        still_valid: Callable[[], bool] | None = None,
        released: Callable[[], object] | None = None,
    ) -> None:
        """Serve the websocket until either side closes it or the job ends.

        Parameters
        ----------
        job_alive:
            Checked once after registering, to close at once if the job ended meanwhile.
        still_valid:
            A blocking check (run in a worker thread every ``options.recheck_period`` s)
            that the caller's credential and job still admit the websocket; when it
            returns False the websocket closes with 1008.
        released:
            Called once every channel is closed (before the websocket's close handshake).
        """
        ws = self.websocket
        if ws.client_state == WebSocketState.CONNECTING:
            await ws.accept()
        tasks: list[asyncio.Task[Any]] = []
        try:
            refused = self.registry.add(self, self.options.max_per_job, self.options.max_per_user)
            if refused is not None:
                self._set_close(CLOSE_POLICY, refused)
            elif job_alive is not None and not job_alive():
                self.end("job is not active")
            else:
                tasks = [
                    asyncio.create_task(self._read_loop()),
                    asyncio.create_task(self._send_loop()),
                    asyncio.create_task(self._ended.wait()),
                ]
                if still_valid is not None:
                    tasks.append(asyncio.create_task(self._recheck(still_valid)))
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in tasks[:2]:
                    if task.done() and not task.cancelled() and task.exception() is not None:
                        log.warning("proxy of job %d failed: %r", self.job_id, task.exception())
                        self._set_close(CLOSE_SERVER_ERROR, "proxy failure")
        finally:
            self.registry.remove(self)
            self._close_channels()
            if released is not None:
                released()
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            await self._close_websocket()

    async def _recheck(self, still_valid: Callable[[], bool]) -> None:
        """Close the websocket once ``still_valid`` says the caller may no longer use it."""
        period = self.options.recheck_period
        while not self._ended.is_set():
            await asyncio.sleep(period)
            try:
                valid = await run_in_threadpool(still_valid)
            except Exception as error:  # e.g. the database is briefly unreachable
                log.warning("proxy of job %d: credential check failed: %r", self.job_id, error)
                continue
            if not valid:
                self._set_close(CLOSE_POLICY, "credentials or job no longer valid")
                self._close_channels()
                self._ended.set()
                return

    def end(self, reason: str) -> None:
        """Close every channel and then the websocket with 1000 and ``reason``.

        Must be called on the session's event loop (the registry sees to that).
        """
        self._set_close(CLOSE_NORMAL, reason)
        self._close_channels()
        self._ended.set()

    def _set_close(self, code: int, reason: str) -> None:
        if self._close is None:
            self._close = (code, reason)

    def _close_channels(self) -> None:
        channels = list(self.channels.values())
        self.channels.clear()
        self.registry.give_channels(len(channels), self.user_id)
        for channel in channels:
            channel.close()

    def _forget_channel(self, channel_id: int) -> Channel | None:
        channel = self.channels.pop(channel_id, None)
        if channel is not None:
            self.registry.give_channels(1, self.user_id)
        return channel

    def _add_channel(self, channel: Channel) -> bool:
        """Keep a newly opened channel (counted by :meth:`_room_for_channel`) unless ended."""
        if self._ended.is_set():
            channel.close()
            self.registry.give_channels(1, self.user_id)
            return False
        self.channels[channel.id] = channel
        return True

    async def _close_websocket(self) -> None:
        ws = self.websocket
        if ws.application_state != WebSocketState.CONNECTED:
            return
        if ws.client_state == WebSocketState.DISCONNECTED:
            return
        code, reason = self._close or (CLOSE_NORMAL, "")
        try:
            async with asyncio.timeout(self.options.send_timeout):
                await ws.close(code, _close_reason(reason))
        except Exception as error:  # the peer is gone already
            log.debug("closing proxy websocket: %r", error)

    # ---- client -> service -----------------------------------------------------------
    async def _read_loop(self) -> None:
        try:
            await self._read_frames()
        except (OSError, WebSocketDisconnect) as error:  # the client has gone
            log.debug("proxy receive ended: %r", error)

    async def _read_frames(self) -> None:
        receive = self.websocket.receive
        channels = self.channels
        while not self._ended.is_set():
            message = await receive()
            if message["type"] != "websocket.receive":  # websocket.disconnect
                return
            data = message.get("bytes")
            if data is None:
                self._set_close(CLOSE_UNSUPPORTED, "only binary frames are accepted")
                return
            if len(data) >= 8:
                opcode, channel_id = _HEADER.unpack_from(data)
                if opcode == _MSG:  # the data path: no decoding, no objects
                    channel = channels.get(channel_id)
                    if channel is not None and channel.bound and len(data) <= _MAX_MSG:
                        channel.send(data[8:])
                    continue
                if opcode == _MSG_TO and len(data) >= 20:
                    self._message_to(data)
                    continue
            try:
                frame = decode_client_frame(data)
            except WireFormatError as error:
                if len(data) < 8:
                    self._set_close(CLOSE_BAD_DATA, str(error))
                    return
                self._reply(ErrorReply(_HEADER.unpack_from(data)[1], str(error)).to_bytes())
                continue
            if isinstance(frame, OpenRequest):
                await self._open(frame)
            elif isinstance(frame, CloseRequest):
                self._close_channel(frame)
            elif isinstance(frame, OpenUnboundRequest):
                await self._open_unbound(frame)
            elif isinstance(frame, MessageTo):  # only if shorter than its header: unreachable
                self._message_to(data)

    def _error(self, correlation_id: int, text: str) -> None:
        self._reply(ErrorReply(correlation_id, text).to_bytes())

    def _room_for_channel(self, correlation_id: int) -> bool:
        """Count a channel about to open; False (after an ERROR reply) if over a limit."""
        if len(self.channels) >= self.options.max_channels:
            self._error(
                correlation_id,
                f"too many channels on this websocket (at most {self.options.max_channels})",
            )
            return False
        refused = self.registry.take_channel(self.user_id)
        if refused is not None:
            self._error(correlation_id, refused)
            return False
        return True

    async def _open(self, request: OpenRequest) -> None:
        corr = request.correlation_id
        ip = self.boards.get((request.x, request.y))
        if ip is None:
            self._error(corr, f"unrecognised ethernet chip ({request.x}, {request.y})")
            return
        if not 1 <= request.port <= 65535:
            self._error(corr, f"bad port number {request.port}")
            return
        if not self._room_for_channel(corr):
            return
        channel_id = CHANNEL_IDS.next()
        try:
            channel = await open_bound(
                channel_id, ip, request.port, self._deliver, self._channel_lost
            )
        except OSError as error:
            self.registry.give_channels(1, self.user_id)
            self._error(corr, f"cannot open channel to {ip}:{request.port}: {error}")
            return
        if self._add_channel(channel):
            self._reply(OpenReply(corr, channel_id).to_bytes())

    async def _open_unbound(self, request: OpenUnboundRequest) -> None:
        corr = request.correlation_id
        if not self.options.allow_unbound:
            self._error(corr, "unbound channels are disabled on this service")
            return
        if not self._room_for_channel(corr):
            return
        try:
            host = self._unbound_address()
            channel_id = CHANNEL_IDS.next()
            channel, address, port = await open_unbound(
                channel_id, host, self._sources, self._deliver, self._channel_lost
            )
        except (OSError, LookupError) as error:
            self.registry.give_channels(1, self.user_id)
            self._error(corr, f"cannot open unbound channel: {error}")
            return
        if self._add_channel(channel):
            self._reply(OpenUnboundReply(corr, channel_id, address, port).to_bytes())

    def _unbound_address(self) -> str:
        if self._unbound_host is None:
            if self.options.local_host:
                self._unbound_host = self.options.local_host
            elif not self.boards:
                raise LookupError("the job has no boards")
            else:
                root = self.boards.get((0, 0)) or next(iter(self.boards.values()))
                self._unbound_host = local_address_towards(root)
        return self._unbound_host

    def _channel_lost(self, channel_id: int) -> None:
        """Forget a channel whose socket failed; later MSGs to it are dropped."""
        channel = self._forget_channel(channel_id)
        if channel is not None:
            channel.close()  # releases its board pacer

    def _close_channel(self, request: CloseRequest) -> None:
        channel = self._forget_channel(request.channel_id)
        if channel is not None:
            channel.close()
        closed = 0 if channel is None else request.channel_id
        self._reply(CloseReply(request.correlation_id, closed).to_bytes())

    def _message_to(self, data: bytes) -> None:
        _, channel_id, x, y, port = _MSG_TO_HEADER.unpack_from(data)
        channel = self.channels.get(channel_id)
        if channel is None:
            return  # unknown or closed: silently ignored
        if channel.bound:
            self._error(channel_id, "channel is connected: use MSG, not MSG_TO")
            return
        ip = self.boards.get((x, y))
        if ip is None:
            self._error(channel_id, f"unrecognised ethernet chip ({x}, {y})")
            return
        if not 1 <= port <= 65535:
            self._error(channel_id, f"bad port number {port}")
            return
        if len(data) > _MAX_MSG_TO:
            self._error(channel_id, f"payload of {len(data) - 20} bytes is too large for UDP")
            return
        channel.transport.sendto(data[20:], (ip, port))

    # ---- service -> client -----------------------------------------------------------
    def _deliver(self, frame: bytes) -> None:
        """Queue a MSG frame from a channel; drop it if the client is too far behind."""
        if len(self._queue) >= self.options.max_queued:
            self.dropped += 1
            return
        self._queue.append(frame)
        if not self._wakeup.is_set():
            self._wakeup.set()

    def _reply(self, frame: bytes) -> None:
        """Queue a reply frame (never dropped: the client waits for it)."""
        self._queue.append(frame)
        if not self._wakeup.is_set():
            self._wakeup.set()

    async def _send_loop(self) -> None:
        send = self.websocket.send
        queue = self._queue
        wakeup = self._wakeup
        timeout = self.options.send_timeout
        try:
            while True:
                if queue:
                    async with asyncio.timeout(timeout):
                        while queue:
                            await send({"type": "websocket.send", "bytes": queue.popleft()})
                wakeup.clear()
                if not queue:
                    await wakeup.wait()
        except TimeoutError:
            log.warning("proxy client of job %d too slow: closing", self.job_id)
            self._set_close(CLOSE_SERVER_ERROR, "client too slow to receive")
        except (OSError, RuntimeError, WebSocketDisconnect) as error:  # the client has gone
            log.debug("proxy send ended: %r", error)


async def serve_proxy(
    websocket: WebSocket,
    job_id: int,
    boards: JobBoards,
    registry: ProxyRegistry,
    *,
    options: ProxyOptions | None = None,
    job_alive: Callable[[], bool] | None = None,
    user_id: int | None = None,
    still_valid: Callable[[], bool] | None = None,
    released: Callable[[], object] | None = None,
) -> None:
    """Serve one proxy websocket of an authorised job until it closes.

    Parameters
    ----------
    websocket:
        The websocket, accepted or not; the caller has authenticated the user and
        checked they may use ``job_id``.
    job_id:
        The job.
    boards:
        The job's allocation: job-relative Ethernet chip (x, y) -> board IPv4 address.
    registry:
        The service's :class:`ProxyRegistry`; ``registry.close_job(job_id)`` ends it.
    options:
        Proxy settings (unbound channels, limits).
    job_alive:
        Optional check, made once after registering, that the job is still live.
    user_id:
        The caller (for the per-user websocket limit).
    still_valid:
        Optional blocking check, repeated every ``options.recheck_period`` s, that the
        caller may still use the job (credential unchanged, job live).
    released:
        Called once every channel is closed.
    """
    session = ProxySession(websocket, job_id, boards, registry, options, user_id)
    await session.run(job_alive, still_valid, released)
