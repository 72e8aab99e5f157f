"""A Spalloc job reached through the REST API (spinnman's ``_SpallocJob``).

The proxy modules are imported lazily: a job opens one
:class:`~pyspalloc.client.proxy.connection.ProxyConnection` (``job.get_proxy()``) on
first use and wraps its channels in the classes of
:mod:`pyspalloc.client.proxy.connections` and :mod:`pyspalloc.client.proxy.listeners`;
:mod:`pyspalloc.client.transceiver` builds ``SpallocTransceiver(job)``.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pyspalloc.client.description import JobAllocation, JobDescription, job_id_of
from pyspalloc.client.job import SpallocJob
from pyspalloc.client.keepalive import KeepaliveThread
from pyspalloc.client.session import Session, SessionAware, SpallocHTTPError
from pyspalloc.client.state import SpallocState
from pyspalloc.client.utils import join_url
from pyspalloc.exceptions import (
    SpallocBoardUnavailableException,
    SpallocException,
    SpinnmanIOException,
    SpinnmanTimeoutException,
)
from pyspalloc.wire.consts import BOOT_PORT, SCP_PORT

if TYPE_CHECKING:
    from pyspalloc.client.proxy.connection import ProxyConnection
    from pyspalloc.client.proxy.connections import (
        SpallocBootConnection,
        SpallocEIEIOConnection,
        SpallocSCPConnection,
    )
    from pyspalloc.client.proxy.listeners import SpallocEIEIOListener, SpallocUDPListener
    from pyspalloc.client.transceiver import SpallocTransceiver
    from pyspalloc.transceiver.boot_image import BootImageSource

#: HTTP timeout of one long poll (the service holds it for up to 30 s)
LONG_POLL_TIMEOUT = 45.0
#: seconds a job may stay QUEUED in ``wait_until_ready()`` (spinnman's
#: ``spalloc_queue_time``); ``None`` waits for ever
QUEUE_TIME = 300.0
#: seconds a job for a specific board may stay QUEUED in ``wait_until_ready()``
#: (spinnman polls three times, five seconds apart)
BOARD_QUEUE_TIME = 15.0
#: failed polls in a row (service unreachable) before a wait gives up; with the
#: back-off between polls this rides out about 20 s of outage
MAX_OUTAGES = 8


class _SpallocJob(SessionAware, SpallocJob):
    """A job reached through the REST API.

    Parameters
    ----------
    session:
        The session to use.
    job_url:
        The job's URL.
    """

    def __init__(
        self,
        session: Session,
        job_url: str,
        board: str | None = None,
        queue_time: float | None = QUEUE_TIME,
    ):
        super().__init__(session, job_url)
        #: the specific board asked for, described for messages (``None``: any boards)
        self.board = board
        #: seconds ``wait_until_ready()`` lets the job stay QUEUED (``None``: for ever);
        #: a job for a specific board gets at most :data:`BOARD_QUEUE_TIME`
        self.queue_time = queue_time
        self._last_state: SpallocState | None = None
        self._root_host: str | None = None
        self._destroy_lock = threading.Lock()
        self._destroyed = False
        self._machine_url = join_url(self._url, "machine")
        self._chip_url = join_url(self._url, "chip")
        self._memory_url = join_url(self._url, "memory")
        self._router_url = join_url(self._url, "router")
        self._keepalive: KeepaliveThread | None = None
        self._proxy: ProxyConnection | None = None
        self._proxy_lock = threading.Lock()
        self._boards: dict[tuple[int, int], str] = {}

    # ------------------------------------------------------------ introspection

    @property
    def url(self) -> str:
        """The job's URL (ends in ``/``)."""
        return self._url

    @property
    def session(self) -> Session:
        """The session this job talks through."""
        return self._session

    @property
    def job_id(self) -> int | None:
        """The job's id (the last segment of its URL), if numeric."""
        return job_id_of(self._url)

    @property
    def keepalive_active(self) -> bool:
        return self._keepalive is not None and not self._keepalive.stopped

    @property
    def keepalive_failed(self) -> bool:
        return self._keepalive is not None and self._keepalive.failed

    @property
    def keepalive_error(self) -> BaseException | None:
        return None if self._keepalive is None else self._keepalive.error

    def _start_keepalive(self, interval: float) -> None:
        """Start sending keepalives every ``interval / 2`` seconds (for created jobs)."""
        if self._keepalive is None:
            self._keepalive = KeepaliveThread(self._session, self._url, interval)
            self._keepalive.start()

    def _stop_keepalive(self) -> None:
        if self._keepalive is not None:
            self._keepalive.stop()

    # ------------------------------------------------------------ state

    def get_state_json(self, wait: bool = False, timeout: float | None = None) -> dict[str, Any]:
        """Get the job's state object (``GET`` the job URL).

        Parameters
        ----------
        wait:
            Long-poll: the service answers on the next change or after about 30 s.
        timeout:
            HTTP timeout; defaults to 10 s, or :data:`LONG_POLL_TIMEOUT` when waiting.

        Returns
        -------
        dict
            The job's JSON (``state``, ``proxy-ref``, ``reason``, ...).
        """
        if timeout is None:
            timeout = LONG_POLL_TIMEOUT if wait else 10.0
        reply = self._session.get(self._url, timeout=timeout, wait=str(wait).lower())
        result: dict[str, Any] = reply.json()
        self._last_state = SpallocState.from_name(result.get("state"))
        return result

    def get_state(self, wait_for_change: bool = False) -> SpallocState:
        return SpallocState.from_name(self.get_state_json(wait=wait_for_change).get("state"))

    def get_proxy_url(self) -> str:
        """Get the job's proxy websocket URL (``proxy-ref``; needs POWER or READY).

        Raises
        ------
        SpallocException
            If the service offers no proxy for the job now.
        """
        ref = self.get_state_json().get("proxy-ref")
        if not ref:
            raise SpallocException(f"no proxy available for {self._url} in its current state")
        return str(ref)

    def wait_for_state_change(
        self, old_state: SpallocState, timeout: float | None = None
    ) -> SpallocState:
        if old_state == SpallocState.DESTROYED:
            return old_state
        deadline = None if timeout is None else time.monotonic() + timeout
        # a long poll only ends on a *new* event, so look at the current state first
        state = self.get_state()
        if state != old_state:
            return state
        pause = 0.25
        outages = 0
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return self.get_state()
            poll = LONG_POLL_TIMEOUT if remaining is None else min(LONG_POLL_TIMEOUT, remaining)
            started = time.monotonic()
            try:
                state = SpallocState.from_name(
                    self.get_state_json(wait=True, timeout=max(poll, 0.1)).get("state")
                )
                outages = 0
            except SpinnmanTimeoutException:
                continue
            except (SpinnmanIOException, SpallocHTTPError) as problem:
                # the service is unreachable or failing (e.g. restarting): retry, but
                # not for ever; a 4xx is a real answer
                outages += 1
                if outages > MAX_OUTAGES or getattr(problem, "status", 500) < 500:
                    raise
                state = old_state
            if state != old_state:
                return state
            if time.monotonic() - started < 1.0:
                # the service did not hold the long poll: do not busy-poll it
                time.sleep(pause if remaining is None else max(0.0, min(pause, remaining)))
                pause = min(pause * 2, 5.0)
            else:
                pause = 0.25

    def wait_until_ready(self, timeout: float | None = None, n_retries: int | None = None) -> None:
        state = self.get_state()
        if timeout is None and n_retries is None:
            state = self._wait_while_queued(state)
        self._wait_for_ready(state, timeout, n_retries)

    def _wait_while_queued(self, state: SpallocState) -> SpallocState:
        """Wait while QUEUED, for the queue time at most; return the next state."""
        limit = self.queue_time
        if self.board is not None:
            limit = BOARD_QUEUE_TIME if limit is None else min(limit, BOARD_QUEUE_TIME)
        deadline = None if limit is None else time.monotonic() + limit
        while state == SpallocState.QUEUED:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                if self.board is not None:
                    raise SpallocBoardUnavailableException(
                        f"boards described as {self.board} are not available: job "
                        f"{self._url} is still QUEUED after {limit:g} s"
                    )
                raise SpallocBoardUnavailableException(
                    f"job {self._url} remained QUEUED for {limit:g} s"
                )
            state = self.wait_for_state_change(state, remaining)
        return state

    def _wait_for_ready(
        self, state: SpallocState, timeout: float | None, n_retries: int | None
    ) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        retries = 0
        while state != SpallocState.READY:
            if state == SpallocState.DESTROYED:
                reason = self.get_state_json().get("reason") or "no reason given"
                raise SpallocException(f"job {self._url} was destroyed: {reason}")
            remaining = None if deadline is None else deadline - time.monotonic()
            if (remaining is not None and remaining <= 0) or (
                n_retries is not None and retries >= n_retries
            ):
                raise SpinnmanTimeoutException(
                    f"job {self._url} to become ready (still {state.name})", timeout
                )
            retries += 1
            state = self.wait_for_state_change(state, remaining)

    def destroy(self, reason: str = "finished") -> None:
        """Destroy the job, saying why; a second call does nothing."""
        with self._destroy_lock:
            if self._destroyed:
                return
            self._destroyed = True
        self._stop_keepalive()
        self._close_proxy()
        try:
            self._session.delete(self._url, reason=str(reason))
        except BaseException:
            self._destroyed = False  # not destroyed: a later call may try again
            raise
        self._last_state = SpallocState.DESTROYED

    def close(self) -> None:
        """Stop keepalives and close the proxy, leaving the job itself alone."""
        self._stop_keepalive()
        self._close_proxy()

    # ------------------------------------------------------------ allocation

    def _allocation(self) -> dict[str, Any] | None:
        reply = self._session.get(self._machine_url)
        if reply.status_code == 204 or not reply.content:
            return None
        result: dict[str, Any] = reply.json()
        return result

    def get_connections(self) -> dict[tuple[int, int], str]:
        allocation = self._allocation()
        if allocation is None:
            return {}
        connections = {
            (int(x), int(y)): str(host) for (x, y), host in allocation.get("connections") or ()
        }
        self._root_host = connections.get((0, 0))
        return connections

    def get_root_host(self) -> str | None:
        return self.get_connections().get((0, 0))

    def get_allocation(self) -> JobAllocation | None:
        found = self._allocation()
        return None if found is None else JobAllocation.from_json(found)

    def describe(self, allocation: bool = True, power: bool = False) -> JobDescription:
        description = JobDescription.from_json(self._url, self.get_state_json())
        if allocation and description.state != "QUEUED":
            description = description.with_allocation(self.get_allocation())
        if power and description.is_live:
            description = dataclasses.replace(description, power=self.get_power())
        return description

    def get_power(self) -> bool | None:
        reply = self._session.get(join_url(self._machine_url, "power"))
        if reply.status_code == 204 or not reply.content:
            return None
        return bool(reply.json().get("power") == "ON")

    def set_power(self, on: bool) -> None:
        self._session.post(join_url(self._machine_url, "power"), {"power": "ON" if on else "OFF"})

    def send_keepalive(self) -> None:
        self._session.put(join_url(self._url, "keepalive"), "alive")

    def where_is_chip(self, x: int, y: int) -> dict[str, Any] | None:
        reply = self._session.get(self._chip_url, x=int(x), y=int(y))
        if reply.status_code == 204 or not reply.content:
            return None
        found: dict[str, Any] = reply.json()
        return found

    def where_is_machine(self, x: int, y: int) -> tuple[int, int, int] | None:
        found = self.where_is_chip(x, y)
        coords = None if found is None else found.get("physical-board-coordinates")
        if not coords:
            return None
        cabinet, frame, board = (int(c) for c in coords)
        return cabinet, frame, board

    def get_session_credentials_for_db(self) -> Mapping[tuple[str, str], str]:
        config: dict[tuple[str, str], str] = {
            ("SPALLOC", "service uri"): self._service_url,
            ("SPALLOC", "job uri"): self._url,
        }
        cookies, headers = self._session_credentials
        for name, value in cookies.items():
            config["COOKIE", name] = value
        for name, value in headers.items():
            # bearer tokens are never written out; the session cookie extends the login
            if name.lower() != "authorization":
                config["HEADER", name] = value
        return config

    # ------------------------------------------------------------ memory and routers

    def read_data(self, x: int, y: int, address: int, size: int) -> bytes:
        reply = self._session.get(
            self._memory_url,
            timeout=10 + size / 100_000,
            x=int(x),
            y=int(y),
            address=int(address),
            size=int(size),
        )
        if len(reply.content) != size:
            raise SpallocException(f"asked for {size} bytes but got {len(reply.content)}")
        return reply.content

    def write_data(self, x: int, y: int, address: int, data: bytes) -> None:
        self._session.post_raw(
            self._memory_url,
            bytes(data),
            timeout=10 + len(data) / 100_000,
            x=int(x),
            y=int(y),
            address=int(address),
        )

    def reset_routing(self, custom_filters: Mapping[int, Any]) -> None:
        query: dict[str, Any] = {}
        for index, diagnostic_filter in custom_filters.items():
            word = getattr(diagnostic_filter, "filter_word", diagnostic_filter)
            query[str(int(index))] = str(int(word) & 0xFFFFFFFF)
        self._session.delete(self._router_url, timeout=30, **query)

    # ------------------------------------------------------------ proxied connections

    def get_proxy(self) -> ProxyConnection:
        """Return the job's proxy connection, opening its websocket on first use.

        Raises
        ------
        SpallocException
            If the job has no proxy now (it is not in state POWER or READY).
        """
        with self._proxy_lock:
            if self._proxy is None or self._proxy.is_dead:
                from pyspalloc.client.proxy.connection import ProxyConnection

                url = self.get_proxy_url()
                self._boards = self.get_connections()
                self._proxy = ProxyConnection(url, session=self._session)
            return self._proxy

    def _close_proxy(self) -> None:
        with self._proxy_lock:
            proxy, self._proxy = self._proxy, None
        if proxy is not None:
            proxy.close()

    def connect_to_board(self, x: int, y: int, port: int = SCP_PORT) -> SpallocSCPConnection:
        from pyspalloc.client.proxy.connections import SpallocSCPConnection

        channel = self.get_proxy().open_channel(x, y, port)
        return SpallocSCPConnection(channel, self._boards.get((x, y)))

    def connect_for_booting(self) -> SpallocBootConnection:
        from pyspalloc.client.proxy.connections import SpallocBootConnection

        channel = self.get_proxy().open_channel(0, 0, BOOT_PORT)
        return SpallocBootConnection(channel, self._boards.get((0, 0)))

    def open_eieio_connection(self, x: int, y: int) -> SpallocEIEIOConnection:
        from pyspalloc.client.proxy.connections import SpallocEIEIOConnection

        channel = self.get_proxy().open_channel(x, y, SCP_PORT)
        return SpallocEIEIOConnection(channel, self._boards.get((x, y)))

    def open_eieio_listener_connection(self) -> SpallocEIEIOListener:
        from pyspalloc.client.proxy.listeners import SpallocEIEIOListener

        channel = self.get_proxy().open_unbound()
        return SpallocEIEIOListener(channel, self._boards)

    def open_udp_listener_connection(self) -> SpallocUDPListener:
        from pyspalloc.client.proxy.listeners import SpallocUDPListener

        channel = self.get_proxy().open_unbound()
        return SpallocUDPListener(channel, self._boards)

    def create_transceiver(
        self, ensure_board_is_ready: bool = True, boot_image: BootImageSource | None = None
    ) -> SpallocTransceiver:
        state = self.get_state()
        if state != SpallocState.READY:
            raise SpallocException(f"job {self._url} is {state.name}, not READY")
        from pyspalloc.client.transceiver import SpallocTransceiver

        return SpallocTransceiver(self, ensure_board_is_ready, boot_image=boot_image)

    def __repr__(self) -> str:
        """The URL, with the last state and root host seen (no request is made)."""
        parts = [self._url]
        if self._last_state is not None:
            parts.append(self._last_state.name)
        if self._root_host is not None:
            parts.append(f"on {self._root_host}")
        return f"SpallocJob({' '.join(parts)})"
