"""Configuration of the Spalloc service."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pyspalloc.server.networks import LOOPBACK

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


#: Java's ``off-wait-time``: seconds a real board rests between power-off and power-on
DEFAULT_OFF_WAIT_TIME = 30.0


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
        Machine specs (``NAME``, ``NAME@BASE`` or a definition file; a ``virtual:``
        prefix is accepted and means the same to the service, which never runs a
        virtual machine itself).
    virtual_address_base:
        Base of the standard IP plan of built-in machines given without ``@BASE``.
    controller:
        ``"instant"`` (no I/O), or ``"bmp"`` / ``"auto"`` (the same: BMP control).
    allowed_hosts:
        Host names requests may use besides the listening address and ``localhost``
        (a forged ``Host`` is refused, so it cannot steer the URLs the service returns).
    tls_cert, tls_key:
        PEM files to serve HTTPS with; ``self_signed`` makes and reuses a pair in
        ``data_dir``.
    boot_image:
        SC&MP image (``scamp.boot``) the BMP controller boots each job's root board
        with; None (the default, as in the Java server) hands boards over unbooted.
    off_wait_time:
        Seconds a board rests between power-off and power-on (Java's
        ``off-wait-time``); None: 30 s, but 0 for ``virtual:`` machines and with
        ``controller="instant"``.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = field(default_factory=default_data_dir)
    database: str | None = None
    machines: list[str] = field(default_factory=lambda: ["spin24"])
    virtual_address_base: str = "127.1.0.0"
    #: chip memory (MiB) each virtual machine ``serve`` starts may hold (None: 256)
    virtual_memory_mib: int | None = None
    controller: str = "auto"
    boot_image: Path | None = None
    off_wait_time: float | None = None
    allowed_hosts: list[str] = field(default_factory=list)
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
    #: how long the lifecycle worker waits, once woken, for more work to take in the
    #: same pass and transaction (s)
    batch_window: float = 0.005
    importance_span: float = 10000.0
    priority_size: float = 1.0
    priority_dimensions: float = 1.5
    priority_specific_board: float = 65.0
    report_action_threshold: int = 2
    session_timeout: float = 30 * 60.0
    #: wrong passwords that lock an account (counted before each hash) ...
    max_login_failures: int = 5
    #: ... for this long (s): short, so a stranger cannot keep a user out for long
    account_lock_duration: float = 60.0
    #: failed logins allowed per client address within ``ip_failure_window``
    max_ip_failures: int = 30
    ip_failure_window: float = 300.0
    #: password hashes (argon2, 64 MiB each) run at once, and how many more may wait ...
    hash_slots: int = 1
    hash_queue: int = 8
    #: ... and for how long (s) before the request gets 503
    hash_wait: float = 5.0
    #: how long (s) a verified Basic credential is not hashed again (0: always hash)
    verified_ttl: float = 120.0
    #: reverse proxies whose ``X-Forwarded-For`` names the client (for login limits, logs)
    trusted_proxies: tuple[str, ...] = ()
    #: networks that may read ``/spalloc/metrics`` without logging in (ADMINs may anywhere)
    metrics_allow: tuple[str, ...] = LOOPBACK
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
    #: quota (board-seconds) of each new user's personal group; None: unlimited (the
    #: Java server ships 130)
    default_user_quota: float | None = None
    #: quota (board-seconds) of a collab's group made on first use of ``nmpi-collab``
    default_collab_quota: float | None = 3_600_000.0
    #: jobs that ended longer ago than this (s) move to the history tables ...
    grace_period: float = 14 * 86400.0
    #: ... checked this often (s) ...
    history_period: float = 3600.0
    #: ... and historical jobs that ended longer ago than this (s) are deleted (None: kept)
    history_retention: float | None = None
    #: address each new board report is mailed to (None: no mail)
    report_email_to: str | None = None
    #: sender address of those mails
    report_email_from: str = "spalloc@localhost"
    #: SMTP server that mails go through (plain SMTP; ``smtp_timeout`` bounds each wait)
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_timeout: float = 10.0
    version: tuple[int, int, int] = (7, 4, 2)
    #: the v1 (JSON lines over TCP) listener of the old clients; None: off
    v1: V1Options | None = None
    debug: bool = False

    @property
    def tls(self) -> bool:
        """Whether the service speaks HTTPS."""
        return self.self_signed or (self.tls_cert is not None and self.tls_key is not None)

    def read_boot_image(self) -> bytes | None:
        """Return the boot image's bytes (None when none is configured).

        Raises
        ------
        ValueError
            The file cannot be read, is empty, or is too large for the boot protocol.
        """
        if self.boot_image is None:
            return None
        from pyspalloc.wire.boot import MAX_BOOT_IMAGE

        path = Path(self.boot_image)
        try:
            size = path.stat().st_size
            if not 0 < size <= MAX_BOOT_IMAGE:
                raise ValueError(f"boot image {path}: {size} bytes (must be 1..{MAX_BOOT_IMAGE})")
            return path.read_bytes()
        except OSError as error:
            raise ValueError(f"boot image {path}: {error.strerror or error}") from error

    def off_wait_for(self, spec: str) -> float:
        """Seconds boards of a machine from ``spec`` rest between power-off and power-on:
        ``off_wait_time`` if set, else 0 for ``virtual:`` machines or simulated power
        (``controller="instant"``) and 30 s for real ones."""
        if self.off_wait_time is not None:
            return max(0.0, self.off_wait_time)
        if spec.startswith("virtual:") or self.controller == "instant":
            return 0.0
        return DEFAULT_OFF_WAIT_TIME

    def database_url(self) -> str:
        """Return the SQLAlchemy URL of the database."""
        if self.database:
            return self.database
        return f"sqlite:///{Path(self.data_dir) / 'spalloc.sqlite3'}"
