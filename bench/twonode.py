"""Two-node HA benchmark: failover timings with production probe settings, and write throughput.

Failover (default 10 repetitions, probe interval 0.5 s, timeout 1 s, threshold 4: the defaults): the leader node
(PostgreSQL, datastore, agent) is SIGKILLed while a client keeps writing through the survivor's
datastore. Per repetition:
- detection: kill -> the survivor's agent decides to promote (its "promote" event);
- promotion: decision -> promoted (pg_ctl promote, revision floor, epoch, datastore restart);
- writes back: kill -> first acknowledged write sent after the kill;
- outage: last write acknowledged before the kill -> first acknowledged after it;
- rejoin: old leader restarted -> pair streaming again (drop + pg_basebackup).
Throughput: puts/s and p99 at 1 and 16 clients against the pair's leader (synchronous
replication) and a single-node PostgreSQL datastore.

    .venv/bin/python bench/twonode.py [--repetitions 10] [--seconds 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import grpc  # noqa: E402

from edgeplane.datastore.proto import etcd_api_pb2 as pb  # noqa: E402
from edgeplane.datastore.proto import etcd_api_pb2_grpc as rpc  # noqa: E402
from edgeplane.twonode.lab import Lab, write_pair  # noqa: E402
from tests.support.postgres import start_postgres  # noqa: E402
from tests.support.servers import start_backend  # noqa: E402
from tests.twonode.harness import signal_tree  # noqa: E402

PRODUCTION_PROBE = {"interval": 0.5, "timeout": 1.0, "threshold": 4, "startup_grace": 10.0}  # the defaults
# Let a client reconnect quickly to a restarted datastore (gRPC's default back-off starts at 1 s).
CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
                   ("grpc.max_reconnect_backoff_ms", 500)]


def _bench_datastore():
    spec = importlib.util.spec_from_file_location("bench_datastore", REPO / "bench" / "datastore.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Writer:
    """Puts through one endpoint, 0.5 s timeout each, recording (sent, acked or None)."""

    def __init__(self, endpoint: str) -> None:
        self.channel = grpc.insecure_channel(endpoint, options=CHANNEL_OPTIONS)
        self.kv = rpc.KVStub(self.channel)
        self.samples: list[tuple[float, float | None]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        n = 0
        while not self.stop.is_set():
            sent = time.time()
            try:
                self.kv.Put(pb.PutRequest(key=f"/bench/failover/{n:07d}".encode(), value=b"x"), timeout=0.5)
                self.samples.append((sent, time.time()))
            except grpc.RpcError:
                self.samples.append((sent, None))
                time.sleep(0.02)
            n += 1

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.channel.close()


def _pid_files(config: dict) -> list[int]:
    data = Path(config["data_dir"])
    pids = []
    for path in (data / "postgres" / "pgdata" / "postmaster.pid", data / "datastore.pid"):
        try:
            pids.append(int(path.read_text().split("\n", 1)[0]))
        except (OSError, ValueError):
            pass
    return pids


def kill_node(lab: Lab, name: str) -> None:
    """SIGKILL the node's agent, datastore and every PostgreSQL process (a machine crash)."""
    for pid in [lab.agents[name].pid, *_pid_files(lab.config(name))]:
        signal_tree(pid, signal.SIGKILL)
    lab.agents[name].wait(10)


def _event_time(status: dict, kind: str, after: float) -> float | None:
    times = [e["time"] for e in status.get("events", []) if e["kind"] == kind and e["time"] >= after]
    return min(times) if times else None


def failover_once(lab: Lab) -> dict:
    statuses = lab.wait_ready(120)
    leader = next(n for n, s in statuses.items() if s["role"] == "leader")
    survivor = next(n for n in statuses if n != leader)
    writer = Writer(lab.endpoint(survivor))
    time.sleep(2.0)
    kill_node(lab, leader)
    killed = time.time()  # every process of the node is gone from here on
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(ack and sent >= killed for sent, ack in writer.samples):
            break
        time.sleep(0.05)
    time.sleep(0.5)
    writer.close()
    status = lab.status(survivor)
    decided, promoted = _event_time(status, "promote", killed), _event_time(status, "promoted", killed)
    acked_before = [ack for sent, ack in writer.samples if ack and ack <= killed]
    acked_after = [ack for sent, ack in writer.samples if ack and sent >= killed]
    if not (decided and promoted and acked_after):
        raise RuntimeError(f"no failover observed: {json.dumps(status)[:1500]}")
    rejoin_started = time.monotonic()
    lab.start_agent(leader)
    lab.wait_ready(180)
    rejoin = time.monotonic() - rejoin_started
    # A long-running pair is what fails in production: let the restarted agent's start-up grace
    # (no promotion right after start) run out before the next repetition.
    time.sleep(max(0.0, PRODUCTION_PROBE["startup_grace"] - rejoin) + 1.0)
    return {
        "detection_s": decided - killed,
        "promotion_s": promoted - decided,
        "writes_back_s": min(acked_after) - killed,
        "outage_s": min(acked_after) - max(acked_before, default=killed),
        "rejoin_s": rejoin,
    }


async def _throughput(endpoint: str, seconds: float) -> dict:
    put_load = _bench_datastore().put_load
    return {clients: await put_load(endpoint, clients, seconds) for clients in (1, 16)}


def summarize(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {"min": ordered[0], "median": statistics.median(ordered), "max": ordered[-1],
            "mean": statistics.fmean(ordered)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each throughput measurement")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    results: dict = {"machine": f"{platform.node()} {os.cpu_count()} cores, Python {platform.python_version()}",
                     "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "probe": PRODUCTION_PROBE}
    workdir = Path(tempfile.mkdtemp(prefix="ep-bench-twonode-"))
    os.chmod(workdir, 0o755)
    try:
        lab = Lab(write_pair(workdir / "pair", probe=PRODUCTION_PROBE))
        try:
            for name in lab.configs:
                lab.start_agent(name)
            statuses = lab.wait_ready(180)
            leader = next(n for n, s in statuses.items() if s["role"] == "leader")
            print("measuring pair throughput ...", file=sys.stderr)
            results["throughput_pair_sync"] = asyncio.run(_throughput(lab.endpoint(leader), args.seconds))
            runs = []
            for i in range(args.repetitions):
                runs.append(failover_once(lab))
                print(f"failover {i + 1}/{args.repetitions}: "
                      + ", ".join(f"{k} {v:.2f}" for k, v in runs[-1].items()), file=sys.stderr)
            results["failover_runs"] = runs
            results["failover"] = {key: summarize([r[key] for r in runs]) for key in runs[0]} if runs else {}
        finally:
            lab.stop()
        postgres = start_postgres(workdir / "single")
        try:
            server = start_backend("postgres", workdir / "single-ds", postgres)
            try:
                print("measuring single-node throughput ...", file=sys.stderr)
                results["throughput_single_postgres"] = asyncio.run(_throughput(server.endpoint, args.seconds))
            finally:
                server.stop()
        finally:
            postgres.stop()
    except BaseException:
        print(f"logs kept in {workdir}", file=sys.stderr)
        raise
    shutil.rmtree(workdir, ignore_errors=True)
    report(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


def report(results: dict) -> None:
    print(f"\n{results['machine']}, {results['date']}, probe {results['probe']}\n")
    if results.get("failover"):
        print("| seconds | min | median | mean | max |\n|---|---|---|---|---|")
        for key, s in results["failover"].items():
            print(f"| {key} | {s['min']:.2f} | {s['median']:.2f} | {s['mean']:.2f} | {s['max']:.2f} |")
    print("\n| store | clients | puts/s | p50 ms | p99 ms |\n|---|---|---|---|---|")
    for label, key in (("two-node pair (sync)", "throughput_pair_sync"),
                       ("single PostgreSQL", "throughput_single_postgres")):
        for clients, r in results.get(key, {}).items():
            print(f"| {label} | {clients} | {r['puts_per_s']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} |")


if __name__ == "__main__":
    main()
