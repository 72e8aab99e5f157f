"""Fixtures for the proxy, connection and transceiver tests: a real service with
virtual boards under BMP control, and READY jobs on it.

The service and its virtual spin24 machine run in this process (uvicorn thread, the
machine's loop thread), so tests can reach the boards; the machine gets a random
127.N.0.0 address plan so that test runs in parallel do not collide.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pyspalloc.client.client import SpallocClient
from pyspalloc.client.job import SpallocJob
from pyspalloc.client.state import SpallocState

USER, PASSWORD = "alice", "alice-pw-1"


class ServiceWithMachine:
    """A running service (attributes are its own) and the virtual machine it drives."""

    def __init__(self, service: Any, machine: Any) -> None:
        self.service = service
        self.machine = machine

    def __getattr__(self, name: str) -> Any:
        return getattr(self.service, name)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the service, then the machine."""
        try:
            self.service.stop(timeout)
        finally:
            self.machine.stop()


def start_test_service(directory: Path, *, boot: bool = True, attempts: int = 4) -> Any:
    """Start a service over SQLite with a virtual spin24 under BMP control.

    Parameters
    ----------
    directory:
        Where the database and data go.
    boot:
        Whether the controller boots a job's root board after powering it on (with our
        synthetic image; the service's default, as Java's, is not to boot).
    """
    from pyspalloc.geometry import builtin_machine
    from pyspalloc.server.auth import hash_password
    from pyspalloc.server.bmp_control import BMPControlOptions, BMPMachineController
    from pyspalloc.server.config import ServiceConfig
    from pyspalloc.server.runner import start_service
    from pyspalloc.server.store import Store, TrustLevel
    from pyspalloc.transceiver.boot import boot_image
    from pyspalloc.virtual import VirtualMachine

    database = f"sqlite:///{directory / 'spalloc.sqlite3'}"
    store = Store(database)
    if not store.count_users():
        store.create_user(USER, hash_password(PASSWORD), TrustLevel.USER)
    store.close()
    problem: Exception | None = None
    for _ in range(attempts):
        base = f"127.{random.randint(100, 250)}.0.0"
        try:
            machine = VirtualMachine(builtin_machine("spin24", base)).start()
        except OSError as error:  # that address plan is in use by another run
            problem = error
            continue
        config = ServiceConfig(
            host="127.0.0.1",
            port=0,
            data_dir=directory / "data",
            database=database,
            machines=["spin24"],
            virtual_address_base=base,
            controller="bmp",
            create_admin=False,
            allocator_period=0.2,
        )
        controller = BMPMachineController(
            BMPControlOptions(boot_image=boot_image() if boot else None)
        )
        try:
            return ServiceWithMachine(start_service(config, controller=controller), machine)
        except BaseException:
            machine.stop()
            raise
    raise RuntimeError(f"could not start a test service: {problem}")


def virtual_board(service: Any, ip: str) -> Any:
    """The :class:`~pyspalloc.virtual.VirtualBoard` at ``ip`` of the service's machine."""
    board = service.machine.board_by_ip(ip)
    if board is None:
        raise KeyError(ip)
    return board


def ready_job(client: SpallocClient, boards: int = 1, timeout: float = 60.0) -> SpallocJob:
    """Create a job of ``boards`` boards and wait until it is READY."""
    job = client.create_job(boards)
    job.wait_until_ready(timeout=timeout)
    assert job.get_state() == SpallocState.READY
    return job


@pytest.fixture(scope="module")
def proxy_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A running service whose jobs' root boards come up booted."""
    service = start_test_service(tmp_path_factory.mktemp("proxy-service"))
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="module")
def proxy_client(proxy_service: Any) -> Iterator[SpallocClient]:
    """A client logged in to :func:`proxy_service` as an ordinary user."""
    client = SpallocClient(proxy_service.url, USER, PASSWORD)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="module")
def job(proxy_client: SpallocClient) -> Iterator[SpallocJob]:
    """A READY one-board job, shared by a module's tests."""
    made = ready_job(proxy_client)
    try:
        yield made
    finally:
        try:
            made.destroy("test over")
        except Exception:
            pass


@pytest.fixture
def fresh_job(proxy_client: SpallocClient) -> Iterator[SpallocJob]:
    """A READY one-board job of its own for one test."""
    made = ready_job(proxy_client)
    try:
        yield made
    finally:
        try:
            made.destroy("test over")
        except Exception:
            pass
