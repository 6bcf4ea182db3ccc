"""Datastore fixtures: the same suite runs against edgeplane on SQLite, on PostgreSQL, and real etcd."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator

import pytest

from tests.support.servers import ServerProcess, start_backend

BACKENDS = ["sqlite", "postgres", "etcd"]


def _needs(kind: str) -> None:
    if kind == "etcd" and shutil.which("etcd") is None:
        pytest.fail("etcd is not installed: apt-get install etcd-server (see .ci/run)")
    if shutil.which("etcdctl") is None:
        pytest.fail("etcdctl is not installed: apt-get install etcd-client (see .ci/run)")


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request, tmp_path_factory) -> Iterator[ServerProcess]:
    """One server per backend per test module; tests use their own key prefixes."""
    kind = request.param
    _needs(kind)
    postgres = request.getfixturevalue("postgres_server") if kind == "postgres" else None
    server = start_backend(kind, tmp_path_factory.mktemp(kind), postgres)
    yield server
    server.stop()


@pytest.fixture
def fresh_backend(request, tmp_path) -> Iterator[Callable[..., ServerProcess]]:
    """Factory for a server of the current backend kind with an empty store, for tests that
    change global state (compaction) or need extra flags."""
    started: list[ServerProcess] = []

    def start(kind: str, *extra: str) -> ServerProcess:
        _needs(kind)
        postgres = request.getfixturevalue("postgres_server") if kind == "postgres" else None
        server = start_backend(kind, tmp_path / f"{kind}-{len(started)}", postgres, *extra)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
