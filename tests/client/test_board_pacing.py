"""32 SCP requests in flight over the proxy without overrunning SC&MP's 8 SDP buffers."""

from __future__ import annotations

import os
from typing import Any

from pyspalloc.client.job import SpallocJob
from pyspalloc.transceiver import Transceiver
from tests.client import proxy_support as support

proxy_service = support.proxy_service
proxy_client = support.proxy_client
job = support.job

ADDRESS = 0x60000000


def test_wide_window_over_the_proxy_is_paced_per_board(proxy_service: Any, job: SpallocJob) -> None:
    ip = job.get_connections()[(0, 0)]
    board = support.virtual_board(proxy_service, ip)
    assert board.sdp.capacity == 8
    # two transceivers on two channels to the same board: paced together
    first = Transceiver([job.connect_to_board(0, 0)])
    second = Transceiver([job.connect_to_board(0, 0)])
    try:
        assert first.options.window == 32
        before = board.sdp.dropped
        for txrx in (first, second, first):
            data = os.urandom(256 * 1024)
            txrx.write_memory(0, 0, ADDRESS, data)
            assert txrx.read_memory(0, 0, ADDRESS, len(data)) == data
        requests = 3 * 2 * 1024
        assert board.sdp.dropped - before <= requests // 100
    finally:
        first.close()
        second.close()
