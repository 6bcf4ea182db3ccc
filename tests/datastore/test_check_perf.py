"""`etcdctl check perf --load=m` (1000 writes/s from 200 clients for 60 s) passes against the
datastore on SQLite: throughput above 90 % of the load, slowest request under 0.5 s, stddev under
0.1 s, no errors. This is etcdctl's own verdict, not a timing assertion of ours.

One retry is allowed: on a shared 2-core machine a single scheduler stall of the load generator
(200 Go clients on the same cores) can push one request past 0.5 s; a real regression in
throughput or latency fails both runs.
"""

from __future__ import annotations

import shutil

import pytest

from tests.support.etcdctl import etcdctl


@pytest.mark.slow
def test_etcdctl_check_perf_medium_load_passes_on_sqlite(fresh_backend):
    if shutil.which("etcdctl") is None:
        pytest.fail("etcdctl is not installed: apt-get install etcd-client")
    verdicts = []
    for _attempt in range(2):
        server = fresh_backend("sqlite")
        result = etcdctl(server.endpoint, "check", "perf", "--load=m", check=False, timeout=180)
        lines = result.stdout.replace("\r", "\n").splitlines()
        verdict = [line for line in lines if line.startswith(("PASS", "FAIL", "Slowest", "Throughput", "Stddev"))]
        verdicts.append("\n".join(verdict) + result.stderr)
        if result.returncode == 0 and verdict and verdict[-1] == "PASS":
            return
        server.stop()
    pytest.fail("etcdctl check perf failed twice:\n" + "\n---\n".join(verdicts))
