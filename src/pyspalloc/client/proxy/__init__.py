"""The client's proxy: a job's boards reached through one websocket (``web-api.md`` §6).

The modules, top-down (each imports only modules listed after it):

* :mod:`~pyspalloc.client.proxy.listeners`, :mod:`~pyspalloc.client.proxy.connections`
  and :mod:`~pyspalloc.client.proxy.proxied`: the user-facing connection classes
  (``SpallocSCPConnection``, ``SpallocEIEIOListener``, ...), each wrapping one channel;
* :mod:`~pyspalloc.client.proxy.connection`: :class:`ProxyConnection`, one websocket
  per job, composing the three below with a receiver thread, a pinger thread and
  reconnection;
* :mod:`~pyspalloc.client.proxy.channels`: :class:`Channel` and :class:`UnboundChannel`,
  which know the connection only through the ``ChannelHost`` protocol;
* :mod:`~pyspalloc.client.proxy.calls`: the correlation-id calls (OPEN, CLOSE,
  OPEN_UNBOUND) and :class:`ProxyError`;
* :mod:`~pyspalloc.client.proxy.link`: one websocket, opened through
  ``Session.websocket`` with bounded retries, and the rule for reopening a dropped one;
* :mod:`~pyspalloc.client.proxy.buffered`: websocket-client's ``WebSocket`` with
  buffered reads and batched writes.

Nothing is imported here, so that ``import pyspalloc.client`` does not load
websocket-client; import from the modules.
"""
