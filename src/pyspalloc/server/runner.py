"""Running the service in-process: uvicorn in a background thread.

The service knows its machines' boards only by address; whoever runs a virtual machine
for it (``pyspalloc serve``, ``pyspalloc demo``) starts it as a separate process first.
"""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType

import uvicorn
from fastapi import FastAPI

from pyspalloc.server.app import create_app, ensure_admin, load_machines
from pyspalloc.server.config import ServiceConfig
from pyspalloc.server.controller import MachineController
from pyspalloc.server.store import Store
from pyspalloc.server.tls import self_signed_pair

log = logging.getLogger(__name__)


class RunningService:
    """A service started by :func:`start_service`; stop it with :meth:`stop`.

    Attributes
    ----------
    url:
        The base URL, e.g. ``http://127.0.0.1:8080/spalloc/``.
    app:
        The FastAPI application.
    admin_password:
        The password of the ``admin`` user created on this start, if any.
    """

    def __init__(
        self,
        config: ServiceConfig,
        app: FastAPI,
        server: uvicorn.Server,
        thread: threading.Thread,
        port: int,
        admin_password: str | None,
    ) -> None:
        self.config = config
        self.app = app
        self._server = server
        self._thread = thread
        self.port = port
        self.admin_password = admin_password
        scheme = "https" if config.tls else "http"
        self.url = f"{scheme}://{config.host}:{port}/spalloc/"

    @property
    def cert_file(self) -> str | None:
        """The certificate served, when serving HTTPS."""
        return None if self.config.tls_cert is None else str(self.config.tls_cert)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop serving, finish the lifecycle and close the database.

        Long polls still held are answered first, so that the server need not cancel them.
        """
        self.app.state.ctx.events.close()
        self._server.should_exit = True
        self._thread.join(timeout)
        self.app.state.ctx.store.close()

    def __enter__(self) -> RunningService:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_service(
    config: ServiceConfig,
    *,
    controller: MachineController | None = None,
    startup_timeout: float = 30.0,
) -> RunningService:
    """Start the service in a background thread and wait until it accepts requests.

    Parameters
    ----------
    config:
        What to serve; ``port=0`` picks a free port.
    controller:
        Overrides the configured power controller (e.g. an instant one for tests).
    startup_timeout:
        Longest wait for uvicorn to start, in seconds.

    Raises
    ------
    RuntimeError
        If the server did not start in time.
    """
    config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if config.self_signed and (config.tls_cert is None or config.tls_key is None):
        hosts = () if config.host in ("", "0.0.0.0", "::") else (config.host,)
        config.tls_cert, config.tls_key = self_signed_pair(config.data_dir / "tls", hosts)
    store = Store(config.database_url())
    admin_password = ensure_admin(store) if config.create_admin else None
    machines = load_machines(config)
    app = create_app(config, machines=machines, controller=controller, store=store)
    uv_config = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        log_level="warning",
        ssl_certfile=str(config.tls_cert) if config.tls else None,
        ssl_keyfile=str(config.tls_key) if config.tls else None,
        timeout_graceful_shutdown=5,
        proxy_headers=False,
    )
    server = uvicorn.Server(uv_config)
    thread = threading.Thread(target=server.run, name="spalloc-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            store.close()
            raise RuntimeError(f"service did not start on {config.host}:{config.port}")
        time.sleep(0.02)
    port = config.port
    for s in server.servers:
        for sock in s.sockets:
            port = sock.getsockname()[1]
            break
    return RunningService(config, app, server, thread, port, admin_password)
