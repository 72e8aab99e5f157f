"""10,000 random and mutated proxy frames against a live service (bench/proxy_fuzz.py
runs 100,000): every frame answered as web-api.md §6.3 predicts, no leaked UDP socket,
and another user's SCP VER through their own websocket unaffected meanwhile."""

from __future__ import annotations

import random
import time
from typing import Any

from bench.proxy_fuzz import ProxyFuzzer, VerPinger

from tests.reliability.support import open_ws, udp_socket_count
from tests.support.http_client import login
from tests.support.waiting import wait_for

FRAMES = 10_000


def test_ten_thousand_fuzz_frames(vservice: Any) -> None:
    alice, bob = login(vservice, "alice"), login(vservice, "bob")
    _, job_a = alice.ready_job(**{"num-boards": 1})
    _, job_b = bob.ready_job(**{"num-boards": 1})
    with VerPinger(lambda: open_ws(bob, job_b["proxy-ref"])) as pinger:
        wait_for(lambda: pinger.ok > 0, 20)
        before = udp_socket_count()
        fuzzer = ProxyFuzzer(
            lambda: open_ws(alice, job_a["proxy-ref"]), {(0, 0)}, random.Random(20261125)
        )
        stats = fuzzer.run(FRAMES, max_seconds=120)
        ok_during = pinger.ok
        deadline = time.monotonic() + 15
        while udp_socket_count() != before and time.monotonic() < deadline:
            time.sleep(0.1)
        after = udp_socket_count()
    assert stats.frames >= FRAMES, stats.as_dict()
    assert stats.mismatches == [], stats.as_dict()
    assert stats.closes_1007 == stats.kinds.get("short", 0) > 0
    assert stats.error_replies > 1000 and stats.silent > 1000
    assert after == before, (before, after)
    assert pinger.failures == []
    assert ok_during > 20
    # the fuzzed job still works afterwards
    with open_ws(alice, job_a["proxy-ref"]) as ws:
        from pyspalloc.wire.proxy import Message, OpenReply, OpenRequest
        from pyspalloc.wire.scp import SCPResponse, SCPResult
        from tests.reliability.support import recv_frame, ver_request

        ws.send(OpenRequest(1, 0, 0, 17893).to_bytes())
        reply = recv_frame(ws)
        assert isinstance(reply, OpenReply)
        ws.send(Message(reply.channel_id, ver_request(77)).to_bytes())
        for _ in range(50):
            frame = recv_frame(ws)
            if isinstance(frame, Message):
                response = SCPResponse.from_bytes(frame.payload)
                if response.sequence == 77:
                    assert response.result == SCPResult.RC_OK
                    break
        else:
            raise AssertionError("no VER answer after the fuzz")
