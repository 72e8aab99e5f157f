"""spinnman 1!7.3.0 as a benchmark contender; run with that venv's python (no pyspalloc).

``python _spinnman_worker.py URL USER PASSWORD`` creates a one-board job through the
service, waits for READY, makes ``job.create_transceiver()`` (SCP over the proxy
websocket), prints ``{"root": ip}`` and then answers JSON lines on stdin:

* ``{"op": "rw", "size": N}`` -> writes N random bytes at chip (0, 0) 0x60000000, reads
  them back: ``{"write_s", "read_s", "ok"}``;
* ``{"op": "ver", "count": N}`` -> N single CMD_VER calls to chip (0, 0):
  ``{"latencies": [seconds, ...]}``.

When stdin closes it closes the transceiver and destroys the job.
"""

import json
import os
import sys
import time

from spinnman.config_setup import unittest_setup

unittest_setup()
from spinn_utilities.config_holder import set_config  # noqa: E402

set_config("Machine", "version", "5")
from spinnman.spalloc import SpallocClient  # noqa: E402

ADDRESS = 0x60000000


def main() -> None:
    url, user, password = sys.argv[1:4]
    client = SpallocClient(url, user, password)
    job = client.create_job(1)
    job.wait_until_ready()
    txrx = job.create_transceiver()
    print(json.dumps({"root": job.get_root_host()}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "rw":
            data = os.urandom(int(command["size"]))
            start = time.perf_counter()
            txrx.write_memory(0, 0, ADDRESS, data)
            middle = time.perf_counter()
            back = txrx.read_memory(0, 0, ADDRESS, len(data))
            end = time.perf_counter()
            reply = {"write_s": middle - start, "read_s": end - middle, "ok": back == data}
        elif command["op"] == "ver":
            latencies = []
            for _ in range(int(command["count"])):
                start = time.perf_counter()
                txrx._get_scamp_version(0, 0)
                latencies.append(time.perf_counter() - start)
            reply = {"latencies": latencies}
        else:
            reply = {"error": f"unknown op {command['op']!r}"}
        print(json.dumps(reply), flush=True)
    txrx.close()
    job.destroy()
    client.close()
    os._exit(0)


if __name__ == "__main__":
    main()
