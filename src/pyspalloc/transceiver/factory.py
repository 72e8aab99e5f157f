"""Making a :class:`~pyspalloc.transceiver.transceiver.Transceiver` for a board's address."""

from __future__ import annotations

from pyspalloc.transceiver.boot_image import BootImageSource
from pyspalloc.transceiver.connections import UDPConnection
from pyspalloc.transceiver.transceiver import BOOT_TIMEOUT, Transceiver
from pyspalloc.wire.consts import BOOT_PORT, SCP_PORT

__all__ = ["create_transceiver"]


def create_transceiver(
    host: str,
    *,
    ensure_ready: bool = True,
    discover: bool = False,
    boot_image: BootImageSource | None = None,
    **kwargs: float,
) -> Transceiver:
    """A :class:`Transceiver` over UDP to the board at ``host`` (its Ethernet chip is 0, 0).

    Parameters
    ----------
    ensure_ready:
        Run :meth:`Transceiver.ensure_board_is_ready` (booting the board if needed).
    discover:
        Also discover the machine and connect to every board.
    boot_image:
        The SC&MP image to boot with, if the board needs booting (see
        :func:`~pyspalloc.transceiver.boot_image.find_boot_image`).
    kwargs:
        ``window``, ``timeout``, ``retries``, ``min_timeout`` (see
        :class:`~pyspalloc.transceiver.engine.EngineOptions`), ``boot_timeout``.
    """
    window, retries = kwargs.get("window"), kwargs.get("retries")
    connection = UDPConnection(host, SCP_PORT)
    boot = UDPConnection(host, BOOT_PORT)
    transceiver = Transceiver(
        [connection],
        boot,
        window=None if window is None else int(window),
        timeout=kwargs.get("timeout"),
        retries=None if retries is None else int(retries),
        min_timeout=kwargs.get("min_timeout"),
        boot_timeout=float(kwargs.get("boot_timeout", BOOT_TIMEOUT)),
        boot_image=boot_image,
    )
    try:
        if ensure_ready:
            transceiver.ensure_board_is_ready()
        if discover:
            transceiver.get_machine_details()
            transceiver.discover_scamp_connections()
    except BaseException:
        transceiver.close()
        raise
    return transceiver
