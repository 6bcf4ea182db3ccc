"""Fixtures of the agent's process-level tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent.support import Site


@pytest.fixture()
def site(tmp_path: Path) -> Iterator[Site]:
    """A console process with an admin key; every agent started through it is killed afterwards."""
    lab = Site(tmp_path)
    try:
        lab.console.start()
        yield lab
    finally:
        lab.close()
