"""SpallocTransceiver: a Transceiver over a job's proxy, with memory and routing by REST.

It is an ordinary :class:`pyspalloc.transceiver.Transceiver` built over one proxied
SCP connection per board of the job plus a proxied boot connection to the root board,
except that ``read_memory`` and ``write_memory`` go through the job's ``memory``
resource and the routing reset through its ``router`` resource (``web-api.md`` §4.12),
so bulk data never crosses the websocket.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import closing
from typing import TYPE_CHECKING, Any

from pyspalloc.client.proxy.connections import SpallocBootConnection, SpallocSCPConnection
from pyspalloc.exceptions import SpinnmanInvalidParameterException
from pyspalloc.transceiver import Transceiver
from pyspalloc.transceiver.memory import WriteData, checksum, write_data

if TYPE_CHECKING:
    from pyspalloc.client.job import SpallocJob

__all__ = ["SpallocTransceiver", "create_job_transceiver"]


class SpallocTransceiver(Transceiver):
    """A transceiver for a Spalloc job; memory and routing use the service directly.

    Parameters
    ----------
    job:
        The job (READY). One proxied SCP connection is opened to each of its boards and
        a boot connection to its root board.
    ensure_board_is_ready:
        Also make sure the boards run SC&MP: if the root board is silent, boot it
        through the proxy's boot connection (as spinnman does), then set the IP-tag
        timeout and read each board's chip summary.
    kwargs:
        Settings passed to :class:`~pyspalloc.transceiver.Transceiver` (``window``,
        ``timeout``, ``retries``, ``boot_timeout``, and ``boot_image``: the SC&MP image
        to boot with, by default ``$PYSPALLOC_BOOT_IMAGE`` or an installed spinnman's).

    Raises
    ------
    SpinnmanIOException
        If the proxy cannot be reached.
    """

    def __init__(self, job: SpallocJob, ensure_board_is_ready: bool = False, **kwargs: Any) -> None:
        self._job = job
        connections: list[SpallocSCPConnection] = []
        boot: SpallocBootConnection | None = None
        try:
            for x, y in sorted(job.get_connections()):
                connections.append(job.connect_to_board(x, y))
            boot = job.connect_for_booting()
        except BaseException:
            for connection in connections:
                connection.close()
            raise
        super().__init__(connections, boot_connection=boot, **kwargs)
        if ensure_board_is_ready:
            try:
                self.ensure_board_is_ready()
            except BaseException:
                self.close()
                raise

    @property
    def job(self) -> SpallocJob:
        """The job this transceiver talks to."""
        return self._job

    def read_memory(
        self, x: int, y: int, base_address: int, length: int, cpu: int = 0
    ) -> bytearray:
        """Read ``length`` bytes at ``base_address`` of chip (x, y), through the service.

        ``cpu`` is accepted for compatibility and ignored (memory is per chip).

        Raises
        ------
        SpallocException
            If the service refused or returned the wrong number of bytes.
        """
        if length < 0:
            raise SpinnmanInvalidParameterException("length", length, "must not be negative")
        if length == 0:
            return bytearray()
        return bytearray(self._job.read_data(x, y, base_address, length))

    def write_memory(
        self,
        x: int,
        y: int,
        base_address: int,
        data: WriteData,
        *,
        n_bytes: int | None = None,
        offset: int = 0,
        cpu: int = 0,
        get_sum: bool = False,
    ) -> tuple[int, int]:
        """Write ``data`` at ``base_address`` of chip (x, y), through the service.

        ``data`` takes the same forms as :meth:`Transceiver.write_memory` (bytes-like,
        an int word, a file name or a binary stream).

        Returns
        -------
        tuple[int, int]
            Bytes written, and their 32-bit little-endian word sum if ``get_sum`` (else 0).
        """
        _, pieces = write_data(data, n_bytes, offset)
        with closing(pieces):
            payload = b"".join(pieces)
        if payload:
            self._job.write_data(x, y, base_address, payload)
        return len(payload), (checksum(payload) if get_sum else 0)

    def read_memory_over_proxy(self, x: int, y: int, base_address: int, length: int) -> bytearray:
        """Read like :meth:`read_memory`, but with SCP through the proxy (not by REST)."""
        return super().read_memory(x, y, base_address, length)

    def write_memory_over_proxy(self, x: int, y: int, base_address: int, data: bytes) -> None:
        """Write like :meth:`write_memory`, but with SCP through the proxy (not by REST)."""
        super().write_memory(x, y, base_address, data)

    def reset_routing(self, custom_filters: Mapping[int, Any] | None = None) -> None:
        """Clear the routing tables, reset router diagnostics and set filters (by REST).

        Parameters
        ----------
        custom_filters:
            Diagnostic filter index -> filter (an int word, or an object with
            ``filter_word``); none by default.
        """
        self._job.reset_routing(dict(custom_filters or {}))

    def __str__(self) -> str:
        return f"Spalloc Transceiver over {self._job}"


def create_job_transceiver(
    job: SpallocJob, ensure_board_is_ready: bool = True, **kwargs: Any
) -> SpallocTransceiver:
    """Make the transceiver ``SpallocJob.create_transceiver()`` returns."""
    return SpallocTransceiver(job, ensure_board_is_ready, **kwargs)
