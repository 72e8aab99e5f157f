"""Coverage-guided fuzzing (atheris / libFuzzer) of every wire decoder.

``python tests/reliability/atheris_wire.py -runs=200000 -max_total_time=20``

The first input byte picks the decoder, the rest is the datagram. Any exception but
``WireFormatError`` is a crash (libFuzzer prints it and exits non-zero); a decoded
message may be encoded again, raising nothing but ``WireFormatError`` (the OPEN
decoder keeps a bad port for the proxy to refuse; the encoder does not). Run by
``test_wire_fuzz.py`` when atheris is installed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import atheris

with atheris.instrument_imports():
    from pyspalloc.wire import WireFormatError, proxy
    from pyspalloc.wire.boot import BootMessage
    from pyspalloc.wire.eieio import decode_eieio
    from pyspalloc.wire.scp import SCPRequest, SCPResponse
    from pyspalloc.wire.sdp import SDPMessage

DECODERS: list[Callable[[bytes], object]] = [
    proxy.decode_client_frame,
    proxy.decode_server_frame,
    SDPMessage.from_bytes,
    SCPRequest.from_bytes,
    SCPResponse.from_bytes,
    BootMessage.from_bytes,
    decode_eieio,
]


def one_input(data: bytes) -> None:
    if not data:
        return
    decoder = DECODERS[data[0] % len(DECODERS)]
    try:
        message = decoder(data[1:])
    except WireFormatError as error:
        if not str(error):
            raise AssertionError("WireFormatError without a message") from error
        return
    to_bytes = getattr(message, "to_bytes", None)
    if to_bytes is not None:
        try:  # encoders may refuse what decoders accept (e.g. OPEN port 0), but only so
            to_bytes()
        except WireFormatError:
            pass


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
