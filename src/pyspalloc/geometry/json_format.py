"""Reading and writing machine definitions in the Java service's JSON format.

The format has a top-level ``machines`` list; each machine has ``name``, ``tags``,
``width``, ``height`` (triads), ``dead-boards``, ``dead-links``, ``board-locations``,
``bmp-ips`` and ``spinnaker-ips``. Triads are keyed as ``"[x:0,y:0,z:0]"`` (also
``"[3,2,1]"`` or ``{"x": 3, "y": 2, "z": 1}``) and frames as ``"[c:0,f:0]"``.

As the Java loader does, every address must be a dotted-quad IPv4 address (the message
says "'...' is a bad IPv4 address"), and the top level may hold only ``machines`` and the
settings Java reads and ignores (``port``, ``ip``, ``timeout-check-interval``,
``max-retired-jobs``, ``seconds-before-free``). Dead links are written with Java's link
names (``east``, ``northEast``, ``north``, ``west``, ``southWest``, ``south``); any common
spelling is read. A machine may carry ``chips``: the path of a chip-level description
(:mod:`pyspalloc.geometry.chip_description`) that virtual boards then reproduce.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from os import PathLike
from pathlib import Path
from typing import Any

from pyspalloc.geometry.coords import Direction, Physical, Triad
from pyspalloc.geometry.machine import BoardDefinition, MachineDefinition, MachineDefinitionError

__all__ = [
    "TOP_LEVEL_SETTINGS",
    "check_ip",
    "dump_machine_definitions",
    "java_link_name",
    "load_machine_definitions",
    "parse_machine_definitions",
    "triad_key",
]

_BAD_NAME = re.compile(r"[{}\x00\s]")
_ALIASES = {"cabinet": "c", "frame": "f", "board": "b"}
#: Top-level keys of the Java format besides ``machines`` (read, checked and ignored).
TOP_LEVEL_SETTINGS = (
    "port",
    "ip",
    "timeout-check-interval",
    "max-retired-jobs",
    "seconds-before-free",
)
_DOTTED_QUAD = re.compile(r"\d{1,3}(\.\d{1,3}){3}")


def triad_key(triad: Triad) -> str:
    """Return the Java map key for a triad, e.g. ``"[x:1,y:2,z:0]"``."""
    return f"[x:{triad[0]},y:{triad[1]},z:{triad[2]}]"


def _frame_key(frame: tuple[int, int]) -> str:
    return f"[c:{frame[0]},f:{frame[1]}]"


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            return int(value)
        raise MachineDefinitionError(where, f"expected an integer, got {value!r}")
    return value


def _coords(value: Any, names: str, where: str) -> tuple[int, ...]:
    """Parse coordinates named by the letters of ``names`` from any accepted form."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except ValueError:
                raise MachineDefinitionError(where, f"bad coordinates {text!r}") from None
        else:
            parts = [p.strip() for p in text.strip("[]() ").split(",")]
            labelled: dict[str, Any] = {}
            plain: list[str] = []
            for part in parts:
                label, sep, number = part.partition(":")
                if sep:
                    labelled[label.strip().lower()] = number
                else:
                    plain.append(part)
            value = labelled if labelled and not plain else plain
    if isinstance(value, Mapping):
        found = {_ALIASES.get(str(k).lower(), str(k).lower()): v for k, v in value.items()}
        if set(found) != set(names):
            raise MachineDefinitionError(where, f"expected keys {list(names)}, got {value!r}")
        return tuple(_int(found[n], where) for n in names)
    if isinstance(value, list | tuple) and len(value) == len(names):
        return tuple(_int(v, where) for v in value)
    raise MachineDefinitionError(where, f"bad coordinates {value!r}")


def check_ip(value: Any, where: str, *, empty_ok: bool = False) -> str:
    """Return ``value`` if it is a dotted-quad IPv4 address (or empty, if allowed).

    Raises
    ------
    MachineDefinitionError
        ``"<where>: '<value>' is a bad IPv4 address"`` otherwise, as Java words it.
    """
    if isinstance(value, str) and (value == "" and empty_ok):
        return value
    if isinstance(value, str) and _DOTTED_QUAD.fullmatch(value):
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            pass
        else:
            return value
    raise MachineDefinitionError(where, f"{value!r} is a bad IPv4 address")


def _check_name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value or _BAD_NAME.search(value):
        raise MachineDefinitionError(
            where, f"{value!r} must be a non-empty string without braces, NUL or whitespace"
        )
    return value


def _section(obj: Mapping[str, Any], key: str) -> Any:
    for candidate in (key, key.replace("-", "_")):
        if candidate in obj:
            return obj[candidate]
    return None


def _mapping(obj: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = _section(obj, key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise MachineDefinitionError(f"{where}.{key}", "expected a JSON object")
    return value


def _parse_machine(obj: Any, where: str, base: Path | None) -> MachineDefinition:
    if not isinstance(obj, Mapping):
        raise MachineDefinitionError(where, "a machine must be a JSON object")
    name = _check_name(obj.get("name"), f"{where}.name")
    where = f"machine {name!r}"
    raw_tags = obj.get("tags", ["default"])
    if isinstance(raw_tags, str) or not isinstance(raw_tags, Iterable):
        raise MachineDefinitionError(f"{where}.tags", "expected a list of strings")
    tags = tuple(_check_name(t, f"{where}.tags") for t in raw_tags)

    locations: dict[Triad, Physical] = {}
    slots: dict[Physical, Triad] = {}
    for key, value in _mapping(obj, "board-locations", where).items():
        fld = f"{where}.board-locations"
        triad = Triad(*_coords(key, "xyz", fld))
        physical = Physical(*_coords(value, "cfb", fld))
        if min(physical) < 0:
            raise MachineDefinitionError(fld, f"negative physical coordinates {physical}")
        if physical in slots:
            raise MachineDefinitionError(
                fld, f"boards {slots[physical]} and {triad} share physical slot {physical}"
            )
        slots[physical] = triad
        locations[triad] = physical

    width, height = obj.get("width"), obj.get("height")
    width = _int(width, f"{where}.width") if width is not None else None
    height = _int(height, f"{where}.height") if height is not None else None
    width = width if width is not None else max((t.x for t in locations), default=0) + 1
    height = height if height is not None else max((t.y for t in locations), default=0) + 1
    for label, size in (("width", width), ("height", height)):
        if size < 1:
            raise MachineDefinitionError(f"{where}.{label}", f"must be positive, got {size}")

    def in_bounds(triad: Triad, fld: str) -> Triad:
        if not (0 <= triad.x < width and 0 <= triad.y < height and 0 <= triad.z < 3):
            raise MachineDefinitionError(
                f"{where}.{fld}", f"{triad} is outside {width}x{height} triads"
            )
        return triad

    for triad in locations:
        in_bounds(triad, "board-locations")

    raw_dead = _section(obj, "dead-boards") or []
    if not isinstance(raw_dead, list):
        raise MachineDefinitionError(f"{where}.dead-boards", "expected a list")
    dead = {
        in_bounds(Triad(*_coords(v, "xyz", f"{where}.dead-boards")), "dead-boards")
        for v in raw_dead
    }

    dead_links: set[tuple[Triad, Direction]] = set()
    for key, names in _mapping(obj, "dead-links", where).items():
        fld = f"{where}.dead-links"
        triad = in_bounds(Triad(*_coords(key, "xyz", fld)), "dead-links")
        if isinstance(names, str) or not isinstance(names, Iterable):
            raise MachineDefinitionError(fld, f"expected a list of link names for {key}")
        for link in names:
            try:
                direction = Direction.from_name(str(link))
            except ValueError as e:
                raise MachineDefinitionError(fld, str(e)) from None
            dead_links.add((triad, direction))

    bmp_ips: dict[tuple[int, int], str] = {}
    seen_bmp: dict[str, tuple[int, int]] = {}
    for key, ip in _mapping(obj, "bmp-ips", where).items():
        fld = f"{where}.bmp-ips"
        c, f = _coords(key, "cf", fld)
        check_ip(ip, f"{fld}[{key}]")
        if ip in seen_bmp:
            raise MachineDefinitionError(fld, f"address {ip} used by two frames")
        seen_bmp[ip] = (c, f)
        bmp_ips[(c, f)] = ip

    ips: dict[Triad, str] = {}
    seen_ip: dict[str, Triad] = {}
    for key, ip in _mapping(obj, "spinnaker-ips", where).items():
        fld = f"{where}.spinnaker-ips"
        triad = in_bounds(Triad(*_coords(key, "xyz", fld)), "spinnaker-ips")
        check_ip(ip, f"{fld}[{key}]")
        if ip in seen_ip:
            raise MachineDefinitionError(fld, f"address {ip} used by {seen_ip[ip]} and {triad}")
        if triad not in locations:
            raise MachineDefinitionError(fld, f"board {triad} has an address but no location")
        seen_ip[ip] = triad
        ips[triad] = ip

    boards: dict[Triad, BoardDefinition] = {}
    for triad, physical in sorted(locations.items()):
        functioning = triad not in dead
        bmp_ip = bmp_ips.get((physical.cabinet, physical.frame), "")
        if functioning and triad not in ips:
            raise MachineDefinitionError(f"{where}.spinnaker-ips", f"live board {triad} has none")
        if functioning and not bmp_ip:
            raise MachineDefinitionError(
                f"{where}.bmp-ips", f"frame {physical[:2]} of live board {triad} has none"
            )
        boards[triad] = BoardDefinition(triad, physical, ips.get(triad, ""), bmp_ip, functioning)
    if not boards:
        raise MachineDefinitionError(f"{where}.board-locations", "the machine has no boards")
    chips = obj.get("chips", "")
    if not isinstance(chips, str):
        raise MachineDefinitionError(f"{where}.chips", "expected the path of a chip description")
    if chips and base is not None:
        chips = str(base / chips)
    return MachineDefinition(
        name, tags, width, height, boards, frozenset(dead_links), bmp_ips, chips
    )


def _check_top_level(obj: Mapping[str, Any]) -> None:
    """Refuse unknown top-level keys and badly typed Java settings."""
    for key, value in obj.items():
        if key == "machines":
            continue
        name = key.replace("_", "-")
        if name not in TOP_LEVEL_SETTINGS:
            raise MachineDefinitionError(
                str(key),
                "unknown top-level key; expected machines, " + ", ".join(TOP_LEVEL_SETTINGS),
            )
        if name == "ip":
            check_ip(value, "ip", empty_ok=True)
        elif name == "timeout-check-interval":
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise MachineDefinitionError(name, f"expected a positive number, got {value!r}")
        else:
            number = _int(value, name)
            if number < 0 or (name == "port" and number > 65535):
                raise MachineDefinitionError(name, f"out of range: {value!r}")


def parse_machine_definitions(obj: Any, base: Path | None = None) -> list[MachineDefinition]:
    """Build machine definitions from parsed JSON.

    Parameters
    ----------
    obj:
        ``{"machines": [...]}`` (with only Java's settings beside it), a list of
        machines, or a single machine object.
    base:
        Directory that relative ``chips`` paths are taken from.

    Raises
    ------
    MachineDefinitionError
        Naming the offending field, if anything is malformed or inconsistent.
    """
    if isinstance(obj, Mapping) and "machines" in obj:
        _check_top_level(obj)
        items = obj["machines"]
    elif isinstance(obj, Mapping) and "name" in obj:
        items = [obj]
    else:
        items = obj
    if not isinstance(items, list):
        raise MachineDefinitionError("machines", "expected a list of machines")
    machines = [_parse_machine(item, f"machines[{i}]", base) for i, item in enumerate(items)]
    names: set[str] = set()
    ips: dict[str, str] = {}
    for machine in machines:
        if machine.name in names:
            raise MachineDefinitionError("machines", f"duplicate machine name {machine.name!r}")
        names.add(machine.name)
        addresses = [b.ip for b in machine.boards.values() if b.ip]
        addresses += list(machine.bmp_ips.values())
        for ip in addresses:
            if ips.setdefault(ip, machine.name) != machine.name:
                raise MachineDefinitionError(
                    f"machine {machine.name!r}", f"address {ip} also used by {ips[ip]!r}"
                )
    return machines


def load_machine_definitions(path: str | PathLike[str]) -> list[MachineDefinition]:
    """Read a JSON machine-definition file; see :func:`parse_machine_definitions`."""
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise MachineDefinitionError("json", f"{path}: {e}") from None
    return parse_machine_definitions(obj, Path(path).parent)


def java_link_name(direction: Direction) -> str:
    """The Java loader's name of a dead link (its ``Link`` enum): ``"southWest"``, ..."""
    first, _, rest = direction.old_name.partition("_")
    return first + rest.capitalize()


def _dump_machine(machine: MachineDefinition) -> dict[str, Any]:
    links: dict[Triad, list[Direction]] = {}
    for triad, direction in machine.dead_links:
        links.setdefault(triad, []).append(direction)
    boards = sorted(machine.boards.values(), key=lambda b: b.triad)
    extra = {"chips": machine.chips} if machine.chips else {}
    return {
        "name": machine.name,
        "tags": list(machine.tags),
        "width": machine.width,
        "height": machine.height,
        "dead-boards": [{"x": t.x, "y": t.y, "z": t.z} for t in sorted(machine.dead_boards)],
        "dead-links": {
            triad_key(t): [java_link_name(d) for d in sorted(ds)] for t, ds in sorted(links.items())
        },
        "board-locations": {
            triad_key(b.triad): {"c": b.physical[0], "f": b.physical[1], "b": b.physical[2]}
            for b in boards
        },
        "bmp-ips": {_frame_key(k): ip for k, ip in sorted(machine.bmp_ips.items())},
        "spinnaker-ips": {triad_key(b.triad): b.ip for b in boards if b.ip},
        **extra,
    }


def dump_machine_definitions(machines: Iterable[MachineDefinition]) -> dict[str, Any]:
    """Return the JSON object (Java format) describing ``machines``.

    ``parse_machine_definitions(dump_machine_definitions(ms)) == ms`` for valid input.
    """
    return {
        "machines": [_dump_machine(m) for m in machines],
        "port": 22244,
        "ip": "0.0.0.0",
        "timeout-check-interval": 5.0,
        "max-retired-jobs": 1200,
        "seconds-before-free": 30,
    }
