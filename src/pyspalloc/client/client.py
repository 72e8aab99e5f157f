"""The Spalloc client: log in, list machines and jobs, create jobs."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

from pyspalloc.client.admin import AdminClient
from pyspalloc.client.description import GroupQuota
from pyspalloc.client.job import SpallocJob
from pyspalloc.client.machine import SpallocMachine, _SpallocMachine
from pyspalloc.client.rest_job import QUEUE_TIME, _SpallocJob
from pyspalloc.client.session import Session
from pyspalloc.client.utils import (
    ServiceVersion,
    clean_url,
    iso_duration,
    join_url,
    quote_segment,
    resolve_credentials,
)
from pyspalloc.exceptions import SpallocException, SpinnmanInvalidParameterException

logger = logging.getLogger(__name__)

#: timeout of a job creation request (s)
CREATE_TIMEOUT = 30.0
#: most pages of the job list followed
MAX_PAGES = 10_000
#: the keepalive interval (s) of a job created without one: the default of spinnman's
#: ``SpallocClient`` and the one every call gets (web-api.md §4.4 examples use it too)
KEEPALIVE = 120
#: the default spinnman's *abstract* client writes in its signatures; no implementation
#: uses it. ``AbstractSpallocClient`` keeps it only so its signatures stay the seed's
#: (tests/client/test_api_surface.py); a call always gets :data:`KEEPALIVE`
SEED_ABSTRACT_KEEPALIVE = 45


class AbstractSpallocClient(ABC):
    """The API exported by the Spalloc client.

    The ``keepalive`` defaults below are the seed API's; :class:`SpallocClient` (the
    implementation) uses :data:`KEEPALIVE` seconds when none is given.
    """

    @abstractmethod
    def list_machines(self) -> dict[str, SpallocMachine]:
        """Get the machines supported by the server, by name."""

    @abstractmethod
    def list_jobs(self, deleted: bool = False) -> Iterable[SpallocJob]:
        """Get the jobs known to the server (with destroyed ones if ``deleted``)."""

    @abstractmethod
    def create_job(
        self,
        num_boards: int = 1,
        machine_name: str | None = None,
        keepalive: int = SEED_ABSTRACT_KEEPALIVE,
    ) -> SpallocJob:
        """Create a job with a number of boards (on the ``default``-tagged machine)."""

    @abstractmethod
    def create_job_rect(
        self,
        width: int,
        height: int,
        machine_name: str | None = None,
        keepalive: int = SEED_ABSTRACT_KEEPALIVE,
    ) -> SpallocJob:
        """Create a job with a rectangle of ``width`` x ``height`` triads."""

    @abstractmethod
    def create_job_board(
        self,
        triad: tuple[int, int, int] | None = None,
        physical: tuple[int, int, int] | None = None,
        ip_address: str | None = None,
        machine_name: str | None = None,
        keepalive: int = SEED_ABSTRACT_KEEPALIVE,
    ) -> SpallocJob:
        """Create a job with one specific board (by triad, physical or IP address)."""

    @abstractmethod
    def create_job_rect_at_board(
        self,
        width: int,
        height: int,
        triad: tuple[int, int, int] | None = None,
        physical: tuple[int, int, int] | None = None,
        ip_address: str | None = None,
        machine_name: str | None = None,
        keepalive: int = SEED_ABSTRACT_KEEPALIVE,
        max_dead_boards: int = 0,
    ) -> SpallocJob:
        """Create a job with a rectangle of triads rooted at a specific board."""


class SpallocClient(AbstractSpallocClient):
    """Client for the Spalloc web service.

    Parameters
    ----------
    service_url:
        The service root, e.g. ``https://host/spalloc/``; may carry
        ``user:password@`` (then ``username``/``password`` must be ``None``).
    username, password:
        Login credentials; default to the URL's, then to ``SPALLOC_USER`` and
        ``SPALLOC_PASSWORD`` (when no bearer token is given).
    bearer_token:
        A bearer token, used when there is no username.
    group, collab, nmpi_job, nmpi_user:
        Accounting for the jobs created (``group``, ``nmpi-collab``, ``nmpi-job-id``;
        ``nmpi_user`` becomes the jobs' ``owner``).
    queue_time:
        Seconds a created job may stay QUEUED in ``wait_until_ready()`` before it raises
        ``SpallocBoardUnavailableException`` (spinnman's ``spalloc_queue_time``);
        ``None`` waits for ever. A job for a specific board gives up sooner.

    Raises
    ------
    SpallocException
        If the login fails or the user may not read the service.
    """

    #: page size asked of the service by :meth:`list_jobs` (``None``: its default)
    list_page_size: int | None = None

    def __init__(
        self,
        service_url: str,
        username: str | None = None,
        password: str | None = None,
        bearer_token: str | None = None,
        group: str | None = None,
        collab: str | None = None,
        nmpi_job: int | None = None,
        nmpi_user: str | None = None,
        queue_time: float | None = QUEUE_TIME,
    ):
        url, username, password = resolve_credentials(service_url, username, password, bearer_token)
        token = bearer_token if username is None else None
        self._group = group
        self._collab = collab
        self._nmpi_job = nmpi_job
        self._nmpi_user = nmpi_user
        self._queue_time = queue_time
        self._jobs: list[_SpallocJob] = []
        self.__session: Session | None = Session(url, username, password, token)
        description = self.__session.renew()
        self._description = description
        self._version = ServiceVersion.from_json(description.get("version"))
        jobs_ref, machines_ref = description.get("jobs-ref"), description.get("machines-ref")
        if not jobs_ref or not machines_ref:
            self.close()
            raise SpallocException("the service does not let this user read jobs and machines")
        self._jobs_url = clean_url(str(jobs_ref))
        self._machines_url = clean_url(str(machines_ref))
        logger.info("logged in to %s (service version %s)", url, self._version)

    @property
    def version(self) -> ServiceVersion:
        """The version of the service (a ``(major, minor, revision)`` tuple)."""
        return self._version

    @property
    def _session(self) -> Session:
        if self.__session is None:
            raise SpallocException("this client has been closed")
        return self.__session

    @property
    def session(self) -> Session:
        """The client's session."""
        return self._session

    def close(self) -> None:
        """Stop the keepalives of the jobs this client created and forget the session."""
        jobs, self._jobs = self._jobs, []
        for job in jobs:
            job.close()
        if self.__session is not None:
            self.__session.purge()
        self.__session = None

    def __enter__(self) -> SpallocClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------ queries

    def list_machines(self) -> dict[str, SpallocMachine]:
        reply = self._session.get(self._machines_url)
        machines = (_SpallocMachine(self._session, m) for m in reply.json().get("machines", ()))
        return {machine.name: machine for machine in machines}

    def list_jobs(self, deleted: bool = False) -> Iterable[SpallocJob]:
        """Get the jobs known to the server, following the ``next`` links of each page.

        The jobs returned are not kept alive by this client.
        """
        query: dict[str, Any] = {"deleted": str(bool(deleted)).lower()}
        if self.list_page_size is not None:
            query["limit"] = self.list_page_size
        url: str | None = self._jobs_url
        seen_pages: set[str] = set()
        seen_jobs: set[str] = set()
        jobs: list[SpallocJob] = []
        for _ in range(MAX_PAGES):
            if url is None:
                break
            page = self._session.get(url, **query).json()
            query = {}
            job_urls = [clean_url(str(u)) for u in page.get("jobs") or ()]
            for job_url in job_urls:
                if job_url not in seen_jobs:
                    seen_jobs.add(job_url)
                    jobs.append(_SpallocJob(self._session, job_url))
            seen_pages.add(url)
            next_url = page.get("next")
            url = str(next_url) if job_urls and next_url and next_url not in seen_pages else None
        return jobs

    def get_machine(self, name: str) -> SpallocMachine | None:
        """Get the machine called ``name``; ``None`` if there is none (visible to this user)."""
        return self.list_machines().get(name)

    def list_groups(self, everything: bool = False, user: str | None = None) -> list[GroupQuota]:
        """Get the caller's accounting groups with their quotas, usage and what is left.

        Admins may ask for ``everything`` or for another ``user``'s groups.
        """
        query: dict[str, Any] = {}
        if everything:
            query["all"] = "true"
        if user is not None:
            query["user"] = user
        reply = self._session.get(join_url(self._session.srv_url, "groups"), **query)
        return [GroupQuota.from_json(g) for g in reply.json().get("groups") or ()]

    def admin(self) -> AdminClient:
        """The service's admin API (users, groups, boards, machines, reports) through this
        client's session; the calls need the ADMIN role."""
        return AdminClient(self._session)

    def get_job(self, job_id: str | int) -> SpallocJob:
        """Get a job by its id (it is not kept alive by this client)."""
        return _SpallocJob(self._session, join_url(self._jobs_url, quote_segment(job_id)))

    # ------------------------------------------------------------ job creation

    def _create(
        self,
        request: dict[str, Any],
        machine_name: str | None,
        keepalive: float,
        board: str | None = None,
    ) -> SpallocJob:
        request["keepalive-interval"] = iso_duration(keepalive)
        if machine_name:
            request["machine-name"] = machine_name
        else:
            request["tags"] = ["default"]
        if self._group is not None:
            request["group"] = self._group
        if self._collab is not None:
            request["nmpi-collab"] = self._collab
        if self._nmpi_job is not None:
            request["nmpi-job-id"] = self._nmpi_job
        if self._nmpi_user is not None:
            request["owner"] = self._nmpi_user
        reply = self._session.post(self._jobs_url, request, timeout=CREATE_TIMEOUT)
        location = reply.headers.get("Location")
        if not location:
            try:
                location = reply.json().get("job-ref")
            except ValueError:
                location = None
        if not location:
            raise SpallocException("the service created a job but did not say where")
        job = _SpallocJob(self._session, str(location), board, self._queue_time)
        job._start_keepalive(keepalive)
        self._jobs.append(job)
        logger.info("created job at %s", job.url)
        return job

    def create_job(
        self, num_boards: int = 1, machine_name: str | None = None, keepalive: int = KEEPALIVE
    ) -> SpallocJob:
        return self._create({"num-boards": int(num_boards)}, machine_name, keepalive)

    def create_job_rect(
        self, width: int, height: int, machine_name: str | None = None, keepalive: int = KEEPALIVE
    ) -> SpallocJob:
        dimensions = {"width": int(width), "height": int(height)}
        return self._create({"dimensions": dimensions}, machine_name, keepalive)

    def create_job_board(
        self,
        triad: tuple[int, int, int] | None = None,
        physical: tuple[int, int, int] | None = None,
        ip_address: str | None = None,
        machine_name: str | None = None,
        keepalive: int = KEEPALIVE,
    ) -> SpallocJob:
        board = _board(triad, physical, ip_address)
        return self._create({"board": board}, machine_name, keepalive, _describe(board))

    def create_job_rect_at_board(
        self,
        width: int,
        height: int,
        triad: tuple[int, int, int] | None = None,
        physical: tuple[int, int, int] | None = None,
        ip_address: str | None = None,
        machine_name: str | None = None,
        keepalive: int = KEEPALIVE,
        max_dead_boards: int = 0,
    ) -> SpallocJob:
        board = _board(triad, physical, ip_address)
        request = {
            "dimensions": {"width": int(width), "height": int(height)},
            "board": board,
            "max-dead-boards": int(max_dead_boards),
        }
        described = f"{_describe(board)} width={int(width)} height={int(height)}"
        return self._create(request, machine_name, keepalive, described)

    @staticmethod
    def open_job_from_database(
        service_url: str, job_url: str, cookies: Mapping[str, str], headers: Mapping[str, str]
    ) -> SpallocJob:
        """Open a job from the credentials stored in a ``proxy_configuration`` table.

        The job is not checked, and is not kept alive. The stored session is used as
        it is; a missing CSRF token is fetched when first needed.

        Raises
        ------
        SpallocException
            If the service or job URL is missing.
        """
        if not service_url or not job_url:
            raise SpallocException("the stored job description is incomplete")
        session = Session(service_url, session_credentials=(cookies or {}, headers or {}))
        return _SpallocJob(session, job_url)

    def __repr__(self) -> str:
        url = self.__session.service_url if self.__session is not None else "closed"
        return f"SpallocClient({url})"


def _board(
    triad: tuple[int, int, int] | None,
    physical: tuple[int, int, int] | None,
    ip_address: str | None,
) -> dict[str, Any]:
    if triad is not None:
        x, y, z = (int(v) for v in triad)
        return {"x": x, "y": y, "z": z}
    if physical is not None:
        cabinet, frame, board = (int(v) for v in physical)
        return {"cabinet": cabinet, "frame": frame, "board": board}
    if ip_address is not None:
        return {"address": str(ip_address)}
    raise SpinnmanInvalidParameterException(
        "triad", None, "one of triad, physical and ip_address must be given"
    )


def _describe(board: dict[str, Any]) -> str:
    """A board request as words for messages, e.g. ``triad=1,0,2``."""
    if "address" in board:
        return f"ip_address={board['address']}"
    if "cabinet" in board:
        return f"physical={board['cabinet']},{board['frame']},{board['board']}"
    return f"triad={board['x']},{board['y']},{board['z']}"
