"""kill -9 of the datastore with writers and watchers in flight, then restart on the same data.

Every acknowledged write must be there after the restart, revisions keep increasing, and watchers
that resume from their last seen revision miss nothing and see nothing twice.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest

from tests.support.etcd_client import Client, WatchSession, prefix_end

PREFIX = b"/crash/"


async def writer(endpoint: str, index: int, acked: list[tuple[int, bytes, bytes]], stop: asyncio.Event) -> None:
    client = Client(endpoint)
    sequence = 0
    while not stop.is_set():
        key = PREFIX + f"w{index}/k{sequence % 7}".encode()
        value = f"{index}:{sequence}".encode()
        sequence += 1
        try:
            response = await client.put(key, value, timeout=2)
        except grpc.aio.AioRpcError:
            # Server down: this write was not acknowledged. A new channel reconnects at once
            # instead of waiting out gRPC's reconnect backoff.
            await client.close()
            client = Client(endpoint)
            await asyncio.sleep(0.05)
            continue
        acked.append((response.header.revision, key, value))
    await client.close()


async def resuming_watcher(endpoint: str, seen: list[tuple[int, bytes, bytes]], stop: asyncio.Event) -> int:
    """Watch the prefix; on any stream error reconnect from the last revision seen + 1."""
    next_revision, reconnects = 1, 0
    while not stop.is_set():
        client = Client(endpoint)
        session = WatchSession(client)
        session.create(PREFIX, prefix_end(PREFIX), start_revision=next_revision)
        try:
            while not stop.is_set():
                try:
                    response = await session.next(timeout=0.3)
                except asyncio.TimeoutError:
                    continue
                for event in response.events:
                    seen.append((event.kv.mod_revision, event.kv.key, event.kv.value))
                    next_revision = event.kv.mod_revision + 1
        except grpc.aio.AioRpcError:
            reconnects += 1
            await asyncio.sleep(0.1)
        finally:
            session.close()
            await client.close()
    return reconnects


async def crash_scenario(server) -> None:
    acked: list[tuple[int, bytes, bytes]] = []
    watched: list[list[tuple[int, bytes, bytes]]] = [[], []]
    stop = asyncio.Event()
    writers = [asyncio.create_task(writer(server.endpoint, i, acked, stop)) for i in range(4)]
    watchers = [asyncio.create_task(resuming_watcher(server.endpoint, seen, stop)) for seen in watched]
    await asyncio.sleep(1.5)
    before_crash = len(acked)
    server.kill9()
    last_acked_before = max(r for r, _, _ in acked)
    await asyncio.sleep(0.5)
    await asyncio.get_running_loop().run_in_executor(None, server.restart)
    deadline = asyncio.get_running_loop().time() + 30
    while len(acked) < before_crash + 50 and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)
    stop.set()
    await asyncio.gather(*writers)
    reconnects = await asyncio.gather(*watchers)
    assert before_crash > 20 and len(acked) > before_crash, "writes must flow before and after the crash"
    assert all(count >= 1 for count in reconnects), "watchers must have lost their stream at the crash"

    client = Client(server.endpoint)
    try:
        # Every acknowledged write is in the store at its revision.
        for revision, key, value in acked:
            got = await client.get(key, revision=revision)
            assert got.kvs and got.kvs[0].value == value and got.kvs[0].mod_revision == revision
        after = [r for r, _, _ in acked if r > last_acked_before]
        assert after and min(after) > last_acked_before, "revisions keep increasing after the restart"
        revisions = sorted(r for r, _, _ in acked)
        assert len(set(revisions)) == len(revisions)
        # The full history, read after the fact, is what each resuming watcher saw: no gap, no duplicate.
        history = WatchSession(client)
        history.create(PREFIX, prefix_end(PREFIX), start_revision=1)
        full: list[tuple[int, bytes, bytes]] = []
        while True:
            try:
                response = await history.next(timeout=1.0)
            except asyncio.TimeoutError:
                break
            full.extend((e.kv.mod_revision, e.kv.key, e.kv.value) for e in response.events)
        history.close()
        assert set(acked) <= set(full)
        for seen in watched:
            assert seen == full[: len(seen)], "a watcher skipped or repeated an event across the crash"
            assert len(seen) >= len(full) - 50
    finally:
        await client.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_kill9_loses_no_acknowledged_write(kind, fresh_backend):
    server = fresh_backend(kind)
    asyncio.run(crash_scenario(server))
