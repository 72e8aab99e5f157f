"""The proxied connection classes against the real service and its virtual boards."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from pyspalloc.client.client import SpallocClient
from pyspalloc.client.job import SpallocJob
from pyspalloc.client.proxy.connections import (
    SpallocBootConnection,
    SpallocEIEIOConnection,
    SpallocSCPConnection,
)
from pyspalloc.client.proxy.listeners import SpallocEIEIOListener, SpallocUDPListener
from pyspalloc.exceptions import (
    SpinnmanInvalidPacketException,
    SpinnmanInvalidParameterException,
    SpinnmanIOException,
    SpinnmanTimeoutException,
)
from pyspalloc.transceiver import Connection, Transceiver
from pyspalloc.wire.eieio import EIEIOCommandMessage, EIEIODataMessage, EIEIOType
from pyspalloc.wire.scp import SCPCommand, SCPResponse, SCPResult, scp_request
from pyspalloc.wire.sdp import SDPFlag, SDPHeader, SDPMessage
from tests.client import proxy_support as support
from tests.client.proxy_support import PASSWORD, USER, ready_job, start_test_service, virtual_board
from tests.support.waiting import eventually

proxy_service = support.proxy_service
proxy_client = support.proxy_client
job = support.job

EVENTS = EIEIODataMessage(EIEIOType.KEY_32, keys=(1, 2, 0xDEADBEEF))


def board_of(service: Any, job: SpallocJob) -> Any:
    return virtual_board(service, job.get_connections()[0, 0])


@pytest.fixture
def scp(job: SpallocJob) -> Iterator[SpallocSCPConnection]:
    connection = job.connect_to_board(0, 0)
    try:
        yield connection
    finally:
        connection.close()


def test_scp_connection_is_an_engine_connection(scp: SpallocSCPConnection) -> None:
    assert isinstance(scp, Connection)
    assert (scp.chip_x, scp.chip_y) == (0, 0)
    assert scp.get_receive_method() == scp.receive_sdp_message
    assert "SpallocSCPConnection" in repr(scp)


def test_scp_request_and_response(scp: SpallocSCPConnection) -> None:
    request = scp_request(0, 0, 0, SCPCommand.VER, sequence=77, src_x=9, src_y=9)
    data = scp.get_scp_data(request)
    header = SDPHeader.from_bytes(data, 2)
    assert (header.src_x, header.src_y, header.src_port, header.src_cpu) == (0, 0, 7, 31)
    assert SDPHeader.from_bytes(scp.get_scp_data(request, 3, 4), 2).src_x == 3
    scp.send(data)
    result, sequence, raw, offset = scp.receive_scp_response(5.0)
    assert (result, sequence, offset) == (SCPResult.RC_OK, 77, 2)
    assert SCPResponse.from_bytes(raw).payload.find(b"SC&MP") > 0


def test_sdp_messages(scp: SpallocSCPConnection) -> None:
    request = scp_request(0, 0, 0, SCPCommand.VER, sequence=5)
    scp.send_sdp_message(SDPMessage(request.header, request.to_bytes()[10:]))
    reply = scp.receive_sdp_message(5.0)
    assert reply.header.src_x == 0 and reply.data[:2] == bytes((0x80, 0))
    scp.send_scp_request(scp_request(0, 0, 0, SCPCommand.VER, sequence=6))
    assert scp.receive_scp_response()[1] == 6
    with pytest.raises(SpinnmanTimeoutException):
        scp.receive_sdp_message(0.1)


def test_undecodable_replies_raise_invalid_packet(proxy_service: Any, job: SpallocJob) -> None:
    eieio = job.open_eieio_connection(0, 0)
    try:
        eieio.update_tag(3)
        board_of(proxy_service, job).send_from_core(0, 0, 1, 3, b"\x01")
        with pytest.raises(SpinnmanInvalidPacketException):
            eieio.receive_eieio_message(5.0)
    finally:
        eieio.close()


def test_eieio_connection_update_tag_and_receive(proxy_service: Any, job: SpallocJob) -> None:
    eieio = job.open_eieio_connection(0, 0)
    try:
        assert isinstance(eieio, SpallocEIEIOConnection)
        assert eieio.get_receive_method() == eieio.receive_eieio_message
        eieio.update_tag(1)
        board = board_of(proxy_service, job)
        board.send_from_core(0, 0, 3, 1, EVENTS.to_bytes())
        assert eieio.receive_eieio_message(5.0) == EVENTS
        command = EIEIOCommandMessage(6, bytes(10))
        board.send_from_core(1, 1, 2, 1, command.to_bytes())
        assert eieio.receive_eieio_message(5.0) == command
        # without waiting for the reply: the late reply is skipped by receive
        eieio.update_tag(2, do_receive=False)

        def arrived() -> bool:
            try:
                board.send_from_core(0, 0, 3, 2, EVENTS.to_bytes())
            except ValueError:  # the board has not set the tag yet
                return False
            try:
                return eieio.receive_eieio_message(0.5) == EVENTS
            except SpinnmanTimeoutException:
                return False

        eventually(arrived, what="a packet through tag 2")
    finally:
        eieio.close()


def test_eieio_to_core_and_raw(proxy_service: Any, job: SpallocJob) -> None:
    board = board_of(proxy_service, job)
    before = len(board.core_packets)
    eieio = job.open_eieio_connection(0, 0)
    try:
        eieio.send_eieio_message_to_core(EVENTS, 1, 0, 5)
        eventually(lambda: len(board.core_packets) > before, what="the SDP to reach the core")
        message = board.core_packets[-1]
        header = message.header
        assert (header.flags, header.tag, header.dest_port, header.dest_cpu) == (0x07, 0, 1, 5)
        assert (header.src_port, header.src_cpu, header.src_x, header.src_y) == (0, 0, 0, 0)
        assert (header.dest_x, header.dest_y) == (1, 0)
        assert message.data == EVENTS.to_bytes()
        eieio.send_eieio_message(EVENTS)  # raw to the board's port: just must not fail
    finally:
        eieio.close()


def test_eieio_listener(proxy_service: Any, job: SpallocJob) -> None:
    listener = job.open_eieio_listener_connection()
    ip = job.get_connections()[0, 0]
    try:
        assert isinstance(listener, SpallocEIEIOListener)
        assert listener.local_port > 0
        assert listener.local_ip_address.count(".") == 3
        listener.update_tag_by_ip(ip, 4)
        board = board_of(proxy_service, job)
        board.send_from_core(0, 0, 1, 4, EVENTS.to_bytes())
        assert listener.receive_eieio_message(5.0) == EVENTS
        listener.update_tag(0, 0, 5)
        board.send_from_core(0, 0, 1, 5, EVENTS.to_bytes())
        assert listener.receive_eieio_message(5.0) == EVENTS
        # a request to the board's SCP port: the reply comes back to the listener
        ver = scp_request(0, 0, 0, SCPCommand.VER, sequence=321).to_bytes()
        listener.send_to_chip(ver, 0, 0)
        assert SCPResponse.from_bytes(listener.receive(5.0)).sequence == 321
        listener.send_to(ver, (ip, 17893))
        assert SCPResponse.from_bytes(listener.receive(5.0)).sequence == 321
        before = len(board.core_packets)
        listener.send_eieio_message_to_core(EVENTS, 0, 0, 2, ip)
        eventually(lambda: len(board.core_packets) > before, what="the SDP to reach the core")
        with pytest.raises(SpinnmanIOException):
            listener.send(b"nowhere")
        with pytest.raises(SpinnmanInvalidParameterException):
            listener.send_to(b"x", ("10.9.9.9", 17893))
        with pytest.raises(SpinnmanInvalidParameterException):
            listener.update_tag_by_ip("10.9.9.9", 1)
    finally:
        listener.close()


def test_listener_retags_after_reconnection(proxy_service: Any, job: SpallocJob) -> None:
    listener = job.open_eieio_listener_connection()
    proxy = job.get_proxy()  # type: ignore[attr-defined]
    try:
        listener.update_tag(0, 0, 6)
        old_port = listener.local_port
        reconnects = proxy.reconnects
        proxy.drop_websocket()
        eventually(
            lambda: proxy.reconnects > reconnects and listener.channel.channel_id is not None,
            what="the listener to reopen",
        )
        assert listener.local_port != old_port
        board = board_of(proxy_service, job)

        def arrived() -> bool:
            board.send_from_core(0, 0, 1, 6, EVENTS.to_bytes())
            try:
                return listener.receive_eieio_message(0.5) == EVENTS
            except SpinnmanTimeoutException:
                return False

        eventually(arrived, what="a packet through the re-set tag")
    finally:
        listener.close()


def test_udp_listener(job: SpallocJob) -> None:
    listener = job.open_udp_listener_connection()
    try:
        assert isinstance(listener, SpallocUDPListener)
        assert not isinstance(listener, SpallocEIEIOListener)
        assert listener.local_port > 0
        with pytest.raises(SpinnmanTimeoutException):
            listener.receive(0.1)
        listener.send_to_chip(scp_request(0, 0, 0, SCPCommand.VER, sequence=9).to_bytes(), 0, 0)
        assert SCPResponse.from_bytes(listener.receive(5.0)).sequence == 9
        assert "SpallocUDPListener" in repr(listener)
    finally:
        listener.close()
    assert not listener.is_connected()


def test_update_tag_without_answer_times_out(proxy_service: Any, job: SpallocJob) -> None:
    board = board_of(proxy_service, job)
    eieio = job.open_eieio_connection(0, 0)
    board.set_fault(loss=1.0)
    try:
        started = time.monotonic()
        with pytest.raises(SpinnmanTimeoutException):
            eieio.update_tag(7)
        assert time.monotonic() - started < 10
    finally:
        board.set_fault(loss=0.0)
        eieio.close()


# ----------------------------------------------------------------------------- booting


@pytest.fixture(scope="module")
def unbooted_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    service = start_test_service(tmp_path_factory.mktemp("unbooted"), boot=False)
    try:
        yield service
    finally:
        service.stop()


def test_boot_through_the_boot_connection(unbooted_service: Any) -> None:
    with SpallocClient(unbooted_service.url, USER, PASSWORD) as client:
        job = ready_job(client)
        try:
            board = virtual_board(unbooted_service, job.get_connections()[0, 0])
            assert board.powered and not board.booted
            boot = job.connect_for_booting()
            assert isinstance(boot, SpallocBootConnection)
            assert boot.get_receive_method() == boot.receive_boot_message
            with pytest.raises(SpinnmanTimeoutException):
                boot.receive_boot_message(0.1)
            transceiver = Transceiver([job.connect_to_board(0, 0)], boot, boot_timeout=30)
            try:
                version = transceiver.ensure_board_is_ready()
                assert version.name == "SC&MP"
                assert board.booted
            finally:
                transceiver.close()
        finally:
            job.destroy()


def test_flags_of_update_tag_request() -> None:
    from pyspalloc.client.proxy.proxied import update_tag_request

    request = update_tag_request(0, 0, 3)
    assert request.header.flags == SDPFlag.REPLY_EXPECTED_NO_P2P
    assert request.command == SCPCommand.IPTAG
    assert request.arg1 == (1 << 30) | (1 << 28) | (1 << 16) | 3
    assert (request.arg2, request.arg3, request.sequence) == (0, 0, 0)
