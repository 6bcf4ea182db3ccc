"""kube-apiserver's storage workload, checked against an in-memory model.

Eight clients create (Txn mod_revision == 0), update and delete (Txn mod_revision == X with a get
on failure) a small set of keys, list them in pages at a fixed revision with continue keys, count
them, and a watcher that started from the list revision with prev_kv and asks for progress. Every
response is checked against a model built from the successful writes in revision order. The same
test runs against real etcd to prove the expectations are etcd's.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

from edgeplane.datastore.proto import etcd_api_pb2 as pb
from tests.support.etcd_client import Client, WatchSession, prefix_end, txn_compare_mod

PREFIX = b"/registry/pods/default/"
KEYS = [PREFIX + f"pod-{i:02d}".encode() for i in range(16)]
CLIENTS = 8
OPS_PER_CLIENT = 60


@dataclass
class Write:
    revision: int
    key: bytes
    value: bytes | None  # None: delete
    expected_mod: int  # the compare's mod_revision (0 = create)


@dataclass
class Observations:
    writes: list[Write] = field(default_factory=list)
    failed_cas: list[tuple[bytes, int, int, pb.RangeResponse]] = field(default_factory=list)  # key, expected, header rev, get
    lists: list[tuple[int, list[tuple[bytes, bytes, int]], int]] = field(default_factory=list)  # rev, items, count
    counts: list[tuple[int, int]] = field(default_factory=list)


async def client_loop(client: Client, index: int, seen: Observations, rng: random.Random) -> None:
    for step in range(OPS_PER_CLIENT):
        key = rng.choice(KEYS)
        roll = rng.random()
        if roll < 0.15:
            await paged_list(client, seen)
            continue
        if roll < 0.2:
            response = await client.range(PREFIX, prefix_end(PREFIX), count_only=True)
            seen.counts.append((response.header.revision, response.count))
            continue
        current = await client.get(key)
        mod = current.kvs[0].mod_revision if current.kvs else 0
        value = f"c{index}-s{step}".encode()
        if mod and roll < 0.35:
            request = pb.TxnRequest(compare=[txn_compare_mod(key, mod)],
                                    success=[pb.RequestOp(request_delete_range=pb.DeleteRangeRequest(key=key))],
                                    failure=[pb.RequestOp(request_range=pb.RangeRequest(key=key))])
            new_value = None
        else:
            request = pb.TxnRequest(compare=[txn_compare_mod(key, mod)],
                                    success=[pb.RequestOp(request_put=pb.PutRequest(key=key, value=value))],
                                    failure=[pb.RequestOp(request_range=pb.RangeRequest(key=key))])
            new_value = value
        response = await client.txn(request)
        if response.succeeded:
            seen.writes.append(Write(response.header.revision, key, new_value, mod))
        else:
            seen.failed_cas.append((key, mod, response.header.revision, response.responses[0].response_range))


async def paged_list(client: Client, seen: Observations, page: int = 5) -> int:
    items: list[tuple[bytes, bytes, int]] = []
    start, revision, count = PREFIX, 0, None
    while True:
        response = await client.range(start, prefix_end(PREFIX), limit=page, revision=revision)
        revision = revision or response.header.revision
        count = response.count if count is None else count
        items.extend((kv.key, kv.value, kv.mod_revision) for kv in response.kvs)
        if not response.more:
            break
        start = response.kvs[-1].key + b"\x00"  # kube's continue key
    seen.lists.append((revision, items, count))
    return revision


class Model:
    """State after every revision, replayed from the successful writes."""

    def __init__(self, writes: list[Write], start_revision: int) -> None:
        ordered = sorted(writes, key=lambda w: w.revision)
        revisions = [w.revision for w in ordered]
        assert len(set(revisions)) == len(revisions), "two successful writes share a revision"
        self.states: dict[int, dict[bytes, tuple[bytes, int]]] = {start_revision: {}}
        self.events: list[tuple[int, bytes, bytes | None, tuple[bytes, int] | None]] = []
        state: dict[bytes, tuple[bytes, int]] = {}
        previous = start_revision
        for write in ordered:
            assert write.revision > previous
            current_mod = state.get(write.key, (b"", 0))[1]
            assert current_mod == write.expected_mod, f"CAS succeeded against a stale revision at {write.revision}"
            prior = state.get(write.key)
            state = dict(state)
            if write.value is None:
                del state[write.key]
            else:
                state[write.key] = (write.value, write.revision)
            for rev in range(previous + 1, write.revision + 1):
                self.states[rev] = state
            self.events.append((write.revision, write.key, write.value, prior))
            previous = write.revision
        self.last = previous

    def at(self, revision: int) -> dict[bytes, tuple[bytes, int]]:
        return self.states[min(revision, self.last)]


async def run_workload(endpoint: str, seed: int) -> None:
    clients = [Client(endpoint) for _ in range(CLIENTS)]
    watch_client = Client(endpoint)
    seen = Observations()
    for key in KEYS:  # start from an empty prefix even on a shared server
        await watch_client.kv.DeleteRange(pb.DeleteRangeRequest(key=key))
    start_revision = await paged_list(watch_client, seen)
    seen.lists.clear()

    session = WatchSession(watch_client)
    session.create(PREFIX, prefix_end(PREFIX), start_revision=start_revision + 1, prev_kv=True, progress_notify=True)
    created = await session.next()
    assert created.created
    watched: list[pb.Event] = []
    progress: list[tuple[int, int]] = []  # (reported revision, events received by then)
    stop = asyncio.Event()

    async def watch_reader() -> None:
        while not stop.is_set():
            try:
                response = await session.next(timeout=0.5)
            except asyncio.TimeoutError:
                continue
            assert not response.canceled, response.cancel_reason
            if response.events:
                watched.extend(response.events)
            else:
                progress.append((response.header.revision, len(watched)))

    async def progress_asker() -> None:
        while not stop.is_set():
            session.request_progress()
            await asyncio.sleep(0.1)

    reader = asyncio.create_task(watch_reader())
    asker = asyncio.create_task(progress_asker())
    rng = random.Random(seed)
    await asyncio.gather(*(client_loop(c, i, seen, random.Random(rng.random())) for i, c in enumerate(clients)))
    final = await watch_client.range(PREFIX, prefix_end(PREFIX))
    deadline = asyncio.get_running_loop().time() + 10
    while len(watched) < len(seen.writes) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    session.request_progress()
    await asyncio.sleep(0.5)
    stop.set()
    await asyncio.gather(reader, asker)
    session.close()

    model = Model(seen.writes, start_revision)
    # Every failed CAS saw the key as it really was at its header revision, and the compare really failed.
    for key, expected, revision, got in seen.failed_cas:
        truth = model.at(revision).get(key)
        observed = (got.kvs[0].value, got.kvs[0].mod_revision) if got.kvs else None
        assert observed == truth
        assert (truth[1] if truth else 0) != expected
    # Every paginated list equals the model at its revision, and count is the total.
    for revision, items, count in seen.lists:
        truth = model.at(revision)
        assert [(k, v, m) for k, v, m in items] == [(k, v, m) for k, (v, m) in sorted(truth.items())]
        assert count == len(truth)
    for revision, count in seen.counts:
        assert count == len(model.at(revision))
    # The watch saw exactly the model's events, in order, with correct prev_kv.
    assert [(e.kv.mod_revision, e.kv.key) for e in watched] == [(r, k) for r, k, _, _ in model.events]
    for event, (_, _, value, prior) in zip(watched, model.events):
        assert (event.type == pb.Event.DELETE) == (value is None)
        if value is not None:
            assert event.kv.value == value
        assert ((event.prev_kv.value, event.prev_kv.mod_revision) if event.HasField("prev_kv") else None) == prior
    # Progress reports are bookmarks: everything up to the reported revision had arrived.
    assert progress, "no progress response was received"
    for revision, received in progress:
        assert received >= sum(1 for r, *_ in model.events if r <= revision)
    assert [(kv.key, kv.value) for kv in final.kvs] == [(k, v) for k, (v, _) in sorted(model.at(final.header.revision).items())]
    for client in (*clients, watch_client):
        await client.close()


def test_kube_apiserver_workload_matches_model(backend):
    asyncio.run(run_workload(backend.endpoint, seed=20261121))
