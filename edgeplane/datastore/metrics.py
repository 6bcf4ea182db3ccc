"""Prometheus metrics of one datastore process, served in text format on ``--metrics-listen``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # process_resident_memory_bytes is what `etcdctl check datascale` reads.
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(collector)
        self.requests = Counter("edgeplane_datastore_requests_total", "gRPC requests by method and status code",
                                ["method", "code"], registry=self.registry)
        self.latency = Histogram("edgeplane_datastore_request_seconds", "gRPC request latency by method", ["method"],
                                 registry=self.registry,
                                 buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
        self.revision = Gauge("edgeplane_datastore_revision", "Current revision", registry=self.registry)
        self.compact_revision = Gauge("edgeplane_datastore_compact_revision", "Compacted revision",
                                      registry=self.registry)
        self.streams = Gauge("edgeplane_datastore_watch_streams", "Open watch streams", registry=self.registry)
        self.batch_size = Histogram("edgeplane_datastore_write_batch_requests", "Write requests per committed batch",
                                    registry=self.registry, buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512))
        self._children: dict[tuple[str, str], tuple[Counter, Histogram]] = {}

    def observe(self, method: str, code: str, seconds: float) -> None:
        # Labelled children looked up once: this runs on every request, on the event loop.
        children = self._children.get((method, code))
        if children is None:
            children = self._children[(method, code)] = (self.requests.labels(method, code), self.latency.labels(method))
        children[0].inc()
        children[1].observe(seconds)

    def serve(self, host: str, port: int) -> None:
        start_http_server(port, addr=host, registry=self.registry)
