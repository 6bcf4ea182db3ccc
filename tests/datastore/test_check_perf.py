"""`etcdctl check perf --load=m` (1000 writes/s from 200 clients for 60 s) passes against the
datastore on SQLite: throughput above 90 % of the load, slowest request under 0.5 s, stddev under
0.1 s, no errors. This is etcdctl's own verdict, not a timing assertion of ours."""

from __future__ import annotations

import shutil

import pytest

from tests.support.etcdctl import etcdctl


@pytest.mark.slow
def test_etcdctl_check_perf_medium_load_passes_on_sqlite(fresh_backend):
    if shutil.which("etcdctl") is None:
        pytest.fail("etcdctl is not installed: apt-get install etcd-client")
    server = fresh_backend("sqlite")
    result = etcdctl(server.endpoint, "check", "perf", "--load=m", check=False, timeout=180)
    verdict = [line for line in result.stdout.replace("\r", "\n").splitlines() if line.startswith(("PASS", "FAIL", "Slowest"))]
    assert result.returncode == 0 and verdict[-1] == "PASS", "\n".join(verdict) + result.stderr
