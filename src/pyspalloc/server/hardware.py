"""The service's hardware seams, built from its configuration.

:func:`make_controller` gives the power controller (:mod:`pyspalloc.server.controller`
defines the seam, :mod:`pyspalloc.server.bmp_control` drives real or virtual BMPs) and
:func:`make_job_operations` the server-side SCP operations on jobs' boards
(:mod:`pyspalloc.server.machine_ops`).
"""

from __future__ import annotations

import dataclasses

from pyspalloc.server.bmp_control import BMPControlOptions, BMPMachineController
from pyspalloc.server.controller import InstantMachineController, MachineController
from pyspalloc.server.machine_ops import ServerJobOperations


def make_controller(kind: str, boot_image: bytes | None = None) -> MachineController:
    """Build the controller named by the configuration.

    Parameters
    ----------
    kind:
        ``"instant"`` (no I/O), or ``"bmp"`` / ``"auto"`` (the same: BMP control).
    boot_image:
        SC&MP image the BMP controller boots each job's root board with; None hands
        boards over powered but not booted (as the Java server does).

    Raises
    ------
    ValueError
        For any other name.
    """
    if kind == "instant":
        return InstantMachineController()
    if kind in ("bmp", "auto"):
        return BMPMachineController(dataclasses.replace(BMPControlOptions(), boot_image=boot_image))
    raise ValueError(f"unknown power controller {kind!r}")


def make_job_operations() -> ServerJobOperations:
    """Return the server-side SCP operations on jobs' boards."""
    return ServerJobOperations()
