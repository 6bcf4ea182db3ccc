"""The datastore supervisor: a restarted node agent adopts the datastore it started earlier.

A real `edgeplane datastore` on SQLite, which execs into Envoy: the supervisor must recognise it
by its listen address although /proc shows Envoy's command line, not the one it was started with.
"""

from __future__ import annotations

import sys

import grpc

from edgeplane.datastore.proto import etcd_api_pb2 as pb
from edgeplane.datastore.proto import etcd_api_pb2_grpc as rpc
from edgeplane.twonode.supervise import ManagedProcess
from tests.support.ports import free_port
from tests.support.servers import REPO, wait_until_serving


def datastore_argv(listen: str, db: str) -> list[str]:
    return [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(REPO)!r}); from edgeplane.cli import main; main()",
            "datastore", "--listen", listen, "--endpoint", f"sqlite://{db}", "--log-level", "warning"]


def test_a_new_supervisor_adopts_the_running_datastore_and_restarts_it_on_a_new_argv(tmp_path):
    listen = f"127.0.0.1:{free_port()}"
    argv = datastore_argv(listen, str(tmp_path / "a.db"))
    first = ManagedProcess(tmp_path / "datastore.pid", tmp_path / "datastore.log", marker=listen)
    pid = first.start(argv)
    try:
        wait_until_serving(listen, first._child[0], tmp_path / "datastore.log")
        # The agent restarts: a fresh supervisor knows only the PID file.
        second = ManagedProcess(tmp_path / "datastore.pid", tmp_path / "datastore.log", marker=listen)
        assert second.pid() == pid
        assert second.ensure(argv) == pid  # same argv: adopted, not restarted
        channel = grpc.insecure_channel(listen)
        assert rpc.KVStub(channel).Put(pb.PutRequest(key=b"/adopted", value=b"1"), timeout=10).header.revision == 2
        channel.close()
        # Re-pointed (another database): the old process goes, a new one starts.
        new_pid = second.ensure(datastore_argv(listen, str(tmp_path / "b.db")))
        assert new_pid != pid
        wait_until_serving(listen, second._child[0], tmp_path / "datastore.log")
        second.stop()
        assert second.pid() is None
    finally:
        first.stop(graceful=False)


def test_a_recycled_pid_is_not_adopted(tmp_path):
    """A PID file naming a live process that is not our datastore (here: pytest itself)."""
    import os

    (tmp_path / "datastore.pid").write_text(f"{os.getpid()}\n[\"edgeplane\"]\n")
    supervisor = ManagedProcess(tmp_path / "datastore.pid", tmp_path / "datastore.log", marker="127.0.0.1:1")
    assert supervisor.pid() is None
