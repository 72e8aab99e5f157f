"""Every class, method and property of the seed API exists in pyspalloc, compatibly.

The seed API is ``spinnman.spalloc`` as documented in ``/work/shared/spec/client-api.txt``.
Below, each seed class is written down as a stub with the documented signatures (names,
order, defaults and keyword-only markers; no behaviour) and the pyspalloc class that
stands for it is checked against it by introspection:

* every documented method exists, is callable and accepts every documented call: the
  same positional parameters in the same order with the same defaults, the documented
  keyword-only ones by keyword, and anything extra only with a default;
* every documented property is a property (or plain attribute) of the class;
* static methods are static, abstract bases are abstract, context managers are ones.

Where pyspalloc deliberately differs (constructors of the connection classes, which
pyspalloc's job makes from proxy channels) the exception is listed in
:data:`CONSTRUCTOR_DIFFERENCES` and in ``docs/compatibility.md``.
"""

from __future__ import annotations

import abc
import contextlib
import inspect
from collections.abc import Callable
from typing import Any

import pytest

import pyspalloc
from pyspalloc.client import session, transceiver
from pyspalloc.client.proxy import connections, listeners, proxied
from pyspalloc.wire import eieio as wire_eieio
from pyspalloc.wire import proxy as wire_proxy

# ---------------------------------------------------------------- the seed, from the spec


class ProxyProtocol:
    OPEN = 0
    CLOSE = 1
    MSG = 2
    OPEN_UNBOUND = 3
    MSG_TO = 4
    ERROR = 5


class Session:
    def __init__(
        self,
        service_url,
        username=None,
        password=None,
        token=None,
        session_credentials=None,
    ): ...

    credentials = property()
    service_url = property()

    def delete(self, url, timeout=10, **kwargs): ...
    def get(self, url, timeout=10, **kwargs): ...
    def post(self, url, json_dict, timeout=10, **kwargs): ...
    def post_raw(self, url, data, timeout=10, **kwargs): ...
    def purge(self): ...
    def put(self, url, data, timeout=10, **kwargs): ...
    def renew(self): ...
    def websocket(self, url, header=None, cookie=None, **kwargs): ...


class SessionAware:
    def __init__(self, session, url): ...


class SpallocProxiedConnection:
    def receive(self, timeout=None): ...
    def send(self, data): ...
    # from spinnman's Listenable, its documented base
    def get_receive_method(self): ...
    def is_ready_to_receive(self, timeout=0): ...


class SpallocBootConnection:
    def __init__(self, remote_host=None): ...
    def get_receive_method(self): ...
    def receive_boot_message(self, timeout=None): ...
    def send_boot_message(self, boot_message): ...


class SpallocSCPConnection:
    def __init__(self, x, y): ...
    def get_scp_data(self, scp_request, x=None, y=None): ...
    def receive_scp_response(self, timeout=1.0): ...
    def receive_sdp_message(self, timeout=None): ...
    def send_sdp_message(self, sdp_message): ...


class SpallocTransceiver:
    def __init__(self, job): ...
    def read_memory(self, x, y, base_address, length, cpu=0): ...
    def write_memory(
        self, x, y, base_address, data, *, n_bytes=None, offset=0, cpu=0, get_sum=False
    ): ...


class AbstractSpallocClient:
    def create_job(self, num_boards=1, machine_name=None, keepalive=45): ...
    def create_job_board(
        self, triad=None, physical=None, ip_address=None, machine_name=None, keepalive=45
    ): ...
    def create_job_rect(self, width, height, machine_name=None, keepalive=45): ...
    def create_job_rect_at_board(
        self,
        width,
        height,
        triad=None,
        physical=None,
        ip_address=None,
        machine_name=None,
        keepalive=45,
        max_dead_boards=0,
    ): ...
    def list_jobs(self, deleted=False): ...
    def list_machines(self): ...


class SpallocClient:
    def __init__(
        self,
        service_url,
        username=None,
        password=None,
        bearer_token=None,
        group=None,
        collab=None,
        nmpi_job=None,
        nmpi_user=None,
    ): ...
    def close(self): ...
    def create_job(self, num_boards=1, machine_name=None, keepalive=120): ...
    def create_job_board(
        self, triad=None, physical=None, ip_address=None, machine_name=None, keepalive=120
    ): ...
    def create_job_rect(self, width, height, machine_name=None, keepalive=120): ...
    def create_job_rect_at_board(
        self,
        width,
        height,
        triad=None,
        physical=None,
        ip_address=None,
        machine_name=None,
        keepalive=120,
        max_dead_boards=0,
    ): ...
    def get_job(self, job_id): ...
    def list_jobs(self, deleted=False): ...
    def list_machines(self): ...
    @staticmethod
    def open_job_from_database(service_url, job_url, cookies, headers): ...

    version = property()


class SpallocEIEIOConnection:
    def __init__(self, local_host=None, local_port=None, remote_host=None, remote_port=None): ...
    def receive_eieio_message(self, timeout=None): ...
    def send_eieio_message(self, eieio_message): ...
    def send_eieio_message_to_core(self, eieio_message, x, y, p): ...
    def update_tag(self, tag, do_receive=True): ...


class SpallocEIEIOListener:
    def __init__(self, local_host=None, local_port=None, remote_host=None, remote_port=None): ...

    local_ip_address = property()
    local_port = property()

    def receive_eieio_message(self, timeout=None): ...
    def send(self, data): ...
    def send_eieio_message_to_core(self, eieio_message, x, y, p, ip_address): ...
    def send_to(self, data, address): ...
    def send_to_chip(self, message, x, y, port=17893): ...
    def update_tag(self, x, y, tag, do_receive=True): ...
    def update_tag_by_ip(self, ip_address, tag): ...


class SpallocJob:
    def connect_for_booting(self): ...
    def connect_to_board(self, x, y, port=17893): ...
    def create_transceiver(self): ...
    def destroy(self, reason="finished"): ...
    def get_connections(self): ...
    def get_root_host(self): ...
    def get_session_credentials_for_db(self): ...
    def get_state(self, wait_for_change=False): ...
    def open_eieio_connection(self, x, y): ...
    def open_eieio_listener_connection(self): ...
    def open_udp_listener_connection(self): ...
    def read_data(self, x, y, address, size): ...
    def reset_routing(self, custom_filters): ...
    def wait_for_state_change(self, old_state, timeout=None): ...
    def wait_until_ready(self, timeout=None, n_retries=None): ...
    def where_is_machine(self, x, y): ...
    def write_data(self, x, y, address, data): ...


class SpallocMachine:
    area = property()
    dead_boards = property()
    dead_links = property()
    height = property()
    name = property()
    tags = property()
    width = property()


class SpallocState:
    UNKNOWN = 0
    QUEUED = 1
    POWER = 2
    READY = 3
    DESTROYED = 4


def is_server_address(address, additional_schemes=()): ...


# ---------------------------------------------------------------- where pyspalloc has them

#: seed name -> (seed stub, pyspalloc object). The first group is the seed package's
#: top level (``spinnman.spalloc``), found at ``pyspalloc``'s top level.
SURFACE: dict[str, tuple[Any, Any]] = {
    "AbstractSpallocClient": (AbstractSpallocClient, pyspalloc.AbstractSpallocClient),
    "SpallocClient": (SpallocClient, pyspalloc.SpallocClient),
    "SpallocEIEIOConnection": (SpallocEIEIOConnection, pyspalloc.SpallocEIEIOConnection),
    "SpallocEIEIOListener": (SpallocEIEIOListener, pyspalloc.SpallocEIEIOListener),
    "SpallocJob": (SpallocJob, pyspalloc.SpallocJob),
    "SpallocMachine": (SpallocMachine, pyspalloc.SpallocMachine),
    "SpallocProxiedConnection": (SpallocProxiedConnection, pyspalloc.SpallocProxiedConnection),
    "SpallocState": (SpallocState, pyspalloc.SpallocState),
    "is_server_address": (is_server_address, pyspalloc.is_server_address),
    # the seed's submodules
    "proxy_protocol.ProxyProtocol": (ProxyProtocol, wire_proxy.ProxyProtocol),
    "session.Session": (Session, session.Session),
    "session.SessionAware": (SessionAware, session.SessionAware),
    "spalloc_boot_connection.SpallocBootConnection": (
        SpallocBootConnection,
        connections.SpallocBootConnection,
    ),
    "spalloc_scp_connection.SpallocSCPConnection": (
        SpallocSCPConnection,
        connections.SpallocSCPConnection,
    ),
    "spalloc_transceiver.SpallocTransceiver": (
        SpallocTransceiver,
        transceiver.SpallocTransceiver,
    ),
}

#: seed classes whose constructor pyspalloc does not share, and why (docs/compatibility.md)
CONSTRUCTOR_DIFFERENCES = {
    "SpallocEIEIOConnection": "made by SpallocJob.open_eieio_connection from a proxy channel",
    "SpallocEIEIOListener": "made by SpallocJob.open_eieio_listener_connection",
    "spalloc_boot_connection.SpallocBootConnection": "made by SpallocJob.connect_for_booting",
    "spalloc_scp_connection.SpallocSCPConnection": "made by SpallocJob.connect_to_board",
}

#: seed classes that are abstract (not to be made by users)
ABSTRACT = {"AbstractSpallocClient", "SpallocJob", "SpallocMachine"}


def _accepts(seed: Callable[..., Any], ours: Callable[..., Any]) -> list[str]:
    """Problems that stop a call valid for ``seed`` from being valid for ``ours``."""
    want = inspect.signature(seed).parameters
    have = inspect.signature(ours).parameters
    problems = []
    kinds = inspect.Parameter
    ours_positional = [
        p for p in have.values() if p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD)
    ]
    has_var_kw = any(p.kind is kinds.VAR_KEYWORD for p in have.values())
    for index, (name, param) in enumerate(want.items()):
        if param.kind is kinds.VAR_KEYWORD:
            if not has_var_kw:
                problems.append("no **kwargs")
            continue
        mine = have.get(name)
        if mine is None:
            if not (param.kind is kinds.KEYWORD_ONLY and has_var_kw):
                problems.append(f"no parameter {name!r}")
            continue
        if param.kind is kinds.POSITIONAL_OR_KEYWORD:
            if index >= len(ours_positional) or ours_positional[index].name != name:
                problems.append(f"{name!r} is not positional parameter {index}")
            if mine.kind is kinds.KEYWORD_ONLY:
                problems.append(f"{name!r} is keyword-only")
        if param.kind is kinds.KEYWORD_ONLY and mine.kind is kinds.POSITIONAL_ONLY:
            problems.append(f"{name!r} cannot be given by keyword")
        if param.default is not param.empty and mine.default != param.default:
            problems.append(f"{name!r} defaults to {mine.default!r}, not {param.default!r}")
        if param.default is param.empty and mine.default is not param.empty and name != "self":
            pass  # ours is more lenient: fine
    for name, mine in have.items():
        required = mine.default is mine.empty and mine.kind not in (
            kinds.VAR_POSITIONAL,
            kinds.VAR_KEYWORD,
        )
        if name not in want and required:
            problems.append(f"extra required parameter {name!r}")
    return problems


def _members(stub: type) -> dict[str, Any]:
    return {
        name: value
        for name, value in vars(stub).items()
        if not name.startswith("__") or name == "__init__"
    }


@pytest.mark.parametrize("seed_name", sorted(SURFACE))
def test_seed_name_exists_with_compatible_signatures(seed_name: str) -> None:
    stub, ours = SURFACE[seed_name]
    assert ours is not None, f"{seed_name} is missing"
    if inspect.isfunction(stub):
        assert callable(ours)
        assert _accepts(stub, ours) == [], seed_name
        return
    assert inspect.isclass(ours), f"{seed_name} is not a class"
    problems: dict[str, Any] = {}
    for name, member in _members(stub).items():
        if name == "__init__":
            if seed_name in CONSTRUCTOR_DIFFERENCES:
                continue
            found = _accepts(member, ours.__init__)
        elif isinstance(member, int):  # an enum member
            value = getattr(ours, name, None)
            found = [] if value is not None and int(value) == member else [f"{name} = {value!r}"]
        elif isinstance(member, property):
            static = inspect.getattr_static(ours, name, None)
            found = [] if static is not None else [f"no property {name}"]
            if isinstance(static, property | abc.abstractproperty):
                found = []
            elif callable(static) and not isinstance(static, type):
                found = [f"{name} is a method, not a property"]
        elif isinstance(member, staticmethod):
            static = inspect.getattr_static(ours, name, None)
            found = [] if isinstance(static, staticmethod) else [f"{name} is not static"]
            if not found:
                found = _accepts(member.__func__, getattr(ours, name))
        else:
            method = getattr(ours, name, None)
            if method is None or not callable(method):
                found = ["missing"]
            else:
                found = _accepts(member, method)
        if found:
            problems[name] = found
    assert problems == {}, f"{seed_name}: {problems}"


def test_enums_have_exactly_the_seed_members() -> None:
    assert {m.name: int(m) for m in pyspalloc.SpallocState} == {
        k: v for k, v in vars(SpallocState).items() if not k.startswith("_")
    }
    assert {m.name: int(m) for m in wire_proxy.ProxyProtocol} == {
        k: v for k, v in vars(ProxyProtocol).items() if not k.startswith("_")
    }
    assert issubclass(pyspalloc.SpallocState, int)


def test_abstract_classes_and_context_managers() -> None:
    for name in ABSTRACT:
        ours = SURFACE[name][1]
        assert inspect.isabstract(ours), f"{name} should be abstract"
        with pytest.raises(TypeError):
            ours()
    for ours in (pyspalloc.SpallocClient, pyspalloc.SpallocJob):
        assert issubclass(ours, contextlib.AbstractContextManager), ours
    assert issubclass(pyspalloc.SpallocClient, pyspalloc.AbstractSpallocClient)


def test_connection_class_hierarchy() -> None:
    """Every proxied connection is a SpallocProxiedConnection, as in the seed."""
    for cls in (
        connections.SpallocSCPConnection,
        connections.SpallocBootConnection,
        connections.SpallocEIEIOConnection,
        listeners.SpallocEIEIOListener,
        listeners.SpallocUDPListener,
    ):
        assert issubclass(cls, proxied.SpallocProxiedConnection), cls
    assert proxied.SpallocProxiedConnection is pyspalloc.SpallocProxiedConnection


def test_is_server_address_behaves_as_documented() -> None:
    assert pyspalloc.is_server_address("https://example.org/spalloc/")
    assert pyspalloc.is_server_address("http://example.org:8080/spalloc/")
    assert not pyspalloc.is_server_address("spalloc://example.org/")
    assert pyspalloc.is_server_address("spalloc://example.org/", {"spalloc"})
    assert not pyspalloc.is_server_address("not a url")


# ---------------------------------------------------------------- spinnman 1!7.4.1's additions
#
# What spinnman 1!7.4.1 (and its master branch) added to the seed, written down the same
# way; tests/interop/test_same_programs.py checks these stubs against 7.4.1 itself.


class SpallocClient741:
    def __init__(
        self,
        service_url,
        username=None,
        password=None,
        bearer_token=None,
        group=None,
        collab=None,
        nmpi_job=None,
        nmpi_user=None,
    ): ...


class SpallocJob741:
    def create_transceiver(self, ensure_board_is_ready=True): ...
    def destroy(self, reason="finished"): ...
    def wait_until_ready(self): ...


class SpallocBoardUnavailableException741:
    pass


class EIEIODataMessage741:
    is_next_element = property()
    next_element = property()


class KeyPayloadDataElement741:
    key = property()
    payload = property()
    payload_is_timestamp = property()


#: spinnman module.name -> (stub, pyspalloc object)
ADDITIONS_741: dict[str, tuple[Any, Any]] = {
    "spinnman.spalloc.SpallocClient": (SpallocClient741, pyspalloc.SpallocClient),
    "spinnman.spalloc.SpallocJob": (SpallocJob741, pyspalloc.SpallocJob),
    "spinnman.exceptions.SpallocBoardUnavailableException": (
        SpallocBoardUnavailableException741,
        pyspalloc.SpallocBoardUnavailableException,
    ),
    "spinnman.messages.eieio.data_messages.EIEIODataMessage": (
        EIEIODataMessage741,
        wire_eieio.EIEIODataMessage,
    ),
    "spinnman.messages.eieio.data_messages.KeyPayloadDataElement": (
        KeyPayloadDataElement741,
        wire_eieio.KeyPayloadDataElement,
    ),
}


@pytest.mark.parametrize("name", sorted(ADDITIONS_741))
def test_741_additions_exist_with_compatible_signatures(name: str) -> None:
    stub, ours = ADDITIONS_741[name]
    problems: dict[str, Any] = {}
    for member, value in _members(stub).items():
        if isinstance(value, property):
            found = (
                []
                if hasattr(ours, member) or member in getattr(ours, "__dataclass_fields__", {})
                else ["missing"]
            )
        else:
            target = ours.__init__ if member == "__init__" else getattr(ours, member, None)
            found = ["missing"] if target is None else _accepts(value, target)
        if found:
            problems[member] = found
    assert problems == {}, f"{name}: {problems}"


def test_board_unavailable_is_importable_where_users_look() -> None:
    from pyspalloc import exceptions

    assert issubclass(pyspalloc.SpallocBoardUnavailableException, exceptions.SpallocException)
    assert exceptions.SpallocBoardUnavailableException is pyspalloc.SpallocBoardUnavailableException
