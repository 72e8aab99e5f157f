"""User programs written against the seed API (``spinnman.spalloc``).

Each program's first import line is ``from pyspalloc import SpallocClient, SpallocState``;
``tests/interop/test_same_programs.py`` runs it as it is in our environment, and with that
line swapped for spinnman's imports in the spinnman 1!7.3.0 venv, against one service.
Each prints JSON lines: ``{"result": ...}`` (compared field by field) and, for programs
that need the test to act, ``{"checkpoint": ...}`` lines answered on stdin.
"""
