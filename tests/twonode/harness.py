"""A real pair for integration tests: PostgreSQL x2, datastore x2, agents x2, every peer link through
a cuttable proxy, plus the history every test is checked against.

Clients use the real ``etcdctl`` (ETCDCTL_API=3). Each node's processes live in their own
sessions, so a node is killed or paused as a whole with ``killpg`` on each of them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from edgeplane.twonode.lab import FAST_PROBE, FAST_REPLICATION, Lab, write_pair
from tests.support.netproxy import ProxyNet
from tests.support.waiting import wait_for

NODES = ("a", "b")


@dataclass
class Ack:
    key: str
    value: str
    revision: int
    node: str
    at: float


@dataclass
class History:
    """What clients were told, what watchers saw, and who was leader when."""

    acks: list[Ack] = field(default_factory=list)
    leader_samples: list[tuple[float, list[str]]] = field(default_factory=list)
    unsafe_windows: list[list[float]] = field(default_factory=list)  # partitions, pauses (+ settle)
    exported: set[tuple[str, str, int]] = field(default_factory=set)  # (key, value, revision)


class Pair:
    def __init__(self, directory: Path, probe: dict | None = None, replication: dict | None = None) -> None:
        self.dir = directory
        self.net = ProxyNet()
        self.configs = write_pair(
            directory, probe={**FAST_PROBE, **(probe or {})}, replication={**FAST_REPLICATION, **(replication or {})},
            route=lambda src, service, address: self.net.add((src, service), address).address)
        self.lab = Lab(self.configs)
        self.history = History()
        self._sampling = threading.Event()
        self._sampler: threading.Thread | None = None
        self.pg_ports = {n: self.lab.config(n)["postgres"]["port"] for n in NODES}
        self.data_dirs = {n: Path(self.lab.config(n)["data_dir"]) for n in NODES}

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, timeout: float = 60) -> dict:
        for name in NODES:
            self.lab.start_agent(name)
        statuses = self.lab.wait_ready(timeout)
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        return statuses

    def close(self) -> None:
        self._sampling.set()
        for name in NODES:  # resume anything a test left stopped, so it can shut down
            self.signal_node(name, signal.SIGCONT)
        self.lab.stop(timeout=20)
        for name in NODES:
            for pid in self.pids(name).values():
                signal_tree(pid, signal.SIGKILL)
        self.net.close()

    def _sample(self) -> None:
        while not self._sampling.wait(0.25):
            leaders = []
            for name in NODES:
                status = self.status(name, timeout=1.0)
                if status.get("role") == "leader" and not status.get("fenced"):
                    leaders.append(name)
            self.history.leader_samples.append((time.monotonic(), leaders))

    # -- faults ------------------------------------------------------------------------------
    def pids(self, name: str) -> dict[str, int]:
        """PIDs from the files each process leaves (works while the agent is dead or stopped)."""
        pids = {}
        agent = self.lab.agents.get(name)
        if agent is not None and agent.poll() is None:
            pids["agent"] = agent.pid
        for part, path in (("postgres", self.data_dirs[name] / "postgres" / "pgdata" / "postmaster.pid"),
                           ("datastore", self.data_dirs[name] / "datastore.pid")):
            try:
                pids[part] = int(path.read_text().split("\n", 1)[0])
            except (OSError, ValueError):
                pass
        return pids

    def kill(self, name: str, parts: tuple[str, ...] = ("agent", "datastore", "postgres")) -> None:
        pids = self.pids(name)
        for part in parts:
            if part in pids:
                signal_tree(pids[part], signal.SIGKILL)
        if "agent" in parts and name in self.lab.agents:
            self.lab.agents[name].wait(10)
        if "postgres" in parts:
            _wait_gone(pids.get("postgres"))

    def signal_node(self, name: str, sig: int) -> None:
        for pid in self.pids(name).values():
            signal_tree(pid, sig)

    def cut(self, src: str, mode: str = "cut") -> None:
        """Connections opened by ``src`` to its peer fail (one direction; call twice for both)."""
        self.net.set(src, mode)

    def heal(self) -> None:
        for name in NODES:
            self.net.set(name, "pass")

    def unsafe_from(self) -> None:
        self.history.unsafe_windows.append([time.monotonic(), float("inf")])

    def unsafe_until_settled(self, settle: float = 10.0) -> None:
        self.history.unsafe_windows[-1][1] = time.monotonic() + settle

    def restart_agent(self, name: str) -> None:
        self.lab.start_agent(name)

    def ensure_agents(self) -> None:
        """Resume and restart whatever an earlier (failed) scenario left stopped or dead."""
        self.heal()
        for name in NODES:
            self.signal_node(name, signal.SIGCONT)
            agent = self.lab.agents.get(name)
            if agent is None or agent.poll() is not None:
                self.lab.start_agent(name)

    # -- clients -----------------------------------------------------------------------------
    def endpoint(self, name: str) -> str:
        return self.lab.endpoint(name)

    def etcdctl(self, *args: str, node: str | None = None, timeout: float = 3.0) -> subprocess.CompletedProcess:
        endpoints = self.endpoint(node) if node else ",".join(self.endpoint(n) for n in NODES)
        env = {**os.environ, "ETCDCTL_API": "3"}
        argv = ["etcdctl", "--endpoints", endpoints, f"--command-timeout={timeout}s", f"--dial-timeout={timeout}s",
                *args]
        try:
            return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout + 5)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(argv, 124, "", "timeout")

    def put(self, key: str, value: str, node: str | None = None, timeout: float = 3.0) -> int | None:
        """One put; its revision when acknowledged (recorded in the history), else None."""
        done = self.etcdctl("put", key, value, "-w", "json", node=node, timeout=timeout)
        if done.returncode != 0:
            return None
        revision = int(json.loads(done.stdout)["header"]["revision"])
        self.history.acks.append(Ack(key, value, revision, node or "*", time.monotonic()))
        return revision

    def put_until_ok(self, key: str, value: str, node: str | None = None, timeout: float = 30.0) -> float:
        """Retry a put until acknowledged; seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.put(key, value, node=node, timeout=1.0) is not None:
                return time.monotonic() - started
            time.sleep(0.05)
        raise AssertionError(f"put {key} not acknowledged within {timeout}s; statuses: {self.brief()}")

    # -- observation -------------------------------------------------------------------------
    def status(self, name: str, timeout: float = 3.0) -> dict:
        from edgeplane.twonode.client import _call

        return _call(self.configs[name], "GET", "/v1/status", timeout=timeout)

    def brief(self) -> dict:
        out = {}
        for name in NODES:
            s = self.status(name, timeout=1.0)
            out[name] = {k: s.get(k) for k in ("role", "state", "fenced", "epoch", "error")}
        return out

    def wait(self, predicate, timeout: float, what: str):
        return wait_for(what, predicate, timeout, interval=0.1, context=self.brief)

    def leader(self) -> str | None:
        leaders = [n for n in NODES if self.status(n, 1.0).get("role") == "leader"
                   and not self.status(n, 1.0).get("fenced")]
        return leaders[0] if len(leaders) == 1 else None

    def wait_pair(self, timeout: float = 40) -> dict:
        """Until one leader and one streaming follower."""
        return self.lab.wait_ready(timeout)

    def dump(self, name: str) -> dict[str, tuple[str, int]]:
        """The node's own copy of the store (read from its local PostgreSQL, leader or follower)."""
        dsn = f"postgresql://postgres@127.0.0.1:{self.pg_ports[name]}/edgeplane"
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            rows = conn.execute("SELECT key, value, mod_revision FROM ep_kv ORDER BY key").fetchall()
        return {bytes(k).decode(): (bytes(v).decode(), int(r)) for k, v, r in rows}

    def wait_identical(self, timeout: float = 30) -> dict:
        def same():
            try:
                a, b = self.dump("a"), self.dump("b")
            except psycopg.Error:
                return None
            return a if a == b else None
        return self.wait(same, timeout, "both stores identical")

    def events(self) -> str:
        """Both agents' event logs, for assertion messages."""
        lines = []
        for name in NODES:
            try:
                lines += [f"{name} {line}" for line in (self.data_dirs[name] / "events.jsonl").read_text().splitlines()]
            except OSError:
                pass
        return "\n".join(sorted(lines, key=lambda l: l.split('"time": ', 1)[-1]))

    def epoch(self) -> int:
        return max(self.status(n, 1.0).get("epoch") or 0 for n in NODES)

    def exports(self, name: str) -> list[dict]:
        files = sorted((self.data_dirs[name] / "split-writes").glob("split-writes-*.json"))
        documents = [json.loads(f.read_text()) for f in files]
        for document in documents:
            self.history.exported.update((w["key"], w["value"], w["revision"]) for w in document["writes"])
        return documents

    def all_exported(self) -> set[tuple[str, str, int]]:
        """Every split write exported so far, including from data directories since wiped."""
        for name in NODES:
            self.exports(name)
        return set(self.history.exported)


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def signal_tree(pid: int, sig: int) -> None:
    """Signal a process, its process group and each child's group: every PostgreSQL child is its
    own group leader, so killpg(postmaster) alone would miss the backends and the WAL receiver.
    The parent is frozen first so that it cannot fork a child we miss, and its children are
    listed while it still is their parent (a killed parent's children are re-parented at once)."""
    if sig == signal.SIGCONT:
        _killpg(pid, sig)
        for child in _children(pid):
            _killpg(child, sig)
        return
    _killpg(pid, signal.SIGSTOP)
    for child in _children(pid):
        _killpg(child, sig)
    _killpg(pid, sig)


def _killpg(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _wait_gone(pid: int | None, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while pid and time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
