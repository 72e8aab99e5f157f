"""EIEIO data messages read one element at a time, as spinnman's are."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pyspalloc.wire.eieio import (
    EIEIODataMessage,
    EIEIOType,
    KeyDataElement,
    KeyPayloadDataElement,
)
from tests.wire.strategies import eieio_data_messages


def read_all(message: EIEIODataMessage) -> list[object]:
    out = []
    while message.is_next_element:
        out.append(message.next_element)
    return out


def test_key_only_elements() -> None:
    message = EIEIODataMessage.from_bytes(EIEIODataMessage(EIEIOType.KEY_32, (1, 2)).to_bytes())
    assert read_all(message) == [KeyDataElement(1), KeyDataElement(2)]
    assert message.next_element is None
    assert not message.is_next_element


def test_prefix_base_and_timestamps_are_applied() -> None:
    message = EIEIODataMessage(
        EIEIOType.KEY_PAYLOAD_16, (1, 2), (3, 4), prefix=5, prefix_upper=True,
        payload_base=0x100, payloads_are_timestamps=True,
    )  # fmt: skip
    assert read_all(message) == [
        KeyPayloadDataElement(0x50001, 0x103, True),
        KeyPayloadDataElement(0x50002, 0x104, True),
    ]


def test_a_payload_base_alone_gives_every_key_that_payload() -> None:
    message = EIEIODataMessage(EIEIOType.KEY_16, (7,), prefix=1, payload_base=9)
    assert read_all(message) == [KeyPayloadDataElement(7 | 1, 9, False)]


def test_reading_changes_neither_value_nor_bytes() -> None:
    message = EIEIODataMessage(EIEIOType.KEY_16, (1, 2, 3))
    twin = EIEIODataMessage(EIEIOType.KEY_16, (1, 2, 3))
    before = message.to_bytes()
    assert message.next_element == KeyDataElement(1)
    assert message == twin
    assert hash(message) == hash(twin)
    assert message.to_bytes() == before
    assert twin.next_element == KeyDataElement(1)  # each message has its own position


@given(eieio_data_messages())
def test_elements_agree_with_the_decoded_keys_and_payloads(message: EIEIODataMessage) -> None:
    elements = read_all(message)
    assert elements == list(message.elements())
    assert [e.key for e in message.elements()] == list(message.decoded_keys())
    payloads = [e.payload for e in message.elements() if isinstance(e, KeyPayloadDataElement)]
    assert payloads == list(message.decoded_payloads())
    assert len(elements) == len(message.keys)


@given(st.integers(0, 3))
def test_an_empty_message_has_no_elements(tag: int) -> None:
    assert read_all(EIEIODataMessage(EIEIOType.KEY_16, (), tag=tag)) == []
