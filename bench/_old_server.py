"""spalloc_server 1!7.0.0 with no BMP I/O; run with that venv's python (no pyspalloc).

``python _old_server.py CONFIG PORT`` swaps the server's ``AsyncBMPController`` for
:class:`NoHardware`, which reports every queued power/link request as done at once on
its own thread (as machine-and-allocation.md §5.1 describes), then runs the server's
own ``main`` with ``--cold-start --quiet``. SIGTERM or SIGINT stops it.
"""

import queue
import signal
import sys
import threading

import spalloc_server.controller as old_controller


class NoHardware:
    """Stand-in for AsyncBMPController: every request succeeds, in order, off-thread."""

    def __init__(self, hostname, on_thread_start=None):
        self._hostname = hostname
        self._lock = threading.RLock()
        self._queue = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._serve, args=(on_thread_start,), daemon=True, name=f"nohw-{hostname}"
        )
        self._thread.start()

    @property
    def hostname(self):
        return self._hostname

    def __enter__(self):
        self._lock.acquire()

    def __exit__(self, *exc):
        self._lock.release()
        return False

    def add_requests(self, requests):
        self._queue.put(requests)

    def stop(self):
        self._queue.put(None)

    def join(self):
        self._thread.join()

    def _serve(self, on_thread_start):
        if on_thread_start is not None:
            on_thread_start()
        while True:
            item = self._queue.get()
            if item is None:
                return
            item.on_done(True, None)


def main():
    config, port = sys.argv[1], sys.argv[2]
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    old_controller.AsyncBMPController = NoHardware
    from spalloc_server.server import main as server_main

    sys.exit(server_main([config, "--cold-start", "--quiet", "--port", port]))


if __name__ == "__main__":
    main()
