"""The Transceiver: board operations routed over a set of connections.

Each chip's requests go through the connection of its board's Ethernet chip once the
machine is known (:meth:`Transceiver.get_machine_details`), else through the root
connection (the one to chip (0, 0), or the first). Each connection carries one SCP
burst at a time; different connections work in parallel from different threads.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager

from pyspalloc.exceptions import (
    SpinnmanInvalidParameterException,
    SpinnmanIOException,
    SpinnmanTimeoutException,
)
from pyspalloc.transceiver import cpu, discovery, memory, router, sdram, tags
from pyspalloc.transceiver.boot import boot_board, wait_until_booted
from pyspalloc.transceiver.boot_image import (
    HOW_TO_GIVE_AN_IMAGE,
    BootImage,
    BootImageSource,
    find_boot_image,
)
from pyspalloc.transceiver.connections import Connection, UDPConnection
from pyspalloc.transceiver.cpu import CPUInfo, Signal
from pyspalloc.transceiver.engine import DEFAULT_OPTIONS, DEFAULT_WINDOW, EngineOptions
from pyspalloc.transceiver.machine_info import MachineInfo, VersionInfo
from pyspalloc.transceiver.router import MulticastRoute, RouterDiagnostics
from pyspalloc.transceiver.tags import IPTag, ReverseIPTag
from pyspalloc.wire.consts import SCP_PORT, CPUState
from pyspalloc.wire.sdp import SDPMessage

__all__ = ["Transceiver"]

#: Seconds to wait for a board to come up after booting it, by default.
BOOT_TIMEOUT = 15.0
#: Tries of CMD_VER before deciding a board needs booting.
BOOT_RETRIES = 3
#: Boots (flood-fill, then wait ``boot_timeout`` for SC&MP) before giving up on a board.
BOOT_ATTEMPTS = 2
#: The transient-tag timeout set when a board is made ready (2.56 s).
READY_TAG_TIMEOUT = 9
#: Host names meaning "this machine" in :meth:`Transceiver.set_ip_tag`.
_LOCAL_NAMES = frozenset({"localhost", ".", "0.0.0.0"})


class Transceiver:
    """Operations on a SpiNNaker machine over one or more board connections.

    Parameters
    ----------
    connections:
        Connections to boards' Ethernet chips (``chip_x``/``chip_y`` say which).
    boot_connection:
        A connection to the root board's boot port, used by :meth:`boot`.
    options:
        SCP engine settings (see :class:`~pyspalloc.transceiver.engine.EngineOptions`);
        by default :data:`~pyspalloc.transceiver.engine.DEFAULT_OPTIONS` with the
        window below.
    window, timeout, retries, min_timeout:
        Change one setting of ``options`` (``None`` keeps it). The window is by default
        the smallest ``preferred_window`` of the connections (32 over a Spalloc proxy),
        or :data:`~pyspalloc.transceiver.engine.DEFAULT_WINDOW` (8) for plain UDP.
    boot_timeout:
        Seconds to wait for a board to come up after booting it.
    boot_image:
        The SC&MP image to boot with (file name or bytes); by default
        ``$PYSPALLOC_BOOT_IMAGE``, else an installed spinnman's ``scamp.boot``, else our
        synthetic image, which boots only virtual boards (see
        :func:`~pyspalloc.transceiver.boot_image.find_boot_image`).
    """

    def __init__(
        self,
        connections: Connection | Sequence[Connection],
        boot_connection: Connection | None = None,
        *,
        options: EngineOptions | None = None,
        window: int | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        min_timeout: float | None = None,
        boot_timeout: float = BOOT_TIMEOUT,
        boot_image: BootImageSource | None = None,
    ) -> None:
        if isinstance(connections, Connection):
            connections = [connections]
        if not connections:
            raise SpinnmanInvalidParameterException("connections", connections, "none given")
        self.connections: list[Connection] = list(connections)
        self.boot_connection = boot_connection
        if options is None:
            preferred = (getattr(c, "preferred_window", DEFAULT_WINDOW) for c in self.connections)
            options = DEFAULT_OPTIONS.changed(window=min(int(w) for w in preferred))
        self.options = options.changed(
            window=window, timeout=timeout, retries=retries, min_timeout=min_timeout
        )
        self.boot_timeout = boot_timeout
        self._boot_image = boot_image
        #: the image of the last boot this transceiver sent, if any
        self.last_boot_image: BootImage | None = None
        self.machine: MachineInfo | None = None
        self._locks: dict[int, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._closed = False

    # ----------------------------------------------------------------- routing

    @property
    def root_connection(self) -> Connection:
        """The connection to the root board: chip (0, 0)'s, or the first."""
        for connection in self.connections:
            if (connection.chip_x, connection.chip_y) == (0, 0):
                return connection
        return self.connections[0]

    def connection_for(self, x: int, y: int) -> Connection:
        """The connection that chip (x, y)'s requests go through."""
        if self.machine is not None and (x, y) != (255, 255):
            eth = self.machine.nearest_ethernet(x, y)
            for connection in self.connections:
                if (connection.chip_x, connection.chip_y) == eth:
                    return connection
        else:
            for connection in self.connections:
                if (connection.chip_x, connection.chip_y) == (x, y):
                    return connection
        return self.root_connection

    @contextmanager
    def _use(self, connection: Connection) -> Iterator[Connection]:
        if self._closed:
            raise SpinnmanIOException("the transceiver is closed")
        with self._locks_lock:
            lock = self._locks.setdefault(id(connection), threading.Lock())
        with lock:
            yield connection

    def _chip(self, x: int, y: int) -> AbstractContextManager[Connection]:
        return self._use(self.connection_for(x, y))

    # ------------------------------------------------------------ board state

    def get_scamp_version(self, x: int = 255, y: int = 255) -> VersionInfo:
        """The SC&MP version of chip (x, y) (default: the root chip)."""
        with self._chip(x, y) as connection:
            return discovery.get_version(connection, x, y, 0, self.options)

    def boot(self) -> VersionInfo:
        """Boot the root board through the boot connection and wait until it answers.

        Raises
        ------
        SpinnmanTimeoutException
            The board did not come up after :data:`BOOT_ATTEMPTS` boots (with our
            synthetic image, the message says how to give a real one).
        """
        if self.boot_connection is None:
            raise SpinnmanIOException("no boot connection: this machine cannot be booted")
        image = find_boot_image(self._boot_image)
        self.last_boot_image = image
        last: SpinnmanTimeoutException | None = None
        for _ in range(BOOT_ATTEMPTS):
            boot_board(self.boot_connection, image=image.data)
            try:
                with self._use(self.root_connection) as connection:
                    return wait_until_booted(connection, self.boot_timeout)
            except SpinnmanTimeoutException as error:
                last = error
        waited = BOOT_ATTEMPTS * self.boot_timeout
        if image.synthetic:
            raise SpinnmanTimeoutException(
                "the board to boot",
                waited,
                f"the board did not come up after {BOOT_ATTEMPTS} boots with pyspalloc's "
                "synthetic SC&MP image, which boots only virtual boards; to boot a real "
                f"board, {HOW_TO_GIVE_AN_IMAGE}",
            )
        raise SpinnmanTimeoutException(
            "the board to boot",
            waited,
            f"the board did not come up after {BOOT_ATTEMPTS} boots with {image.source} "
            f"(last: {last})",
        )

    def ensure_board_is_ready(self) -> VersionInfo:
        """Make sure the machine runs SC&MP 4: VER, boot if silent, then TTO and INFO.

        Raises
        ------
        SpinnmanTimeoutException
            The board did not answer (and could not be booted).
        SpinnmanIOException
            The board runs something other than SC&MP 4.
        """
        options = self.options.changed(window=1, retries=BOOT_RETRIES).once()
        try:
            with self._use(self.root_connection) as connection:
                version = discovery.get_version(connection, 255, 255, 0, options)
        except SpinnmanTimeoutException:
            if self.boot_connection is None:
                raise
            version = self.boot()
        if (version.x, version.y) == (255, 255):
            with self._use(self.root_connection) as connection:
                version = wait_until_booted(connection, self.boot_timeout)
        if version.name != "SC&MP" or version.version[0] != 4:
            raise SpinnmanIOException(
                f"the board runs {version.name} {version.version_string}, not SC&MP 4"
            )
        for board in self.connections:
            with self._use(board) as connection:
                tags.set_ip_tag_timeout(
                    connection, board.chip_x, board.chip_y, READY_TAG_TIMEOUT, self.options
                )
                discovery.get_chip_summary(connection, board.chip_x, board.chip_y, self.options)
        return version

    def get_machine_details(self) -> MachineInfo:
        """Discover the machine (dimensions, chips, cores, links) and route by it."""
        with self._use(self.root_connection) as connection:
            machine = discovery.get_machine_details(connection, self.options)
        self.machine = machine
        return machine

    def _known_machine(self) -> MachineInfo:
        return self.machine if self.machine is not None else self.get_machine_details()

    def discover_scamp_connections(self) -> list[Connection]:
        """Open a UDP connection to every Ethernet chip that has none yet.

        Only done when this transceiver works over plain UDP; returns the new ones.
        """
        if not all(isinstance(c, UDPConnection) for c in self.connections):
            return []
        machine = self._known_machine()
        have = {(c.chip_x, c.chip_y) for c in self.connections}
        added: list[Connection] = []
        for chip in machine.ethernet_chips:
            if (chip.x, chip.y) in have or chip.ethernet_ip is None:
                continue
            connection = UDPConnection(chip.ethernet_ip, SCP_PORT, chip_x=chip.x, chip_y=chip.y)
            try:
                summary = discovery.get_chip_summary(connection, chip.x, chip.y, self.options)
            except Exception:
                connection.close()
                continue
            if not summary.ethernet_up:
                connection.close()
                continue
            self.connections.append(connection)
            added.append(connection)
        return added

    # ----------------------------------------------------------------- memory

    def read_memory(
        self, x: int, y: int, base_address: int, length: int, cpu: int = 0
    ) -> bytearray:
        """Read ``length`` bytes at ``base_address`` of chip (x, y)."""
        with self._chip(x, y) as connection:
            return memory.read_memory(connection, x, y, base_address, length, cpu, self.options)

    def write_memory(
        self,
        x: int,
        y: int,
        base_address: int,
        data: memory.WriteData,
        *,
        n_bytes: int | None = None,
        offset: int = 0,
        cpu: int = 0,
        get_sum: bool = False,
    ) -> tuple[int, int]:
        """Write ``data`` at ``base_address`` of chip (x, y); see
        :func:`pyspalloc.transceiver.memory.write_memory`.

        Returns
        -------
        tuple[int, int]
            Bytes written and the checksum (0 unless ``get_sum``).
        """
        with self._chip(x, y) as connection:
            return memory.write_memory(
                connection,
                x,
                y,
                base_address,
                data,
                n_bytes=n_bytes,
                offset=offset,
                cpu=cpu,
                get_sum=get_sum,
                options=self.options,
            )

    def read_word(self, x: int, y: int, base_address: int, cpu: int = 0) -> int:
        """Read one little-endian word."""
        with self._chip(x, y) as connection:
            return memory.read_word(connection, x, y, base_address, cpu, self.options)

    def write_word(self, x: int, y: int, base_address: int, value: int, cpu: int = 0) -> None:
        """Write one little-endian word."""
        with self._chip(x, y) as connection:
            memory.write_word(connection, x, y, base_address, value, cpu, self.options)

    def fill_memory(self, x: int, y: int, base_address: int, word: int, length: int) -> None:
        """Fill ``length`` bytes (whole words) at ``base_address`` with ``word``."""
        with self._chip(x, y) as connection:
            memory.fill_memory(connection, x, y, base_address, word, length, self.options)

    def malloc_sdram(self, x: int, y: int, size: int, app_id: int, tag: int = 0) -> int:
        """Allocate SDRAM on chip (x, y); return its address."""
        with self._chip(x, y) as connection:
            return sdram.malloc_sdram(connection, x, y, size, app_id, tag, self.options)

    def free_sdram(self, x: int, y: int, base_address: int) -> None:
        """Free an SDRAM block on chip (x, y)."""
        with self._chip(x, y) as connection:
            sdram.free_sdram(connection, x, y, base_address, self.options)

    def free_sdram_by_app_id(self, x: int, y: int, app_id: int) -> int:
        """Free all of ``app_id``'s SDRAM on chip (x, y); return the number of blocks."""
        with self._chip(x, y) as connection:
            return sdram.free_sdram_by_app_id(connection, x, y, app_id, self.options)

    def get_clock_drift(self, x: int, y: int) -> float:
        """Chip (x, y)'s clock drift."""
        with self._chip(x, y) as connection:
            return sdram.get_clock_drift(connection, x, y, self.options)

    # ------------------------------------------------------------ cores, apps

    def get_cpu_infos(
        self,
        cores: Iterable[tuple[int, int, int]] | None = None,
        states: Iterable[CPUState] | None = None,
    ) -> list[CPUInfo]:
        """VCPU information of ``cores`` (x, y, p); all cores of the machine if None.

        ``states`` keeps only cores in those states.
        """
        if cores is None:
            machine = self._known_machine()
            cores = [(c.x, c.y, p) for c in machine for p in range(c.n_cores)]
        groups: dict[int, tuple[Connection, list[tuple[int, int, int]]]] = {}
        for core in cores:
            connection = self.connection_for(core[0], core[1])
            groups.setdefault(id(connection), (connection, []))[1].append(core)
        infos: list[CPUInfo] = []
        for connection, group in groups.values():
            with self._use(connection):
                infos.extend(cpu.get_cpu_infos(connection, group, self.options))
        if states is not None:
            wanted = set(states)
            infos = [info for info in infos if info.state in wanted]
        return infos

    def get_core_state_count(self, app_id: int, state: CPUState | int) -> int:
        """Cores of ``app_id`` in ``state`` over the whole machine (one COUNT per board)."""
        if self.machine is not None:
            boards = [(c.x, c.y) for c in self.machine.ethernet_chips]
        else:
            boards = [(c.chip_x, c.chip_y) for c in self.connections]
        total = 0
        for x, y in boards:
            with self._chip(x, y) as connection:
                total += cpu.get_core_state_count(connection, x, y, app_id, state, self.options)
        return total

    def send_signal(self, app_id: int, signal: Signal) -> None:
        """Send ``signal`` to every core of ``app_id``."""
        with self._use(self.root_connection) as connection:
            cpu.send_signal(connection, app_id, signal, self.options)

    def start_application(
        self, x: int, y: int, cores: Iterable[int], app_id: int, wait: bool = False
    ) -> None:
        """Start the executable at 0x67800000 of chip (x, y) on ``cores`` as ``app_id``."""
        with self._chip(x, y) as connection:
            cpu.start_application(connection, x, y, cores, app_id, wait, self.options)

    def stop_application(self, app_id: int) -> None:
        """Stop ``app_id`` everywhere."""
        with self._use(self.root_connection) as connection:
            cpu.stop_application(connection, app_id, self.options)

    def send_sdp_message(self, message: SDPMessage, connection: Connection | None = None) -> None:
        """Send an SDP message (no reply is awaited) towards its destination chip."""
        target = connection or self.connection_for(message.header.dest_x, message.header.dest_y)
        target.send(message.to_bytes())

    # --------------------------------------------------------------- IP tags

    def _boards(self, x: int | None, y: int | None) -> list[tuple[Connection, int, int]]:
        """(connection, ethernet x, ethernet y) for one board, or every connection."""
        if x is None or y is None:
            return [(c, c.chip_x, c.chip_y) for c in self.connections]
        if self.machine is not None:
            x, y = self.machine.nearest_ethernet(x, y)
        return [(self.connection_for(x, y), x, y)]

    def set_ip_tag(
        self,
        tag: int,
        host: str | None,
        port: int,
        strip_sdp: bool = True,
        x: int | None = None,
        y: int | None = None,
        use_sender: bool = False,
    ) -> None:
        """Point ``tag`` at ``host:port`` on the board of chip (x, y), or on every board.

        ``host`` None means "whoever sends this request"; ``"localhost"`` and
        ``"0.0.0.0"`` mean this machine's address as the board sees it.
        """
        for connection, ex, ey in self._boards(x, y):
            address = host
            if address in _LOCAL_NAMES:
                address = getattr(connection, "local_ip", None)
                if address in (None, "0.0.0.0"):
                    address = None
            elif address is not None:
                try:
                    address = socket.gethostbyname(address)
                except OSError as error:
                    raise SpinnmanInvalidParameterException("host", host, str(error)) from None
            with self._use(connection):
                tags.set_ip_tag(
                    connection,
                    ex,
                    ey,
                    tag,
                    address,
                    port,
                    strip_sdp=strip_sdp,
                    use_sender=use_sender,
                    options=self.options,
                )

    def set_reverse_ip_tag(
        self, tag: int, port: int, x: int, y: int, p: int, sdp_port: int = 1
    ) -> None:
        """Deliver UDP ``port`` of (x, y)'s board to core (x, y, p) on ``sdp_port``."""
        ((connection, ex, ey),) = self._boards(x, y)
        with self._use(connection):
            tags.set_reverse_ip_tag(connection, ex, ey, tag, port, x, y, p, sdp_port, self.options)

    def clear_ip_tag(self, tag: int, x: int | None = None, y: int | None = None) -> None:
        """Free ``tag`` on the board of chip (x, y), or on every board."""
        for connection, ex, ey in self._boards(x, y):
            with self._use(connection):
                tags.clear_ip_tag(connection, ex, ey, tag, self.options)

    def get_tags(self) -> list[IPTag | ReverseIPTag]:
        """The tags in use on every board this transceiver has a connection to."""
        found: list[IPTag | ReverseIPTag] = []
        for connection, ex, ey in self._boards(None, None):
            with self._use(connection):
                found.extend(tags.get_tags(connection, ex, ey, self.options))
        return found

    def set_ip_tag_timeout(self, timeout_code: int) -> None:
        """Set every board's transient-tag timeout code."""
        for connection, ex, ey in self._boards(None, None):
            with self._use(connection):
                tags.set_ip_tag_timeout(connection, ex, ey, timeout_code, self.options)

    def update_tag_to_this_connection(self, tag: int, connection: Connection) -> None:
        """Point ``tag`` at ``connection``'s own address (the request is sent through it).

        ``connection`` must send to a board's SCP port; its ``chip_x``/``chip_y`` name
        the board's Ethernet chip.
        """
        with self._use(connection):
            tags.update_tag_to_connection(connection, tag, self.options)

    # ---------------------------------------------------------------- router

    def clear_router_diagnostic_counters(self, x: int, y: int) -> None:
        """Reset and enable chip (x, y)'s diagnostic counters."""
        with self._chip(x, y) as connection:
            router.clear_router_diagnostic_counters(connection, x, y, self.options)

    def get_router_diagnostics(self, x: int, y: int) -> RouterDiagnostics:
        """Chip (x, y)'s router diagnostics."""
        with self._chip(x, y) as connection:
            return router.get_router_diagnostics(connection, x, y, self.options)

    def set_router_diagnostic_filter(self, x: int, y: int, position: int, word: int) -> None:
        """Set diagnostic filter ``position`` of chip (x, y)."""
        with self._chip(x, y) as connection:
            router.set_router_diagnostic_filter(connection, x, y, position, word, self.options)

    def clear_multicast_routes(self, x: int, y: int) -> None:
        """Empty chip (x, y)'s multicast table."""
        with self._chip(x, y) as connection:
            router.clear_multicast_routes(connection, x, y, self.options)

    def load_multicast_routes(
        self, x: int, y: int, routes: list[MulticastRoute], app_id: int = 0
    ) -> None:
        """Add ``routes`` to chip (x, y)'s multicast table."""
        with self._chip(x, y) as connection:
            router.load_multicast_routes(connection, x, y, routes, app_id, self.options)

    def get_multicast_routes(
        self, x: int, y: int, app_id: int | None = None
    ) -> list[MulticastRoute]:
        """The multicast routes in use on chip (x, y)."""
        with self._chip(x, y) as connection:
            return router.get_multicast_routes(connection, x, y, app_id, self.options)

    # ------------------------------------------------------------------ close

    def close(self) -> None:
        """Close every connection (nothing is sent to the boards)."""
        if self._closed:
            return
        self._closed = True
        for connection in self.connections:
            connection.close()
        if self.boot_connection is not None:
            self.boot_connection.close()

    def __enter__(self) -> Transceiver:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
