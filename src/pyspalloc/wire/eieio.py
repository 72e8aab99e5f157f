"""EIEIO data and command messages (the first u16 is little-endian).

Data header: count in bits 0-7, tag 8-9, type 10-11, T (timestamps) 12, D (payload
base) 13, F (prefix in upper half) 14, P (key prefix) 15. P = 0 with F = 1 marks a
command, whose 14-bit id is in bits 0-13.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from pyspalloc.wire.errors import WireFormatError, check_range, unpack_from

#: The largest EIEIO packet that fits in one SDP message.
MAX_EIEIO_SIZE = 256


class EIEIOType(IntEnum):
    """Element layout of an EIEIO data message."""

    KEY_16 = 0
    KEY_PAYLOAD_16 = 1
    KEY_32 = 2
    KEY_PAYLOAD_32 = 3

    @property
    def key_bytes(self) -> int:
        """Bytes per key (and per payload, when there is one)."""
        return 2 if self in (EIEIOType.KEY_16, EIEIOType.KEY_PAYLOAD_16) else 4

    @property
    def has_payload(self) -> bool:
        """Whether each key is followed by a payload."""
        return self in (EIEIOType.KEY_PAYLOAD_16, EIEIOType.KEY_PAYLOAD_32)


class EIEIOCommand(IntEnum):
    """Known EIEIO command ids."""

    DATABASE = 1
    EVENT_PADDING = 2
    EVENT_STOP = 3
    STOP_SENDING_REQUESTS = 4
    START_SENDING_REQUESTS = 5
    SPINNAKER_REQUEST_BUFFERS = 6
    HOST_SEND_SEQUENCED_DATA = 7
    SPINNAKER_REQUEST_READ_DATA = 8
    HOST_DATA_READ = 9
    STOP_PAUSE_NOTIFICATION = 10
    START_RESUME_NOTIFICATION = 11
    HOST_DATA_READ_ACK = 12


@dataclass(frozen=True)
class KeyDataElement:
    """One element of a key-only EIEIO message (spinnman's name), prefix applied."""

    key: int


@dataclass(frozen=True)
class KeyPayloadDataElement:
    """One element of an EIEIO message with payloads (spinnman's name), prefix and base
    applied; ``payload_is_timestamp`` as the message's T flag says."""

    key: int
    payload: int
    payload_is_timestamp: bool = False


DataElement = KeyDataElement | KeyPayloadDataElement


@dataclass(frozen=True)
class EIEIODataMessage:
    """An EIEIO data message.

    ``keys`` and ``payloads`` hold the values as carried on the wire; use
    :meth:`decoded_keys` and :meth:`decoded_payloads` for the prefixed values, or
    :meth:`elements`. ``payloads`` is empty for the key-only types.

    A received message can also be read as spinnman's is, one element at a time::

        while message.is_next_element:
            element = message.next_element

    That reading position is the one piece of state a message has; it is not part of
    the message's value (equality, hash, ``to_bytes``).
    """

    eieio_type: EIEIOType
    keys: tuple[int, ...]
    payloads: tuple[int, ...] = ()
    tag: int = 0
    prefix: int | None = None
    prefix_upper: bool = False
    payload_base: int | None = None
    payloads_are_timestamps: bool = False

    def _flags(self) -> int:
        flags = (self.eieio_type << 2) | self.tag
        if self.prefix is not None:
            flags |= 0x80
            if self.prefix_upper:
                flags |= 0x40
        if self.payload_base is not None:
            flags |= 0x20
        if self.payloads_are_timestamps:
            flags |= 0x10
        return flags

    def to_bytes(self) -> bytes:
        """Encode the message."""
        width = self.eieio_type.key_bytes
        top = (1 << (8 * width)) - 1
        check_range("tag", self.tag, 0, 3)
        if self.prefix is None and self.prefix_upper:
            raise WireFormatError("prefix_upper needs a prefix (else it marks a command)")
        count = len(self.keys)
        if self.eieio_type.has_payload and len(self.payloads) != count:
            raise WireFormatError(f"{count} keys need {count} payloads, not {len(self.payloads)}")
        if not self.eieio_type.has_payload and self.payloads:
            raise WireFormatError(f"{self.eieio_type.name} messages carry no payloads")
        out = bytearray(struct.pack("<BB", check_range("count", count, 0, 255), self._flags()))
        code = "H" if width == 2 else "I"
        if self.prefix is not None:
            out += struct.pack("<H", check_range("prefix", self.prefix, 0, 0xFFFF))
        if self.payload_base is not None:
            out += struct.pack(f"<{code}", check_range("payload_base", self.payload_base, 0, top))
        for index, key in enumerate(self.keys):
            out += struct.pack(f"<{code}", check_range("key", key, 0, top))
            if self.eieio_type.has_payload:
                out += struct.pack(f"<{code}", check_range("payload", self.payloads[index], 0, top))
        if len(out) > MAX_EIEIO_SIZE:
            raise WireFormatError(f"EIEIO message of {len(out)} bytes is over {MAX_EIEIO_SIZE}")
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> EIEIODataMessage:
        """Decode a data message; the length must match the element count exactly."""
        count, flags = unpack_from("<BB", data, 0, "EIEIO data header")
        if flags & 0xC0 == 0x40:
            raise WireFormatError("this is an EIEIO command, not a data message")
        eieio_type = EIEIOType((flags >> 2) & 3)
        width = eieio_type.key_bytes
        code = "H" if width == 2 else "I"
        offset = 2
        prefix = None
        if flags & 0x80:
            (prefix,) = unpack_from("<H", data, offset, "EIEIO key prefix")
            offset += 2
        payload_base = None
        if flags & 0x20:
            (payload_base,) = unpack_from(f"<{code}", data, offset, "EIEIO payload base")
            offset += width
        element = width * (2 if eieio_type.has_payload else 1)
        expected = offset + count * element
        if len(data) != expected:
            raise WireFormatError(
                f"EIEIO data message with {count} elements must be {expected} bytes, "
                f"not {len(data)}"
            )
        values = struct.unpack_from(f"<{count * element // width}{code}", data, offset)
        if eieio_type.has_payload:
            keys, payloads = tuple(values[0::2]), tuple(values[1::2])
        else:
            keys, payloads = tuple(values), ()
        return cls(
            eieio_type,
            keys,
            payloads,
            tag=flags & 3,
            prefix=prefix,
            prefix_upper=bool(flags & 0x40),
            payload_base=payload_base,
            payloads_are_timestamps=bool(flags & 0x10),
        )

    def decoded_keys(self) -> tuple[int, ...]:
        """The keys with the prefix applied."""
        return tuple(element.key for element in self.elements())

    def decoded_payloads(self) -> tuple[int, ...]:
        """The payloads with the base applied (the base alone when there are none)."""
        return tuple(
            element.payload
            for element in self.elements()
            if isinstance(element, KeyPayloadDataElement)
        )

    def elements(self) -> tuple[DataElement, ...]:
        """The decoded elements: keys, with payloads when the message has any."""
        return tuple(self._element(index) for index in range(len(self.keys)))

    def _element(self, index: int) -> DataElement:
        key = self.keys[index]
        if self.prefix is not None:
            key |= self.prefix << 16 if self.prefix_upper else self.prefix
        if self.eieio_type.has_payload:
            payload: int | None = self.payloads[index] | (self.payload_base or 0)
        else:
            payload = self.payload_base
        if payload is None:
            return KeyDataElement(key)
        return KeyPayloadDataElement(key, payload, self.payloads_are_timestamps)

    @property
    def is_next_element(self) -> bool:
        """Whether :attr:`next_element` has another element to give."""
        return self._elements_read() < len(self.keys)

    @property
    def next_element(self) -> DataElement | None:
        """The next element (spinnman's reading order), or ``None`` after the last."""
        read = self._elements_read()
        if read >= len(self.keys):
            return None
        self.__dict__["_read"] = read + 1
        return self._element(read)

    def _elements_read(self) -> int:
        return int(self.__dict__.get("_read", 0))


@dataclass(frozen=True)
class EIEIOCommandMessage:
    """An EIEIO command: a 14-bit command id and its body bytes."""

    command_id: int
    body: bytes = b""

    def to_bytes(self) -> bytes:
        """Encode the command."""
        check_range("command_id", self.command_id, 0, 0x3FFF)
        if 2 + len(self.body) > MAX_EIEIO_SIZE:
            raise WireFormatError(f"EIEIO command body of {len(self.body)} bytes is too long")
        return struct.pack("<H", 0x4000 | self.command_id) + bytes(self.body)

    @classmethod
    def from_bytes(cls, data: bytes) -> EIEIOCommandMessage:
        """Decode a command message."""
        (word,) = unpack_from("<H", data, 0, "EIEIO command header")
        if word & 0xC000 != 0x4000:
            raise WireFormatError("this is an EIEIO data message, not a command")
        if len(data) > MAX_EIEIO_SIZE:
            raise WireFormatError(f"EIEIO command of {len(data)} bytes is too long")
        return cls(word & 0x3FFF, bytes(data[2:]))

    @property
    def command(self) -> EIEIOCommand | None:
        """The command as a known :class:`EIEIOCommand`, if it is one."""
        try:
            return EIEIOCommand(self.command_id)
        except ValueError:
            return None


EIEIOMessage = EIEIODataMessage | EIEIOCommandMessage


def is_eieio_command(data: bytes) -> bool:
    """Whether ``data`` starts with an EIEIO command header."""
    (word,) = unpack_from("<H", data, 0, "EIEIO header")
    return word & 0xC000 == 0x4000


def decode_eieio(data: bytes) -> EIEIOMessage:
    """Decode an EIEIO data or command message."""
    if is_eieio_command(data):
        return EIEIOCommandMessage.from_bytes(data)
    return EIEIODataMessage.from_bytes(data)
