"""`edgeplane lab site` (what `make run` starts): a real console process and three agent processes
reach a running K3s cluster, print a console URL that answers, and all stop on SIGTERM. The
agents run lab installers that record their arguments instead of installing K3s (see
edgeplane.agent.labhost)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.ports import free_port


def test_lab_site_comes_up_and_stops(tmp_path: Path) -> None:
    lab_dir = tmp_path / "lab"
    proc = subprocess.Popen([sys.executable, "-m", "edgeplane.cli", "lab", "site", "--dir", str(lab_dir),
                             "--listen", f"127.0.0.1:{free_port()}"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    try:
        started = time.monotonic()
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "Ctrl-C stops" in line:
                break
        output = "".join(lines)
        assert time.monotonic() - started < 120, output
        url = re.search(r"console URL:\s+(\S+)", output).group(1)
        key = re.search(r"admin key:\s+(\S+)", output).group(1)
        hosts = httpx.get(f"{url}/v1/hosts", headers={"Authorization": f"Bearer {key}"}).json()
        assert sorted(h["registration"] for h in hosts) == ["auto", "manual", "qr"]
        assert {h["status"] for h in hosts} == {"in-use"}
        clusters = httpx.get(f"{url}/v1/clusters", headers={"Authorization": f"Bearer {key}"}).json()
        assert [c["status"] for c in clusters] == ["running"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        try:
            httpx.get(f"{url}/healthz", timeout=1)
            raise AssertionError("console still answers after the lab stopped")
        except httpx.HTTPError:
            pass
        agent_logs = list(lab_dir.glob("hosts/*/agent.log"))
        assert len(agent_logs) == 3
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
