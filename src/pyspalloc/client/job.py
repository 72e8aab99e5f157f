"""The abstract Spalloc job: what spinnman's ``SpallocJob`` offers.

Its implementation over the REST API is :class:`pyspalloc.client.rest_job._SpallocJob`
(spinnman's name).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pyspalloc.client.description import JobAllocation, JobDescription
from pyspalloc.client.state import SpallocState
from pyspalloc.wire.consts import SCP_PORT

if TYPE_CHECKING:
    from pyspalloc.client.proxy.connections import (
        SpallocBootConnection,
        SpallocEIEIOConnection,
        SpallocSCPConnection,
    )
    from pyspalloc.client.proxy.listeners import SpallocEIEIOListener, SpallocUDPListener
    from pyspalloc.client.transceiver import SpallocTransceiver
    from pyspalloc.transceiver.boot_image import BootImageSource


class SpallocJob(ABC):
    """Represents a job in Spalloc. Don't make this yourself; use the client."""

    @abstractmethod
    def get_state(self, wait_for_change: bool = False) -> SpallocState:
        """Get the current state of the job (after a long poll if ``wait_for_change``)."""

    @abstractmethod
    def get_root_host(self) -> str | None:
        """Get the IP address of the root board, or ``None`` if not allocated."""

    @abstractmethod
    def get_connections(self) -> dict[tuple[int, int], str]:
        """Get the map from board Ethernet-chip coordinates to IP addresses.

        Empty if nothing is allocated.
        """

    @abstractmethod
    def connect_to_board(self, x: int, y: int, port: int = SCP_PORT) -> SpallocSCPConnection:
        """Open a proxied connection to the board whose Ethernet chip is ``(x, y)``."""

    @abstractmethod
    def connect_for_booting(self) -> SpallocBootConnection:
        """Open a proxied boot connection to the job's root board."""

    @abstractmethod
    def open_eieio_connection(self, x: int, y: int) -> SpallocEIEIOConnection:
        """Open a proxied EIEIO connection bound to the board at ``(x, y)``."""

    @abstractmethod
    def open_eieio_listener_connection(self) -> SpallocEIEIOListener:
        """Open a proxied EIEIO connection that listens to all the job's boards."""

    @abstractmethod
    def open_udp_listener_connection(self) -> SpallocUDPListener:
        """Open a proxied UDP connection that listens to all the job's boards."""

    @abstractmethod
    def wait_for_state_change(
        self, old_state: SpallocState, timeout: float | None = None
    ) -> SpallocState:
        """Wait until the job is not in ``old_state`` (or is DESTROYED).

        Returns the state then, or the current state when ``timeout`` seconds pass.
        """

    @abstractmethod
    def wait_until_ready(self, timeout: float | None = None, n_retries: int | None = None) -> None:
        """Wait until the job is READY.

        Raises ``SpallocException`` if it is destroyed. With ``timeout`` or
        ``n_retries``, raises ``SpinnmanTimeoutException`` after that many seconds or
        waits. With neither, gives up on a job that cannot start (as spinnman 7.4.1
        does): ``SpallocBoardUnavailableException`` if it is still QUEUED after the
        board queue time (a job for a specific board) or the queue time (any other).
        """

    @abstractmethod
    def destroy(self, reason: str = "finished") -> None:
        """Destroy the job, saying why."""

    @abstractmethod
    def create_transceiver(
        self, ensure_board_is_ready: bool = True, boot_image: BootImageSource | None = None
    ) -> SpallocTransceiver:
        """Create a transceiver that talks to the job's boards through the proxy.

        Parameters
        ----------
        ensure_board_is_ready:
            Make sure the boards run SC&MP first, booting the root board through the
            proxy if it is silent (spinnman 7.4.1's argument, same default).
        boot_image:
            The SC&MP image to boot with (file name or bytes); by default
            ``$PYSPALLOC_BOOT_IMAGE``, else an installed spinnman's ``scamp.boot``, else
            our synthetic image, which boots only virtual boards.
        """

    @abstractmethod
    def get_session_credentials_for_db(self) -> Mapping[tuple[str, str], str]:
        """Get the credentials to write into a ``proxy_configuration`` table.

        Keys are ``(kind, name)``: ``("SPALLOC", "service uri")``,
        ``("SPALLOC", "job uri")``, ``("COOKIE", name)`` and ``("HEADER", name)``.
        """

    @abstractmethod
    def where_is_machine(self, x: int, y: int) -> tuple[int, int, int] | None:
        """Get ``(cabinet, frame, board)`` of the board holding job chip ``(x, y)``."""

    @abstractmethod
    def read_data(self, x: int, y: int, address: int, size: int) -> bytes:
        """Read ``size`` bytes at ``address`` of job chip ``(x, y)`` (via the service)."""

    @abstractmethod
    def write_data(self, x: int, y: int, address: int, data: bytes) -> None:
        """Write ``data`` at ``address`` of job chip ``(x, y)`` (via the service)."""

    @abstractmethod
    def reset_routing(self, custom_filters: Mapping[int, Any]) -> None:
        """Clear the routes, reset router diagnostics and set diagnostic filters.

        ``custom_filters`` maps a filter index to an int filter word or an object with
        a ``filter_word`` attribute.
        """

    # ------------------------------------------------------------ beyond the seed API

    @property
    @abstractmethod
    def url(self) -> str:
        """The job's URL (ends in ``/``)."""

    @property
    @abstractmethod
    def job_id(self) -> int | None:
        """The job's id (the last segment of its URL), if numeric."""

    @abstractmethod
    def describe(self, allocation: bool = True, power: bool = False) -> JobDescription:
        """Read the job's state into a :class:`JobDescription`.

        With ``allocation``, its boards too (unless QUEUED); with ``power``, whether they
        are powered (when POWER or READY). Reading either counts as a keepalive.
        Raises ``SpallocHTTPError`` (status 404) if there is no such job.
        """

    @abstractmethod
    def get_allocation(self) -> JobAllocation | None:
        """Read the job's boards (``None`` if none were ever allocated); a keepalive."""

    @abstractmethod
    def get_power(self) -> bool | None:
        """Whether every board of the job is powered (``None``: nothing allocated)."""

    @abstractmethod
    def set_power(self, on: bool) -> None:
        """Power the job's boards on or off; the job goes to POWER, then READY again."""

    @abstractmethod
    def send_keepalive(self) -> None:
        """Send one keepalive for the job now."""

    @abstractmethod
    def where_is_chip(self, x: int, y: int) -> dict[str, Any] | None:
        """The where-is object of job chip ``(x, y)``; ``None`` if it is not in the job."""

    @property
    def keepalive_active(self) -> bool:
        """Whether this object is sending keepalives for the job (only created jobs)."""
        return False

    @property
    def keepalive_failed(self) -> bool:
        """Whether this object's keepalives are failing (or stopped because they failed)."""
        return False

    @property
    def keepalive_error(self) -> BaseException | None:
        """The last keepalive failure, if any."""
        return None

    def __enter__(self) -> SpallocJob:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        reason = (
            "finished" if exc_value is None else f"{type(exc_value).__name__}: {exc_value}"[:250]
        )
        try:
            self.destroy(reason)
        except Exception:
            pass  # the original exception (if any) matters more
