"""Proxy websocket fuzz: random and mutated frames against a live service.

``python -m bench.proxy_fuzz [--frames 100000] [--seed 1] [--max-seconds 900]``

Starts (in this process) a virtual spin24 machine on a free ``127.1.N.0`` base and the
service with the BMP controller on a SQLite file, makes two one-board jobs (alice's, the
fuzz target, and bob's, the bystander), then:

* bob's thread does SCP VER through his own websocket the whole time, one every ~20 ms;
* alice's websocket gets ``--frames`` frames, in batches: random bytes, mutated valid
  frames, unknown opcodes, bad and foreign channel ids, MSG to closed channels, oversized
  payloads, OPEN to chips outside the job, short frames (these close the websocket with
  1007, and the fuzzer reconnects).

Every frame's effect is predicted from web-api.md §6.3 (and our documented choice of an
ERROR frame, not a closed websocket, for a bad MSG_TO target): each batch ends with a
sentinel frame (unknown opcode 99), and the replies received before the sentinel's
ERROR must be exactly the predicted ones, in order (correlation id and kind). Short
frames must close with 1007. At the end the process's UDP socket count (from /proc) must
be back to what it was before alice's first websocket, and bob must have had every VER
answered.

The test ``tests/reliability/test_proxy_fuzz.py`` runs :class:`ProxyFuzzer` for 10,000
frames; this script runs the full 100,000 and prints one JSON line of results.
"""

from __future__ import annotations

import argparse
import json
import random
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection

from pyspalloc.wire.consts import BOOT_PORT, SCP_PORT
from pyspalloc.wire.errors import WireFormatError
from pyspalloc.wire.proxy import (
    CloseReply,
    ErrorReply,
    Message,
    OpenReply,
    OpenUnboundReply,
    decode_server_frame,
)
from pyspalloc.wire.scp import SCPCommand, SCPResponse, SCPResult, scp_request

OPEN, CLOSE, MSG, OPEN_UNBOUND, MSG_TO, ERROR = range(6)
SENTINEL_OPCODE = 99
MAX_DATAGRAM = 65507
U32 = 0xFFFFFFFF


@dataclass
class FuzzStats:
    """What a fuzz run did and saw."""

    frames: int = 0
    batches: int = 0
    error_replies: int = 0
    other_replies: int = 0
    silent: int = 0
    closes_1007: int = 0
    reconnects: int = 0
    board_messages: int = 0
    bytes_sent: int = 0
    mismatches: list[str] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["mismatches"] = self.mismatches[:20]
        out["mismatch_count"] = len(self.mismatches)
        return out


@dataclass(frozen=True)
class Expect:
    """The predicted effect of one frame: no reply, a reply, or a 1007 close."""

    what: str  # "none" | "error" | "open" | "close" | "unbound" | "close1007"
    correlation: int = 0


def _words(data: bytes, count: int) -> tuple[int, ...]:
    return struct.unpack_from(f"<{count}I", data)


class ProxyFuzzer:
    """Sends fuzz frames over one proxy websocket at a time and checks every answer.

    Parameters
    ----------
    connect:
        Opens a fresh proxy websocket of the target job.
    boards:
        The job's job-relative Ethernet chips (the only OPEN / MSG_TO targets allowed).
    rng:
        Source of randomness (seeded for repeatable runs).
    batch:
        Frames sent before each sentinel.
    """

    def __init__(
        self,
        connect: Callable[[], ClientConnection],
        boards: set[tuple[int, int]],
        rng: random.Random,
        batch: int = 250,
    ) -> None:
        self.connect = connect
        self.boards = boards
        self.rng = rng
        self.batch = batch
        self.stats = FuzzStats()
        self.ws: ClientConnection | None = None
        #: this websocket's open channels: id -> bound?
        self.channels: dict[int, bool] = {}
        self.closed_ids: list[int] = []
        self._corr = 0x4000_0000  # far from channel ids, which MSG_TO errors echo
        self._sentinel = 0
        self._batch_frames: list[bytes] = []

    # ---- connection ----------------------------------------------------------------
    def _fresh(self) -> ClientConnection:
        if self.ws is not None:
            try:
                self.ws.close()
            except Exception:
                pass
        self.ws = self.connect()
        self.channels = {}
        self._ensure_channels()
        return self.ws

    def _call(self, frame: bytes) -> Any:
        """Send a request; return the reply with its correlation id (word 1)."""
        assert self.ws is not None
        corr = _words(frame, 2)[1]
        self.ws.send(frame)
        for _ in range(10_000):
            data = self.ws.recv(timeout=10)
            assert isinstance(data, bytes)
            reply = decode_server_frame(data)
            if isinstance(reply, Message):
                self.stats.board_messages += 1
                continue
            if getattr(reply, "correlation_id", None) != corr:
                self.stats.mismatches.append(f"late or stray reply {reply!r}")
                continue
            return reply
        raise AssertionError("no reply among 10000 frames")

    def _ensure_channels(self) -> None:
        """Keep one bound channel (to the root's SCP port) and one unbound channel."""
        if not any(self.channels.values()):
            reply = self._call(struct.pack("<5I", OPEN, self._corr_id(), 0, 0, SCP_PORT))
            assert isinstance(reply, OpenReply), reply
            self.channels[reply.channel_id] = True
        if all(self.channels.values()):
            reply = self._call(struct.pack("<2I", OPEN_UNBOUND, self._corr_id()))
            assert isinstance(reply, OpenUnboundReply), reply
            self.channels[reply.channel_id] = False

    # ---- frame generation ----------------------------------------------------------
    def _corr_id(self) -> int:
        self._corr = (self._corr + 1) & U32
        return self._corr

    def _any_channel(self) -> int:
        r = self.rng
        choice = r.random()
        if choice < 0.3 and self.channels:
            return r.choice(list(self.channels))
        if choice < 0.5 and self.closed_ids:
            return r.choice(self.closed_ids)
        if choice < 0.6:
            return r.choice([0, U32, 1, 2])
        return r.randrange(0, 1 << 32)

    def _xy(self) -> tuple[int, int]:
        r = self.rng
        if r.random() < 0.4:
            return r.choice(sorted(self.boards))
        pick = [0, 1, 4, 8, 12, 255, 256, U32, r.randrange(1 << 32)]
        return r.choice(pick), r.choice(pick)

    def _port(self) -> int:
        r = self.rng
        return r.choice([0, SCP_PORT, SCP_PORT, BOOT_PORT, 65535, 65536, U32, r.randrange(1 << 32)])

    def _payload(self) -> bytes:
        r = self.rng
        size = r.choice([0, 1, 2, 16, 24, 64, 257, 300, 1024])
        if r.random() < 0.02:
            size = r.choice([MAX_DATAGRAM - 1, MAX_DATAGRAM, MAX_DATAGRAM + 1, 200_000])
        if r.random() < 0.3:
            return scp_request(0, 0, 0, SCPCommand.VER, sequence=r.randrange(1 << 16)).to_bytes()
        return r.randbytes(size)

    def _valid(self) -> tuple[str, bytes]:
        r = self.rng
        kind = r.choice(["open", "close", "msg", "unbound", "msgto"])
        if kind == "open":
            x, y = self._xy()
            return kind, struct.pack("<5I", OPEN, self._corr_id(), x, y, self._port())
        if kind == "close":
            return kind, struct.pack("<3I", CLOSE, self._corr_id(), self._any_channel())
        if kind == "msg":
            return kind, struct.pack("<2I", MSG, self._any_channel()) + self._payload()
        if kind == "unbound":
            return kind, struct.pack("<2I", OPEN_UNBOUND, self._corr_id())
        x, y = self._xy()
        head = struct.pack("<5I", MSG_TO, self._any_channel(), x, y, self._port())
        return kind, head + self._payload()

    def _mutate(self, data: bytes) -> bytes:
        r = self.rng
        out = bytearray(data)
        for _ in range(r.randint(1, 3)):
            op = r.randrange(5)
            if op == 0 and out:  # flip a byte
                out[r.randrange(len(out))] ^= 1 << r.randrange(8)
            elif op == 1:  # truncate (never below 8: short frames are their own kind)
                out = out[: max(8, r.randrange(len(out) + 1))]
            elif op == 2:  # extend
                out += r.randbytes(r.choice([1, 3, 4, 12, 100]))
            elif op == 3 and len(out) >= 8:  # opcode from anywhere
                out[0:4] = struct.pack("<I", r.choice([5, 6, 7, 255, 1 << 31, U32]))
            elif op == 4 and len(out) >= 8:  # random word
                i = 4 * r.randrange(len(out) // 4)
                out[i : i + 4] = r.randbytes(4)
        return bytes(out if len(out) >= 8 else out + bytes(8 - len(out)))

    def next_frame(self) -> tuple[str, bytes]:
        """One fuzz frame (never shorter than 8 bytes) and a name for its kind."""
        r = self.rng
        roll = r.random()
        if roll < 0.25:
            return "random", r.randbytes(r.choice([8, 9, 11, 12, 16, 19, 20, 21, 24, 40, 300]))
        if roll < 0.55:
            kind, data = self._valid()
            return "mutated-" + kind, self._mutate(data)
        if roll < 0.62:
            opcode = r.choice([ERROR, 6, 7, 100, 1 << 16, 1 << 31, U32, r.randrange(6, 1 << 32)])
            return "bad-opcode", struct.pack("<2I", opcode, self._corr_id()) + r.randbytes(
                r.choice([0, 4, 12])
            )
        if roll < 0.70 and self.closed_ids:
            return "msg-closed", struct.pack("<2I", MSG, r.choice(self.closed_ids)) + (
                self._payload()
            )
        if roll < 0.76:
            big = r.choice([MAX_DATAGRAM + 1, 70_000, 200_000])
            ch = self._any_channel()
            if r.random() < 0.5:
                return "oversized-msg", struct.pack("<2I", MSG, ch) + bytes(big)
            x, y = self._xy()
            return "oversized-msgto", struct.pack("<5I", MSG_TO, ch, x, y, SCP_PORT) + bytes(big)
        kind, data = self._valid()
        return "well-formed-" + kind, data

    # ---- the model (web-api.md §6.3, with ERROR replies for bad MSG_TO targets) -------
    def expect(self, data: bytes) -> Expect:
        """Predict what the service does with ``data`` (and update the channel model)."""
        if len(data) < 8:
            return Expect("close1007")
        opcode, word1 = _words(data, 2)
        if opcode == MSG:
            return Expect("none")
        if opcode == MSG_TO:
            if len(data) < 20:
                return Expect("error", word1)
            _, channel, x, y, port = _words(data, 5)
            bound = self.channels.get(channel)
            if bound is None:
                return Expect("none")
            if bound:
                return Expect("error", channel)
            if (x, y) not in self.boards or not 1 <= port <= 65535:
                return Expect("error", channel)
            if len(data) > 20 + MAX_DATAGRAM:
                return Expect("error", channel)
            return Expect("none")
        if opcode == OPEN:
            if len(data) != 20:
                return Expect("error", word1)
            _, _, x, y, port = _words(data, 5)
            if (x, y) not in self.boards or not 1 <= port <= 65535:
                return Expect("error", word1)
            return Expect("open", word1)
        if opcode == CLOSE:
            if len(data) != 12:
                return Expect("error", word1)
            channel = _words(data, 3)[2]
            if channel in self.channels:
                del self.channels[channel]
                self.closed_ids.append(channel)
            return Expect("close", word1)
        if opcode == OPEN_UNBOUND:
            if len(data) != 8:
                return Expect("error", word1)
            return Expect("unbound", word1)
        return Expect("error", word1)

    # ---- running -------------------------------------------------------------------
    def run(self, frames: int, max_seconds: float, short_every: int = 2000) -> FuzzStats:
        """Send ``frames`` fuzz frames (or stop at ``max_seconds``); check every answer."""
        stats = self.stats
        start = time.monotonic()
        deadline = start + max_seconds
        self._fresh()
        while stats.frames < frames and time.monotonic() < deadline:
            if stats.frames and stats.frames % short_every < self.batch and stats.batches % 8 == 7:
                self._short_frame()
            self._one_batch(min(self.batch, frames - stats.frames))
        if self.ws is not None:
            self.ws.close()
            self.ws = None
        stats.seconds = time.monotonic() - start
        return stats

    def _short_frame(self) -> None:
        """A frame shorter than 8 bytes: the websocket must close with 1007."""
        assert self.ws is not None
        stats = self.stats
        self.ws.send(self.rng.randbytes(self.rng.randrange(0, 8)))
        stats.frames += 1
        stats.kinds["short"] = stats.kinds.get("short", 0) + 1
        code = None
        try:
            for _ in range(10_000):
                self.ws.recv(timeout=10)
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd is not None else None
        if code == 1007:
            stats.closes_1007 += 1
        else:
            stats.mismatches.append(f"short frame: close code {code}, expected 1007")
        stats.reconnects += 1
        self._fresh()

    def _one_batch(self, size: int) -> None:
        assert self.ws is not None
        stats = self.stats
        expected: list[Expect] = []
        self._batch_frames = []
        sent = 0
        for _ in range(size):
            kind, data = self.next_frame()
            stats.kinds[kind] = stats.kinds.get(kind, 0) + 1
            what = self.expect(data)
            self.ws.send(data)
            self._batch_frames.append(data)
            sent += 1
            stats.bytes_sent += len(data)
            if what.what == "none":
                stats.silent += 1
            else:
                expected.append(what)
            if what.what in ("open", "unbound"):
                break  # learn the new channel's id before predicting more frames
        stats.frames += sent
        # sentinels live apart from request ids, which bit-flip mutations may hit
        self._sentinel = (self._sentinel + 1) & 0xFFFF
        sentinel = 0xA5A5_0000 | self._sentinel
        self.ws.send(struct.pack("<2I", SENTINEL_OPCODE, sentinel))
        self._check_replies(expected, sentinel)
        stats.batches += 1
        # close what the batch opened; keep the two standing channels
        extra = [c for c in self.channels if c not in self._standing()]
        for channel in extra:
            reply = self._call(struct.pack("<3I", CLOSE, self._corr_id(), channel))
            if not (isinstance(reply, CloseReply) and reply.channel_id == channel):
                stats.mismatches.append(f"close of channel {channel}: {reply!r}")
            del self.channels[channel]
            self.closed_ids.append(channel)
        self.closed_ids = self.closed_ids[-50:]
        self._ensure_channels()

    def _standing(self) -> set[int]:
        bound = [c for c, b in self.channels.items() if b]
        unbound = [c for c, b in self.channels.items() if not b]
        return set(bound[:1] + unbound[:1])

    def _check_replies(self, expected: list[Expect], sentinel: int) -> None:
        assert self.ws is not None
        stats = self.stats
        got: list[Any] = []
        for _ in range(len(expected) + 100_000):
            data = self.ws.recv(timeout=15)
            assert isinstance(data, bytes)
            try:
                frame = decode_server_frame(data)
            except WireFormatError as error:
                stats.mismatches.append(f"undecodable server frame {data[:16]!r}: {error}")
                continue
            if isinstance(frame, Message):
                stats.board_messages += 1
                continue
            if isinstance(frame, ErrorReply) and frame.correlation_id == sentinel:
                break
            got.append(frame)
        else:
            stats.mismatches.append("sentinel never answered")
        if len(got) != len(expected):
            stats.mismatches.append(
                f"{len(got)} replies for {len(expected)} expected: {expected} {got}"
                f" sentinel {sentinel} frames {[d[:24].hex() for d in self._batch_frames]}"
            )
        for want, frame in zip(expected, got, strict=False):
            corr = getattr(frame, "correlation_id", None)
            if isinstance(frame, ErrorReply):
                stats.error_replies += 1
                ok = want.what == "error" or (
                    want.what == "open" and "cannot open" in frame.message
                )
            else:
                stats.other_replies += 1
                ok = (
                    (want.what == "open" and isinstance(frame, OpenReply))
                    or (want.what == "close" and isinstance(frame, CloseReply))
                    or (want.what == "unbound" and isinstance(frame, OpenUnboundReply))
                )
                if isinstance(frame, OpenReply):
                    self.channels[frame.channel_id] = True
                elif isinstance(frame, OpenUnboundReply):
                    self.channels[frame.channel_id] = False
            if not ok or corr != want.correlation:
                stats.mismatches.append(f"expected {want}, got {frame!r}")


class VerPinger:
    """A bystander: SCP VER through its own websocket, over and over, in a thread."""

    def __init__(self, connect: Callable[[], ClientConnection], period: float = 0.02) -> None:
        self.connect = connect
        self.period = period
        self.ok = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> VerPinger:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        try:
            with self.connect() as ws:
                ws.send(struct.pack("<5I", OPEN, 7, 0, 0, SCP_PORT))
                reply = decode_server_frame(ws.recv(timeout=10))  # type: ignore[arg-type]
                if not isinstance(reply, OpenReply):
                    self.failures.append(f"open: {reply!r}")
                    return
                channel = reply.channel_id
                sequence = 0
                for _ in range(1_000_000):
                    if self._stop.is_set():
                        break
                    sequence = (sequence + 1) & 0xFFFF
                    request = scp_request(0, 0, 0, SCPCommand.VER, sequence=sequence)
                    ws.send(Message(channel, request.to_bytes()).to_bytes())
                    frame = decode_server_frame(ws.recv(timeout=5))  # type: ignore[arg-type]
                    if not isinstance(frame, Message):
                        self.failures.append(f"VER {sequence}: {frame!r}")
                        continue
                    response = SCPResponse.from_bytes(frame.payload)
                    if response.result != SCPResult.RC_OK or response.sequence != sequence:
                        self.failures.append(f"VER {sequence}: {response!r}")
                    elif b"SC&MP" not in response.payload:
                        self.failures.append(f"VER {sequence}: payload {response.payload!r}")
                    else:
                        self.ok += 1
                    self._stop.wait(self.period)
        except Exception as error:
            self.failures.append(f"bystander failed: {error!r}")


def main() -> None:
    """Run the fuzz against an in-process service and virtual machine; print JSON."""
    import tempfile
    from pathlib import Path

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-seconds", type=float, default=900.0)
    args = parser.parse_args()

    from tests.reliability.support import open_ws, udp_socket_count
    from tests.support.addresses import free_virtual_base
    from tests.support.http_client import login
    from tests.support.virtual_machines import FAST_BMP
    from tests.support.waiting import wait_for

    from pyspalloc.geometry import builtin_machine
    from pyspalloc.server.auth import hash_password
    from pyspalloc.server.bmp_control import BMPMachineController
    from pyspalloc.server.config import ServiceConfig
    from pyspalloc.server.runner import start_service
    from pyspalloc.server.store import Store, TrustLevel
    from pyspalloc.virtual import VirtualMachine

    with tempfile.TemporaryDirectory(prefix="proxy-fuzz-") as tmp:
        db = f"sqlite:///{Path(tmp) / 'spalloc.sqlite3'}"
        store = Store(db)
        for name, pw in (("alice", "alice-pw-1"), ("bob", "bob-pw-2")):
            store.create_user(name, hash_password(pw), TrustLevel.USER)
        store.close()
        base = free_virtual_base()
        with VirtualMachine(builtin_machine("spin24", base)):
            config = ServiceConfig(
                host="127.0.0.1", port=0, data_dir=Path(tmp), database=db,
                machines=["spin24"], virtual_address_base=base,
                create_admin=False, allocator_period=0.5,
            )  # fmt: skip
            with start_service(config, controller=BMPMachineController(FAST_BMP)) as svc:
                alice, bob = login(svc, "alice"), login(svc, "bob")
                _, job_a = alice.ready_job(**{"num-boards": 1})
                _, job_b = bob.ready_job(**{"num-boards": 1})
                with VerPinger(lambda: open_ws(bob, job_b["proxy-ref"])) as pinger:
                    wait_for(lambda: pinger.ok > 0, 20)
                    before = udp_socket_count()
                    fuzzer = ProxyFuzzer(
                        lambda: open_ws(alice, job_a["proxy-ref"]), {(0, 0)},
                        random.Random(args.seed),
                    )  # fmt: skip
                    stats = fuzzer.run(args.frames, args.max_seconds)
                    after = wait_for(lambda: (n := udp_socket_count()) == before and n + 1, 15) - 1
                out = stats.as_dict()
                out.update(
                    udp_sockets_before=before, udp_sockets_after=after,
                    bystander_ver_ok=pinger.ok, bystander_failures=pinger.failures[:10],
                    seed=args.seed,
                )  # fmt: skip
                print(json.dumps(out))


if __name__ == "__main__":
    main()
