"""Polling for a condition in tests: generous limits, since the machine may be loaded."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 60.0, interval: float = 0.2,
             context: Callable[[], object] | None = None) -> T:
    """Poll ``probe`` until it returns something truthy (returned), or fail naming ``what`` (and
    what ``context()`` shows of the system at that moment)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(interval)
    shown = f"; {context()}" if context is not None else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{shown}")
