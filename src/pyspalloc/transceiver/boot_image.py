"""Which SC&MP image a client boots a board with, and the boot values written into it.

A real board only comes up with the real SC&MP image (``scamp.boot``, which spinnman
ships). The image is found, in order: an explicit ``boot_image`` argument, the file named
by ``$PYSPALLOC_BOOT_IMAGE``, or the ``scamp.boot`` of an installed spinnman package
(located without importing spinnman). Only when there is none do we send our synthetic
image (:func:`pyspalloc.transceiver.boot.boot_image`), which boots virtual boards only.
Either way, bytes 384..511 of the image are replaced by the boot values of the system
variables, as the host always does.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from pyspalloc.exceptions import SpinnmanInvalidParameterException
from pyspalloc.transceiver.boot import boot_image
from pyspalloc.wire.boot import MAX_BOOT_IMAGE, SV_IN_IMAGE

__all__ = [
    "BOOT_IMAGE_ENV",
    "BootImage",
    "BootImageSource",
    "find_boot_image",
    "spinnman_boot_image",
    "with_boot_values",
]

#: Environment variable naming a real SC&MP boot image file.
BOOT_IMAGE_ENV = "PYSPALLOC_BOOT_IMAGE"
#: Where spinnman keeps its SC&MP image, relative to the ``spinnman`` package directory.
_SPINNMAN_IMAGE = Path("messages", "spinnaker_boot", "boot_data", "scamp.boot")
#: How to give a real image (said when the synthetic image failed to boot a board).
HOW_TO_GIVE_AN_IMAGE = (
    f"give SC&MP's own image with boot_image=FILE, the {BOOT_IMAGE_ENV} environment "
    "variable, or by installing spinnman (its scamp.boot is used)"
)

#: What a caller may pass as ``boot_image``: a file name or the image bytes.
BootImageSource = str | os.PathLike[str] | bytes


@dataclass(frozen=True)
class BootImage:
    """An image to boot with (boot values already written in) and where it came from.

    Attributes
    ----------
    data:
        The bytes sent by the flood-fill.
    source:
        ``"synthetic"``, ``"bytes"`` or the file it was read from.
    """

    data: bytes
    source: str

    @property
    def synthetic(self) -> bool:
        """Whether this is our own image, which boots only virtual boards."""
        return self.source == "synthetic"


def with_boot_values(image: bytes, now: int | None = None) -> bytes:
    """``image`` with bytes 384..511 replaced by the system variables' boot values.

    Raises
    ------
    SpinnmanInvalidParameterException
        If the image is not whole 32-bit words, shorter than 512 bytes or longer than a
        boot can carry (256 KiB).
    """
    if len(image) < SV_IN_IMAGE.stop or len(image) % 4 or len(image) > MAX_BOOT_IMAGE:
        raise SpinnmanInvalidParameterException(
            "boot_image",
            f"{len(image)} bytes",
            f"must be whole 32-bit words, {SV_IN_IMAGE.stop} to {MAX_BOOT_IMAGE} bytes",
        )
    values = boot_image(SV_IN_IMAGE.stop, now)[SV_IN_IMAGE]
    return bytes(image[: SV_IN_IMAGE.start]) + values + bytes(image[SV_IN_IMAGE.stop :])


def spinnman_boot_image() -> Path | None:
    """The ``scamp.boot`` of an installed spinnman package, if any (spinnman not imported)."""
    spec = importlib.util.find_spec("spinnman")
    if spec is None:
        return None
    for directory in spec.submodule_search_locations or ():
        path = Path(directory) / _SPINNMAN_IMAGE
        if path.is_file():
            return path
    return None


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise SpinnmanInvalidParameterException(
            "boot_image", str(path), f"{what} cannot be read: {error.strerror or error}"
        ) from None


def find_boot_image(explicit: BootImageSource | None = None) -> BootImage:
    """The image to boot with: explicit, ``$PYSPALLOC_BOOT_IMAGE``, spinnman's, or ours.

    Parameters
    ----------
    explicit:
        A file name or the raw image bytes; wins over everything else.

    Raises
    ------
    SpinnmanInvalidParameterException
        If the chosen file cannot be read or is not a plausible image.
    """
    if isinstance(explicit, bytes):
        return BootImage(with_boot_values(explicit), "bytes")
    if explicit is not None:
        path = Path(explicit)
        return BootImage(with_boot_values(_read(path, "boot_image")), str(path))
    named = os.environ.get(BOOT_IMAGE_ENV)
    if named:
        path = Path(named)
        return BootImage(with_boot_values(_read(path, BOOT_IMAGE_ENV)), str(path))
    found = spinnman_boot_image()
    if found is not None:
        return BootImage(with_boot_values(_read(found, "spinnman's scamp.boot")), str(found))
    return BootImage(boot_image(), "synthetic")
