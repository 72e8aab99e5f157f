"""Built-in machine shapes (one board, one frame, SpiNNaker1M) with standard addresses."""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pyspalloc.geometry.coords import Physical, Triad
from pyspalloc.geometry.json_format import load_machine_definitions
from pyspalloc.geometry.machine import BoardDefinition, MachineDefinition

__all__ = [
    "BUILTIN_MACHINES",
    "BOARDS_PER_FRAME",
    "FRAMES_PER_CABINET",
    "MachineSpec",
    "builtin_machine",
    "machine_from_spec",
    "parse_machine_spec",
    "standard_bmp_ip",
    "standard_ip",
]

#: Names accepted by :func:`builtin_machine` (case-insensitive).
BUILTIN_MACHINES: tuple[str, ...] = ("spin5", "spin24", "spinnaker1m")

BOARDS_PER_FRAME = 24
FRAMES_PER_CABINET = 5

# name -> (width, height) in triads, or None for the lone board.
_SHAPES: dict[str, tuple[int, int] | None] = {
    "spin5": None,
    "spin24": (4, 2),
    "spinnaker1m": (20, 20),
}


def _offset(base: str, offset: int) -> str:
    return str(ipaddress.IPv4Address(base) + offset)


def standard_ip(physical: Physical, address_base: str = "127.1.0.0") -> str:
    """Ethernet address of a board under the standard plan: ``base + 0.0.(5c+f).(8b+1)``."""
    cabinet, frame, board = physical
    return _offset(address_base, ((FRAMES_PER_CABINET * cabinet + frame) << 8) + 8 * board + 1)


def standard_bmp_ip(cabinet: int, frame: int, address_base: str = "127.1.0.0") -> str:
    """Address of a frame's BMP under the standard plan: ``base + 0.0.(5c+f).0``."""
    return _offset(address_base, (FRAMES_PER_CABINET * cabinet + frame) << 8)


def _with_standard_ips(
    name: str,
    tags: Iterable[str],
    width: int,
    height: int,
    locations: dict[Triad, Physical],
    address_base: str,
) -> MachineDefinition:
    bmp_ips = {p[:2]: standard_bmp_ip(p.cabinet, p.frame, address_base) for p in locations.values()}
    boards = {
        t: BoardDefinition(t, p, standard_ip(p, address_base), bmp_ips[p[:2]])
        for t, p in locations.items()
    }
    return MachineDefinition(name, tuple(tags), width, height, boards, frozenset(), bmp_ips)


def builtin_machine(
    name: str,
    address_base: str = "127.1.0.0",
    *,
    machine_name: str | None = None,
    tags: Iterable[str] = ("default",),
) -> MachineDefinition:
    """Build one of the :data:`BUILTIN_MACHINES`.

    Parameters
    ----------
    name:
        ``"spin5"`` (one board), ``"spin24"`` (4 x 2 triads, one frame) or
        ``"spinnaker1m"`` (20 x 20 triads, 10 cabinets x 5 frames x 24 boards).
    address_base:
        Base of the standard IP plan.
    machine_name:
        Name to give the machine; defaults to ``name`` in lower case.
    tags:
        Machine tags.

    Raises
    ------
    ValueError
        If ``name`` is not a built-in shape.
    """
    key = name.lower()
    if key not in _SHAPES:
        raise ValueError(f"unknown built-in machine {name!r}; known: {BUILTIN_MACHINES}")
    shape = _SHAPES[key]
    width, height = shape if shape is not None else (1, 1)
    locations: dict[Triad, Physical] = {}
    if shape is None:
        locations[Triad(0, 0, 0)] = Physical(0, 0, 0)
    else:
        i = 0
        for y in range(height):
            for x in range(width):
                for z in range(3):
                    frames, board = divmod(i, BOARDS_PER_FRAME)
                    cabinet, frame = divmod(frames, FRAMES_PER_CABINET)
                    locations[Triad(x, y, z)] = Physical(cabinet, frame, board)
                    i += 1
    return _with_standard_ips(machine_name or key, tags, width, height, locations, address_base)


@dataclass(frozen=True)
class MachineSpec:
    """A command-line machine spec: ``[virtual:]NAME[@BASE]`` or ``[virtual:]FILE``.

    Attributes
    ----------
    virtual:
        Whether it asked for a virtual machine (``virtual:``).
    source:
        A built-in machine name or the path of a JSON definition file.
    address_base:
        The base of the standard IP plan (built-in machines only), if given.
    """

    virtual: bool
    source: str
    address_base: str | None = None

    @property
    def builtin(self) -> bool:
        """Whether :attr:`source` names a built-in machine."""
        return self.source.lower() in _SHAPES

    def at(self, address_base: str) -> MachineSpec:
        """The same spec with the given address base."""
        return dataclasses.replace(self, address_base=address_base)

    def __str__(self) -> str:
        prefix = "virtual:" if self.virtual else ""
        suffix = f"@{self.address_base}" if self.address_base else ""
        return f"{prefix}{self.source}{suffix}"


def parse_machine_spec(spec: str) -> MachineSpec:
    """Split ``spec`` into its parts (``@BASE`` only after a built-in machine name).

    Raises
    ------
    ValueError
        If the base is not an IPv4 address.
    """
    virtual = spec.startswith("virtual:")
    text = spec.removeprefix("virtual:")
    name, at, base = text.rpartition("@")
    if at and name.lower() in _SHAPES:
        try:
            ipaddress.IPv4Address(base)
        except ValueError:
            raise ValueError(f"{spec!r}: {base!r} is not an IPv4 address base") from None
        return MachineSpec(virtual, name, base)
    return MachineSpec(virtual, text)


def machine_from_spec(spec: str, address_base: str = "127.1.0.0") -> list[MachineDefinition]:
    """Turn a command-line machine spec into machine definitions.

    ``"NAME"`` or ``"virtual:NAME"`` gives a built-in shape on ``address_base``, and
    ``"NAME@BASE"`` on ``BASE``; anything else (also after ``virtual:``) is read as the
    path of a JSON definition file.
    """
    parsed = parse_machine_spec(spec)
    if parsed.builtin:
        return [builtin_machine(parsed.source, parsed.address_base or address_base)]
    path = Path(parsed.source)
    if not path.is_file():
        raise ValueError(f"{spec!r} is neither a built-in machine {BUILTIN_MACHINES} nor a file")
    return load_machine_definitions(path)
