"""Start etcd-API servers for tests and benchmarks: edgeplane's datastore (SQLite or PostgreSQL
backed) and a real etcd (Debian etcd-server), each a subprocess on a free loopback port."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from tests.support.ports import free_port

REPO = Path(__file__).resolve().parents[2]


@dataclass
class ServerProcess:
    kind: str  # sqlite, postgres or etcd when started by start_backend
    endpoint: str  # host:port for etcdctl --endpoints
    process: subprocess.Popen
    argv: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill9(self) -> None:
        self.process.kill()
        self.process.wait()

    def restart(self) -> None:
        """Start the same command again (same port, same data) after a stop or kill."""
        self.process = _spawn(self.argv, self.log_path, self.env)
        wait_until_serving(self.endpoint, self.process, self.log_path)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _spawn(argv: list[str], log_path: Path, env: dict[str, str]) -> subprocess.Popen:
    handle = open(log_path, "ab")
    return subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, **env},
                            start_new_session=True)


def wait_until_serving(endpoint: str, process: subprocess.Popen, log_path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log_path.read_text(errors='replace')}")
        channel = grpc.insecure_channel(endpoint)
        try:
            grpc.channel_ready_future(channel).result(timeout=0.5)
            from edgeplane.datastore.proto import etcd_api_pb2 as pb
            from edgeplane.datastore.proto import etcd_api_pb2_grpc as rpc

            rpc.MaintenanceStub(channel).Status(pb.StatusRequest(), timeout=2)
            return
        except grpc.RpcError:
            time.sleep(0.1)
        except grpc.FutureTimeoutError:
            pass
        finally:
            channel.close()
    raise RuntimeError(f"server on {endpoint} did not become ready:\n{log_path.read_text(errors='replace')}")


def start_datastore(workdir: Path, endpoint_url: str, *extra: str, name: str = "datastore",
                    kind: str = "datastore") -> ServerProcess:
    port = free_port()
    endpoint = f"127.0.0.1:{port}"
    argv = [sys.executable, "-m", "edgeplane.cli", "datastore", "--listen", endpoint, "--endpoint", endpoint_url,
            "--log-level", "warning", *extra]
    log_path = workdir / f"{name}-{port}.log"
    env = {"PYTHONPATH": str(REPO)}
    process = _spawn(argv, log_path, env)
    wait_until_serving(endpoint, process, log_path)
    return ServerProcess(kind, endpoint, process, argv, log_path, env)


def etcd_binary() -> str | None:
    return shutil.which("etcd")


def start_etcd(workdir: Path) -> ServerProcess:
    binary = etcd_binary()
    if binary is None:
        raise RuntimeError("etcd is not installed (apt-get install etcd-server)")
    client, peer = free_port(), free_port()
    endpoint = f"127.0.0.1:{client}"
    data_dir = workdir / f"etcd-{client}"
    argv = [
        binary, "--name", "default", "--data-dir", str(data_dir),
        "--listen-client-urls", f"http://{endpoint}", "--advertise-client-urls", f"http://{endpoint}",
        "--listen-peer-urls", f"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
        "--initial-cluster", f"default=http://127.0.0.1:{peer}", "--log-level", "error", "--logger", "zap",
    ]
    log_path = workdir / f"etcd-{client}.log"
    process = _spawn(argv, log_path, {})
    wait_until_serving(endpoint, process, log_path)
    return ServerProcess("etcd", endpoint, process, argv, log_path)


def start_backend(kind: str, workdir: Path, postgres_server=None, *extra: str) -> ServerProcess:
    """``kind`` is sqlite, postgres or etcd; each call gets a fresh, empty store."""
    workdir.mkdir(parents=True, exist_ok=True)
    if kind == "etcd":
        return start_etcd(workdir)
    if kind == "sqlite":
        return start_datastore(workdir, f"sqlite://{workdir / f'state-{free_port()}.db'}", *extra, kind=kind)
    if kind == "postgres":
        import uuid

        dsn = postgres_server.create_database("ds_" + uuid.uuid4().hex[:10])
        return start_datastore(workdir, dsn, *extra, kind=kind)
    raise ValueError(kind)
