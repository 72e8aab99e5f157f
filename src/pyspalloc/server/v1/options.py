"""Settings of the v1 (JSON lines over TCP) listener."""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspalloc.server.networks import LOOPBACK, Network, address_in, parse_networks


@dataclass
class V1Options:
    """How the v1 listener runs.

    Parameters
    ----------
    port:
        TCP port (0: any free port; the old clients' default is 22244).
    user:
        The account every v1 job belongs to (created, without a password, if missing).
    host:
        Address to listen on.
    group:
        The group v1 jobs are accounted to (None: the user's only group).
    allow:
        Client addresses or networks accepted; others are disconnected at once.
    """

    port: int
    user: str
    host: str = "127.0.0.1"
    group: str | None = None
    allow: tuple[str, ...] = LOOPBACK
    #: longest request line, in bytes (the old client's longest is well under 1 KiB)
    max_line: int = 64 * 1024
    #: most arguments / keyword arguments of one command (as the Java compat layer)
    max_args: int = 10
    #: connections open at once, in all and per client address
    max_connections: int = 256
    max_connections_per_host: int = 64
    #: complete request lines read ahead of the one being answered
    max_pending_lines: int = 16
    #: a started line must be finished within this many seconds
    line_timeout: float = 30.0
    #: replies and notifications a client has not read, in bytes, before it is dropped
    max_unread: int = 256 * 1024
    #: the kernel's send buffer per connection (SO_SNDBUF), in bytes
    socket_buffer: int = 64 * 1024
    #: how long a client that reads nothing may hold up its own replies (s)
    write_timeout: float = 30.0
    #: a command is answered within this many seconds or with an exception
    command_timeout: float = 60.0
    #: threads running database work for v1 commands
    workers: int = 4
    #: run the one-job commands on the event loop rather than a worker thread (each is
    #: a statement or two); None: when the database is SQLite (a local file, no round
    #: trip), not on PostgreSQL
    inline: bool | None = None
    networks: tuple[Network, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        self.networks = parse_networks(self.allow)
        if not self.user.strip():
            raise ValueError("the v1 user must not be blank")

    def accepts(self, address: str) -> bool:
        """Whether a client at ``address`` may connect."""
        return address_in(address, self.networks)
