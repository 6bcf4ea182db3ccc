"""A thin asyncio client for the etcd v3 API (our generated stubs), for tests and benchmarks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc

from edgeplane.datastore.proto import etcd_api_pb2 as pb
from edgeplane.datastore.proto import etcd_api_pb2_grpc as rpc


def prefix_end(prefix: bytes) -> bytes:
    """etcd's range_end for "every key starting with prefix"."""
    end = bytearray(prefix)
    for i in range(len(end) - 1, -1, -1):
        if end[i] < 0xFF:
            end[i] += 1
            return bytes(end[: i + 1])
    return b"\x00"


class Client:
    def __init__(self, endpoint: str) -> None:
        self.channel = grpc.aio.insecure_channel(endpoint)
        self.kv = rpc.KVStub(self.channel)
        self.watch_stub = rpc.WatchStub(self.channel)
        self.lease = rpc.LeaseStub(self.channel)
        self.maintenance = rpc.MaintenanceStub(self.channel)

    async def close(self) -> None:
        await self.channel.close()

    async def put(self, key: bytes, value: bytes, timeout: float = 10) -> pb.PutResponse:
        return await self.kv.Put(pb.PutRequest(key=key, value=value), timeout=timeout)

    async def get(self, key: bytes, revision: int = 0) -> pb.RangeResponse:
        return await self.kv.Range(pb.RangeRequest(key=key, revision=revision), timeout=10)

    async def range(self, key: bytes, range_end: bytes, limit: int = 0, revision: int = 0,
                    count_only: bool = False) -> pb.RangeResponse:
        return await self.kv.Range(pb.RangeRequest(key=key, range_end=range_end, limit=limit, revision=revision,
                                                   count_only=count_only), timeout=10)

    async def txn(self, request: pb.TxnRequest) -> pb.TxnResponse:
        return await self.kv.Txn(request, timeout=10)


class WatchSession:
    """One Watch stream with a request queue, so tests can create watches and ask for progress."""

    def __init__(self, client: Client) -> None:
        self._requests: asyncio.Queue[pb.WatchRequest | None] = asyncio.Queue()
        self.call = client.watch_stub.Watch(self._iterate())

    async def _iterate(self) -> AsyncIterator[pb.WatchRequest]:
        while True:
            request = await self._requests.get()
            if request is None:
                return
            yield request

    def create(self, key: bytes, range_end: bytes = b"", start_revision: int = 0, prev_kv: bool = False,
               progress_notify: bool = False) -> None:
        self._requests.put_nowait(pb.WatchRequest(create_request=pb.WatchCreateRequest(
            key=key, range_end=range_end, start_revision=start_revision, prev_kv=prev_kv,
            progress_notify=progress_notify)))

    def request_progress(self) -> None:
        self._requests.put_nowait(pb.WatchRequest(progress_request=pb.WatchProgressRequest()))

    async def next(self, timeout: float = 10) -> pb.WatchResponse:
        return await asyncio.wait_for(self.call.read(), timeout)

    def close(self) -> None:
        self._requests.put_nowait(None)
        self.call.cancel()


def txn_compare_mod(key: bytes, mod_revision: int) -> pb.Compare:
    return pb.Compare(key=key, target=pb.Compare.MOD, result=pb.Compare.EQUAL, mod_revision=mod_revision)
