"""``pyspalloc demo``: the whole system on this machine, end to end, in seconds.

It starts a virtual SpiNNaker machine (a child process, on a free address range) and the
service with a SQLite database in a temporary directory, then acts as a user would: logs
in with the client, asks for a job, watches it become READY, talks to its boards through
the proxy (writes and reads back a few megabytes, checking every byte), locates the
boards, and cleans up.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import shutil
import signal
import socket
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType
from typing import Any

import click

from pyspalloc.cli.errors import CLIError, client_errors
from pyspalloc.cli.lookup import describe_job
from pyspalloc.cli.output import console, print_table
from pyspalloc.cli.virtual_child import VirtualChildren
from pyspalloc.cli.waiting import state_progress, wait_for_ready
from pyspalloc.client import JobDescription

#: user SDRAM of a SpiNNaker chip, where the demo writes
SDRAM_BASE = 0x60000000
#: bytes moved per transceiver call (one progress-bar step)
CHUNK = 256 * 1024
#: the demo's machine
MACHINE = "virtual:spin24"


def _check_port(port: int) -> None:
    """Fail with one line if the port is taken (before the server logs its own error)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            raise CLIError(f"cannot use port {port}: {error.strerror or error}") from None


@click.command()
@click.option("--keep", is_flag=True, help="Leave the service running (until Ctrl-C).")
@click.option(
    "--boards",
    type=click.IntRange(1, 24),
    default=3,
    show_default=True,
    help="Boards the demo job asks for.",
)
@click.option(
    "--megabytes",
    type=click.FloatRange(0.0, 64.0, min_open=True),
    default=4.0,
    show_default=True,
    help="Data written to the boards and read back.",
)
@click.option("--port", type=int, default=0, show_default=True, help="Service port (0: any).")
def demo(keep: bool, boards: int, megabytes: float, port: int) -> None:
    """Run the service with a virtual machine and use it with the client."""
    started = time.monotonic()
    if port:
        _check_port(port)
    from pyspalloc.server.config import ServiceConfig
    from pyspalloc.server.runner import start_service

    data_dir = Path(tempfile.mkdtemp(prefix="pyspalloc-demo-"))
    virtual = VirtualChildren([MACHINE])
    service: Any = None
    try:
        with console.status("Starting a virtual 24-board machine and the service..."):
            try:
                machines = virtual.start()
                config = ServiceConfig(
                    host="127.0.0.1",
                    port=port,
                    data_dir=data_dir,
                    machines=machines,
                    create_admin=True,
                    allocator_period=0.2,
                )
                service = start_service(config)
            except (OSError, RuntimeError, ValueError) as error:
                raise CLIError(f"cannot start the service: {error}") from None
        username, password = "admin", str(service.admin_password)
        child = virtual.children[0]
        console.print(
            f"[bold]Service[/] {service.url}  (SQLite in {data_dir}, "
            f"virtual {child.service_spec}, process {child.pid})"
        )
        with client_errors(service.url):
            _use_service(service.url, username, password, boards, megabytes)
        ui = f"{service.url}system/"
        console.print(f"[bold]Web UI[/]  {ui}  (log in as [bold]{username}[/] / {password})")
        console.print(f"[green]Demo finished in {time.monotonic() - started:.1f} s[/]")
        if keep:
            _keep_running(service.url, ui, username, password)
    finally:
        t0 = time.monotonic()
        with console.status("Stopping the service..."), contextlib.ExitStack() as stack:
            stack.callback(virtual.stop)
            if service is not None:
                stack.callback(service.stop)
        if service is not None:
            console.print(f"[dim]Service stopped ({time.monotonic() - t0:.1f} s)[/]")
        shutil.rmtree(data_dir, ignore_errors=True)


def _use_service(url: str, username: str, password: str, boards: int, megabytes: float) -> None:
    from pyspalloc.client import SpallocClient

    t0 = time.monotonic()
    with SpallocClient(url, username, password) as client:
        console.print(f"[bold]Logged in[/] as {username} ({time.monotonic() - t0:.2f} s)")
        machines = client.list_machines()
        for machine in machines.values():
            console.print(
                f"[bold]Machine[/] {machine.name}: {machine.width}x{machine.height} triads, "
                f"{3 * machine.width * machine.height} boards, tags {sorted(machine.tags)}"
            )
        job = client.create_job(boards)
        try:
            with state_progress(job.job_id) as on_state:
                view = wait_for_ready(job, on_state, timeout=60)
            console.print(
                f"[bold]Job {view.id}[/]: {view.num_boards} boards on {view.machine}, "
                f"root {view.connections[0][2] if view.connections else '-'}"
            )
            _transfer(job, view, int(megabytes * 1024 * 1024))
            _where(client, view)
            _map(client, view)
        finally:
            job.destroy("demo finished")
        gone = describe_job(job, allocation=False)
        console.print(f"[bold]Job {gone.id}[/]: {gone.state} ({gone.reason})")


def _transfer(job: Any, view: JobDescription, size: int) -> None:
    """Write ``size`` bytes over the job's boards through the proxy, read them back."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TransferSpeedColumn,
    )

    chips = [(x, y) for x, y, _ in view.connections]
    data = random.Random(4).randbytes(size)
    pieces = [
        (chips[i % len(chips)], SDRAM_BASE + (i // len(chips)) * CHUNK, offset)
        for i, offset in enumerate(range(0, size, CHUNK))
    ]
    t0 = time.monotonic()
    with job.create_transceiver() as txrx:
        version = txrx.get_scamp_version(0, 0)
        booted = txrx.last_boot_image
        how = "" if booted is None else f", booted by the client with {booted.source} image"
        console.print(
            f"[bold]Transceiver[/] over the proxy: {len(chips)} boards, root runs "
            f"{getattr(version, 'version_string', version)}{how} "
            f"({time.monotonic() - t0:.2f} s)"
        )
        columns = (
            TextColumn("[bold]{task.description:<6}"),
            BarColumn(bar_width=30),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
        )
        timings: dict[str, float] = {}
        back = bytearray(size)
        with Progress(*columns, console=console) as progress:
            for label in ("write", "read"):
                task = progress.add_task(label, total=size)

                def move(chip: tuple[int, int], label: str = label, task: Any = task) -> None:
                    # SCP through the proxy websocket (not the REST memory endpoint)
                    x, y = chip
                    for where, address, offset in pieces:
                        if where != chip:
                            continue
                        n = min(CHUNK, size - offset)
                        if label == "write":
                            txrx.write_memory_over_proxy(x, y, address, data[offset : offset + n])
                        else:
                            block = txrx.read_memory_over_proxy(x, y, address, n)
                            back[offset : offset + n] = block
                        progress.advance(task, n)

                start = time.monotonic()
                # one thread per board: each board has its own proxied channel
                with ThreadPoolExecutor(max_workers=len(chips)) as pool:
                    list(pool.map(move, chips))
                timings[label] = time.monotonic() - start
    mib = size / (1024 * 1024)
    for label, seconds in timings.items():
        console.print(
            f"[bold]{label.capitalize():<5}[/] {mib:.1f} MiB in {seconds:.2f} s: "
            f"[bold]{mib / seconds:.2f} MiB/s[/] (SCP through the proxy, boards in parallel)"
        )
    if bytes(back) != data:
        bad = sum(1 for a, b in zip(back, data, strict=True) if a != b)
        raise CLIError(f"read back {bad} wrong bytes out of {size}")
    digest = hashlib.sha256(data).hexdigest()[:16]
    console.print(f"[green]Read back all {size} bytes intact[/] (sha256 {digest}...)")


def _where(client: Any, view: JobDescription) -> None:
    """Print where each of the job's boards is."""
    machine = client.get_machine(view.machine or "")
    rows = []
    for (x, y, host), triad in zip(view.connections, view.triads, strict=False):
        found = None if machine is None else machine.where_is_logical(*triad)
        physical = (found or {}).get("physical-board-coordinates") or ["?"] * 3
        rows.append(
            [
                f"{x}, {y}",
                ", ".join(map(str, triad)),
                f"{physical[0]} / {physical[1]} / {physical[2]}",
                host,
            ]
        )
    print_table(
        f"Where job {view.id}'s boards are",
        ["Job chip", "Triad (x, y, z)", "Cabinet / frame / board", "IP address"],
        rows,
    )


def _map(client: Any, view: JobDescription) -> None:
    """Print the machine's map with the job's boards (as ``pyspalloc machines NAME``)."""
    from pyspalloc.cli.machines import machine_view

    machines = client.list_machines()
    if view.machine in machines:
        console.print()
        console.print(machine_view(client, machines[view.machine])[1])


def _keep_running(url: str, ui: str, username: str, password: str) -> None:
    """Serve until Ctrl-C (or SIGTERM)."""
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    console.print()
    console.print("[bold]The service keeps running[/]; press Ctrl-C to stop it. Try:")
    console.print(
        f"  export SPALLOC_SERVER={url} SPALLOC_USER={username} SPALLOC_PASSWORD={password}"
    )
    console.print("  pyspalloc machines spin24; pyspalloc alloc 2 1; pyspalloc jobs")
    console.print(f"  or open {ui}")
    while not stop.wait(0.5):
        pass
