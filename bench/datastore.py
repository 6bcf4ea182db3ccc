"""Datastore benchmark: edgeplane on SQLite and on PostgreSQL against etcd, one run, one load generator.

Measures put throughput and p50/p99 latency at 1, 16 and 256 concurrent clients, the time to read
a 10,000-key range, and watch delivery latency (put -> event received). Every server runs on this
machine on loopback; the load generator is the same Python asyncio gRPC client for all of them.
All servers run at once and the put measurements are interleaved (each round measures every
backend in turn), and the median round is reported: on a shared 2-core machine, background
load otherwise lands on whichever backend happens to be measured at that moment.

    .venv/bin/python bench/datastore.py [--seconds 5] [--rounds 3] [--only sqlite,postgres,etcd] [--json out.json]

Results go into docs/benchmarks.md by hand, with the machine and the date.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgeplane.datastore.proto import etcd_api_pb2 as pb  # noqa: E402
from tests.support.etcd_client import Client, WatchSession, prefix_end  # noqa: E402
from tests.support.postgres import start_postgres  # noqa: E402
from tests.support.servers import start_backend  # noqa: E402

VALUE = b"v" * 256
CONCURRENCY = (1, 16, 256)


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def put_load(endpoint: str, clients: int, seconds: float) -> dict:
    channels = [Client(endpoint) for _ in range(min(clients, 32))]
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    counter = iter(range(10**9))

    async def worker(index: int) -> None:
        client = channels[index % len(channels)]
        while time.perf_counter() < deadline:
            key = f"/bench/put/{next(counter):09d}".encode()
            started = time.perf_counter()
            await client.kv.Put(pb.PutRequest(key=key, value=VALUE), timeout=30)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(clients)))
    elapsed = time.perf_counter() - started
    for client in channels:
        await client.close()
    return {"clients": clients, "puts": len(latencies), "puts_per_s": len(latencies) / elapsed,
            "p50_ms": percentile(latencies, 0.5) * 1000, "p99_ms": percentile(latencies, 0.99) * 1000}


async def range_10k(endpoint: str) -> dict:
    client = Client(endpoint)
    prefix = b"/bench/range/"
    for start in range(0, 10_000, 500):
        await asyncio.gather(*(client.kv.Put(pb.PutRequest(key=prefix + f"{i:06d}".encode(), value=VALUE))
                               for i in range(start, start + 500)))
    timings = []
    for _ in range(7):
        started = time.perf_counter()
        response = await client.kv.Range(pb.RangeRequest(key=prefix, range_end=prefix_end(prefix)), timeout=60)
        timings.append(time.perf_counter() - started)
        assert len(response.kvs) == 10_000
    await client.close()
    return {"range_10k_ms": statistics.median(timings) * 1000}


async def watch_latency(endpoint: str, events: int = 400, rate: float = 200.0) -> dict:
    writer, watcher = Client(endpoint), Client(endpoint)
    prefix = b"/bench/watch/"
    session = WatchSession(watcher)
    session.create(prefix, prefix_end(prefix))
    await session.next()  # created
    sent: dict[bytes, float] = {}
    delays: list[float] = []

    async def receive() -> None:
        while len(delays) < events:
            response = await session.next(timeout=30)
            now = time.perf_counter()
            for event in response.events:
                delays.append(now - sent[event.kv.key])

    receiver = asyncio.create_task(receive())
    for i in range(events):
        key = prefix + f"{i:06d}".encode()
        sent[key] = time.perf_counter()
        await writer.kv.Put(pb.PutRequest(key=key, value=VALUE))
        await asyncio.sleep(1 / rate)
    await receiver
    session.close()
    await writer.close()
    await watcher.close()
    return {"watch_p50_ms": percentile(delays, 0.5) * 1000, "watch_p99_ms": percentile(delays, 0.99) * 1000}


def median_run(runs: list[dict]) -> dict:
    """The run with the median throughput, its latencies with it, plus every round's figure."""
    ordered = sorted(runs, key=lambda run: run["puts_per_s"])
    return {**ordered[len(ordered) // 2], "rounds_puts_per_s": [round(run["puts_per_s"]) for run in runs]}


def measure_puts(servers: dict[str, str], seconds: float, rounds: int) -> dict[str, list[dict]]:
    """Every backend at every concurrency, interleaved round by round, so that a change in the
    machine's background load between one backend's turn and the next shifts all of them."""
    results: dict[str, list[dict]] = {kind: [] for kind in servers}
    for clients in CONCURRENCY:
        runs: dict[str, list[dict]] = {kind: [] for kind in servers}
        for _ in range(rounds):
            for kind, endpoint in servers.items():
                runs[kind].append(asyncio.run(put_load(endpoint, clients, seconds)))
        for kind in servers:
            results[kind].append(median_run(runs[kind]))
    return results


def compaction_slices(endpoint_url: str, history: int = 50_000, keys: int = 500) -> dict:
    """How long one background compaction slice holds the writer (in-process, on the storage layer)."""
    from edgeplane.datastore.mvcc import WriteTxn
    from edgeplane.datastore.services import COMPACTION_SLICE_REVISIONS
    from edgeplane.datastore.sql import make_dialect, parse_endpoint, prepare_database

    dialect = make_dialect(parse_endpoint(endpoint_url))
    prepare_database(dialect, "bench")
    conn = dialect.connect()

    def in_txn(fn):
        dialect.begin_write(conn)
        txn = WriteTxn(conn, dialect, "bench")
        result = fn(txn)
        txn.finish()
        conn.execute("COMMIT")
        return result

    def fill(txn: WriteTxn) -> None:
        for i in range(1000):
            key = f"/compact/{i % keys:05d}".encode()
            txn.begin_request(False)
            txn.put(key, VALUE, 0, txn.get(key))
            txn.end_request(False)

    for _ in range(history // 1000):
        in_txn(fill)
    in_txn(lambda txn: txn.compact(txn.revision - 1000))
    slice_revisions = COMPACTION_SLICE_REVISIONS
    timings = []
    while True:
        started = time.perf_counter()
        more = in_txn(lambda txn: txn.compact_step(slice_revisions))
        timings.append(time.perf_counter() - started)
        if not more:
            break
    conn.close()
    return {"slice_revisions": slice_revisions, "slices": len(timings),
            "slice_p50_ms": percentile(timings, 0.5) * 1000, "slice_max_ms": max(timings) * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each put measurement")
    parser.add_argument("--rounds", type=int, default=3, help="put measurements per point (the median is reported)")
    parser.add_argument("--only", default="sqlite,postgres,etcd")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    kinds = args.only.split(",")
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="ep-bench-") as tmp:
        workdir = Path(tmp)
        postgres = start_postgres(workdir / "pg") if "postgres" in kinds else None
        servers = {}
        try:
            for kind in kinds:
                servers[kind] = start_backend(kind, workdir / kind, postgres)
            print(f"measuring puts on {', '.join(kinds)}, {args.rounds} interleaved rounds ...", file=sys.stderr)
            endpoints = {kind: server.endpoint for kind, server in servers.items()}
            for kind, rows in measure_puts(endpoints, args.seconds, args.rounds).items():
                results[kind] = {"put": rows}
            for kind, endpoint in endpoints.items():
                print(f"measuring range and watch on {kind} ...", file=sys.stderr)
                results[kind].update(asyncio.run(range_10k(endpoint)))
                results[kind].update(asyncio.run(watch_latency(endpoint)))
        finally:
            for server in servers.values():
                server.stop()
        if "sqlite" in kinds:
            results["sqlite"]["compaction"] = compaction_slices(f"sqlite://{workdir / 'compact.db'}")
        if postgres:
            try:
                results["postgres"]["compaction"] = compaction_slices(postgres.create_database("compact"))
            finally:
                postgres.stop()
    report(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


def report(results: dict[str, dict]) -> None:
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"date: {time.strftime('%Y-%m-%d')}")
    print("\n| backend | clients | puts/s (median) | p50 ms | p99 ms | puts/s of each round |\n|---|---|---|---|---|---|")
    for kind, result in results.items():
        for row in result["put"]:
            rounds = ", ".join(str(n) for n in row["rounds_puts_per_s"])
            print(f"| {kind} | {row['clients']} | {row['puts_per_s']:.0f} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {rounds} |")
    print("\n| backend | range 10k keys ms | watch p50 ms | watch p99 ms |\n|---|---|---|---|")
    for kind, result in results.items():
        print(f"| {kind} | {result['range_10k_ms']:.1f} | {result['watch_p50_ms']:.2f} | {result['watch_p99_ms']:.2f} |")
    print("\n| backend | compaction slice (revisions) | slices | p50 ms | max ms |\n|---|---|---|---|---|")
    for kind, result in results.items():
        if "compaction" in result:
            c = result["compaction"]
            print(f"| {kind} | {c['slice_revisions']} | {c['slices']} | {c['slice_p50_ms']:.1f} | {c['slice_max_ms']:.1f} |")
    if "etcd" in results and "sqlite" in results:
        etcd = {r["clients"]: r for r in results["etcd"]["put"]}
        print("\n| clients | sqlite/etcd throughput | sqlite/etcd p99 |\n|---|---|---|")
        for row in results["sqlite"]["put"]:
            base = etcd[row["clients"]]
            print(f"| {row['clients']} | {row['puts_per_s'] / base['puts_per_s']:.2f}x | {row['p99_ms'] / base['p99_ms']:.2f}x |")


if __name__ == "__main__":
    main()
