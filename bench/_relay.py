"""A TCP relay that adds round-trip latency: ``python -m bench._relay PORT RTT_MS``.

Listens on a free 127.0.0.1 port, prints ``{"port": N, "pid": ...}``, and forwards every
connection to 127.0.0.1:PORT, holding each chunk for ``RTT_MS / 2`` in each direction
(order kept, no bandwidth limit). TLS passes through untouched. It models a user far
from the service while the service stays next to its boards. Stops when stdin closes.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def sender() -> None:
        while True:
            due, data = await queue.get()
            if not data:
                break
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        writer.close()

    task = asyncio.create_task(sender())
    try:
        while True:
            data = await reader.read(1 << 16)
            await queue.put((loop.time() + delay, data))
            if not data:
                break
    except (ConnectionError, OSError):
        await queue.put((loop.time(), b""))
    try:
        await task
    except (ConnectionError, OSError):
        pass


async def _main(target: int, rtt_ms: float) -> None:
    delay = rtt_ms / 2000.0

    async def handle(c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        try:
            s_reader, s_writer = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            c_writer.close()
            return
        await asyncio.gather(
            _pipe(c_reader, s_writer, delay),
            _pipe(s_reader, c_writer, delay),
            return_exceptions=True,
        )

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(json.dumps({"port": port, "pid": os.getpid()}), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    asyncio.run(_main(int(sys.argv[1]), float(sys.argv[2])))
