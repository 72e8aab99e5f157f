"""The v1 listener: a TCP server on the service's event loop.

Started and stopped with the service (:func:`start_v1` in the application's lifespan).
Database work runs on the listener's own small thread pool, so a slow command of one
client never holds up the event loop or the other clients.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from pyspalloc.server.context import ServiceContext
from pyspalloc.server.store import TrustLevel, UserInfo
from pyspalloc.server.v1.commands import Commands
from pyspalloc.server.v1.connection import V1Connection
from pyspalloc.server.v1.jobs import V1Jobs
from pyspalloc.server.v1.machines import V1Machines
from pyspalloc.server.v1.notifications import Notifier
from pyspalloc.server.v1.options import V1Options

log = logging.getLogger(__name__)


def v1_user(ctx: ServiceContext, options: V1Options) -> UserInfo:
    """The configured v1 user, created without a password (no login) if missing.

    Raises
    ------
    ValueError
        If the user is disabled or an administrator, or the group is not one of its.
    """
    user = ctx.store.get_user(options.user)
    if user is None:
        log.warning("v1 user %s does not exist: created without a password", options.user)
        user = ctx.store.create_user(options.user, None, TrustLevel.USER)
    if user.disabled:
        raise ValueError(f"the v1 user {options.user} is disabled")
    if user.is_admin:
        raise ValueError(f"the v1 user {options.user} must not be an administrator")
    try:
        ctx.store.group_for(user.id, options.group)
    except LookupError:
        raise ValueError(f"the v1 user {options.user} is not in group {options.group}") from None
    return user


class V1Listener:
    """A running v1 listener; :attr:`port` is the port it listens on."""

    def __init__(self, ctx: ServiceContext, options: V1Options, user: UserInfo) -> None:
        self.ctx = ctx
        self.options = options
        self.user = user
        self.port = options.port
        self._loop = asyncio.get_running_loop()
        self._executor = ThreadPoolExecutor(options.workers, thread_name_prefix="spalloc-v1")
        self.notifier = Notifier(self._loop)
        self.commands = Commands(
            V1Jobs(ctx, user, options.group),
            V1Machines(ctx, user),
            self.notifier,
            self._executor,
            ctx.store.url.startswith("sqlite") if options.inline is None else options.inline,
            options.command_timeout,
        )
        self._connections: set[V1Connection] = set()
        self._per_host: Counter[str] = Counter()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen and start passing service changes to subscribers."""
        self._server = await self._loop.create_server(
            lambda: V1Connection(self), self.options.host, self.options.port
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        self.ctx.events.add_listener(self.notifier.changed)
        self.ctx.events.add_listener(self.commands.jobs.changed)
        log.info("v1 listener on %s:%d for user %s", self.options.host, self.port, self.user.name)

    async def stop(self) -> None:
        """Stop listening, drop every client and finish the running commands."""
        self.ctx.events.remove_listener(self.notifier.changed)
        self.ctx.events.remove_listener(self.commands.jobs.changed)
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections):
            conn.abort()
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait_closed(), 5.0)
            except TimeoutError:
                pass
        await self._loop.run_in_executor(None, self._executor.shutdown, True)

    @property
    def connections(self) -> int:
        """Clients connected now."""
        return len(self._connections)

    def admit(self, conn: V1Connection) -> bool:
        """Whether a new connection may stay (network allowed, limits not reached)."""
        if not self.options.accepts(conn.host):
            log.warning("v1 connection from %s refused: not an allowed network", conn.host)
            return False
        if (
            len(self._connections) >= self.options.max_connections
            or self._per_host[conn.host] >= self.options.max_connections_per_host
        ):
            log.warning("v1 connection from %s refused: too many connections", conn.host)
            return False
        self._connections.add(conn)
        self._per_host[conn.host] += 1
        return True

    def forget(self, conn: V1Connection) -> None:
        """Drop a closed connection from the books."""
        self.notifier.forget(conn)
        if conn in self._connections:
            self._connections.discard(conn)
            self._per_host[conn.host] -= 1
            if self._per_host[conn.host] <= 0:
                del self._per_host[conn.host]


async def start_v1(ctx: ServiceContext, options: V1Options) -> V1Listener:
    """Start a v1 listener for the service ``ctx`` (on the running event loop)."""
    user = await asyncio.get_running_loop().run_in_executor(None, v1_user, ctx, options)
    listener = V1Listener(ctx, options, user)
    await listener.start()
    return listener
