# ruff: noqa: E501  (the settings table keeps one setting to a line)
"""The service's configuration file (TOML): which key sets which setting, reading and
checking it, and laying it under the command-line options.

Every setting is one line of :data:`SETTINGS`: TOML table and key, the
:class:`~pyspalloc.server.config.ServiceConfig` field it sets, a checker from
:mod:`pyspalloc.server.config_values`, and its meaning (shown by ``pyspalloc config show``
and documented in docs/operator.md). A field added to ServiceConfig needs one line here;
a test fails while a field is neither here nor in :data:`NOT_IN_FILE`.

A setting of a nested options object (e.g. the v1 listener's ``V1Options`` in
``ServiceConfig.v1``) names ``FIELD.ATTRIBUTE``; the file's values for it are handed, as
keyword arguments, to its builder in :data:`NESTED`.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pyspalloc.server.config import ServiceConfig
from pyspalloc.server.config_values import (
    Checker,
    any_text,
    choice,
    count,
    flag,
    hidden,
    ipv4,
    networks,
    number,
    or_none,
    path,
    port,
    seconds,
    shown,
    text,
    text_tuple,
    texts,
    without_password,
)
from pyspalloc.server.v1.options import V1Options

#: where an effective value came from
DEFAULT, FILE, COMMAND_LINE, ENVIRONMENT = "default", "file", "command line", "environment"


@dataclass(frozen=True)
class Setting:
    """One key of the configuration file."""

    table: str
    key: str
    #: the ServiceConfig field (``FIELD.ATTRIBUTE`` for a nested options object)
    field: str
    check: Checker
    meaning: str
    #: how ``config show`` prints a value that is a secret (None: as it is)
    redact: Callable[[object], object] | None = None

    @property
    def name(self) -> str:
        """``[table] key``, as errors and docs name it."""
        return f"[{self.table}] {self.key}"


S = Setting
#: every key of the file, grouped by table (one line per setting)
SETTINGS: tuple[Setting, ...] = (
    S("server", "host", "host", text, "Address to listen on."),
    S("server", "port", "port", port, "TCP port (0: any free port)."),
    S("server", "data_dir", "data_dir", path, "Directory of the SQLite database and the self-signed certificate."),
    S("server", "allowed_hosts", "allowed_hosts", texts, "Host names clients may use (Host header) besides the listening address and localhost."),
    S("server", "allowed_origins", "allowed_origins", texts, "Other origins (scheme://host[:port]) whose pages may open the proxy websocket."),
    S("server", "trusted_proxies", "trusted_proxies", text_tuple, "Reverse proxies whose X-Forwarded-For names the client."),
    S("server", "session_timeout", "session_timeout", seconds, "Idle time after which a web login session ends (s)."),
    S("server", "emergency_code", "emergency_code", text, "Code GET emergencyStop?commandCode= must give (ADMIN only); unset: disabled.", hidden),
    S("server", "create_admin", "create_admin", flag, "Create user admin with a random password on first start when there are no users."),
    S("server", "debug", "debug", flag, "Verbose logs and failure reasons."),
    S("database", "url", "database", text, "SQLAlchemy URL; unset: SQLite in data_dir.", without_password),
    S("tls", "cert", "tls_cert", path, "PEM certificate to serve HTTPS with (with key)."),
    S("tls", "key", "tls_key", path, "PEM private key of cert."),
    S("tls", "self_signed", "self_signed", flag, "Serve HTTPS with a generated certificate kept in data_dir."),
    S("machines", "specs", "machines", texts, "Machines: virtual:NAME[@BASE], NAME[@BASE] or a definition file."),
    S("machines", "virtual_address_base", "virtual_address_base", ipv4, "Base of the IP plan of built-in machines given without @BASE."),
    S("machines", "virtual_memory_mib", "virtual_memory_mib", count(0), "Chip memory each virtual machine may hold (MiB); unset: 256."),
    S("hardware", "controller", "controller", choice("auto", "bmp", "instant"), "How boards are powered (instant: simulated, no I/O)."),
    S("hardware", "boot_image", "boot_image", path, "SC&MP image (scamp.boot) to boot each job's boards with; unset: unbooted."),
    S("hardware", "off_wait_time", "off_wait_time", seconds, "Rest between power-off and power-on (s); unset: 30, 0 for virtual: machines."),
    S("hardware", "power_workers", "power_workers", count(1), "Threads running power changes."),
    S("hardware", "operation_drain_timeout", "operation_drain_timeout", seconds, "Longest wait for a job's board operations to stop before its boards are released (s)."),
    S("jobs", "keepalive_min", "keepalive_min", seconds, "Shortest keepalive interval a job may ask for (s)."),
    S("jobs", "keepalive_max", "keepalive_max", seconds, "Longest keepalive interval a job may ask for (s)."),
    S("jobs", "expiry_period", "expiry_period", seconds, "How often jobs are checked for keepalive expiry (s)."),
    S("jobs", "wait_timeout", "wait_timeout", seconds, "Longest long-poll wait for a change (s)."),
    S("jobs", "max_jobs_per_user", "max_jobs_per_user", or_none(count(1), "unlimited"), "Live jobs a user may have at once (or \"unlimited\", the default)."),
    S("allocator", "period", "allocator_period", seconds, "How often the allocator runs when not woken (s)."),
    S("allocator", "batch_window", "batch_window", seconds, "How long the allocator, once woken, waits for more work to do in the same pass and transaction (s)."),
    S("allocator", "importance_span", "importance_span", number, "Requests less important than the most important by more than this wait."),
    S("allocator", "priority_size", "priority_size", number, "Importance gained per board asked for."),
    S("allocator", "priority_dimensions", "priority_dimensions", number, "Importance scale of a request by dimensions."),
    S("allocator", "priority_specific_board", "priority_specific_board", number, "Importance scale of a request for a specific board."),
    S("auth", "max_login_failures", "max_login_failures", count(1), "Wrong passwords that lock an account."),
    S("auth", "account_lock_duration", "account_lock_duration", seconds, "How long a locked account stays locked (s)."),
    S("auth", "max_ip_failures", "max_ip_failures", count(1), "Failed logins allowed per client address within ip_failure_window."),
    S("auth", "ip_failure_window", "ip_failure_window", seconds, "Window of max_ip_failures (s)."),
    S("auth", "hash_slots", "hash_slots", count(1), "Password hashes (argon2, 64 MiB each) run at once."),
    S("auth", "hash_queue", "hash_queue", count(0), "Password checks that may wait for a slot."),
    S("auth", "hash_wait", "hash_wait", seconds, "Longest wait for a slot before 503 (s)."),
    S("auth", "verified_ttl", "verified_ttl", seconds, "How long a verified Basic credential is not hashed again (s; 0: always)."),
    S("proxy", "enable", "proxy_enable", flag, "Serve the proxy websocket (/spalloc/proxy/JOB)."),
    S("proxy", "local_host", "proxy_local_host", any_text, "Local address proxy UDP sockets bind (empty: any)."),
    S("proxy", "max_channels", "proxy_max_channels", count(1), "Channels per websocket (at least twice the job's boards are allowed)."),
    S("proxy", "max_websockets_per_job", "proxy_max_websockets_per_job", count(1), "Proxy websockets per job."),
    S("proxy", "max_websockets_per_user", "proxy_max_websockets_per_user", count(1), "Proxy websockets per user."),
    S("proxy", "max_channels_per_user", "proxy_max_channels_per_user", count(1), "Channels of one user's websockets together."),
    S("proxy", "max_channels_total", "proxy_max_channels_total", count(1), "Channels of all websockets together (at most half the open-file limit)."),
    S("proxy", "recheck_period", "proxy_recheck_period", seconds, "How often an open websocket re-checks its credential and job (s)."),
    S("reports", "action_threshold", "report_action_threshold", count(1), "Reports of a board that take it out of service."),
    S("reports", "max_issue_length", "max_issue_length", count(1), "Longest report-issue text (characters)."),
    S("reports", "email_to", "report_email_to", text, "Address each new board report is mailed to; unset: no mail."),
    S("reports", "email_from", "report_email_from", text, "Sender address of those mails."),
    S("reports", "smtp_host", "smtp_host", text, "SMTP server the mails go through."),
    S("reports", "smtp_port", "smtp_port", port, "Its port."),
    S("reports", "smtp_timeout", "smtp_timeout", seconds, "Longest wait for the SMTP server (s)."),
    S("metrics", "allow", "metrics_allow", networks, "Networks that may read /spalloc/metrics without logging in (admins may from anywhere)."),
    S("quotas", "default_user_quota", "default_user_quota", or_none(seconds, "unlimited"), "Quota (board-seconds) of each new user's personal group."),
    S("quotas", "default_collab_quota", "default_collab_quota", or_none(seconds, "unlimited"), "Quota (board-seconds) of a collab's group made on first use of nmpi-collab."),
    S("history", "grace_period", "grace_period", seconds, "Jobs that ended longer ago than this move to the history tables (s)."),
    S("history", "period", "history_period", seconds, "How often jobs are moved to history (s)."),
    S("history", "retention", "history_retention", or_none(seconds, "forever"), "Historical jobs that ended longer ago than this are deleted (s)."),
    S("v1", "port", "v1.port", port, "Serve old spalloc clients (v1 protocol) on this TCP port; unset: off."),
    S("v1", "user", "v1.user", text, "Account that owns v1 jobs (needed with port)."),
    S("v1", "group", "v1.group", text, "Group v1 jobs are accounted to; unset: the user's only group."),
    S("v1", "host", "v1.host", text, "Address the v1 listener binds; unset: [server] host."),
    S("v1", "allow", "v1.allow", networks, "Addresses or networks v1 clients may come from; unset: loopback."),
)  # fmt: skip
del S

#: ServiceConfig fields no file key sets, and why
NOT_IN_FILE: dict[str, str] = {
    "version": "the Spalloc version the service reports (fixed)",
    "v1": "set by the [v1] table's keys (ServiceConfig.v1.*)",
}


def _v1_options(config: ServiceConfig, values: dict[str, object]) -> V1Options:
    if "port" not in values or "user" not in values:
        raise ValueError("[v1] needs both port and user")
    return V1Options(**{"host": config.host, **values})  # type: ignore[arg-type]


#: nested options field -> builder(config, the file's values for it) -> the options object
#: (raising ValueError naming the keys when they do not make one)
NESTED: dict[str, Callable[[ServiceConfig, dict[str, object]], object]] = {
    "v1": _v1_options,
}


TABLES: tuple[str, ...] = tuple(dict.fromkeys(s.table for s in SETTINGS))
_BY_NAME = {(s.table, s.key): s for s in SETTINGS}


class ConfigFileError(ValueError):
    """The configuration file cannot be used; the message names the file and the key."""


def read_config_file(file: Path) -> dict[str, object]:
    """Read and check a configuration file.

    Returns
    -------
    dict
        ServiceConfig field -> value for each key the file sets (a nested options field
        -> a dict of its attributes).

    Raises
    ------
    ConfigFileError
        The file cannot be read, is not TOML, or has an unknown table or key or a bad
        value (the message names it: ``FILE: [table] key: must be ..., not VALUE``).
    """
    name = file.name
    try:
        document = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigFileError(f"{file}: {error.strerror or error}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigFileError(f"{name}: not valid TOML: {error}") from None
    values: dict[str, object] = {}
    known = ", ".join(f"[{t}]" for t in TABLES)
    for table, keys in document.items():
        if not isinstance(keys, dict):
            raise ConfigFileError(f"{name}: {table}: a key outside any table (tables: {known})")
        if table not in TABLES:
            raise ConfigFileError(f"{name}: [{table}]: unknown table (known: {known})")
        for key, raw in keys.items():
            setting = _BY_NAME.get((table, key))
            if setting is None:
                keys_known = ", ".join(s.key for s in SETTINGS if s.table == table)
                raise ConfigFileError(f"{name}: [{table}] {key}: unknown key (known: {keys_known})")
            try:
                value = setting.check(raw)
            except ValueError as error:
                raise ConfigFileError(
                    f"{name}: {setting.name}: {error}, not {shown(raw)}"
                ) from None
            field, _, attribute = setting.field.partition(".")
            if attribute:
                nested = values.setdefault(field, {})
                assert isinstance(nested, dict)
                nested[attribute] = value
            else:
                values[field] = value
    return values


def overlay(
    config: ServiceConfig, file_values: dict[str, object], given: dict[str, str]
) -> dict[str, str]:
    """Set the file's values on ``config`` except where the command line gave one.

    Parameters
    ----------
    config:
        Built from the command-line options (their defaults where none was given).
    file_values:
        From :func:`read_config_file`.
    given:
        Fields the command line (or an option's environment variable) set -> that source.

    Returns
    -------
    dict
        Every ServiceConfig field -> where its value came from (for a nested options
        field, each attribute the file sets as ``FIELD.ATTRIBUTE``).
    """
    sources = {f.name: given.get(f.name, DEFAULT) for f in dataclasses.fields(ServiceConfig)}
    for field, value in file_values.items():
        if field in given:
            continue
        if field in NESTED:  # the source of each attribute the file sets
            assert isinstance(value, dict)
            sources.update({f"{field}.{attribute}": FILE for attribute in value})
            value = NESTED[field](config, value)
        else:
            sources[field] = FILE
        setattr(config, field, value)
    return sources


def check_config(config: ServiceConfig) -> None:
    """Refuse settings that contradict each other.

    Raises
    ------
    ValueError
        Naming the settings.
    """
    if (config.tls_cert is None) != (config.tls_key is None):
        raise ValueError("[tls] cert and key (--tls-cert, --tls-key) go together")
    if config.self_signed and config.tls_cert is not None:
        raise ValueError("use either [tls] self_signed (--self-signed) or cert/key")
    if config.keepalive_min > config.keepalive_max:
        raise ValueError("[jobs] keepalive_min must not exceed keepalive_max")


@dataclass(frozen=True)
class Shown:
    """One line of ``pyspalloc config show``."""

    setting: Setting
    value: object
    default: object
    source: str


def effective(
    config: ServiceConfig, defaults: ServiceConfig, sources: dict[str, str]
) -> list[Shown]:
    """Every setting's effective value, default and source, in table order."""
    rows = []
    for setting in SETTINGS:
        field, _, attribute = setting.field.partition(".")
        value, default = getattr(config, field), getattr(defaults, field)
        if attribute:
            value = getattr(value, attribute, None)
            default = getattr(default, attribute, None)
        if setting.redact is not None:
            value = None if value is None else setting.redact(value)
            default = None if default is None else setting.redact(default)
        source = sources.get(setting.field, sources.get(field, DEFAULT))
        rows.append(Shown(setting, value, default, source))
    return rows
