"""Console benchmark: heartbeats per second and latency for a simulated fleet on one console process.

Each simulated host sends a heartbeat every 30 s at a random phase, so a fleet of N hosts is an
open-loop arrival rate of N/30 requests per second (requests are fired on schedule whatever the
answers, so slow answers cannot hide queueing). One console process (`edgeplane console`, uvicorn,
one worker) serves SQLite or PostgreSQL; the load generator is a separate Python process with 64
keep-alive connections. It writes the fixed heartbeat request itself over asyncio streams instead
of using httpx, because httpx spent 2.3 ms of CPU per request on this 2-core VM, more than the
console (1.3 ms), and the two compete for the same cores. Hosts are seeded straight into the
database with real credentials (registering 100,000 hosts through the API would only measure
registration).

    .venv/bin/python bench/console.py [--fleet 10000] [--seconds 60] [--only sqlite,postgres]
                                      [--search 10000,20000,30000,40000] [--search-seconds 30]

Target: p99 < 100 ms for 10,000 hosts. `--search` then raises the fleet until p99 >= 100 ms.
Results go into docs/benchmarks.md by hand, with the machine and the date.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from edgeplane.console import ConsoleProcess, create_admin_key  # noqa: E402
from edgeplane.console import keys  # noqa: E402
from edgeplane.console.db import Database, dumps, now_ms  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.postgres import start_postgres  # noqa: E402

INTERVAL_S = 30.0
TARGET_P99_MS = 100.0


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def seed(db_url: str, count: int) -> list[tuple[str, str]]:
    """Create a tenant and `count` registered hosts; return (host_id, credential) pairs."""
    create_admin_key(db_url)
    db = Database(db_url, pool_size=1)
    hosts = [(f"edge-bench-{i:06d}", keys.new_secret(keys.CREDENTIAL_PREFIX)) for i in range(count)]
    now = now_ms()
    with db.transaction() as tx:
        tenant = tx.one("SELECT id FROM tenants WHERE name = 'default'")["id"]
        project = tx.one("SELECT id FROM projects WHERE tenant_id = ?", (tenant,))["id"]
        rows = [(h, tenant, project, keys.digest(c), dumps({"host_id": h, "action": "none", "generation": 1}), now, now)
                for h, c in hosts]
        sql = ("INSERT INTO hosts (id, tenant_id, project_id, registration, approved, credential_hash, tags, inventory,"
               " spec, spec_generation, created_at, updated_at) VALUES (?, ?, ?, 'auto', 1, ?, '{}', '{}', ?, 1, ?, ?)")
        if tx.dialect == "postgresql":
            with tx._conn.cursor() as cur:
                cur.executemany(sql.replace("?", "%s"), rows)
        else:
            tx._conn.executemany(sql, rows)
    db.close()
    return hosts


async def _heartbeat(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, authority: str, host_id: str,
                     credential: str) -> bool:
    """One keep-alive HTTP/1.1 heartbeat; True on 200. Minimal on purpose (see the module doc)."""
    body = b'{"health":"healthy"}'
    writer.write(f"POST /v1/agent/hosts/{host_id}/heartbeat HTTP/1.1\r\nHost: {authority}\r\n"
                 f"Authorization: Bearer {credential}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return head.startswith(b"HTTP/1.1 200")


async def _load(url: str, hosts: list[tuple[str, str]], seconds: float, rate: float, workers: int = 64) -> dict:
    """Open loop: a scheduler enqueues each heartbeat at its due time; workers, each with its own
    keep-alive connection, send them. Latency counts from the due time, so time spent waiting for a
    free worker is included (no coordinated omission)."""
    latencies: list[float] = []
    errors = 0
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    authority = url.split("://", 1)[1]
    host, port = authority.rsplit(":", 1)

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, int(port))
        while (job := await queue.get()) is not None:
            due, host_id, credential = job
            try:
                ok = await _heartbeat(reader, writer, authority, host_id, credential)
            except (OSError, asyncio.IncompleteReadError):
                ok = False
                writer.close()
                reader, writer = await asyncio.open_connection(host, int(port))
            if ok:
                latencies.append(loop.time() - due)
            else:
                errors += 1
        writer.close()

    tasks = [asyncio.create_task(worker()) for _ in range(workers)]
    order = hosts[:]
    random.shuffle(order)  # random phase per host within the interval
    total = int(rate * seconds)
    start = loop.time()
    for i in range(total):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        host_id, credential = order[i % len(order)]
        queue.put_nowait((due, host_id, credential))
    for _ in tasks:
        queue.put_nowait(None)
    await asyncio.gather(*tasks)
    elapsed = loop.time() - start
    return {"latencies": latencies, "errors": errors, "elapsed": elapsed}


def _generator(url: str, hosts: list[tuple[str, str]], seconds: float, rate: float, out: multiprocessing.Queue) -> None:
    out.put(asyncio.run(_load(url, hosts, seconds, rate)))


def run_fleet(url: str, hosts: list[tuple[str, str]], fleet: int, seconds: float, generators: int) -> dict:
    """Drive `fleet` hosts at one heartbeat per 30 s each, split across generator processes."""
    rate = fleet / INTERVAL_S
    share = [hosts[i:fleet:generators] for i in range(generators)]
    queue: multiprocessing.Queue = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=_generator, args=(url, s, seconds, rate / generators, queue)) for s in share]
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    latencies = [x for r in results for x in r["latencies"]]
    elapsed = max(r["elapsed"] for r in results)
    return {
        "fleet": fleet, "target_rate": round(rate, 1), "heartbeats": len(latencies),
        "heartbeats_per_s": round(len(latencies) / elapsed, 1), "errors": sum(r["errors"] for r in results),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 1), "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1) if latencies else None,
    }


def bench_backend(name: str, db_url: str, args: argparse.Namespace, workdir: Path) -> list[dict]:
    biggest = max([args.fleet, *args.search])
    print(f"[{name}] seeding {biggest} hosts ...", flush=True)
    hosts = seed(db_url, biggest)
    console = ConsoleProcess(db_url, free_port(), extra_args=["--log-level", "warning"],
                             log_path=workdir / f"console-{name}.log").start()
    rows = []
    try:
        httpx.post(f"{console.url}/v1/agent/hosts/{hosts[0][0]}/heartbeat", json={"health": "healthy"},
                   headers={"Authorization": f"Bearer {hosts[0][1]}"})  # warm up
        row = run_fleet(console.url, hosts, args.fleet, args.seconds, args.generators)
        rows.append({"backend": name, "run": "target", **row})
        print(json.dumps(rows[-1]), flush=True)
        for fleet in args.search:
            row = run_fleet(console.url, hosts, fleet, args.search_seconds, args.generators)
            rows.append({"backend": name, "run": "search", **row})
            print(json.dumps(rows[-1]), flush=True)
            if row["p99_ms"] >= TARGET_P99_MS or row["errors"]:
                break
    finally:
        console.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fleet", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--search", type=lambda s: [int(x) for x in s.split(",") if x], default=[])
    parser.add_argument("--search-seconds", type=float, default=30.0)
    parser.add_argument("--generators", type=int, default=1, help="load generator processes")
    parser.add_argument("--only", default="sqlite,postgres")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(f"console bench {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, "
          f"{platform.machine()}, Python {platform.python_version()}", flush=True)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="console-bench-") as tmp:
        workdir = Path(tmp)
        if "sqlite" in args.only:
            rows += bench_backend("sqlite", f"sqlite:///{workdir / 'console.db'}", args, workdir)
        if "postgres" in args.only:
            server = start_postgres(workdir / "pg")
            try:
                rows += bench_backend("postgres", server.create_database("console_bench"), args, workdir)
            finally:
                server.stop()
    print("\n| backend | run | fleet | target/s | heartbeats/s | p50 ms | p99 ms | max ms | errors |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['backend']} | {r['run']} | {r['fleet']} | {r['target_rate']} | {r['heartbeats_per_s']} | "
              f"{r['p50_ms']} | {r['p99_ms']} | {r['max_ms']} | {r['errors']} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
