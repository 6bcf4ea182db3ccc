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
    path = _temp_dir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)



def _temp_dir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="edgeplane-twonode-"))
    os.chmod(path, 0o755)
    return path


@pytest.fixture(scope="module")
def pair() -> Iterator:
    """One running pair for a whole module, with a watcher over its whole life.

    Every scenario ends with the history checker, which also waits until the pair has converged
    again (one leader, one streaming follower, identical stores), so the next scenario starts
    from a healthy pair whichever node leads; scenarios never assume a node's role.
    """
    from tests.twonode.checker import Watcher
    from tests.twonode.harness import Pair

    directory = _temp_dir()
    pair = Pair(directory)
    try:
        pair.start()
        pair.watcher = Watcher(pair)
        yield pair
    finally:
        watcher = getattr(pair, "watcher", None)
        if watcher is not None:
            watcher.close()
        pair.close()
        if not os.environ.get("EDGEPLANE_KEEP_TEST_DIRS"):  # keep logs and watch files for debugging
            shutil.rmtree(directory, ignore_errors=True)
