"""The admin REST API under ``{srv}/admin`` (ADMIN only; see docs/operator.md).

The resource names are those of the Java server's ``AdminAPI`` (``import``, ``board``,
``users``, ``groups`` and their members), with its JSON records; ``machines`` is ours.
Unlike the Java server, these routes are listed in the OpenAPI document.
"""
