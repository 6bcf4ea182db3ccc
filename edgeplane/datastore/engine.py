"""Connections and threads: one writer doing group commit, a small pool of snapshot readers.

Group commit: write requests queue up while the previous batch is being committed, and the next
batch takes them all into one SQL transaction, so one fsync serves many clients. A request is
acknowledged only after its batch has committed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import grpc

from edgeplane.datastore import errors
from edgeplane.datastore.errors import EtcdError
from edgeplane.datastore.model import Event
from edgeplane.datastore.mvcc import Meta, Reader, WriteTxn
from edgeplane.datastore.sql import Dialect

log = logging.getLogger(__name__)
T = TypeVar("T")

WriteFn = Callable[[WriteTxn], Any]
CommitListener = Callable[[list[Event], int], None]


class Engine:
    """Runs reads and writes against the database off the event loop."""

    def __init__(self, dialect: Dialect, node_name: str, readers: int = 4, max_batch: int = 512,
                 on_batch: Callable[[int], None] | None = None) -> None:
        self.dialect = dialect
        self.on_batch = on_batch
        self.node_name = node_name
        self.max_batch = max_batch
        self._write_pool = ThreadPoolExecutor(1, thread_name_prefix="ep-writer")
        self._read_pool = ThreadPoolExecutor(readers, thread_name_prefix="ep-reader")
        self._local = threading.local()
        self._write_conn: Any = None
        self._queue: asyncio.Queue[tuple[WriteFn, bool, asyncio.Future]] | None = None
        self._writer_task: asyncio.Task | None = None
        self._listeners: list[CommitListener] = []
        self._all_conns: list[Any] = []
        self._conns_lock = threading.Lock()
        self.revision = 0
        self.compact_revision = 0

    # --- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> Meta:
        self._queue = asyncio.Queue()
        meta = await self.read(lambda reader, meta: meta)
        self.revision, self.compact_revision = meta.revision, meta.compact_revision
        self._writer_task = asyncio.create_task(self._writer_loop(), name="ep-writer")
        return meta

    def add_commit_listener(self, listener: CommitListener) -> None:
        self._listeners.append(listener)

    async def close(self) -> None:
        if self._writer_task is not None:
            self._writer_task.cancel()
            try:
                await self._writer_task
            except asyncio.CancelledError:
                pass
        self._write_pool.shutdown(wait=True)
        self._read_pool.shutdown(wait=True)
        with self._conns_lock:
            for conn in self._all_conns:
                try:
                    conn.close()
                except Exception:  # closing is best effort at shutdown
                    pass

    def _connect(self) -> Any:
        conn = self.dialect.connect()
        with self._conns_lock:
            self._all_conns.append(conn)
        return conn

    def _forget(self, conn: Any) -> None:
        with self._conns_lock:
            if conn in self._all_conns:
                self._all_conns.remove(conn)
        try:
            conn.close()
        except Exception:  # the connection is already broken
            pass

    # --- reads ---------------------------------------------------------------------------------
    async def read(self, fn: Callable[[Reader, Meta], T]) -> T:
        """Run ``fn`` in a consistent snapshot; meta is read in the same snapshot."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._read_pool, self._run_read, fn)

    def _run_read(self, fn: Callable[[Reader, Meta], T]) -> T:
        conn = getattr(self._local, "conn", None)
        try:
            if conn is None:
                conn = self._local.conn = self._connect()
            self.dialect.begin_read(conn)
            try:
                reader = Reader(conn, self.dialect)
                return fn(reader, reader.meta())
            finally:
                conn.execute("ROLLBACK")
        except EtcdError:
            raise
        except Exception as exc:
            if self.dialect.is_connection_error(exc):
                # Either the open connection broke or reconnecting failed: both are UNAVAILABLE,
                # and the next read tries a fresh connection.
                if conn is not None:
                    self._local.conn = None
                    self._forget(conn)
                raise errors.unavailable(f"database unavailable: {exc.__class__.__name__}") from exc
            raise

    async def exclusive(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn(connection)`` on the writer thread between batches (e.g. VACUUM)."""
        loop = asyncio.get_running_loop()

        def run() -> T:
            if self._write_conn is None:
                self._write_conn = self._connect()
            return fn(self._write_conn)

        return await loop.run_in_executor(self._write_pool, run)

    async def checkpoint(self) -> None:
        """Background housekeeping on a reader connection (SQLite WAL checkpoint)."""
        loop = asyncio.get_running_loop()

        def run() -> None:
            conn = getattr(self._local, "conn", None)
            if conn is None:
                conn = self._local.conn = self._connect()
            self.dialect.checkpoint(conn)

        await loop.run_in_executor(self._read_pool, run)

    # --- writes --------------------------------------------------------------------------------
    async def write(self, fn: WriteFn, savepoint: bool = False) -> tuple[Any, int]:
        """Queue ``fn`` for the next batch; returns its result and the revision after it."""
        assert self._queue is not None, "engine not started"
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((fn, savepoint, future))
        return await future

    async def _writer_loop(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            work = [(fn, savepoint) for fn, savepoint, _ in batch]
            try:
                outcomes, events, revision, compact = await loop.run_in_executor(self._write_pool, self._run_batch, work)
            except Exception as exc:  # the whole batch failed: nothing of it was committed
                failure = self._as_etcd_error(exc)
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(failure)
                continue
            advanced = revision > self.revision
            self.revision, self.compact_revision = revision, compact
            if self.on_batch is not None:
                self.on_batch(len(batch))
            if advanced:  # batches of lease keep-alives or failed requests change nothing to publish
                for listener in self._listeners:
                    listener(events, revision)
            for (_, _, future), (result, result_revision) in zip(batch, outcomes):
                if future.done():
                    continue
                if isinstance(result, EtcdError):
                    future.set_exception(result)
                else:
                    future.set_result((result, result_revision))

    def _as_etcd_error(self, exc: Exception) -> EtcdError:
        if isinstance(exc, EtcdError):
            return exc
        if self.dialect.is_connection_error(exc):
            return errors.unavailable(f"database unavailable: {exc.__class__.__name__}")
        log.exception("write batch failed")
        return EtcdError(grpc.StatusCode.INTERNAL, f"edgeplane datastore: write failed: {exc}")

    def _run_batch(self, work: list[tuple[WriteFn, bool]]) -> tuple[list[tuple[Any, int]], list[Event], int, int]:
        conn = self._write_conn
        try:
            if conn is None:
                conn = self._write_conn = self._connect()
            self.dialect.begin_write(conn)
        except Exception:
            if conn is not None:
                self._write_conn = None
                self._forget(conn)
            raise
        try:
            txn = WriteTxn(conn, self.dialect, self.node_name)
            outcomes: list[tuple[Any, int]] = []
            for fn, savepoint in work:
                txn.begin_request(savepoint)
                try:
                    result = fn(txn)
                except EtcdError as exc:
                    txn.abort_request(savepoint)
                    outcomes.append((exc, txn.revision))
                    continue
                txn.end_request(savepoint)
                outcomes.append((result, txn.revision))
            txn.finish()
            conn.execute("COMMIT")
            return outcomes, txn.events, txn.revision, txn.compact_revision
        except BaseException as exc:
            try:
                conn.execute("ROLLBACK")
            except Exception:
                pass
            if self.dialect.is_connection_error(exc):
                self._write_conn = None
                self._forget(conn)
            raise
