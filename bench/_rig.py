"""The set-up shared by the proxy benchmarks: virtual spin24, TLS service, two jobs.

:func:`proxy_rig` starts the virtual machine and the service in their own processes,
creates our one-board job (and, unless told not to, a spinnman 1!7.3.0 worker with its
own one-board job), and yields a :class:`Rig`; everything is stopped on exit.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.addresses import free_virtual_base
from tests.support.certificates import make_test_ca

from bench._common import (
    REPO_ROOT,
    USERS,
    Worker,
    peer_python,
    start_service,
    start_vm,
    tls_env,
)

SPINNMAN = ("spinnman==1!7.3.0", "packaging")


@dataclass
class Rig:
    """What a proxy benchmark talks to."""

    work: Path
    url: str
    service_pid: int
    vm: Worker
    job: Any
    ip: str
    peer: Worker | None
    peer_ip: str | None
    #: RTT of the remote-user relay, if any (set by the benchmark)
    remote_ms: float = 0.0

    def set_latency(self, latency_ms: float) -> None:
        """Add ``latency_ms`` of round trip on both jobs' boards."""
        for ip in (self.ip, self.peer_ip):
            if ip:
                self.vm.ask({"op": "fault", "ip": ip, "latency_ms": latency_ms, "loss": 0})


@contextmanager
def proxy_rig(with_spinnman: bool = True, relay_rtt_ms: float | None = None) -> Iterator[Rig]:
    """Start everything; with ``relay_rtt_ms`` the clients reach the service through
    ``bench._relay`` (that much TCP round-trip latency), the boards staying local."""
    from pyspalloc import SpallocClient

    with tempfile.TemporaryDirectory(prefix="bench-proxy-") as tmp:
        work = Path(tmp)
        ca, cert, key = make_test_ca(work / "tls")
        # build spinnman's venv before the test CA replaces the machine's in the
        # environment: pip in the venv honours REQUESTS_CA_BUNDLE
        python = peer_python(*SPINNMAN) if with_spinnman else None
        tls_names = ("REQUESTS_CA_BUNDLE", "WEBSOCKET_CLIENT_CA_BUNDLE")
        saved_tls = {name: os.environ.get(name) for name in tls_names}
        os.environ.update(dict.fromkeys(tls_names, str(ca)))
        base = free_virtual_base(120)
        vm, _ = start_vm(work, "spin24", base)
        service: Worker | None = None
        peer: Worker | None = None
        relay: Worker | None = None
        client = None
        job = None
        try:
            service, info = start_service(
                work, machines=["spin24"], address_base=base, controller="bmp", tls=(cert, key)
            )
            url = info["url"]
            print(f"# service {url} (pid {info['pid']}), virtual spin24 at {base}")
            if relay_rtt_ms is not None:
                port = url.split(":")[2].split("/")[0]
                relay = Worker(
                    [sys.executable, "-m", "bench._relay", port, str(relay_rtt_ms)],
                    cwd=REPO_ROOT,
                    stderr_path=work / "relay.log",
                )
                relay_port = relay.read(30)["port"]
                url = url.replace(f":{port}/", f":{relay_port}/")
                print(f"# clients reach the service through a {relay_rtt_ms:g} ms relay: {url}")
            client = SpallocClient(url, "bench", USERS["bench"])
            job = client.create_job(1)
            job.wait_until_ready(timeout=120)
            ip = job.get_connections()[(0, 0)]
            peer_ip = None
            if python is not None:
                script = Path(__file__).with_name("_spinnman_worker.py")
                peer = Worker(
                    [str(python), "-u", str(script), url, "peer", USERS["peer"]],
                    env=tls_env(ca),
                    stderr_path=work / "spinnman.log",
                )
                peer_ip = str(peer.read(300)["root"])
            yield Rig(work, url, int(info["pid"]), vm, job, ip, peer, peer_ip)
        finally:
            for name, value in saved_tls.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            if peer is not None:
                peer.stop(30)
            if job is not None:
                try:
                    job.destroy()
                except Exception:  # the service may be gone already
                    pass
            if client is not None:
                client.close()
            if relay is not None:
                relay.stop()
            if service is not None:
                service.stop()
            vm.stop()
