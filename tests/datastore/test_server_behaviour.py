"""Server behaviour beyond etcdctl: startup checks on bad databases, limits, TLS, metrics, shutdown."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time
import urllib.request

import grpc
import pytest

from edgeplane.datastore.proto import etcd_api_pb2 as pb
from edgeplane.datastore.proto import etcd_api_pb2_grpc as rpc
from tests.support.ports import free_port
from tests.support.servers import REPO, start_datastore


def run_datastore_once(*args: str, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeplane.cli", "datastore", "--listen", f"127.0.0.1:{free_port()}", *args],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO)


def test_refuses_a_file_that_is_not_sqlite_and_leaves_it_untouched(tmp_path):
    path = tmp_path / "state.db"
    path.write_bytes(b"this is somebody's notes, not a database\n" * 10)
    before = path.read_bytes()
    result = run_datastore_once("--endpoint", f"sqlite://{path}")
    assert result.returncode == 2
    assert "not an SQLite database" in result.stderr
    assert path.read_bytes() == before


def test_refuses_a_foreign_sqlite_database(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    result = run_datastore_once("--endpoint", f"sqlite://{path}")
    assert result.returncode == 2 and "foreign database (tables: invoices)" in result.stderr
    assert path.read_bytes() == before


def test_refuses_a_newer_schema(tmp_path):
    path = tmp_path / "state.db"
    server = start_datastore(tmp_path, f"sqlite://{path}")
    server.stop()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE ep_meta SET schema_version = 99")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    result = run_datastore_once("--endpoint", f"sqlite://{path}")
    assert result.returncode == 2 and "written by a newer edgeplane (schema 99" in result.stderr
    assert path.read_bytes() == before


def test_refuses_a_corrupt_database(tmp_path):
    path = tmp_path / "state.db"
    server = start_datastore(tmp_path, f"sqlite://{path}")
    channel = grpc.insecure_channel(server.endpoint)
    kv = rpc.KVStub(channel)
    for i in range(300):
        kv.Put(pb.PutRequest(key=f"/k/{i:04d}".encode(), value=b"x" * 200))
    channel.close()
    server.stop()
    data = bytearray(path.read_bytes())
    page = 4096
    for offset in range(2 * page, len(data) - page, page):  # scribble over every page but the header
        data[offset + 8: offset + 64] = b"\xff" * 56
    path.write_bytes(bytes(data))
    before = path.read_bytes()
    result = run_datastore_once("--endpoint", f"sqlite://{path}")
    assert result.returncode == 2
    assert "corrupt" in result.stderr or "integrity check" in result.stderr
    assert path.read_bytes() == before


def test_one_process_per_sqlite_file(tmp_path):
    path = tmp_path / "state.db"
    server = start_datastore(tmp_path, f"sqlite://{path}")
    try:
        result = run_datastore_once("--endpoint", f"sqlite://{path}")
        assert result.returncode == 2 and "in use by another datastore" in result.stderr
    finally:
        server.stop()


@pytest.mark.parametrize("args, message", [
    (["--endpoint", "mysql://x"], "--endpoint: unsupported scheme"),
    (["--listen", "nonsense"], None),
    (["--auto-compaction", "ten"], "--auto-compaction"),
    (["--cert-file", "/nonexistent.pem"], "--cert-file and --key-file go together"),
    (["--sqlite-synchronous", "sometimes"], "--sqlite-synchronous"),
])
def test_bad_options_name_the_option(args, message, tmp_path):
    result = subprocess.run([sys.executable, "-m", "edgeplane.cli", "datastore", "--endpoint", f"sqlite://{tmp_path}/s.db", *args],
                            capture_output=True, text=True, timeout=20, cwd=REPO)
    assert result.returncode == 2
    assert (message or "--listen") in result.stderr


@pytest.fixture
def server(tmp_path):
    metrics_port = free_port()
    proc = start_datastore(tmp_path, f"sqlite://{tmp_path / 'state.db'}", "--metrics-listen",
                           f"127.0.0.1:{metrics_port}", "--max-request-bytes", "4096", "--max-txn-ops", "4")
    proc.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    yield proc
    proc.stop()


def expect_error(call, code: grpc.StatusCode, message: str) -> None:
    with pytest.raises(grpc.RpcError) as info:
        call()
    assert info.value.code() == code
    assert info.value.details() == message


def test_limits_and_etcd_errors(server):
    channel = grpc.insecure_channel(server.endpoint)
    kv, lease = rpc.KVStub(channel), rpc.LeaseStub(channel)
    expect_error(lambda: kv.Put(pb.PutRequest(key=b"/big", value=b"x" * 5000)), grpc.StatusCode.INVALID_ARGUMENT,
                 "etcdserver: request is too large")
    expect_error(lambda: kv.Put(pb.PutRequest(key=b"", value=b"x")), grpc.StatusCode.INVALID_ARGUMENT,
                 "etcdserver: key is not provided")
    ops = [pb.RequestOp(request_put=pb.PutRequest(key=f"/o{i}".encode())) for i in range(5)]
    expect_error(lambda: kv.Txn(pb.TxnRequest(success=ops)), grpc.StatusCode.INVALID_ARGUMENT,
                 "etcdserver: too many operations in txn request")
    expect_error(lambda: kv.Put(pb.PutRequest(key=b"/k", ignore_value=True)), grpc.StatusCode.INVALID_ARGUMENT,
                 "etcdserver: key not found")
    expect_error(lambda: lease.LeaseRevoke(pb.LeaseRevokeRequest(ID=42)), grpc.StatusCode.NOT_FOUND,
                 "etcdserver: requested lease not found")
    lease.LeaseGrant(pb.LeaseGrantRequest(ID=7, TTL=30))
    expect_error(lambda: lease.LeaseGrant(pb.LeaseGrantRequest(ID=7, TTL=30)), grpc.StatusCode.FAILED_PRECONDITION,
                 "etcdserver: lease already exists")
    expect_error(lambda: rpc.MaintenanceStub(channel).HashKV(pb.HashKVRequest()), grpc.StatusCode.UNIMPLEMENTED,
                 "edgeplane datastore: HashKV is not supported")
    # A failed request wrote nothing: the revision did not move.
    revision = kv.Range(pb.RangeRequest(key=b"/none")).header.revision
    expect_error(lambda: kv.Txn(pb.TxnRequest(success=[
        pb.RequestOp(request_put=pb.PutRequest(key=b"/a", value=b"1")),
        pb.RequestOp(request_put=pb.PutRequest(key=b"/b", value=b"1", lease=999))])),
        grpc.StatusCode.NOT_FOUND, "etcdserver: requested lease not found")
    assert kv.Range(pb.RangeRequest(key=b"/a")).header.revision == revision
    assert kv.Range(pb.RangeRequest(key=b"/a")).count == 0
    channel.close()


def test_metrics_are_prometheus_text(server):
    channel = grpc.insecure_channel(server.endpoint)
    rpc.KVStub(channel).Put(pb.PutRequest(key=b"/m", value=b"1"))
    channel.close()
    time.sleep(1.2)
    text = urllib.request.urlopen(server.metrics_url, timeout=5).read().decode()
    assert 'edgeplane_datastore_requests_total{code="OK",method="Put"} 1.0' in text
    assert "process_resident_memory_bytes" in text
    assert "edgeplane_datastore_revision 2.0" in text


def test_sigterm_shuts_down_cleanly(server):
    server.process.terminate()
    assert server.process.wait(timeout=10) == 0


def test_tls_with_client_certificates(tmp_path):
    from tests.support.tls import make_ca_and_certs

    files = make_ca_and_certs(tmp_path)
    proc = start_datastore_tls(tmp_path, files)
    try:
        def channel(with_client_cert: bool) -> grpc.Channel:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=files["ca"].read_bytes(),
                private_key=files["client_key"].read_bytes() if with_client_cert else None,
                certificate_chain=files["client_cert"].read_bytes() if with_client_cert else None)
            return grpc.secure_channel(proc.endpoint, credentials)

        good = channel(True)
        assert rpc.KVStub(good).Put(pb.PutRequest(key=b"/tls", value=b"ok"), timeout=10).header.revision == 2
        good.close()
        anonymous = channel(False)
        with pytest.raises(grpc.RpcError) as info:
            rpc.KVStub(anonymous).Range(pb.RangeRequest(key=b"/tls"), timeout=5)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        anonymous.close()
        result = subprocess.run(
            ["etcdctl", "--endpoints", f"https://{proc.endpoint}", "--cacert", str(files["ca"]), "--cert",
             str(files["client_cert"]), "--key", str(files["client_key"]), "get", "/tls", "--print-value-only"],
            capture_output=True, text=True, timeout=20, env={"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"})
        assert result.stdout.strip() == "ok", result.stderr
    finally:
        proc.stop()


def start_datastore_tls(tmp_path, files):
    import os
    import signal

    port = free_port()
    argv = [sys.executable, "-m", "edgeplane.cli", "datastore", "--listen", f"127.0.0.1:{port}", "--endpoint",
            f"sqlite://{tmp_path / 'tls.db'}", "--cert-file", str(files["server_cert"]), "--key-file",
            str(files["server_key"]), "--trusted-ca-file", str(files["ca"])]
    process = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)

    class Handle:
        endpoint = f"127.0.0.1:{port}"

        def stop(self) -> None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=10)

    deadline = time.monotonic() + 20
    import socket

    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return Handle()
        time.sleep(0.1)
    raise RuntimeError("TLS datastore did not start")


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_leases_and_data_survive_a_restart(kind, fresh_backend):
    from tests.support.etcdctl import etcdctl

    server = fresh_backend(kind)
    lease_id = etcdctl(server.endpoint, "lease", "grant", "300").stdout.split()[1]
    etcdctl(server.endpoint, "put", "/restart/k", "v", "--lease", lease_id)
    server.stop()
    server.restart()
    ttl = etcdctl(server.endpoint, "lease", "timetolive", lease_id, "--keys").stdout
    assert "granted with TTL(300s)" in ttl and "/restart/k" in ttl
    etcdctl(server.endpoint, "lease", "revoke", lease_id)
    assert etcdctl(server.endpoint, "get", "/restart/k").stdout == ""


def test_defragment_shrinks_the_sqlite_file_after_compaction(fresh_backend):
    from tests.support.etcdctl import etcdctl, etcdctl_json

    server = fresh_backend("sqlite")
    channel = grpc.insecure_channel(server.endpoint)
    kv = rpc.KVStub(channel)
    for i in range(1500):
        kv.Put(pb.PutRequest(key=f"/defrag/{i:05d}".encode(), value=b"x" * 2000))
    revision = kv.DeleteRange(pb.DeleteRangeRequest(key=b"/defrag/", range_end=b"/defrag0")).header.revision
    kv.Compact(pb.CompactionRequest(revision=revision, physical=True))
    channel.close()
    before = etcdctl_json(server.endpoint, "endpoint", "status")[0]["Status"]["dbSize"]
    assert "Finished defragmenting etcd member" in etcdctl(server.endpoint, "defrag").stdout
    after = etcdctl_json(server.endpoint, "endpoint", "status")[0]["Status"]["dbSize"]
    assert after < before / 4, (before, after)


def test_a_second_datastore_on_the_same_port_fails_clearly(tmp_path):
    server = start_datastore(tmp_path, f"sqlite://{tmp_path / 'one.db'}")
    try:
        result = subprocess.run([sys.executable, "-m", "edgeplane.cli", "datastore", "--listen", server.endpoint,
                                 "--endpoint", f"sqlite://{tmp_path / 'two.db'}"],
                                capture_output=True, text=True, timeout=30, cwd=REPO)
        assert result.returncode == 2
        assert f"--listen {server.endpoint}: cannot listen there" in result.stderr
    finally:
        server.stop()


def test_endpoint_descriptions_never_show_passwords_and_accept_several_hosts():
    from edgeplane.datastore.sql import parse_endpoint

    multi = parse_endpoint("postgresql://edge:s3cret@10.0.0.1:5432,10.0.0.2:5433/state?target_session_attrs=read-write")
    assert multi.describe() == "postgres://10.0.0.1:5432,10.0.0.2:5433/state"
    assert "s3cret" not in parse_endpoint("postgres://edge:s3cret@db/state").describe()


def test_reads_answer_unavailable_while_postgres_is_away_and_recover(tmp_path, postgres_server):
    """The datastore's PostgreSQL goes away (a proxy is cut): reads fail with UNAVAILABLE, the
    watch feed survives, and after the cut heals reads and watch delivery resume."""
    import uuid

    from tests.support.netproxy import ProxyNet

    dsn = postgres_server.create_database("away_" + uuid.uuid4().hex[:8])
    net = ProxyNet()
    proxy = net.add(("datastore", "postgres"), f"127.0.0.1:{postgres_server.port}")
    try:
        via_proxy = dsn.replace(f":{postgres_server.port}/", f":{proxy.port}/") + "?connect_timeout=2"
        server = start_datastore(tmp_path, via_proxy)
        try:
            asyncio.run(_unavailable_then_recovered(server.endpoint, proxy))
        finally:
            server.stop()
    finally:
        net.close()


async def _unavailable_then_recovered(endpoint: str, proxy) -> None:
    from tests.support.etcd_client import Client, WatchSession

    client = Client(endpoint)
    session = WatchSession(client)
    session.create(b"/away/", b"/away0")
    assert (await session.next()).created
    await client.put(b"/away/before", b"1")
    assert (await session.next()).events[0].kv.key == b"/away/before"
    proxy.set_mode("cut")
    await asyncio.sleep(0.5)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await client.get(b"/away/before")
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    await asyncio.sleep(2.0)  # long enough for the change feed to have failed a few rounds
    proxy.set_mode("pass")
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        try:
            await client.put(b"/away/after", b"2")
            break
        except grpc.aio.AioRpcError:
            assert asyncio.get_running_loop().time() < deadline, "writes did not come back"
            await asyncio.sleep(0.2)
    response = await session.next(timeout=10)
    assert [e.kv.key for e in response.events] == [b"/away/after"]
    session.close()
    await client.close()
