"""Allocation from the environment: one call from a script to a READY job.

This is how EBRAINS and JupyterHub users (and spinnman's ``spalloc_allocate_job``)
allocate: the service, the credentials, the accounting and the request all come from
environment variables, so a script says only::

    from pyspalloc import allocate_job

    with allocate_job() as job:
        ...

Variables read by :meth:`AllocationSettings.from_environment`:

=========================  ==========================================================
``SPALLOC_SERVER``         service URL, e.g. ``https://host/spalloc/``; may carry
                           ``user:password@``
``SPALLOC_USER``,          user name and password (when the URL has none)
``SPALLOC_PASSWORD``
``OIDC_BEARER_TOKEN``      bearer token; JupyterHub's ``JUPYTERHUB_API_TOKEN``,
                           ``JUPYTERHUB_SERVICE_HOST`` and ``JUPYTERHUB_SERVICE_PORT``
                           fetch one from the hub's access-token service instead
``SPALLOC_GROUP``,         the group or EBRAINS collab the job is accounted to
``SPALLOC_COLLAB``
``NMPI_JOB_ID``,           the EBRAINS NMPI job (and its user, who owns the job)
``NMPI_USER``
``SPALLOC_BOARDS``         number of boards (default 1)
``SPALLOC_WIDTH``,         a rectangle of triads instead
``SPALLOC_HEIGHT``
``SPALLOC_TRIAD``,         one specific board: ``x,y,z``, ``cabinet,frame,board`` or
``SPALLOC_PHYSICAL``,      an IP address (with width and height: the rectangle's root)
``SPALLOC_IP_ADDRESS``
``SPALLOC_MACHINE``        machine name (default: the machine tagged ``default``)
``SPALLOC_MAX_DEAD_BOARDS``  dead boards allowed in a rectangle at a board
``SPALLOC_QUEUE_TIME``     seconds ``wait_until_ready()`` lets the job stay QUEUED
=========================  ==========================================================

Unlike spinnman, the collab is not guessed from an EBRAINS drive folder (that needs the
EBRAINS drive service, which this package does not talk to): name it in
``SPALLOC_COLLAB``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from typing import Any

import requests

from pyspalloc.client.client import SpallocClient
from pyspalloc.client.job import SpallocJob
from pyspalloc.client.rest_job import QUEUE_TIME
from pyspalloc.exceptions import SpallocException, SpinnmanInvalidParameterException

#: seconds the JupyterHub access-token service has to answer
TOKEN_TIMEOUT = 10.0
#: the path of JupyterHub's access-token service (as EBRAINS' hub serves it)
JUPYTER_TOKEN_PATH = "/services/access-token-service/access-token"

Triple = tuple[int, int, int]


@dataclass(frozen=True)
class AllocationSettings:
    """Where to allocate, as whom, and what: everything :func:`allocate_job` needs."""

    service_url: str | None = None
    username: str | None = None
    password: str | None = None
    bearer_token: str | None = None
    group: str | None = None
    collab: str | None = None
    nmpi_job: int | None = None
    nmpi_user: str | None = None
    num_boards: int | None = None
    width: int | None = None
    height: int | None = None
    triad: Triple | None = None
    physical: Triple | None = None
    ip_address: str | None = None
    machine: str | None = None
    max_dead_boards: int = 0
    queue_time: float | None = QUEUE_TIME

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> AllocationSettings:
        """Read the settings from environment variables (see the module's table).

        Raises
        ------
        SpinnmanInvalidParameterException
            If a variable does not parse (the message names it).
        SpallocException
            If JupyterHub's access-token service does not give a token.
        """
        env = os.environ if environ is None else environ
        queue_time = _number(env, "SPALLOC_QUEUE_TIME", float)
        return cls(
            service_url=_text(env, "SPALLOC_SERVER"),
            username=_text(env, "SPALLOC_USER"),
            password=env.get("SPALLOC_PASSWORD") or None,
            bearer_token=jupyter_bearer_token(env) or _text(env, "OIDC_BEARER_TOKEN"),
            group=_text(env, "SPALLOC_GROUP"),
            collab=_text(env, "SPALLOC_COLLAB"),
            nmpi_job=_number(env, "NMPI_JOB_ID", int),
            nmpi_user=_text(env, "NMPI_USER"),
            num_boards=_number(env, "SPALLOC_BOARDS", int),
            width=_number(env, "SPALLOC_WIDTH", int),
            height=_number(env, "SPALLOC_HEIGHT", int),
            triad=_triple(env, "SPALLOC_TRIAD"),
            physical=_triple(env, "SPALLOC_PHYSICAL"),
            ip_address=_text(env, "SPALLOC_IP_ADDRESS"),
            machine=_text(env, "SPALLOC_MACHINE"),
            max_dead_boards=_number(env, "SPALLOC_MAX_DEAD_BOARDS", int) or 0,
            queue_time=QUEUE_TIME if queue_time is None else queue_time,
        )

    def connect(self) -> SpallocClient:
        """Log in to the service (the client owns the session; close it when done)."""
        if not self.service_url:
            raise SpinnmanInvalidParameterException(
                "service_url", None, "no Spalloc service: set SPALLOC_SERVER"
            )
        return SpallocClient(
            self.service_url,
            self.username,
            self.password,
            bearer_token=self.bearer_token,
            group=self.group,
            collab=self.collab,
            nmpi_job=self.nmpi_job,
            nmpi_user=self.nmpi_user,
            queue_time=self.queue_time,
        )

    def create_job(self, client: SpallocClient) -> SpallocJob:
        """Ask ``client`` for the job these settings describe."""
        boards = [self.triad, self.physical, self.ip_address]
        if sum(board is not None for board in boards) > 1:
            raise SpinnmanInvalidParameterException(
                "board", boards, "give at most one of triad, physical and ip_address"
            )
        if (self.width is None) != (self.height is None):
            raise SpinnmanInvalidParameterException(
                "width", (self.width, self.height), "give both width and height, or neither"
            )
        specific = any(board is not None for board in boards)
        if self.width is not None and self.height is not None:
            if specific:
                return client.create_job_rect_at_board(
                    self.width,
                    self.height,
                    self.triad,
                    self.physical,
                    self.ip_address,
                    machine_name=self.machine,
                    max_dead_boards=self.max_dead_boards,
                )
            return client.create_job_rect(self.width, self.height, machine_name=self.machine)
        if specific:
            return client.create_job_board(
                self.triad, self.physical, self.ip_address, machine_name=self.machine
            )
        return client.create_job(self.num_boards or 1, machine_name=self.machine)


@contextmanager
def allocate_job(
    settings: AllocationSettings | None = None, **changes: Any
) -> Iterator[SpallocJob]:
    """Log in, create a job and wait until it is READY; destroy it and log out after.

    Parameters
    ----------
    settings:
        What to allocate; defaults to :meth:`AllocationSettings.from_environment`.
    changes:
        Fields of :class:`AllocationSettings` to change, e.g. ``num_boards=3``.

    Raises
    ------
    SpallocBoardUnavailableException
        If the job stays QUEUED (see ``SpallocJob.wait_until_ready``).
    """
    chosen = settings if settings is not None else AllocationSettings.from_environment()
    known = {field.name for field in fields(AllocationSettings)}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise TypeError(f"allocate_job() got unknown settings: {', '.join(unknown)}")
    chosen = replace(chosen, **changes)
    with chosen.connect() as client, chosen.create_job(client) as job:
        job.wait_until_ready()
        yield job


def jupyter_bearer_token(environ: Mapping[str, str]) -> str | None:
    """Fetch a bearer token from JupyterHub's access-token service, if configured.

    Returns ``None`` unless ``JUPYTERHUB_API_TOKEN``, ``JUPYTERHUB_SERVICE_HOST`` and
    ``JUPYTERHUB_SERVICE_PORT`` are all set.

    Raises
    ------
    SpallocException
        If the hub does not answer with a token.
    """
    token = environ.get("JUPYTERHUB_API_TOKEN")
    host = environ.get("JUPYTERHUB_SERVICE_HOST")
    port = environ.get("JUPYTERHUB_SERVICE_PORT")
    if not (token and host and port):
        return None
    url = f"http://{host}:{port}{JUPYTER_TOKEN_PATH}"
    try:
        reply = requests.get(
            url, headers={"Authorization": f"Token {token}"}, timeout=TOKEN_TIMEOUT
        )
        reply.raise_for_status()
        access = reply.json().get("access_token")
    except (requests.RequestException, ValueError, AttributeError) as error:
        raise SpallocException(f"JupyterHub gave no access token at {url}: {error}") from error
    if not isinstance(access, str) or not access:
        raise SpallocException(f"JupyterHub gave no access token at {url}")
    return access


def _text(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _number(env: Mapping[str, str], name: str, kind: type[int] | type[float]) -> Any:
    value = _text(env, name)
    if value is None:
        return None
    try:
        return kind(value)
    except ValueError:
        raise SpinnmanInvalidParameterException(
            name, value, f"{name} must be a {kind.__name__}"
        ) from None


def _triple(env: Mapping[str, str], name: str) -> Triple | None:
    value = _text(env, name)
    if value is None:
        return None
    parts = [part.strip() for part in value.split(",")]
    if len(parts) != 3 or not all(part.lstrip("-").isdigit() for part in parts):
        raise SpinnmanInvalidParameterException(
            name, value, f"{name} must be three integers, e.g. 1,0,2"
        )
    a, b, c = (int(part) for part in parts)
    return a, b, c
