"""The ``pyspalloc`` command line."""
