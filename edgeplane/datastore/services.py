"""The etcd v3 gRPC services (KV, Watch, Lease, Cluster, Maintenance) over the engine."""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections.abc import Callable
from typing import Any

import grpc

from edgeplane.datastore import errors, ops
from edgeplane.datastore.config import parse_retention
from edgeplane.datastore.engine import Engine
from edgeplane.datastore.errors import EtcdError
from edgeplane.datastore.metrics import Metrics
from edgeplane.datastore.proto import etcd_api_pb2 as pb
from edgeplane.datastore.proto import etcd_api_pb2_grpc as rpc
from edgeplane.datastore.watch import WatchHub, WatchStream

REPORTED_VERSION = "3.5.21"  # >= 3.5.13, so kube-apiserver enables watch progress requests
MAX_LEASE_TTL = 9_000_000_000
MIN_LEASE_TTL = 2  # etcd's floor with default election settings
COMPACTION_SLICE_REVISIONS = 250  # history deleted per write transaction: a few ms of writer time


class Context:
    """What every service needs: the engine, the hub, identity for headers, limits."""

    def __init__(self, engine: Engine, hub: WatchHub, cluster_id: int, member_id: int, term: int,
                 member_name: str, client_urls: list[str], max_request_bytes: int, max_txn_ops: int,
                 progress_interval: float, metrics: Metrics, compactor: "Compactor") -> None:
        self.engine = engine
        self.hub = hub
        self.cluster_id = cluster_id
        self.member_id = member_id
        self.term = term
        self.member_name = member_name
        self.client_urls = client_urls
        self.max_request_bytes = max_request_bytes
        self.max_txn_ops = max_txn_ops
        self.progress_interval = progress_interval
        self.metrics = metrics
        self.compactor = compactor

    def header(self, revision: int) -> pb.ResponseHeader:
        return pb.ResponseHeader(cluster_id=self.cluster_id, member_id=self.member_id, revision=revision,
                                 raft_term=self.term)

    def check_size(self, request: Any) -> None:
        if request.ByteSize() > self.max_request_bytes:
            raise errors.request_too_large()


def unary(method: Callable) -> Callable:
    """Turn EtcdError into a gRPC status and record the call in the metrics."""

    @functools.wraps(method)
    async def wrapper(self, request, context: grpc.aio.ServicerContext):
        started = time.perf_counter()
        code = "OK"
        try:
            return await method(self, request, context)
        except EtcdError as exc:
            code = exc.code.name
            await context.abort(exc.code, exc.message)
        finally:
            self.ctx.metrics.observe(method.__name__, code, time.perf_counter() - started)

    return wrapper


class KVService(rpc.KVServicer):
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    @unary
    async def Range(self, request: pb.RangeRequest, context) -> pb.RangeResponse:
        ops.check_range(request)

        def read(reader, meta):
            response = ops.do_range(reader, request, meta.revision, meta.compact_revision)
            response.header.CopyFrom(self.ctx.header(meta.revision))
            return response

        return await self.ctx.engine.read(read)

    @unary
    async def Put(self, request: pb.PutRequest, context) -> pb.PutResponse:
        ops.check_put(request)
        self.ctx.check_size(request)
        response, revision = await self.ctx.engine.write(lambda w: ops.apply_put(w, request))
        response.header.CopyFrom(self.ctx.header(revision))
        return response

    @unary
    async def DeleteRange(self, request: pb.DeleteRangeRequest, context) -> pb.DeleteRangeResponse:
        ops.check_delete(request)
        response, revision = await self.ctx.engine.write(lambda w: ops.apply_delete(w, request))
        response.header.CopyFrom(self.ctx.header(revision))
        return response

    @unary
    async def Txn(self, request: pb.TxnRequest, context) -> pb.TxnResponse:
        ops.check_txn(request, self.ctx.max_txn_ops)
        self.ctx.check_size(request)
        response = await self.ctx.engine.write(lambda w: ops.apply_txn(w, request), savepoint=True)
        txn_response, revision = response
        txn_response.header.CopyFrom(self.ctx.header(revision))
        return txn_response

    @unary
    async def Compact(self, request: pb.CompactionRequest, context) -> pb.CompactionResponse:
        _, revision = await self.ctx.engine.write(lambda w: w.compact(request.revision))
        if request.physical:
            await self.ctx.compactor.run_physical()
        else:
            self.ctx.compactor.kick()
        return pb.CompactionResponse(header=self.ctx.header(revision))


class WatchService(rpc.WatchServicer):
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def Watch(self, request_iterator, context):
        stream = WatchStream(self.ctx.hub, self.ctx.engine, self.ctx.header, self.ctx.progress_interval)
        self.ctx.metrics.streams.inc()
        try:
            async for response in stream.serve(request_iterator):
                yield response
        finally:
            self.ctx.metrics.streams.dec()


class LeaseService(rpc.LeaseServicer):
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    @unary
    async def LeaseGrant(self, request: pb.LeaseGrantRequest, context) -> pb.LeaseGrantResponse:
        if request.TTL > MAX_LEASE_TTL:
            raise errors.lease_ttl_too_large()
        ttl = max(request.TTL, MIN_LEASE_TTL)
        lease_id = request.ID or random.SystemRandom().randrange(1, 2**63)
        _, revision = await self.ctx.engine.write(lambda w: w.grant_lease(lease_id, ttl))
        return pb.LeaseGrantResponse(header=self.ctx.header(revision), ID=lease_id, TTL=ttl)

    @unary
    async def LeaseRevoke(self, request: pb.LeaseRevokeRequest, context) -> pb.LeaseRevokeResponse:
        _, revision = await self.ctx.engine.write(lambda w: w.revoke_lease(request.ID))
        return pb.LeaseRevokeResponse(header=self.ctx.header(revision))

    async def LeaseKeepAlive(self, request_iterator, context):
        async for request in request_iterator:
            try:
                ttl, revision = await self.ctx.engine.write(lambda w, lease_id=request.ID: w.refresh_lease(lease_id))
            except EtcdError as exc:
                await context.abort(exc.code, exc.message)
            yield pb.LeaseKeepAliveResponse(header=self.ctx.header(revision), ID=request.ID, TTL=ttl)

    @unary
    async def LeaseTimeToLive(self, request: pb.LeaseTimeToLiveRequest, context) -> pb.LeaseTimeToLiveResponse:
        def read(reader, meta):
            record = reader.lease(request.ID)
            header = self.ctx.header(meta.revision)
            if record is None:
                return pb.LeaseTimeToLiveResponse(header=header, ID=request.ID, TTL=-1)
            remaining = max(0, round(record.expires_at - time.time()))
            response = pb.LeaseTimeToLiveResponse(header=header, ID=request.ID, TTL=remaining,
                                                  grantedTTL=record.granted_ttl)
            if request.keys:
                response.keys.extend(reader.lease_keys(request.ID))
            return response

        return await self.ctx.engine.read(read)

    @unary
    async def LeaseLeases(self, request: pb.LeaseLeasesRequest, context) -> pb.LeaseLeasesResponse:
        def read(reader, meta):
            return pb.LeaseLeasesResponse(header=self.ctx.header(meta.revision),
                                          leases=[pb.LeaseStatus(ID=i) for i in reader.lease_ids()])

        return await self.ctx.engine.read(read)


class ClusterService(rpc.ClusterServicer):
    """A cluster of exactly one member: this datastore."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def _member(self) -> pb.Member:
        return pb.Member(ID=self.ctx.member_id, name=self.ctx.member_name, peerURLs=self.ctx.client_urls,
                         clientURLs=self.ctx.client_urls)

    @unary
    async def MemberList(self, request, context) -> pb.MemberListResponse:
        return pb.MemberListResponse(header=self.ctx.header(self.ctx.hub.revision), members=[self._member()])

    @unary
    async def MemberAdd(self, request, context):
        raise errors.not_capable("adding members (the datastore is a single member over SQL)")

    @unary
    async def MemberRemove(self, request, context):
        raise errors.not_capable("removing members (the datastore is a single member over SQL)")

    @unary
    async def MemberUpdate(self, request, context):
        raise errors.not_capable("updating members (the datastore is a single member over SQL)")

    @unary
    async def MemberPromote(self, request, context):
        raise errors.not_capable("promoting members (the datastore has no learners)")


class MaintenanceService(rpc.MaintenanceServicer):
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    @unary
    async def Status(self, request, context) -> pb.StatusResponse:
        def read(reader, meta):
            size = reader.db_size()
            return pb.StatusResponse(
                header=self.ctx.header(meta.revision), version=REPORTED_VERSION, dbSize=size, dbSizeInUse=size,
                leader=self.ctx.member_id, raftIndex=meta.revision, raftTerm=self.ctx.term,
                raftAppliedIndex=meta.revision,
            )

        return await self.ctx.engine.read(read)

    @unary
    async def Alarm(self, request: pb.AlarmRequest, context) -> pb.AlarmResponse:
        # No alarm is ever raised: space is the SQL database's, not a fixed quota.
        return pb.AlarmResponse(header=self.ctx.header(self.ctx.hub.revision))

    @unary
    async def Defragment(self, request, context) -> pb.DefragmentResponse:
        await self.ctx.engine.exclusive(lambda conn: self.ctx.engine.dialect.defragment(conn))
        return pb.DefragmentResponse(header=self.ctx.header(self.ctx.hub.revision))

    @unary
    async def Hash(self, request, context):
        raise errors.not_capable("Hash (there is no raft log to compare)")

    @unary
    async def HashKV(self, request, context):
        raise errors.not_capable("HashKV")

    async def Snapshot(self, request, context):
        await context.abort(grpc.StatusCode.UNIMPLEMENTED,
                            "edgeplane datastore: Snapshot is not supported; back up the SQL database instead")
        yield pb.SnapshotResponse()  # pragma: no cover - makes this an async generator

    @unary
    async def MoveLeader(self, request, context):
        raise errors.not_capable("MoveLeader (there is one member)")


class Compactor:
    """Logical compaction is instant (a revision in ep_meta); physical deletion runs in slices."""

    def __init__(self, engine: Engine, retention: str, slice_revisions: int = COMPACTION_SLICE_REVISIONS) -> None:
        self.engine = engine
        self.retention = parse_retention(retention)
        self.slice_revisions = slice_revisions
        self._kick = asyncio.Event()
        self._samples: list[tuple[float, int]] = []

    def kick(self) -> None:
        self._kick.set()

    async def run_physical(self) -> None:
        while True:
            more, _ = await self.engine.write(lambda w: w.compact_step(self.slice_revisions))
            if not more:
                return

    async def loop(self, check_every: float = 10.0) -> None:
        while True:
            try:
                await asyncio.wait_for(self._kick.wait(), timeout=check_every)
            except asyncio.TimeoutError:
                pass
            self._kick.clear()
            try:
                await self._auto_compact()
                await self.run_physical()
            except Exception:  # raced with another compaction or the database is away; next round retries
                pass

    async def _auto_compact(self) -> None:
        kind, amount = self.retention
        current = self.engine.revision
        if kind == "revisions" and amount > 0:
            target = current - amount
        elif kind == "seconds" and amount > 0:
            now = time.time()
            self._samples.append((now, current))
            old = [rev for at, rev in self._samples if now - at >= amount]
            self._samples = [(at, rev) for at, rev in self._samples if now - at < amount * 2]
            target = max(old) if old else 0
        else:
            return
        if target > self.engine.compact_revision:
            await self.engine.write(lambda w: w.compact(target) if target > w.compact_revision else None)
