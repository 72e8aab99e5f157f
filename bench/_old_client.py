"""The old spalloc 1!7.4.1 ProtocolClient as a contender; run with that venv's python.

``python _old_client.py HOST PORT MACHINE`` connects one ``ProtocolClient`` and answers
JSON lines on stdin with phase times:

* ``{"op": "batch", "jobs": [[args, kwargs], ...]}``: create each job in order
  (``create_job(30, *args, owner=..., keepalive=None, machine=MACHINE, ...)``), poll
  ``get_job_state`` until all are READY, destroy them all:
  ``{"create_s", "ready_s", "destroy_s", "polls", "ids"}``.
"""

import json
import sys
import time

from spalloc_client import ProtocolClient

READY = 3


def main():
    host, port, machine = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    client = ProtocolClient(host, port)
    client.connect()
    print(json.dumps({"version": client.version(timeout=10)}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        jobs = command["jobs"]
        t0 = time.perf_counter()
        ids = [
            client.create_job(
                30,
                *args,
                owner="bench",
                keepalive=None,
                machine=machine,
                require_torus=False,
                min_ratio=0.333,
                **kwargs,
            )
            for args, kwargs in jobs
        ]
        t1 = time.perf_counter()
        waiting = list(ids)
        polls = 0
        deadline = time.monotonic() + float(command.get("timeout", 120))
        while waiting and time.monotonic() < deadline:
            still = []
            for job_id in waiting:
                polls += 1
                if client.get_job_state(job_id, timeout=30)["state"] != READY:
                    still.append(job_id)
            waiting = still
        t2 = time.perf_counter()
        for job_id in ids:
            client.destroy_job(job_id, "bench", timeout=30)
        t3 = time.perf_counter()
        print(
            json.dumps(
                {
                    "create_s": t1 - t0,
                    "ready_s": t2 - t1,
                    "destroy_s": t3 - t2,
                    "polls": polls,
                    "not_ready": len(waiting),
                    "ids": len(ids),
                }
            ),
            flush=True,
        )
    client.close()


if __name__ == "__main__":
    main()
