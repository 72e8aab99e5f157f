"""pyspalloc: a complete Spalloc in Python.

The client API mirrors ``spinnman.spalloc``; the service is wire-compatible with the
Java Spalloc server; the virtual machine speaks the real SpiNNaker UDP protocols.
"""

__version__ = "0.1.0"
