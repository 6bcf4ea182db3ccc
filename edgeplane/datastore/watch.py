"""Watches: one hub fed by commits in revision order, one task per watcher.

A watcher is either *live* (the hub hands it new events as they commit) or *catching up* (it reads
history from the database in pages). It switches to live only when it has read everything up to
the hub's revision, a check made on the event loop with no await in between, so no event can be
missed or delivered twice. A live watcher that falls too far behind its stream drops its backlog
and catches up from the database again, which keeps memory bounded for slow clients.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable

from edgeplane.datastore import errors
from edgeplane.datastore.engine import Engine
from edgeplane.datastore.model import Event, KeyRange
from edgeplane.datastore.ops import to_pb
from edgeplane.datastore.proto import etcd_api_pb2 as pb

log = logging.getLogger(__name__)

# Memory per watch stays bounded whatever the values' sizes (etcd allows 1.5 MiB each): limits
# count events and bytes, and a response is split between revisions once it is large.
HISTORY_PAGE = 1000  # events read from the database per catch-up query ...
HISTORY_PAGE_BYTES = 4 * 1024 * 1024  # ... and bytes
BACKLOG_LIMIT = 10000  # events a live watcher may hold before it falls back to catching up ...
BACKLOG_BYTES = 16 * 1024 * 1024  # ... and bytes
RESPONSE_BYTES = 1024 * 1024  # a response holding this much ends at the next revision boundary
OUTBOUND_LIMIT = 128  # responses queued per stream before watchers wait ...
OUTBOUND_BYTES = 8 * 1024 * 1024  # ... or this many bytes of events (one response always fits)


class WatchHub:
    """Knows the latest published revision and hands each new batch of events to live watchers."""

    def __init__(self, revision: int) -> None:
        self.revision = revision
        self._live: set[Watcher] = set()

    def publish(self, events: list[Event], revision: int) -> None:
        if revision <= self.revision:
            return
        for watcher in list(self._live):
            watcher.offer(events, revision)
        self.revision = revision

    def go_live(self, watcher: "Watcher") -> bool:
        """Make ``watcher`` live if it has seen everything up to the hub's revision."""
        if watcher.next_revision <= self.revision:
            return False
        self._live.add(watcher)
        return True

    def drop(self, watcher: "Watcher") -> None:
        self._live.discard(watcher)

    def is_live(self, watcher: "Watcher") -> bool:
        return watcher in self._live


class Watcher:
    def __init__(self, stream: "WatchStream", watch_id: int, request: pb.WatchCreateRequest, start: int) -> None:
        self.stream = stream
        self.watch_id = watch_id
        self.key_range = KeyRange(request.key, request.range_end)
        self.no_put = pb.WatchCreateRequest.NOPUT in request.filters
        self.no_delete = pb.WatchCreateRequest.NODELETE in request.filters
        self.prev_kv = request.prev_kv
        self.progress_notify = request.progress_notify
        self.next_revision = start
        self.sent_since_tick = False
        self._backlog: deque[Event] = deque()
        self._backlog_bytes = 0
        self._wake = asyncio.Event()
        self.task: asyncio.Task | None = None

    # Called by the hub, on the loop, for every commit while live.
    def offer(self, events: list[Event], revision: int) -> None:
        for event in events:
            if event.revision >= self.next_revision and self._wanted(event):
                self._backlog.append(event)
                self._backlog_bytes += event.approx_bytes()
        self.next_revision = revision + 1
        if len(self._backlog) > BACKLOG_LIMIT or self._backlog_bytes > BACKLOG_BYTES:
            # Too slow: forget the backlog and re-read it from the database later.
            self.next_revision = self._backlog[0].revision
            self._take_backlog()
            self.stream.hub.drop(self)
        self._wake.set()

    def _take_backlog(self) -> list[Event]:
        batch = list(self._backlog)
        self._backlog.clear()
        self._backlog_bytes = 0
        return batch

    def _wanted(self, event: Event) -> bool:
        if event.deleted and self.no_delete or not event.deleted and self.no_put:
            return False
        return self.key_range.contains(event.kv.key)

    @property
    def synced(self) -> bool:
        return self.stream.hub.is_live(self) and not self._backlog

    async def run(self) -> None:
        hub = self.stream.hub
        try:
            while True:
                if not hub.is_live(self):
                    if not await self._catch_up_page():
                        return
                    continue
                await self._wake.wait()
                self._wake.clear()
                if self._backlog:
                    await self.stream.send_events(self, self._take_backlog())
        except asyncio.CancelledError:
            pass
        finally:
            hub.drop(self)

    async def _catch_up_page(self) -> bool:
        """Read one page of history; go live when caught up. False when the watch must end."""
        hub = self.stream.hub
        if hub.go_live(self):
            return True
        first, last = self.next_revision, hub.revision

        def read(reader, meta):
            if first < meta.compact_revision:
                return None, meta.compact_revision
            page = reader.events(self.key_range, first, last, HISTORY_PAGE, self.prev_kv, HISTORY_PAGE_BYTES)
            return page, meta.compact_revision

        try:
            page, compact_revision = await self.stream.engine.read(read)
        except errors.EtcdError as exc:
            await self.stream.cancel_watcher(self, reason=exc.message)
            return False
        if page is None:
            await self.stream.cancel_watcher(self, compact_revision=compact_revision)
            return False
        events, next_revision = page
        wanted = [e for e in events if self._wanted(e)]
        if wanted:
            await self.stream.send_events(self, wanted)
        self.next_revision = max(self.next_revision, next_revision)
        return True


def whole_revision_chunks(events: list[Event], max_bytes: int) -> list[list[Event]]:
    """Split ``events`` into runs of about ``max_bytes``, never inside one revision."""
    if not events:
        return []
    chunks: list[list[Event]] = [[]]
    size = 0
    for event in events:
        current = chunks[-1]
        if size >= max_bytes and current[-1].revision != event.revision:
            chunks.append([])
            size = 0
        chunks[-1].append(event)
        size += event.approx_bytes()
    return chunks


class Outbound:
    """A stream's responses waiting for the client, bounded in count and in bytes."""

    def __init__(self) -> None:
        self._items: deque[tuple[pb.WatchResponse, int]] = deque()
        self._bytes = 0
        self._changed = asyncio.Condition()

    def _has_room(self) -> bool:
        return not self._items or (len(self._items) < OUTBOUND_LIMIT and self._bytes < OUTBOUND_BYTES)

    async def put(self, response: pb.WatchResponse, size: int) -> None:
        async with self._changed:
            await self._changed.wait_for(self._has_room)
            self._items.append((response, size))
            self._bytes += size
            self._changed.notify_all()

    async def get(self) -> pb.WatchResponse:
        async with self._changed:
            await self._changed.wait_for(lambda: bool(self._items))
            response, size = self._items.popleft()
            self._bytes -= size
            self._changed.notify_all()
            return response


class WatchStream:
    """One gRPC Watch stream: many watchers, one ordered outbound queue."""

    def __init__(self, hub: WatchHub, engine: Engine, header: Callable[[int], pb.ResponseHeader], progress_interval: float) -> None:
        self.hub = hub
        self.engine = engine
        self.header = header
        self.progress_interval = progress_interval
        self.outbound = Outbound()
        self.watchers: dict[int, Watcher] = {}
        self._ids = itertools.count(0)
        self._background: set[asyncio.Task] = set()

    async def send(self, response: pb.WatchResponse, size: int = 0) -> None:
        await self.outbound.put(response, size)

    async def send_events(self, watcher: Watcher, events: list[Event]) -> None:
        for chunk in whole_revision_chunks(events, RESPONSE_BYTES):
            if watcher.watch_id not in self.watchers:
                return
            response = pb.WatchResponse(header=self.header(self.hub.revision), watch_id=watcher.watch_id)
            for event in chunk:
                item = response.events.add(type=pb.Event.DELETE if event.deleted else pb.Event.PUT, kv=to_pb(event.kv))
                if watcher.prev_kv and event.prev_kv is not None:
                    item.prev_kv.CopyFrom(to_pb(event.prev_kv))
            watcher.sent_since_tick = True
            await self.send(response, sum(event.approx_bytes() for event in chunk))

    async def handle(self, request: pb.WatchRequest) -> None:
        kind = request.WhichOneof("request_union")
        if kind == "create_request":
            await self._create(request.create_request)
        elif kind == "cancel_request":
            watcher = self.watchers.get(request.cancel_request.watch_id)
            if watcher is not None:
                await self.cancel_watcher(watcher)
        elif kind == "progress_request":
            self._spawn(self._answer_progress_request())

    async def _create(self, request: pb.WatchCreateRequest) -> None:
        if request.watch_id:
            if request.watch_id in self.watchers:
                await self.send(pb.WatchResponse(
                    header=self.header(self.hub.revision), watch_id=-1, created=True, canceled=True,
                    cancel_reason="mvcc: duplicate watch ID provided on the WatchStream"))
                return
            watch_id = request.watch_id
        else:
            watch_id = next(self._ids)
            while watch_id in self.watchers:
                watch_id = next(self._ids)
        if request.start_revision < 0:
            await self.send(pb.WatchResponse(header=self.header(self.hub.revision), watch_id=watch_id, created=True,
                                             canceled=True, cancel_reason="etcdserver: invalid start revision"))
            return
        start = request.start_revision or self.hub.revision + 1
        watcher = Watcher(self, watch_id, request, start)
        self.watchers[watch_id] = watcher
        # The created response goes out before any event of this watcher.
        await self.send(pb.WatchResponse(header=self.header(self.hub.revision), watch_id=watch_id, created=True))
        watcher.task = asyncio.create_task(watcher.run(), name=f"watch-{watch_id}")

    async def cancel_watcher(self, watcher: Watcher, compact_revision: int = 0, reason: str = "") -> None:
        if self.watchers.pop(watcher.watch_id, None) is None:
            return
        self.hub.drop(watcher)
        if watcher.task is not None and watcher.task is not asyncio.current_task():
            watcher.task.cancel()
        response = pb.WatchResponse(header=self.header(self.hub.revision), watch_id=watcher.watch_id, canceled=True,
                                    compact_revision=compact_revision)
        if compact_revision:
            response.cancel_reason = errors.compacted().message
        elif reason:
            response.cancel_reason = reason
        await self.send(response)

    async def _answer_progress_request(self) -> None:
        # Answer only when every watcher of the stream has delivered everything up to the
        # revision we report, so the client may trust it as a bookmark.
        for _ in range(200):
            if all(w.synced for w in self.watchers.values()):
                await self.send(pb.WatchResponse(header=self.header(self.hub.revision), watch_id=-1))
                return
            await asyncio.sleep(0.01)

    async def progress_ticker(self) -> None:
        while True:
            await asyncio.sleep(self.progress_interval)
            for watcher in list(self.watchers.values()):
                if watcher.progress_notify and watcher.synced and not watcher.sent_since_tick:
                    await self.send(pb.WatchResponse(header=self.header(self.hub.revision), watch_id=watcher.watch_id))
                watcher.sent_since_tick = False

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def serve(self, requests: AsyncIterator[pb.WatchRequest]) -> AsyncIterator[pb.WatchResponse]:
        """Consume requests in the background and yield responses in order until the client leaves."""

        async def consume() -> None:
            async for request in requests:
                await self.handle(request)

        self._spawn(consume())
        self._spawn(self.progress_ticker())
        try:
            while True:
                yield await self.outbound.get()
        finally:
            self.close()

    def close(self) -> None:
        for watcher in self.watchers.values():
            self.hub.drop(watcher)
            if watcher.task is not None:
                watcher.task.cancel()
        self.watchers.clear()
        for task in list(self._background):
            task.cancel()
