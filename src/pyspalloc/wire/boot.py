"""The SpiNNaker boot protocol (UDP port 54321; big-endian header).

The boot image is handled in its natural little-endian byte order; each 32-bit word is
byte-swapped on the wire.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from pyspalloc.wire.errors import WireFormatError, check_range, unpack_from

#: Protocol version in every boot packet.
BOOT_PROTOCOL_VERSION = 1
#: Header bytes: version (2) + opcode, operands 1-3 (4 each).
BOOT_HEADER_SIZE = 18
#: Image bytes per FLOOD_FILL_BLOCK.
BOOT_BLOCK_SIZE = 1024
#: The largest image a boot can carry (256 blocks).
MAX_BOOT_IMAGE = 256 * BOOT_BLOCK_SIZE
#: Bytes of the image that hold the first 128 bytes of the SV struct.
SV_IN_IMAGE = slice(384, 512)


class BootOpCode(IntEnum):
    """Boot packet operation codes."""

    HELLO = 0x41
    FLOOD_FILL_START = 0x01
    FLOOD_FILL_BLOCK = 0x03
    FLOOD_FILL_CONTROL = 0x05


def _swap_words(data: bytes) -> bytes:
    """Byte-swap each whole 32-bit word (a trailing partial word is kept as is)."""
    whole = len(data) - len(data) % 4
    words = struct.unpack(f"<{whole // 4}I", data[:whole])
    return struct.pack(f">{whole // 4}I", *words) + bytes(data[whole:])


@dataclass(frozen=True)
class BootMessage:
    """One boot packet; ``data`` is in image (little-endian) byte order."""

    opcode: BootOpCode
    operand1: int = 0
    operand2: int = 0
    operand3: int = 0
    data: bytes = b""

    def to_bytes(self) -> bytes:
        """Encode the big-endian header and byte-swapped data."""
        for name in ("operand1", "operand2", "operand3"):
            check_range(name, getattr(self, name), 0, 0xFFFFFFFF)
        if len(self.data) > BOOT_BLOCK_SIZE:
            raise WireFormatError(f"boot data is {len(self.data)} bytes; at most 1024")
        if len(self.data) % 4:
            raise WireFormatError("boot data must be whole 32-bit words")
        header = struct.pack(
            ">HIIII",
            BOOT_PROTOCOL_VERSION,
            self.opcode,
            self.operand1,
            self.operand2,
            self.operand3,
        )
        return header + _swap_words(bytes(self.data))

    @classmethod
    def from_bytes(cls, data: bytes) -> BootMessage:
        """Decode a boot packet."""
        version, code, op1, op2, op3 = unpack_from(">HIIII", data, 0, "boot packet")
        if version != BOOT_PROTOCOL_VERSION:
            raise WireFormatError(f"boot protocol version {version}; only 1 is known")
        try:
            opcode = BootOpCode(code)
        except ValueError:
            raise WireFormatError(f"unknown boot opcode 0x{code:x}") from None
        body = bytes(data[BOOT_HEADER_SIZE:])
        if len(body) > BOOT_BLOCK_SIZE:
            raise WireFormatError(f"boot data is {len(body)} bytes; at most 1024")
        if len(body) % 4:
            raise WireFormatError(f"boot data is {len(body)} bytes, not whole 32-bit words")
        return cls(opcode, op1, op2, op3, _swap_words(body))


def boot_messages(image: bytes) -> list[BootMessage]:
    """The packets that boot a board with ``image``: START, one BLOCK per KiB, CONTROL.

    Parameters
    ----------
    image:
        The boot image, a whole number of 32-bit words, at most 256 KiB.
    """
    if not image or len(image) % 4:
        raise WireFormatError("a boot image must be a non-empty whole number of words")
    if len(image) > MAX_BOOT_IMAGE:
        raise WireFormatError(f"boot image of {len(image)} bytes is over {MAX_BOOT_IMAGE}")
    n_blocks = (len(image) + BOOT_BLOCK_SIZE - 1) // BOOT_BLOCK_SIZE
    messages = [BootMessage(BootOpCode.FLOOD_FILL_START, 0, 0, n_blocks - 1)]
    for index in range(n_blocks):
        block = image[index * BOOT_BLOCK_SIZE : (index + 1) * BOOT_BLOCK_SIZE]
        messages.append(BootMessage(BootOpCode.FLOOD_FILL_BLOCK, (0xFF << 8) | index, 0, 0, block))
    messages.append(BootMessage(BootOpCode.FLOOD_FILL_CONTROL, 1))
    return messages
