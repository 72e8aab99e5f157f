"""Run a virtual machine for a benchmark: ``python -m bench._vm NAME BASE [--booted]``.

Prints ``{"boards": {ip: [x, y, z]}, "pid": ...}`` once every socket is bound, then
obeys JSON lines on stdin until it closes:
``{"op": "fault", "ip": IP, "latency_ms": L, "loss": P}`` -> ``{"ok": true}``.
"""

from __future__ import annotations

import json
import os
import sys


def main(argv: list[str]) -> None:
    from pyspalloc.geometry import builtin_machine
    from pyspalloc.virtual import VirtualMachine

    name, base = argv[0], argv[1]
    booted = "--booted" in argv[2:]
    definition = builtin_machine(name, base)
    with VirtualMachine(definition, booted=booted) as vm:
        boards = {board.ip: list(triad) for triad, board in vm.boards.items()}
        print(json.dumps({"boards": boards, "pid": os.getpid()}), flush=True)
        for line in sys.stdin:
            command = json.loads(line)
            if command.get("op") == "fault":
                ips = [command["ip"]] if command.get("ip") else list(boards)
                for ip in ips:
                    board = vm.board_by_ip(ip)
                    if board is not None:
                        board.set_fault(
                            latency_ms=float(command.get("latency_ms", 0)),
                            loss=float(command.get("loss", 0)),
                        )
                print(json.dumps({"ok": True}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
