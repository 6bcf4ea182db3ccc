"""`edgeplane lab twonode`, `edgeplane twonode status|pause|resume` as a user runs them (subprocesses)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.etcd]


def edgeplane(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeplane.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_lab_runs_a_pair_reports_status_and_tears_down_on_sigterm(node_dir: Path):
    lab_dir = node_dir / "lab"
    lab = subprocess.Popen([sys.executable, "-m", "edgeplane.cli", "lab", "twonode", "--dir", str(lab_dir)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while not (lab_dir / "lab.json").exists():
            assert lab.poll() is None, lab.stdout.read()
            assert time.monotonic() < deadline, "lab.json not written"
            time.sleep(0.2)
        document = json.loads((lab_dir / "lab.json").read_text())
        assert [n["name"] for n in document["nodes"]] == ["a", "b"]
        pids = [pid for n in document["nodes"] for pid in n["pids"].values()]
        assert len(pids) == 6 and all(_alive(pid) for pid in pids)
        for node in document["nodes"]:
            assert set(node["pids"]) == {"postgres", "datastore", "agent"}

        put = subprocess.run(["etcdctl", "--endpoints", document["nodes"][1]["endpoint"], "put", "k", "v"],
                             capture_output=True, text=True, env={**os.environ, "ETCDCTL_API": "3"}, timeout=20)
        assert put.returncode == 0, put.stderr

        deadline = time.monotonic() + 10
        while True:  # status is refreshed once per probe interval (1 s here)
            status = edgeplane("twonode", "status", "--lab", str(lab_dir))
            assert status.returncode == 0, status.stderr
            nodes = json.loads(status.stdout)["nodes"]
            if nodes[0]["last_change"]["revision"] >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert sorted(n["role"] for n in nodes) == ["follower", "leader"]
        for node in nodes:
            assert {"name", "role", "state", "peer", "replication", "last_change", "epoch"} <= set(node)
        assert nodes[0]["last_change"]["revision"] >= 2 and nodes[0]["peer"]["healthy"]

        config = lab_dir / "a" / "node.yaml"
        one = json.loads(edgeplane("twonode", "status", "--config", str(config)).stdout)
        assert one["name"] == "a" and one["replication"]["mode"] == "sync"

        paused = json.loads(edgeplane("twonode", "pause", "--config", str(config)).stdout)
        assert paused["paused"] and paused["peer"]["paused"]
        assert all(n["paused"] for n in json.loads(edgeplane("twonode", "status", "--lab", str(lab_dir)).stdout)["nodes"])
        edgeplane("twonode", "resume", "--lab", str(lab_dir))
        assert not any(n["paused"] for n in json.loads(edgeplane("twonode", "status", "--lab", str(lab_dir)).stdout)["nodes"])

        api = [line.split(": ", 1)[1] for line in config.read_text().splitlines() if line.startswith("listen:")][0]
        assert httpx.get(f"http://{api}/v1/status").status_code == 401, "the agent API needs the token"
        assert httpx.get(f"http://{api}/v1/status", headers={"Authorization": "Bearer wrong"}).status_code == 401
    finally:
        lab.send_signal(signal.SIGTERM)
        lab.wait(60)
    deadline = time.monotonic() + 20
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in pids), "SIGTERM must tear the whole pair down"
    assert not (lab_dir / "lab.json").exists()


def test_status_and_pause_need_exactly_one_target(node_dir: Path):
    assert edgeplane("twonode", "status").returncode == 2
    result = edgeplane("twonode", "status", "--lab", str(node_dir))
    assert result.returncode == 2 and "lab.json" in result.stderr
    bad = node_dir / "node.yaml"
    bad.write_text("name: a\n")
    result = edgeplane("twonode", "run", "--config", str(bad))
    assert result.returncode == 2 and "peer: Field required" in result.stderr
