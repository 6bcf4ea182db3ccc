"""Long-poll wake-ups: local waiters per host, fed by commits here and by PostgreSQL LISTEN/NOTIFY.

Every transaction that changes a host's desired spec calls ``Tx.notify_spec``; on PostgreSQL that
issues ``pg_notify`` which reaches every console process listening on the database, including this
one. A waiter always re-reads the database after waking, so a spurious or duplicate wake-up costs
one query and a lost one costs at most the re-check interval.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import defaultdict

from edgeplane.console.db import NOTIFY_CHANNEL

log = logging.getLogger(__name__)


class SpecWaiters:
    """Asyncio events per host ID, settable from any thread."""

    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def add(self, host_id: str) -> asyncio.Event:
        event = asyncio.Event()
        with self._lock:
            self._waiters[host_id].add(event)
        return event

    def remove(self, host_id: str, event: asyncio.Event) -> None:
        with self._lock:
            waiting = self._waiters.get(host_id)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del self._waiters[host_id]

    def wake_all(self) -> None:
        with self._lock:
            hosts = list(self._waiters)
        self.wake(hosts)

    def wake(self, host_ids: set[str] | list[str]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with self._lock:
            events = [e for h in host_ids for e in self._waiters.get(h, ())]
        for event in events:
            loop.call_soon_threadsafe(event.set)


class PostgresListener:
    """A thread holding one LISTEN connection; reconnects with back-off when the server drops it."""

    def __init__(self, dsn: str, waiters: SpecWaiters) -> None:
        self._dsn = dsn
        self._waiters = waiters
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="console-listen", daemon=True)

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        self._ready.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        import psycopg

        delay = 0.5
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self._ready.set()
                    delay = 0.5
                    while not self._stop.is_set():
                        batch = {n.payload for n in conn.notifies(timeout=0.5)}
                        if batch:
                            self._waiters.wake(batch)
            except Exception as exc:  # noqa: BLE001 - keep listening whatever the server did
                log.warning("LISTEN connection lost (%s); reconnecting in %.1fs", type(exc).__name__, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 10.0)
