"""``pyspalloc serve``: run the Spalloc service."""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
from pathlib import Path
from types import FrameType

import click
from click.core import ParameterSource

from pyspalloc.cli.config_show import FORMATS
from pyspalloc.server.config import ServiceConfig, default_data_dir
from pyspalloc.server.networks import LOOPBACK
from pyspalloc.server.v1.options import V1Options

#: ``--proxy-limit`` names -> ServiceConfig fields
PROXY_LIMITS = {
    "channels": "proxy_max_channels",
    "websockets-per-job": "proxy_max_websockets_per_job",
    "websockets-per-user": "proxy_max_websockets_per_user",
    "user-channels": "proxy_max_channels_per_user",
    "total-channels": "proxy_max_channels_total",
}


def _proxy_limits(given: tuple[str, ...]) -> dict[str, int]:
    limits: dict[str, int] = {}
    for item in given:
        name, _, value = item.partition("=")
        if name not in PROXY_LIMITS or not value.isdigit() or int(value) < 1:
            raise click.BadParameter(
                f"{item!r}: use NAME=N with N >= 1, NAME one of {', '.join(PROXY_LIMITS)}",
                param_hint="--proxy-limit",
            )
        limits[PROXY_LIMITS[name]] = int(value)
    return limits


#: the machine ``serve`` runs when none is configured
DEFAULT_MACHINES = ["virtual:spin24"]


def _given(ctx: click.Context) -> dict[str, str]:
    """ServiceConfig fields the command line (or an option's environment variable) set."""
    from pyspalloc.server.config_file import COMMAND_LINE, ENVIRONMENT

    fields = {f.name for f in dataclasses.fields(ServiceConfig)}
    given: dict[str, str] = {}
    for name, value in ctx.params.items():
        source = ctx.get_parameter_source(name)
        if source not in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT):
            continue
        label = COMMAND_LINE if source == ParameterSource.COMMANDLINE else ENVIRONMENT
        if name == "proxy_limits":
            targets = list(_proxy_limits(value))
        elif name.startswith("v1_"):
            targets = ["v1"]
        else:
            targets = [name] if name in fields else []
        given.update(dict.fromkeys(targets, label))
    return given


@click.command()
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="TOML file of settings (docs/operator.md); options given here override it.",
)
@click.option(
    "--print-config",
    type=click.Choice(FORMATS),
    default=None,
    help="Print the effective settings, their defaults and sources, and exit.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="TCP port (0: any).")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"Database and certificate directory [default: {default_data_dir()}].",
)
@click.option("--database", default=None, help="SQLAlchemy URL (default: SQLite in data dir).")
@click.option(
    "--machine",
    "machines",
    multiple=True,
    help="virtual:NAME[@BASE] (a virtual machine in a child process, on a free address "
    "range or at BASE), NAME or a definition file; repeatable.",
)
@click.option(
    "--virtual-memory-mib",
    type=click.IntRange(0, 1 << 20),
    default=None,
    help="Chip memory each virtual machine may hold, in MiB [default: 256]; beyond it "
    "its boards answer writes with RC_BUF.",
)
@click.option("--tls-cert", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--tls-key", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--self-signed", is_flag=True, help="Serve HTTPS with a generated certificate.")
@click.option(
    "--controller",
    type=click.Choice(["auto", "bmp", "instant"]),
    default="auto",
    show_default=True,
    help="How boards are powered (instant: simulated, no I/O).",
)
@click.option(
    "--boot-image",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="SC&MP image (scamp.boot) to boot each job's boards with; by default jobs "
    "get their boards powered but unbooted, as from the Java server.",
)
@click.option(
    "--off-wait-time",
    type=click.FloatRange(0.0, 3600.0),
    default=None,
    help="Seconds a board rests between power-off and power-on "
    "[default: 30, 0 for virtual: machines].",
)
@click.option(
    "--emergency-code",
    envvar="PYSPALLOC_EMERGENCY_CODE",
    default=None,
    help="Enable GET emergencyStop?commandCode= (ADMIN only) with this code.",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    help="A host name clients may use (Host header) besides the --host address and "
    "localhost; repeatable. Requests naming other hosts get 400.",
)
@click.option(
    "--trusted-proxy",
    "trusted_proxies",
    multiple=True,
    help="Address of a reverse proxy whose X-Forwarded-For names the client; repeatable.",
)
@click.option(
    "--allowed-origin",
    "allowed_origins",
    multiple=True,
    help="Another origin (scheme://host[:port]) whose pages may open the proxy; repeatable.",
)
@click.option(
    "--max-jobs-per-user",
    type=click.IntRange(min=1),
    default=None,
    help="Live jobs a user may have at once [default: no limit].",
)
@click.option(
    "--proxy-limit",
    "proxy_limits",
    multiple=True,
    metavar="NAME=N",
    help="A proxy limit: " + ", ".join(PROXY_LIMITS) + "; repeatable.",
)
@click.option(
    "--v1-port", type=int, default=None, help="Also serve old spalloc clients (v1) on this port."
)
@click.option("--v1-user", default=None, help="Account that owns v1 jobs (needed with --v1-port).")
@click.option("--v1-group", default=None, help="Group v1 jobs are accounted to.")
@click.option("--v1-host", default=None, help="Address the v1 listener binds [default: --host].")
@click.option(
    "--v1-allow",
    multiple=True,
    help="Address or network v1 clients may come from; repeatable [default: loopback].",
)
@click.option("--debug", is_flag=True, help="Verbose logs and failure reasons.")
@click.pass_context
def serve(
    ctx: click.Context,
    config_file: Path | None,
    print_config: str | None,
    host: str,
    port: int,
    data_dir: Path | None,
    database: str | None,
    machines: tuple[str, ...],
    virtual_memory_mib: int | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    self_signed: bool,
    controller: str,
    boot_image: Path | None,
    off_wait_time: float | None,
    emergency_code: str | None,
    allowed_hosts: tuple[str, ...],
    trusted_proxies: tuple[str, ...],
    allowed_origins: tuple[str, ...],
    max_jobs_per_user: int | None,
    proxy_limits: tuple[str, ...],
    v1_port: int | None,
    v1_user: str | None,
    v1_group: str | None,
    v1_host: str | None,
    v1_allow: tuple[str, ...],
    debug: bool,
) -> None:
    """Run the Spalloc web service until interrupted."""
    from rich.console import Console

    from pyspalloc.cli.config_show import print_settings
    from pyspalloc.cli.virtual_child import VirtualChildren
    from pyspalloc.server.config_file import check_config, effective, overlay, read_config_file
    from pyspalloc.server.runner import start_service

    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    if self_signed and tls_cert is not None:
        raise click.UsageError("use either --self-signed or --tls-cert/--tls-key")
    v1 = _v1_options(host, v1_port, v1_user, v1_group, v1_host, v1_allow)
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO)
    config = ServiceConfig(
        host=host,
        port=port,
        data_dir=data_dir or default_data_dir(),
        database=database,
        machines=list(machines) or list(DEFAULT_MACHINES),
        virtual_memory_mib=virtual_memory_mib,
        controller=controller,
        boot_image=boot_image,
        off_wait_time=off_wait_time,
        tls_cert=tls_cert,
        tls_key=tls_key,
        self_signed=self_signed,
        emergency_code=emergency_code,
        allowed_hosts=list(allowed_hosts),
        trusted_proxies=trusted_proxies,
        allowed_origins=list(allowed_origins),
        max_jobs_per_user=max_jobs_per_user,
        v1=v1,
        debug=debug,
    )
    for name, value in _proxy_limits(proxy_limits).items():
        setattr(config, name, value)
    try:
        file_values = read_config_file(config_file) if config_file else {}
        sources = overlay(config, file_values, _given(ctx))
        check_config(config)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    if print_config:
        defaults = ServiceConfig(machines=list(DEFAULT_MACHINES))
        print_settings(effective(config, defaults, sources), print_config)
        return
    if config.debug:  # from the file
        logging.getLogger().setLevel(logging.DEBUG)
    console = Console()
    try:
        virtual = VirtualChildren(config.machines, config.virtual_memory_mib)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--machine") from error
    try:
        config.machines = virtual.start()
        service = start_service(config)
    except (OSError, RuntimeError, ValueError) as error:
        virtual.stop()
        raise click.ClickException(str(error)) from error
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    console.print(f"Spalloc service at [bold]{service.url}[/bold]")
    for child in virtual.children:
        console.print(f"virtual machine {child.service_spec} (process {child.pid})")
    if service.app.state.v1 is not None:
        console.print(f"v1 (old spalloc clients) on port [bold]{service.app.state.v1.port}[/bold]")
    if service.cert_file:
        console.print(f"certificate: {service.cert_file}")
    if service.admin_password:
        console.print(
            f"created user [bold]admin[/bold] with password [bold]{service.admin_password}"
            "[/bold] (shown only now)"
        )
    try:
        while not stop.wait(1.0):
            pass
    finally:
        console.print("stopping")
        service.stop()
        virtual.stop()


def _v1_options(
    host: str,
    port: int | None,
    user: str | None,
    group: str | None,
    v1_host: str | None,
    allow: tuple[str, ...],
) -> V1Options | None:
    """The v1 listener's settings from the ``--v1-*`` options (None: not enabled)."""
    if port is None:
        if user or group or v1_host or allow:
            raise click.UsageError("the --v1-* options need --v1-port")
        return None
    if not user:
        raise click.UsageError("--v1-port needs --v1-user (the account v1 jobs belong to)")
    try:
        return V1Options(
            port=port,
            user=user,
            host=v1_host or host,
            group=group,
            allow=allow or LOOPBACK,
        )
    except ValueError as error:
        raise click.UsageError(f"--v1-allow: {error}") from None
