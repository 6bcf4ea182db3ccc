"""Watch memory limits: a watcher that stops reading while large values are written must not
make the server hold every event in memory, and must still receive every event once it reads.

Real servers (Envoy with the datastore embedded, on SQLite and on a real PostgreSQL) and a real
grpcio client that simply stops consuming its stream.
"""

from __future__ import annotations

import hashlib
import queue
from pathlib import Path

import grpc
import pytest

from edgeplane.datastore.model import Event, KeyValue
from edgeplane.datastore.proto import etcd_api_pb2 as pb
from edgeplane.datastore.proto import etcd_api_pb2_grpc as rpc
from edgeplane.datastore.watch import whole_revision_chunks

MIB = 1024 * 1024
WRITES = 120  # 120 MiB of values: far more than the watch limits (16 MiB backlog, 64 responses)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def value_for(i: int) -> bytes:
    return hashlib.sha256(str(i).encode()).digest() * (MIB // 32)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_stalled_watcher_of_large_values_keeps_memory_bounded_and_misses_nothing(kind, fresh_backend):
    server = fresh_backend(kind)
    channel = grpc.insecure_channel(server.endpoint, options=[("grpc.max_receive_message_length", 64 * MIB)])
    requests: queue.Queue = queue.Queue()
    requests.put(pb.WatchRequest(create_request=pb.WatchCreateRequest(key=b"/big/", range_end=b"/big0", prev_kv=True)))
    stream = rpc.WatchStub(channel).Watch(iter(requests.get, None))
    assert next(stream).created
    kv = rpc.KVStub(channel)
    baseline = rss_mib(server.process.pid)
    for i in range(WRITES):  # the watcher reads nothing meanwhile
        kv.Put(pb.PutRequest(key=b"/big/%03d" % (i % 40), value=value_for(i)), timeout=30)
    grown = rss_mib(server.process.pid) - baseline
    # Measured: ~90 MiB (SQLite) and ~115 MiB (PostgreSQL) with the byte limits, 270-305 MiB
    # without them (every event held, ~2 MiB each with prev_kv).
    assert grown < 160, f"server memory grew by {grown:.0f} MiB for a stalled watcher"

    seen: list[tuple[int, bytes, bytes]] = []
    while len(seen) < WRITES:
        response = next(stream)
        for event in response.events:
            seen.append((event.kv.mod_revision, event.kv.key, event.kv.value))
        assert len({e.kv.mod_revision for e in response.events}) == len(response.events)  # one event per put
    revisions = [revision for revision, _, _ in seen]
    assert revisions == sorted(revisions) and len(set(revisions)) == WRITES  # in order, no duplicate
    assert revisions[-1] - revisions[0] == WRITES - 1  # no gap
    assert [value for _, _, value in seen] == [value_for(i) for i in range(WRITES)]
    requests.put(None)
    channel.close()


def make_event(revision: int, size: int) -> Event:
    return Event(revision, False, KeyValue(b"/k", revision, revision, 1, b"x" * size, 0), None)


def test_responses_are_split_between_revisions_never_inside_one():
    events = [make_event(1, 600_000), make_event(1, 600_000), make_event(2, 600_000), make_event(3, 10),
              make_event(4, 2_000_000), make_event(5, 10)]
    chunks = whole_revision_chunks(events, MIB)
    assert [[e.revision for e in chunk] for chunk in chunks] == [[1, 1], [2, 3, 4], [5]]
    assert whole_revision_chunks([], MIB) == []
