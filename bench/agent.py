"""Agent speed figures, run on demand (results in docs/benchmarks.md).

    .venv/bin/python bench/agent.py [--artifact-mb 256] [--skip-lab]

- user-data validation of a full document (every section), per second;
- configuration rendering per distribution, milliseconds per node;
- journal: steps per second (two fsynced lines per step);
- artifact download from a loopback HTTP server with sha256 verification, MiB/s, against
  ``curl -o`` + ``sha256sum`` on the same file;
- lab site: seconds from nothing to a running three-host cluster (target: < 120 s, `make run`).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import http.server
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from edgeplane.agent import validate_user_data  # noqa: E402
from edgeplane.agent.artifacts import download  # noqa: E402
from edgeplane.agent.journal import Journal, Step  # noqa: E402
from edgeplane.agent.render import NodeContext, render_node  # noqa: E402
from edgeplane.agent.spec import NodeSpec  # noqa: E402
from tests.agent.test_render import USER_DATA, spec  # noqa: E402
from tests.agent.test_userdata import FULL  # noqa: E402


def rate(fn, seconds: float = 2.0) -> float:  # type: ignore[no-untyped-def]
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        count += 1
    return count / (time.perf_counter() - start)


def bench_render() -> dict[str, float]:
    out = {}
    for dist in ("k3s", "rke2", "pxk-e", "canonical"):
        node: NodeSpec = spec(dist)
        ctx = NodeContext(node, USER_DATA, "edge-1", "10.10.0.21")
        out[dist] = 1000 / rate(lambda ctx=ctx: render_node(ctx), 1.0)
    return out


def bench_journal(tmp: Path) -> float:
    journal = Journal(tmp / "journal.jsonl")
    steps = [Step(f"s{i}", lambda: None) for i in range(300)]
    start = time.perf_counter()
    journal.run("plan", steps)
    return len(steps) / (time.perf_counter() - start)


def bench_download(tmp: Path, size_mb: int) -> tuple[float, float]:
    served = tmp / "served"
    served.mkdir()
    (served / "blob").write_bytes(os.urandom(size_mb << 20))
    sha = hashlib.sha256((served / "blob").read_bytes()).hexdigest()
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/blob"
    try:
        start = time.perf_counter()
        with httpx.Client() as client:
            download(client, url, tmp / "agent-copy", sha)
        agent = size_mb / (time.perf_counter() - start)
        start = time.perf_counter()
        subprocess.run(["curl", "-s", "-o", str(tmp / "curl-copy"), url], check=True)
        subprocess.run(["sha256sum", str(tmp / "curl-copy")], check=True, stdout=subprocess.DEVNULL)
        baseline = size_mb / (time.perf_counter() - start)
    finally:
        httpd.shutdown()
        httpd.server_close()
    return agent, baseline


def bench_lab(tmp: Path) -> float:
    from tests.support.ports import free_port

    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "edgeplane.cli", "lab", "site", "--dir", str(tmp / "lab"),
                             "--listen", f"127.0.0.1:{free_port()}"], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            if "Ctrl-C stops" in line:
                return time.perf_counter() - start
        raise RuntimeError("lab site exited before the cluster was running")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--artifact-mb", type=int, default=256)
    parser.add_argument("--skip-lab", action="store_true")
    args = parser.parse_args()
    print(f"agent bench {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, "
          f"{platform.machine()}, Python {platform.python_version()}\n")
    print(f"- user-data validation (full document): {rate(lambda: validate_user_data(FULL)):.0f} documents/s")
    for dist, ms in bench_render().items():
        print(f"- render {dist}: {ms:.2f} ms per node")
    with tempfile.TemporaryDirectory() as tmp:
        print(f"- journal: {bench_journal(Path(tmp)):.0f} steps/s (2 fsynced records per step)")
        agent, baseline = bench_download(Path(tmp), args.artifact_mb)
        print(f"- artifact download + sha256, {args.artifact_mb} MiB over loopback: agent {agent:.0f} MiB/s, "
              f"curl + sha256sum {baseline:.0f} MiB/s ({agent / baseline:.2f}x)")
        if not args.skip_lab:
            print(f"- lab site, nothing to a running 3-host cluster: {bench_lab(Path(tmp)):.1f} s (target < 120 s)")


if __name__ == "__main__":
    main()
