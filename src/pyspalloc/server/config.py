"""Configuration of the Spalloc service."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspalloc.server.v1 import V1Options


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
    #: worker threads for power changes
    power_workers: int = 4
    #: create ``admin`` with a random password on first start when there are no users
    create_admin: bool = True
    #: code that ``GET {srv}emergencyStop?commandCode=`` must give (None: disabled)
    emergency_code: str | None = None
    version: tuple[int, int, int] = (7, 4, 2)
    #: the v1 (JSON lines over TCP) listener of the old clients; None: off
    v1: V1Options | None = None
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
