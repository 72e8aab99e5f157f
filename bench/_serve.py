"""Run the pyspalloc service for a benchmark: ``python -m bench._serve SETTINGS_JSON``.

Prints ``{"url": ..., "pid": ...}`` (and ``"v1_port"`` when ``v1_user`` is set: the
v1 listener of the old clients, for that user) once the service answers, then serves until its
stdin closes (or on a ``{"op": "stop"}`` line). The users of ``bench._common.USERS`` are
created first; ``{"op": "token", "user": NAME}`` prints a fresh bearer token.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from bench._common import USERS


def main(argv: list[str]) -> None:
    from pyspalloc.server.auth import hash_password
    from pyspalloc.server.bmp_control import BMPControlOptions, BMPMachineController
    from pyspalloc.server.config import ServiceConfig
    from pyspalloc.server.controller import InstantMachineController, MachineController
    from pyspalloc.server.runner import start_service
    from pyspalloc.server.store import Store, TrustLevel
    from pyspalloc.server.v1 import V1Options
    from pyspalloc.transceiver.boot import boot_image

    settings: dict[str, Any] = json.loads(argv[0])
    data_dir = Path(settings["data_dir"])
    data_dir.mkdir(parents=True, exist_ok=True)
    config = ServiceConfig(
        host="127.0.0.1",
        port=0,
        data_dir=data_dir,
        database=settings.get("database"),
        machines=list(settings["machines"]),
        virtual_address_base=settings["virtual_address_base"],
        controller="instant",
        create_admin=False,
        v1=V1Options(port=0, user=settings["v1_user"]) if settings.get("v1_user") else None,
        **settings.get("overrides", {}),
    )
    if settings.get("tls"):
        config.tls_cert, config.tls_key = (Path(p) for p in settings["tls"])
    store = Store(config.database_url())
    if not store.count_users():
        for name, password in USERS.items():
            store.create_user(name, hash_password(password), TrustLevel.USER)
    store.close()
    controller: MachineController
    if settings.get("controller") == "bmp":
        options = BMPControlOptions(
            retry_delay=0.1, power_timeout=2.0, boot_timeout=20.0, boot_image=boot_image()
        )
        controller = BMPMachineController(options)
    else:
        controller = InstantMachineController()
    service = start_service(config, controller=controller)
    info: dict[str, Any] = {"url": service.url, "pid": os.getpid()}
    if service.app.state.v1 is not None:
        info["v1_port"] = service.app.state.v1.port
    print(json.dumps(info), flush=True)
    try:
        for line in sys.stdin:
            command = json.loads(line)
            if command.get("op") == "stop":
                break
            if command.get("op") == "token":
                ctx = service.app.state.ctx
                token = ctx.auth.issue_token(ctx.store.get_user(command["user"]))
                print(json.dumps({"token": token}), flush=True)
    finally:
        service.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
