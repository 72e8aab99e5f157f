"""The proxy websocket of the Spalloc service (web-api.md §6).

The service core authorises the handshake and calls :func:`serve_proxy` with the job's
board map; the lifecycle calls :meth:`ProxyRegistry.close_job` when the job ends.
"""

from pyspalloc.server.proxy.channels import CHANNEL_IDS, ChannelIds, local_address_towards
from pyspalloc.server.proxy.registry import ProxyRegistry, channel_budget
from pyspalloc.server.proxy.session import (
    ProxyOptions,
    ProxySession,
    serve_proxy,
)

__all__ = [
    "CHANNEL_IDS",
    "ChannelIds",
    "ProxyOptions",
    "ProxyRegistry",
    "channel_budget",
    "ProxySession",
    "local_address_towards",
    "serve_proxy",
]
