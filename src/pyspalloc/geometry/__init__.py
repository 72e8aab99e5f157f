"""The SpiNNaker machine model: coordinates, boards, links and machine definitions.

Pure code: no I/O apart from reading a definition file, no threads.
"""

from pyspalloc.geometry.builtin import (
    BUILTIN_MACHINES,
    builtin_machine,
    machine_from_spec,
    standard_bmp_ip,
    standard_ip,
)
from pyspalloc.geometry.chips import (
    BOARD_CHIP_SET,
    BOARD_CHIPS,
    BOARD_EDGE_LINKS,
    ETHERNET_OFFSETS,
    allocation_chip_size,
    board_chip_to_machine,
    chip_to_board,
    ethernet_chip,
    job_chip_to_machine,
    machine_chip_size,
    machine_chip_to_job,
)
from pyspalloc.geometry.coords import (
    BOARD_LINK_CHIP_DELTAS,
    CHIP_LINK_DELTAS,
    FPGA_BANK_STRIDE,
    FPGA_FLAG_REGISTER,
    FPGA_STOP_REGISTER,
    TRIAD_CHIPS,
    Chip,
    Direction,
    Physical,
    Triad,
    fpga_for,
    fpga_stop_address,
    neighbour,
)
from pyspalloc.geometry.json_format import (
    dump_machine_definitions,
    load_machine_definitions,
    parse_machine_definitions,
    triad_key,
)
from pyspalloc.geometry.machine import (
    BoardDefinition,
    Frame,
    MachineDefinition,
    MachineDefinitionError,
)

__all__ = [
    "BOARD_CHIPS",
    "BOARD_CHIP_SET",
    "BOARD_EDGE_LINKS",
    "BOARD_LINK_CHIP_DELTAS",
    "BUILTIN_MACHINES",
    "CHIP_LINK_DELTAS",
    "ETHERNET_OFFSETS",
    "FPGA_BANK_STRIDE",
    "FPGA_FLAG_REGISTER",
    "FPGA_STOP_REGISTER",
    "TRIAD_CHIPS",
    "BoardDefinition",
    "Chip",
    "Direction",
    "Frame",
    "MachineDefinition",
    "MachineDefinitionError",
    "Physical",
    "Triad",
    "allocation_chip_size",
    "board_chip_to_machine",
    "builtin_machine",
    "chip_to_board",
    "dump_machine_definitions",
    "ethernet_chip",
    "fpga_for",
    "fpga_stop_address",
    "job_chip_to_machine",
    "load_machine_definitions",
    "machine_chip_size",
    "machine_chip_to_job",
    "machine_from_spec",
    "neighbour",
    "parse_machine_definitions",
    "standard_bmp_ip",
    "standard_ip",
    "triad_key",
]
