"""One datastore process: the launcher's checks, then (inside Envoy) engine, watch hub and background loops."""

from __future__ import annotations

import asyncio
import fcntl
import gc
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from edgeplane.common.netaddr import parse_host_port
from edgeplane.common.paths import default_data_dir
from edgeplane.datastore.engine import Engine
from edgeplane.datastore.frontend import check_port_free, encode_config, exec_envoy
from edgeplane.datastore.grpc_asgi import GrpcApp, Method, service_methods
from edgeplane.datastore.metrics import Metrics
from edgeplane.datastore.proto import etcd_api_pb2 as pb
from edgeplane.datastore.services import (
    ClusterService, Compactor, Context, KVService, LeaseService, MaintenanceService, WatchService, parse_retention,
)
from edgeplane.datastore.sql import NOTIFY_CHANNEL, Endpoint, StartupError, default_node_name, make_dialect, parse_endpoint, prepare_database
from edgeplane.datastore.watch import WatchHub

log = logging.getLogger("edgeplane.datastore")

DEFAULT_MAX_REQUEST_BYTES = 1536 * 1024  # etcd's default --max-request-bytes
GRPC_OVERHEAD_BYTES = 512 * 1024
# Envoy threads doing HTTP/2 and TLS; the Python side is one event loop whatever this is.
ENVOY_WORKERS = 2
FEED_PAGE_BYTES = 16 * 1024 * 1024  # other writers' changes read per query, whatever the value sizes


@dataclass
class DatastoreConfig:
    listen: str = "127.0.0.1:2379"
    endpoint: str = ""  # empty: state.db in the data directory
    node_name: str = field(default_factory=default_node_name)
    cert_file: str | None = None
    key_file: str | None = None
    trusted_ca_file: str | None = None
    metrics_listen: str | None = None
    auto_compaction: str = "10000"
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_txn_ops: int = 128
    sqlite_synchronous: str = "full"
    progress_interval: float = 5.0
    lease_check_interval: float = 0.5

    def resolved_endpoint(self) -> Endpoint:
        if not self.endpoint:
            return Endpoint("sqlite", str(default_data_dir() / "datastore" / "state.db"))
        return parse_endpoint(self.endpoint)

    def validate(self) -> None:
        """Raise ValueError naming the option for any setting that cannot work."""
        parse_host_port(self.listen, option="--listen")
        if self.metrics_listen:
            parse_host_port(self.metrics_listen, option="--metrics-listen")
        self.resolved_endpoint()
        parse_retention(self.auto_compaction)
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("--cert-file and --key-file go together")
        if self.trusted_ca_file and not self.cert_file:
            raise ValueError("--trusted-ca-file (client certificate auth) needs --cert-file and --key-file")
        for option, path in (("--cert-file", self.cert_file), ("--key-file", self.key_file),
                             ("--trusted-ca-file", self.trusted_ca_file)):
            if path and not Path(path).is_file():
                raise ValueError(f"{option}: {path} does not exist")
        if self.max_request_bytes <= 0:
            raise ValueError("--max-request-bytes must be positive")
        if self.sqlite_synchronous.lower() not in ("full", "normal", "extra"):
            raise ValueError("--sqlite-synchronous must be full, normal or extra")


class SingleUseLock:
    """An exclusive lock file beside an SQLite database: one datastore process per file."""

    def __init__(self, db_path: str) -> None:
        self.path = Path(f"{db_path}.lock")
        self._handle = None

    def acquire(self, inheritable: bool = False) -> None:
        """``inheritable``: keep the lock across exec (the launcher becomes Envoy)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            raise StartupError(f"{self.path.with_suffix('')} is in use by another datastore (pid {owner})") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        if inheritable:
            os.set_inheritable(handle.fileno(), True)
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class Datastore:
    """Everything one datastore process serves; it lives in Envoy's embedded interpreter.

    ``asgi_app()`` is what Envoy runs: its lifespan startup builds the engine, the watch hub and
    the background loops and returns the gRPC methods; its shutdown (Envoy's SIGTERM) stops them.
    """

    def __init__(self, config: DatastoreConfig) -> None:
        config.validate()
        self.config = config
        self.endpoint = config.resolved_endpoint()
        self.dialect = make_dialect(self.endpoint, config.sqlite_synchronous)
        self.metrics = Metrics()
        self._tasks: list[asyncio.Task] = []
        self._engine: Engine | None = None
        self._stopping = threading.Event()  # also read by the PostgreSQL LISTEN thread

    def asgi_app(self) -> GrpcApp:
        return GrpcApp(self.start, self.stop, self.config.max_request_bytes + GRPC_OVERHEAD_BYTES)

    async def start(self) -> dict[str, Method]:
        # Long-lived objects (modules, protobuf descriptors) need no scanning; fewer, cheaper
        # collections keep request latency tails short.
        gc.collect()
        gc.freeze()
        gc.set_threshold(20000, 20, 50)
        engine = self._engine = Engine(self.dialect, self.config.node_name, on_batch=self.metrics.batch_size.observe)
        meta = await engine.start()
        hub = WatchHub(meta.revision)
        compactor = Compactor(engine, self.config.auto_compaction)
        host, port = parse_host_port(self.config.listen, option="--listen")
        scheme = "https" if self.config.cert_file else "http"
        ctx = Context(engine, hub, meta.cluster_id, meta.member_id, meta.term, self.config.node_name,
                      [f"{scheme}://{host}:{port}"], self.config.max_request_bytes, self.config.max_txn_ops,
                      self.config.progress_interval, self.metrics, compactor)
        self._wire_commits(engine, hub)
        await engine.write(lambda w: w.restart_leases())
        if self.config.metrics_listen:
            metrics_host, metrics_port = parse_host_port(self.config.metrics_listen, option="--metrics-listen")
            self.metrics.serve(metrics_host, metrics_port)
        self._tasks = [
            asyncio.create_task(self._expire_leases(engine)),
            asyncio.create_task(compactor.loop()),
            asyncio.create_task(self._update_gauges(engine)),
            asyncio.create_task(self._checkpoint(engine)),
        ]
        if self.dialect.shared:
            self._tasks.append(asyncio.create_task(self._follow_other_writers(engine, hub)))
        log.info("serving etcd v3 API on %s (%s) backed by %s, revision %d", self.config.listen, scheme,
                 self.endpoint.describe(), meta.revision)
        methods: dict[str, Method] = {}
        for name, servicer in (("KV", KVService(ctx)), ("Watch", WatchService(ctx)), ("Lease", LeaseService(ctx)),
                               ("Cluster", ClusterService(ctx)), ("Maintenance", MaintenanceService(ctx))):
            methods.update(service_methods(pb.DESCRIPTOR, name, servicer))
        return methods

    async def stop(self) -> None:
        log.info("shutting down")
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._engine is not None:
            await self._engine.close()

    def _wire_commits(self, engine: Engine, hub: WatchHub) -> None:
        if not self.dialect.shared:
            # Only this process writes: publish straight from the commit, no polling at all.
            engine.add_commit_listener(hub.publish)
            return
        # Others may write too: every publication comes from the log, in revision order.
        self._feed_wakeup = asyncio.Event()
        engine.add_commit_listener(lambda events, revision: self._feed_wakeup.set())

    async def _follow_other_writers(self, engine: Engine, hub: WatchHub) -> None:
        """Publish commits of every process sharing the database, woken by NOTIFY or a 1 s poll."""
        loop = asyncio.get_running_loop()
        listener = threading.Thread(target=self._listen_for_notifications, args=(loop,), daemon=True)
        listener.start()
        while True:
            try:
                await asyncio.wait_for(self._feed_wakeup.wait(), timeout=1.0)
            except asyncio.TimeoutError:
                pass
            self._feed_wakeup.clear()
            try:
                while True:
                    first = hub.revision + 1

                    def read(reader, meta, first=first):
                        if meta.revision < first:
                            return [], meta.revision, meta.revision + 1
                        events, next_revision = reader.events(None, first, meta.revision, 2000, True, FEED_PAGE_BYTES)
                        return events, meta.revision, next_revision

                    events, latest, next_revision = await engine.read(read)
                    hub.publish(events, next_revision - 1)
                    engine.revision = max(engine.revision, hub.revision)
                    if next_revision > latest:
                        break
            except Exception:  # database away or a bug: keep following, the next round retries
                log.warning("change feed: reading new revisions failed", exc_info=True)
                await asyncio.sleep(0.5)

    def _listen_for_notifications(self, loop: asyncio.AbstractEventLoop) -> None:
        import psycopg

        while not self._stopping.is_set():
            try:
                with psycopg.connect(self.endpoint.target, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    while not self._stopping.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            loop.call_soon_threadsafe(self._feed_wakeup.set)
            except Exception:  # reconnect; the 1 s poll covers the gap
                time.sleep(1.0)

    async def _expire_leases(self, engine: Engine) -> None:
        while True:
            await asyncio.sleep(self.config.lease_check_interval)
            try:
                expired = await engine.read(lambda reader, meta: reader.expired_leases(time.time()))
                for lease_id in expired:
                    await engine.write(lambda w, lease_id=lease_id: w.expire_lease(lease_id))
            except Exception:  # database away: leases expire on a later round
                log.debug("lease expiry round failed", exc_info=True)

    async def _checkpoint(self, engine: Engine) -> None:
        while True:
            await asyncio.sleep(0.5)
            try:
                await engine.checkpoint()
            except Exception:  # housekeeping only; the next round tries again
                log.debug("checkpoint failed", exc_info=True)

    async def _update_gauges(self, engine: Engine) -> None:
        while True:
            self.metrics.revision.set(engine.revision)
            self.metrics.compact_revision.set(engine.compact_revision)
            await asyncio.sleep(1.0)


def serve(config: DatastoreConfig, log_level: str = "info") -> NoReturn:
    """Check what can be reported precisely, then become Envoy serving the datastore (never returns).

    Raises ValueError or StartupError, naming the option or the database, before anything listens.
    """
    config.validate()
    endpoint = config.resolved_endpoint()
    lock = SingleUseLock(endpoint.target) if endpoint.engine == "sqlite" else None
    if lock:
        # Held by this process and, through the exec, by Envoy until it exits (``lock`` must stay
        # referenced until then: a collected lock closes its file and releases it).
        lock.acquire(inheritable=True)
    prepare_database(make_dialect(endpoint, config.sqlite_synchronous), config.node_name)
    host, port = parse_host_port(config.listen, option="--listen")
    try:
        check_port_free(host, port, "--listen")
        if config.metrics_listen:
            check_port_free(*parse_host_port(config.metrics_listen, option="--metrics-listen"), "--metrics-listen")
    except OSError as exc:
        raise StartupError(str(exc)) from None
    try:
        exec_envoy(config.listen, host, port, (config.cert_file, config.key_file, config.trusted_ca_file),
                   encode_config(config, log_level), log_level, ENVOY_WORKERS)
    except (RuntimeError, OSError) as exc:  # Envoy or the embedded Python cannot be started here
        raise StartupError(f"cannot start the gRPC front end: {exc}") from None
