"""``pyspalloc serve``: run the Spalloc service."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType

import click

from pyspalloc.server.config import ServiceConfig, default_data_dir
from pyspalloc.server.v1.options import LOOPBACK, V1Options


@click.command()
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
    help="virtual:NAME (embedded virtual machine), NAME or a definition file; repeatable.",
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
    "--emergency-code",
    envvar="PYSPALLOC_EMERGENCY_CODE",
    default=None,
    help="Enable GET emergencyStop?commandCode= (ADMIN only) with this code.",
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
def serve(
    host: str,
    port: int,
    data_dir: Path | None,
    database: str | None,
    machines: tuple[str, ...],
    tls_cert: Path | None,
    tls_key: Path | None,
    self_signed: bool,
    controller: str,
    emergency_code: str | None,
    v1_port: int | None,
    v1_user: str | None,
    v1_group: str | None,
    v1_host: str | None,
    v1_allow: tuple[str, ...],
    debug: bool,
) -> None:
    """Run the Spalloc web service until interrupted."""
    from rich.console import Console

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
        machines=list(machines) or ["virtual:spin24"],
        controller=controller,
        tls_cert=tls_cert,
        tls_key=tls_key,
        self_signed=self_signed,
        emergency_code=emergency_code,
        v1=v1,
        debug=debug,
    )
    console = Console()
    try:
        service = start_service(config)
    except (OSError, RuntimeError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    console.print(f"Spalloc service at [bold]{service.url}[/bold]")
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
