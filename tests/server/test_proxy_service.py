"""The proxy websocket and server-side SCP through the real service, with virtual boards
powered and booted by the BMP controller over real UDP."""

from __future__ import annotations

import base64
import os
import struct
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from pyspalloc.geometry import MachineDefinition
from pyspalloc.transceiver import MulticastRoute, Transceiver, UDPConnection
from pyspalloc.virtual import VirtualMachine
from pyspalloc.wire.consts import SCP_PORT
from pyspalloc.wire.proxy import (
    CloseReply,
    CloseRequest,
    ErrorReply,
    Message,
    MessageTo,
    OpenReply,
    OpenRequest,
    OpenUnboundReply,
    OpenUnboundRequest,
    decode_server_frame,
)
from pyspalloc.wire.scp import SCPCommand, SCPResponse, SCPResult, scp_request
from tests.server.service_support import login
from tests.support import virtual_machines
from tests.support.http_client import Http

SCP = SCP_PORT


machine = virtual_machines.machine
vservice = virtual_machines.vservice


def open_ws(client: Http, job: dict[str, Any]) -> ClientConnection:
    cookie = client.http.cookies.get("JSESSIONID")
    return connect(
        job["proxy-ref"],
        additional_headers={"Cookie": f"JSESSIONID={cookie}", "Origin": "127.0.0.1"},
        open_timeout=10,
        close_timeout=5,
    )


def recv(ws: ClientConnection, timeout: float = 10.0) -> Any:
    data = ws.recv(timeout=timeout)
    assert isinstance(data, bytes)
    return decode_server_frame(data)


def ver_request(sequence: int) -> bytes:
    return scp_request(0, 0, 0, SCPCommand.VER, sequence=sequence).to_bytes()


def test_scp_ver_through_the_proxy(vservice: Any) -> None:
    alice = login(vservice, "alice")
    _, job = alice.ready_job(30.0, **{"num-boards": 1})
    with open_ws(alice, job) as ws:
        ws.send(OpenRequest(0, 0, 0, SCP).to_bytes())
        reply = recv(ws)
        assert isinstance(reply, OpenReply) and reply.channel_id > 0
        channel = reply.channel_id
        for sequence in range(3):
            ws.send(Message(channel, ver_request(sequence)).to_bytes())
            frame = recv(ws)
            assert isinstance(frame, Message) and frame.channel_id == channel
            response = SCPResponse.from_bytes(frame.payload)
            assert response.result == SCPResult.RC_OK
            assert response.sequence == sequence
            assert b"SC&MP" in response.payload
        # a board outside the job: an ERROR frame, and the socket goes on serving
        ws.send(OpenRequest(1, 8, 4, SCP).to_bytes())
        error = recv(ws)
        assert isinstance(error, ErrorReply) and error.correlation_id == 1
        assert "unrecognised ethernet chip" in error.message
        ws.send(Message(channel, ver_request(9)).to_bytes())
        assert isinstance(recv(ws), Message)
        ws.send(CloseRequest(2, channel).to_bytes())
        assert recv(ws) == CloseReply(2, channel)
        pong = ws.ping()
        assert pong.wait(5)


def test_unbound_channel_ip_tag_and_msg_to(
    vservice: Any, machine: tuple[MachineDefinition, VirtualMachine]
) -> None:
    _, vm = machine
    alice = login(vservice, "alice")
    url, job = alice.ready_job(30.0, **{"num-boards": 1})
    root_ip = alice.get(url + "/machine").json()["connections"][0][1]
    board = vm.board_by_ip(root_ip)
    assert board is not None and board.booted
    with open_ws(alice, job) as ws:
        ws.send(OpenUnboundRequest(5).to_bytes())
        reply = recv(ws)
        assert isinstance(reply, OpenUnboundReply), reply
        assert reply.ip.startswith("127.") and reply.port > 0
        channel = reply.channel_id
        # MSG_TO reaches the board; its answer comes back on the unbound channel
        ws.send(MessageTo(channel, 0, 0, SCP, ver_request(4)).to_bytes())
        frame = recv(ws)
        assert isinstance(frame, Message) and frame.channel_id == channel
        assert SCPResponse.from_bytes(frame.payload).sequence == 4
        # an IP tag to the unbound address: a core's packet arrives as a MSG
        with Transceiver([UDPConnection(root_ip, SCP, chip_x=0, chip_y=0)]) as tx:
            tx.set_ip_tag(3, reply.ip, reply.port, strip_sdp=True)
        board.send_from_core(1, 1, 2, 3, b"from a core")
        frame = recv(ws)
        assert frame == Message(channel, b"from a core")
        # MSG_TO outside the job is an ERROR, not a closed websocket
        ws.send(MessageTo(channel, 8, 4, SCP, b"x").to_bytes())
        error = recv(ws)
        assert isinstance(error, ErrorReply) and "unrecognised ethernet chip" in error.message


def test_job_destroy_closes_the_websocket(vservice: Any) -> None:
    alice = login(vservice, "alice")
    url, job = alice.ready_job(30.0, **{"num-boards": 1})
    with open_ws(alice, job) as ws:
        ws.send(OpenRequest(0, 0, 0, SCP).to_bytes())
        assert isinstance(recv(ws), OpenReply)
        assert alice.delete(url, params={"reason": "test over"}).status_code < 300
        with pytest.raises(ConnectionClosed) as info:
            while True:
                recv(ws)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1000


def test_other_user_cannot_use_the_proxy(vservice: Any) -> None:
    alice, bob = login(vservice, "alice"), login(vservice, "bob")
    _, job = alice.ready_job(30.0, **{"num-boards": 1})
    with pytest.raises((InvalidStatus, ConnectionClosed)), open_ws(bob, job) as ws:
        ws.send(OpenRequest(0, 0, 0, SCP).to_bytes())
        recv(ws, timeout=5)
    with pytest.raises(InvalidStatus):
        connect(job["proxy-ref"], open_timeout=5)  # no credentials at all


def test_malformed_frames_leave_other_users_alone(vservice: Any) -> None:
    alice, bob = login(vservice, "alice"), login(vservice, "bob")
    _, job_a = alice.ready_job(30.0, **{"num-boards": 1})
    _, job_b = bob.ready_job(30.0, **{"num-boards": 1})
    with open_ws(alice, job_a) as wa, open_ws(bob, job_b) as wb:
        wb.send(OpenRequest(0, 0, 0, SCP).to_bytes())
        channel = recv(wb).channel_id
        for bad in (struct.pack("<2I", 7, 1), struct.pack("<2I", 5, 2), b"\x00" * 21):
            wa.send(bad)
            assert isinstance(recv(wa), ErrorReply)
        wa.send(b"\x01\x00")
        with pytest.raises(ConnectionClosed) as info:
            recv(wa)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1007
        wb.send(Message(channel, ver_request(1)).to_bytes())
        assert isinstance(recv(wb), Message)


def test_rest_memory_round_trip_and_router_reset(
    vservice: Any, machine: tuple[MachineDefinition, VirtualMachine]
) -> None:
    alice = login(vservice, "alice")
    url, _ = alice.ready_job(30.0, **{"num-boards": 3})
    connections = alice.get(url + "/machine").json()["connections"]
    assert len(connections) == 3
    data = os.urandom(300_000)
    for x, y in ((0, 0), (9, 5), (5, 11)):
        params = {"x": x, "y": y, "address": 0x60000000}
        posted = alice.post(
            url + "/memory",
            params=params,
            data=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert posted.status_code == 202, posted.text
        got = alice.get(url + "/memory", params={**params, "size": len(data)})
        assert got.status_code == 200
        assert got.headers["content-type"] == "application/octet-stream"
        assert got.content == data
    outside = alice.get(url + "/memory", params={"x": 40, "y": 40, "address": 0, "size": 4})
    assert outside.status_code >= 400
    assert "not on any board" in outside.text

    root_ip = next(ip for (xy, ip) in connections if xy == [0, 0])
    with Transceiver([UDPConnection(root_ip, SCP, chip_x=0, chip_y=0)]) as tx:
        tx.load_multicast_routes(9, 5, [MulticastRoute(0x1234, 0xFFFF, 1 << 7)])
        assert tx.get_multicast_routes(9, 5)
    deleted = alice.delete(url + "/router", params={"3": "12345", "7": "77"})
    assert deleted.status_code == 202, deleted.text
    with Transceiver([UDPConnection(root_ip, SCP, chip_x=0, chip_y=0)]) as tx:
        assert not tx.get_multicast_routes(9, 5)
        assert all(c == 0 for c in tx.get_router_diagnostics(9, 5).counters)
        filters = tx.read_memory(9, 5, 0xE1000200, 64)
        assert struct.unpack_from("<I", filters, 12)[0] == 12345
        assert struct.unpack_from("<I", filters, 28)[0] == 77


def test_bearer_and_basic_credentials_open_the_proxy(vservice: Any) -> None:
    alice = login(vservice, "alice")
    _, job = alice.ready_job(30.0, **{"num-boards": 1})
    ctx = vservice.app.state.ctx
    token = ctx.auth.issue_token(ctx.store.get_user("alice"))
    basic = base64.b64encode(b"alice:alice-pw-1").decode()
    for header in (f"Bearer {token}", f"Basic {basic}"):
        with connect(
            job["proxy-ref"], additional_headers={"Authorization": header}, open_timeout=10
        ) as ws:
            ws.send(OpenRequest(0, 0, 0, SCP).to_bytes())
            channel = recv(ws).channel_id
            ws.send(Message(channel, ver_request(2)).to_bytes())
            assert SCPResponse.from_bytes(recv(ws).payload).result == SCPResult.RC_OK
    bad = base64.b64encode(b"alice:wrong").decode()
    with pytest.raises(InvalidStatus):
        connect(job["proxy-ref"], additional_headers={"Authorization": f"Basic {bad}"})
