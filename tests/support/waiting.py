"""Bounded polling: wait for a condition, fail with an assertion when it does not come."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(check: Callable[[], T | None], timeout: float = 30.0, step: float = 0.05) -> T:
    """Poll ``check`` until it returns something truthy; return it; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"condition not met within {timeout} s")


def eventually(check: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Wait until ``check()`` is true, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what or check}"
        time.sleep(0.02)
