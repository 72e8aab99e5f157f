"""Helpers shared by the test suites (and the benchmarks): one home for each.

- :mod:`tests.support.addresses`: free loopback ports and virtual machine address bases
- :mod:`tests.support.waiting`: bounded polling (``wait_for``, ``eventually``)
- :mod:`tests.support.http_client`: a REST client with form login and CSRF (``Http``)
- :mod:`tests.support.certificates`: a throw-away CA and server certificate for 127.0.0.1
- :mod:`tests.support.import_graph`: the import graph of ``pyspalloc``, read with ``ast``
"""
