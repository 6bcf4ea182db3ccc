"""Fixtures for the two-node tests.

PostgreSQL runs as the ``postgres`` user when the tests run as root, so its directories must be
traversable by that user. pytest's own temp root (/tmp/pytest-of-root) is re-chmodded to 0700 by
every pytest session that starts, including concurrent ones, so node directories live in their
own directory directly under the system temp dir instead.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def node_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="edgeplane-twonode-"))
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def pair(node_dir: Path):
    """A running pair (a leads) with a watcher; the history checker runs unless the test failed."""
    from tests.twonode.checker import Watcher
    from tests.twonode.harness import Pair

    pair = Pair(node_dir)
    try:
        pair.start()
        pair.watcher = Watcher(pair)
        yield pair
    finally:
        watcher = getattr(pair, "watcher", None)
        if watcher is not None and watcher.process.poll() is None:
            watcher.process.kill()
        pair.close()
