"""The datastore inside Envoy's embedded interpreter: engine, watch hub, background loops, gRPC methods."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time

from edgeplane.common.netaddr import parse_host_port
from edgeplane.datastore.config import DatastoreConfig
from edgeplane.datastore.engine import Engine
from edgeplane.datastore.grpc_asgi import GrpcApp, Method, service_methods
from edgeplane.datastore.metrics import Metrics
from edgeplane.datastore.proto import etcd_api_pb2 as pb
from edgeplane.datastore.services import (
    ClusterService, Compactor, Context, KVService, LeaseService, MaintenanceService, WatchService,
)
from edgeplane.datastore.sql import NOTIFY_CHANNEL, make_dialect
from edgeplane.datastore.watch import WatchHub

log = logging.getLogger("edgeplane.datastore")

GRPC_OVERHEAD_BYTES = 512 * 1024
FEED_PAGE_BYTES = 16 * 1024 * 1024  # other writers' changes read per query, whatever the value sizes


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

    @classmethod
    def from_environment(cls, text: str) -> tuple[Datastore, str]:
        """The datastore the launcher configured (``DatastoreConfig.to_json``) and its log level."""
        config, log_level = DatastoreConfig.from_json(text)
        return cls(config), log_level

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
