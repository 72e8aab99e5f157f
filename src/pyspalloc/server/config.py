"""Configuration of the Spalloc service."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def default_data_dir() -> Path:
    """Return the per-user data directory (``$XDG_DATA_HOME/pyspalloc``).

    Returns
    -------
    Path
        ``~/.local/share/pyspalloc`` unless ``XDG_DATA_HOME`` says otherwise.
    """
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "pyspalloc"


@dataclass
class ServiceConfig:
    """Everything the service needs to start.

    Parameters
    ----------
    host, port:
        Address to listen on; port 0 picks a free port.
    data_dir:
        Directory for the SQLite database and the self-signed certificate.
    database:
        SQLAlchemy URL; ``None`` means ``sqlite:///<data_dir>/spalloc.sqlite3``.
    machines:
        Machine specs (``virtual:NAME``, ``NAME`` or a definition file).
    embed_virtual:
        Run a :class:`pyspalloc.virtual.VirtualMachine` for every ``virtual:`` spec.
    controller:
        ``"instant"`` (no I/O), ``"bmp"`` (real BMP control) or ``"auto"`` (``bmp`` if
        :mod:`pyspalloc.server.bmp_control` is installed).
    tls_cert, tls_key:
        PEM files to serve HTTPS with; ``self_signed`` makes and reuses a pair in
        ``data_dir``.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = field(default_factory=default_data_dir)
    database: str | None = None
    machines: list[str] = field(default_factory=lambda: ["virtual:spin24"])
    embed_virtual: bool = True
    virtual_address_base: str = "127.1.0.0"
    controller: str = "auto"
    tls_cert: Path | None = None
    tls_key: Path | None = None
    self_signed: bool = False
    #: long-poll limit (s)
    wait_timeout: float = 30.0
    keepalive_min: float = 30.0
    keepalive_max: float = 300.0
    #: keepalive expiry check period (s)
    expiry_period: float = 30.0
    #: allocator period (s)
    allocator_period: float = 5.0
    importance_span: float = 10000.0
    priority_size: float = 1.0
    priority_dimensions: float = 1.5
    priority_specific_board: float = 65.0
    report_action_threshold: int = 2
    session_timeout: float = 30 * 60.0
    max_login_failures: int = 5
    account_lock_duration: float = 15 * 60.0
    #: failed logins allowed per client address within ``ip_failure_window``
    max_ip_failures: int = 30
    ip_failure_window: float = 300.0
    proxy_enable: bool = True
    proxy_local_host: str = ""
    #: proxy limits: channels per websocket (at least twice the job's boards are allowed),
    #: websockets per job and per user, channels of one user, channels of all websockets
    #: together (at most half the open-file limit)
    proxy_max_channels: int = 64
    proxy_max_websockets_per_job: int = 8
    proxy_max_websockets_per_user: int = 32
    proxy_max_channels_per_user: int = 512
    proxy_max_channels_total: int = 2048
    #: how often (s) an open proxy websocket re-checks its credential and job
    proxy_recheck_period: float = 1.5
    #: origins (``scheme://host[:port]``) besides the service's own whose pages may open
    #: the proxy websocket
    allowed_origins: list[str] = field(default_factory=list)
    #: longest wait (s) for a job's board operations to stop before its boards are released
    operation_drain_timeout: float = 30.0
    #: live (queued, powering or ready) jobs a user may have at once (None: no limit)
    max_jobs_per_user: int | None = None
    #: longest ``report-issue`` text (characters)
    max_issue_length: int = 1000
    #: worker threads for power changes
    power_workers: int = 4
    #: create ``admin`` with a random password on first start when there are no users
    create_admin: bool = True
    #: code that ``GET {srv}emergencyStop?commandCode=`` must give (None: disabled)
    emergency_code: str | None = None
    version: tuple[int, int, int] = (7, 4, 2)
    debug: bool = False

    @property
    def tls(self) -> bool:
        """Whether the service speaks HTTPS."""
        return self.self_signed or (self.tls_cert is not None and self.tls_key is not None)

    def database_url(self) -> str:
        """Return the SQLAlchemy URL of the database."""
        if self.database:
            return self.database
        return f"sqlite:///{Path(self.data_dir) / 'spalloc.sqlite3'}"
