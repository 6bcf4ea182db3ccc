"""A complete pair on loopback: two PostgreSQL clusters, two datastores, two agents.

Used by `edgeplane lab twonode`, the integration tests and the benchmark. ``route`` lets a caller
put something (the tests' cuttable proxy) between a node and each of its peer's services.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from edgeplane.common.netaddr import parse_host_port

from .client import node_status

Route = Callable[[str, str, str], str]  # (from node, service, address) -> address to use

NAMES = ("a", "b")
# A probe timeout well above loopback latency even on a loaded 2-core CI machine: a false
# failover there would look like a bug.
FAST_PROBE = {"interval": 0.2, "timeout": 1.0, "threshold": 4, "startup_grace": 1.0}
FAST_REPLICATION = {"downgrade_after": 1.0, "resync_after": 2.0, "wal_timeout": 2.0}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_pair(directory: Path, *, probe: dict | None = None, replication: dict | None = None,
               route: Route | None = None, datastore_command: list[str] | None = None) -> dict[str, Path]:
    """Write node.yaml for nodes a and b under ``directory``; return name -> config path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o755)  # PostgreSQL runs as `postgres` under root and must traverse it
    token = directory / "token"
    if not token.exists():
        token.write_text(secrets.token_urlsafe(32))
        os.chmod(token, 0o600)
    ports = {n: {"postgres": free_port(), "api": free_port(), "datastore": free_port()} for n in NAMES}
    route = route or (lambda _src, _service, address: address)
    paths = {}
    for name, peer in zip(NAMES, reversed(NAMES)):
        node_dir = directory / name
        node_dir.mkdir(exist_ok=True)
        os.chmod(node_dir, 0o755)
        config = {
            "name": name,
            "priority": 100 if name == "a" else 50,
            "data_dir": str(node_dir / "data"),
            "listen": f"127.0.0.1:{ports[name]['api']}",
            "token_file": str(token),
            "postgres": {"host": "127.0.0.1", "port": ports[name]["postgres"]},
            "peer": {
                "name": peer,
                "api": route(name, "api", f"127.0.0.1:{ports[peer]['api']}"),
                "postgres": route(name, "postgres", f"127.0.0.1:{ports[peer]['postgres']}"),
            },
            "datastore": {"listen": f"127.0.0.1:{ports[name]['datastore']}"},
            "probe": probe or {},
            "replication": replication or {},
        }
        if datastore_command:
            config["datastore"]["command"] = datastore_command
        paths[name] = node_dir / "node.yaml"
        paths[name].write_text(yaml.safe_dump(config, sort_keys=False))
    return paths


class Lab:
    """The agents of a pair as child processes (each in its own session)."""

    def __init__(self, configs: dict[str, Path]) -> None:
        self.configs = configs
        self.agents: dict[str, subprocess.Popen] = {}

    def config(self, name: str) -> dict:
        return yaml.safe_load(self.configs[name].read_text())

    def endpoint(self, name: str) -> str:
        return self.config(name)["datastore"]["listen"]

    def start_agent(self, name: str) -> subprocess.Popen:
        log = open(self.configs[name].parent / "agent.log", "ab")
        argv = [sys.executable, "-m", "edgeplane.cli", "twonode", "run", "--config", str(self.configs[name])]
        self.agents[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             start_new_session=True)
        log.close()
        return self.agents[name]

    def status(self, name: str) -> dict:
        return node_status(self.configs[name])

    def statuses(self) -> dict[str, dict]:
        return {name: self.status(name) for name in self.configs}

    def wait_ready(self, timeout: float = 60) -> dict[str, dict]:
        """Until one leader and one streaming follower, each with its datastore running."""
        deadline = time.monotonic() + timeout
        while True:
            statuses = self.statuses()
            roles = sorted(s.get("role", "") for s in statuses.values())
            if roles == ["follower", "leader"] and all(
                    s["replication"]["streaming"] and s["pids"]["datastore"] and s["pids"]["postgres"]
                    and _accepting(self.endpoint(name)) for name, s in statuses.items()):
                return statuses
            if time.monotonic() > deadline:
                raise TimeoutError(f"two-node lab not ready after {timeout:.0f}s: {json.dumps(statuses)[:2000]}")
            for name, agent in self.agents.items():
                if agent.poll() is not None:
                    raise RuntimeError(f"agent {name} exited with {agent.returncode}; "
                                       f"see {self.configs[name].parent / 'agent.log'}")
            time.sleep(0.2)

    def lab_document(self) -> dict:
        nodes = []
        for name, status in self.statuses().items():
            nodes.append({"name": name, "endpoint": self.endpoint(name), "config": str(self.configs[name]),
                          "pids": {**status.get("pids", {}), "agent": self.agents[name].pid}})
        return {"nodes": nodes}

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM every agent (each stops its datastore and PostgreSQL), SIGKILL stragglers."""
        for agent in self.agents.values():
            if agent.poll() is None:
                os.kill(agent.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for agent in self.agents.values():
            try:
                agent.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(agent.pid, signal.SIGKILL)
                agent.wait()


def _accepting(address: str) -> bool:
    import socket

    host, port = parse_host_port(address, option="endpoint")
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def run_lab(directory: Path) -> None:
    """`edgeplane lab twonode`: start the pair, write lab.json, wait for SIGTERM/SIGINT, tear down."""
    directory = Path(directory).resolve()
    lab = Lab(write_pair(directory))
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        for name in lab.configs:
            lab.start_agent(name)
        lab.wait_ready(timeout=120)
        (directory / "lab.json").write_text(json.dumps(lab.lab_document(), indent=2))
        for node in lab.lab_document()["nodes"]:
            host, port = parse_host_port(node["endpoint"], option="endpoint")
            print(f"node {node['name']}: etcdctl --endpoints {host}:{port}", flush=True)
        print(f"status: edgeplane twonode status --lab {directory}", flush=True)
        while not stopping:
            time.sleep(0.2)
    finally:
        lab.stop()
        (directory / "lab.json").unlink(missing_ok=True)
