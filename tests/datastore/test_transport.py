"""The gRPC transport: Envoy in front (pyvoy), gRPC framing and trailers in grpc_asgi.py.

Everything runs against a real `edgeplane datastore` process (Envoy with the datastore embedded)
and real gRPC clients (grpcio, etcdctl); only the percent-encoding check calls a function directly.
"""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import pytest

from edgeplane.datastore.grpc_asgi import _grpc_message
from edgeplane.datastore.proto import etcd_api_pb2 as pb
from edgeplane.datastore.proto import etcd_api_pb2_grpc as rpc
from tests.support.etcd_client import Client, WatchSession
from tests.support.ports import free_port
from tests.support.servers import start_datastore


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("transport")
    metrics_port = free_port()
    proc = start_datastore(workdir, f"sqlite://{workdir / 'state.db'}", "--metrics-listen", f"127.0.0.1:{metrics_port}")
    proc.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    yield proc
    proc.stop()


def metric(server, name: str) -> float:
    for line in urllib.request.urlopen(server.metrics_url, timeout=5).read().decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not exported")


def test_the_server_process_is_envoy_and_its_command_line_holds_no_secret(tmp_path, postgres_server):
    """The launcher execs Envoy (same PID); a DSN password travels in the environment only."""
    dsn = postgres_server.create_database("transport_secret").replace("postgresql://postgres@",
                                                                      "postgresql://postgres:s3cret-pw@")
    proc = start_datastore(tmp_path, dsn)
    try:
        cmdline = Path(f"/proc/{proc.process.pid}/cmdline").read_bytes().split(b"\0")
        assert Path(cmdline[0].decode()).name == "envoy"
        assert proc.endpoint.encode() in cmdline  # supervisors recognise the process by it
        assert b"s3cret-pw" not in b" ".join(cmdline)
        channel = grpc.insecure_channel(proc.endpoint)
        assert rpc.KVStub(channel).Put(pb.PutRequest(key=b"/pw", value=b"1"), timeout=10).header.revision == 2
        channel.close()
    finally:
        proc.stop()
    assert proc.process.returncode == 0


def test_an_unknown_method_is_unimplemented(server):
    channel = grpc.insecure_channel(server.endpoint)
    authenticate = channel.unary_unary("/etcdserverpb.Auth/Authenticate", request_serializer=lambda b: b,
                                       response_deserializer=lambda b: b)
    with pytest.raises(grpc.RpcError) as info:
        authenticate(b"", timeout=10)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "/etcdserverpb.Auth/Authenticate" in info.value.details()
    channel.close()


def test_a_message_over_the_transport_limit_is_refused_and_the_next_call_works(server):
    channel = grpc.insecure_channel(server.endpoint, options=[("grpc.max_send_message_length", 64 * 1024 * 1024)])
    kv = rpc.KVStub(channel)
    with pytest.raises(grpc.RpcError) as info:
        kv.Put(pb.PutRequest(key=b"/huge", value=b"x" * (4 * 1024 * 1024)), timeout=20)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "received message larger than max" in info.value.details()
    assert kv.Range(pb.RangeRequest(key=b"/huge"), timeout=10).count == 0
    channel.close()


def test_a_request_spread_over_many_http2_frames_arrives_whole(server):
    """1.4 MiB is ~90 DATA frames of 16 KiB: the deframer must join them byte for byte."""
    value = bytes(range(256)) * (1400 * 1024 // 256)
    channel = grpc.insecure_channel(server.endpoint)
    kv = rpc.KVStub(channel)
    kv.Put(pb.PutRequest(key=b"/frames", value=value), timeout=20)
    assert kv.Range(pb.RangeRequest(key=b"/frames"), timeout=20).kvs[0].value == value
    channel.close()


def test_plain_http_gets_a_415_not_a_hang(server):
    request = urllib.request.Request(f"http://{server.endpoint}/etcdserverpb.KV/Range", data=b"{}",
                                     headers={"content-type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 415


def test_cancelled_watch_streams_are_released_on_the_server(server):
    async def scenario() -> None:
        client = Client(server.endpoint)
        sessions = []
        for i in range(5):
            session = WatchSession(client)
            session.create(f"/cancel/{i}".encode())
            assert (await session.next(timeout=10)).created
            sessions.append(session)
        assert metric(server, "edgeplane_datastore_watch_streams") == 5
        for session in sessions:
            session.close()
        deadline = time.monotonic() + 10
        while metric(server, "edgeplane_datastore_watch_streams") != 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert metric(server, "edgeplane_datastore_watch_streams") == 0
        await client.close()

    asyncio.run(scenario())


def test_many_concurrent_streams_on_one_connection_each_get_their_own_events(server):
    """Watch and keep-alive streams multiplexed on one HTTP/2 connection stay separate."""
    async def scenario() -> None:
        client = Client(server.endpoint)
        sessions = {}
        for i in range(20):
            session = WatchSession(client)
            session.create(f"/mux/{i:02d}".encode())
            assert (await session.next(timeout=10)).created
            sessions[i] = session
        for i in range(20):
            await client.kv.Put(pb.PutRequest(key=f"/mux/{i:02d}".encode(), value=str(i).encode()))
        for i, session in sessions.items():
            response = await session.next(timeout=10)
            assert [(e.kv.key, e.kv.value) for e in response.events] == [(f"/mux/{i:02d}".encode(), str(i).encode())]
            session.close()
        await client.close()

    asyncio.run(scenario())


def test_status_messages_are_percent_encoded_as_the_protocol_asks():
    assert _grpc_message("plain: ok") == b"plain: ok"
    assert _grpc_message("100% sure") == b"100%25 sure"
    assert _grpc_message("clé\n") == b"cl%C3%A9%0A"
