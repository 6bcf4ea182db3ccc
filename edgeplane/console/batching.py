"""Group commit for heartbeats, the one request every host sends all the time.

Requests hand their heartbeat to one writer thread and await the answer; the thread applies all
heartbeats queued meanwhile in a single transaction and answers each only after the commit, so an
acknowledged heartbeat is durable and a fleet costs one commit per batch instead of one per host.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
from typing import Any

from edgeplane.console import clusters, hosts
from edgeplane.console.db import Database
from edgeplane.console.errors import ApiError

_STOP = object()


class HeartbeatWriter:
    def __init__(self, db: Database, max_batch: int = 500) -> None:
        self._db = db
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="console-heartbeats", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout=10)

    async def submit(self, host_id: str, credential: str, body: dict[str, Any]) -> int:
        """The host's spec generation once the heartbeat is committed; ApiError for a bad credential."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._queue.put((host_id, credential, body, future))
        return await asyncio.wrap_future(future)

    def _take_batch(self) -> tuple[list[tuple], bool]:
        first = self._queue.get()
        if first is _STOP:
            return [], True
        batch = [first]
        while len(batch) < self._max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                return batch, True
            batch.append(item)
        return batch, False

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch, stopping = self._take_batch()
            if batch:
                self._apply(batch)

    def _apply(self, batch: list[tuple]) -> None:
        outcomes: list[tuple[concurrent.futures.Future, int | None, ApiError | None]] = []
        try:
            with self._db.transaction() as tx:
                for host_id, credential, body, future in batch:
                    try:
                        generation, pending_join = hosts.heartbeat(tx, host_id, credential, body)
                        if pending_join:  # once per QR-approved host: join the cluster it was approved into
                            generation = clusters.join_pending(tx, host_id, pending_join)
                        outcomes.append((future, generation, None))
                    except ApiError as exc:  # refused before writing anything for this host
                        outcomes.append((future, None, exc))
        except Exception as exc:  # noqa: BLE001 - the commit failed: every caller learns it
            for *_, future in batch:
                future.set_exception(exc)
            return
        for future, generation, error in outcomes:
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(generation)
