"""Multi-version key-value storage over SQL: current state, history, leases, compaction.

Layout (see sql.py): ``ep_kv`` holds the live value of every key, so reads at the current revision
cost O(result) however long the history is; ``ep_log`` holds every change keyed by
(key, revision), the source of historical reads and watch catch-up; ``ep_meta`` holds the current
and compacted revisions. All writes go through one ``WriteTxn`` per batch, in one SQL transaction.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from edgeplane.datastore.model import EVENT_OVERHEAD_BYTES, Event, KeyRange, KeyValue
from edgeplane.datastore.sql import KEY_WHERE, Dialect
from edgeplane.datastore import errors


@dataclass(slots=True)
class Meta:
    revision: int
    compact_revision: int
    last_change_ts: float
    term: int
    cluster_id: int
    member_id: int
    compacted_through: int


@dataclass(slots=True, frozen=True)
class LeaseRecord:
    id: int
    ttl: int
    granted_ttl: int
    expires_at: float


def _kv(row: Any) -> KeyValue:
    return KeyValue(bytes(row[0]), row[1], row[2], row[3], bytes(row[4]), row[5])


def key_clause(key_range: KeyRange, column: str = "key") -> tuple[str, tuple[bytes, ...]]:
    """SQL predicate and parameters selecting ``key_range`` on ``column``."""
    if key_range.single:
        return KEY_WHERE["single"].replace("key", column), (key_range.key,)
    if key_range.open_ended:
        return KEY_WHERE["from"].replace("key", column), (key_range.key,)
    return KEY_WHERE["between"].replace("key", column), (key_range.key, key_range.range_end)


class Reader:
    """Reads made inside one snapshot: a read transaction, or the current write transaction."""

    def __init__(self, conn: Any, dialect: Dialect) -> None:
        self.conn = conn
        self.dialect = dialect
        self.sql = dialect.statements

    def _q(self, sql: str, params: tuple = ()) -> list[Any]:
        return self.conn.execute(self.dialect.translate(sql), params).fetchall()

    def meta(self, lock: bool = False) -> Meta:
        statement = self.sql["meta"] + (self.dialect.lock_meta_suffix() if lock else "")
        row = self.conn.execute(statement).fetchone()
        return Meta(*row)

    def get(self, key: bytes) -> KeyValue | None:
        row = self.conn.execute(self.sql["get_kv"], (key,)).fetchone()
        return _kv(row) if row else None

    def _historical_union(self, key_range: KeyRange, revision: int) -> tuple[str, tuple]:
        """Keys as of ``revision``: live keys untouched since, plus the last version <= revision of
        every key changed after it. Costs O(result + changes since revision), not O(history)."""
        current_where, current_params = key_clause(key_range, "key")
        changed_where, changed_params = key_clause(key_range, "c.key")
        sql = (
            "SELECT key, create_revision, mod_revision, version, value, lease FROM ep_kv "
            f"WHERE {current_where} AND mod_revision <= ? "
            "UNION ALL "
            "SELECT l.key, l.create_revision, l.revision, l.version, l.value, l.lease "
            f"FROM (SELECT DISTINCT c.key AS key FROM {self.dialect.by_revision('c')} "
            f"WHERE c.revision > ? AND {changed_where}) ch "
            "JOIN ep_log l ON l.key = ch.key AND l.revision = "
            "(SELECT MAX(x.revision) FROM ep_log x WHERE x.key = ch.key AND x.revision <= ?) "
            "WHERE l.deleted = 0"
        )
        return sql, (*current_params, revision, revision, *changed_params, revision)

    def range(self, key_range: KeyRange, revision: int, current: int, limit: int = 0) -> list[KeyValue]:
        """Key-ordered values in ``key_range`` at ``revision`` (``current`` = latest), at most ``limit``."""
        return [_kv(r) for r in self.range_rows(key_range, revision, current, limit)]

    def range_rows(self, key_range: KeyRange, revision: int, current: int, limit: int = 0) -> list[tuple]:
        """Like ``range`` but raw rows (key, create, mod, version, value, lease): large lists skip
        the per-row objects."""
        tail = f" LIMIT {int(limit)}" if limit > 0 else ""
        if revision >= current:
            where, params = key_clause(key_range)
            sql = f"SELECT key, create_revision, mod_revision, version, value, lease FROM ep_kv WHERE {where} ORDER BY key{tail}"
        else:
            union, params = self._historical_union(key_range, revision)
            sql = f"SELECT * FROM ({union}) h ORDER BY key{tail}"
        return self._q(sql, params)

    def count(self, key_range: KeyRange, revision: int, current: int) -> int:
        if revision >= current:
            where, params = key_clause(key_range)
            sql = f"SELECT COUNT(*) FROM ep_kv WHERE {where}"
        else:
            union, params = self._historical_union(key_range, revision)
            sql = f"SELECT COUNT(*) FROM ({union}) h"
        return int(self._q(sql, params)[0][0])

    def events(
        self, key_range: KeyRange | None, first: int, last: int, limit: int, with_prev: bool,
        max_bytes: int | None = None,
    ) -> tuple[list[Event], int]:
        """Events with first <= revision <= last in commit order, whole revisions only, about
        ``limit`` at most and, with ``max_bytes``, about that many bytes of keys and values at
        most (always at least one revision). Returns the events and the next revision to read from."""
        if max_bytes is not None:
            last = self._page_end(key_range, first, last, limit, max_bytes)
        rows = self._event_rows(key_range, first, last, limit + 1, with_prev)
        if len(rows) > limit:
            cut_revision = rows[limit][1]
            kept = [r for r in rows if r[1] < cut_revision]
            if not kept:  # one revision larger than the page: send it whole
                kept = self._event_rows(key_range, cut_revision, cut_revision, 0, with_prev)
                cut_revision += 1
            return [self._event(r, with_prev) for r in kept], cut_revision
        return [self._event(r, with_prev) for r in rows], last + 1

    def _page_end(self, key_range: KeyRange | None, first: int, last: int, limit: int, max_bytes: int) -> int:
        """The last revision of a page holding about ``max_bytes``, from the sizes alone: large
        values are never loaded just to find out that they do not fit."""
        where, params = ("1 = 1", ()) if key_range is None else key_clause(key_range, "l.key")
        sql = (f"SELECT l.revision, length(l.key) + COALESCE(length(l.value), 0) FROM {self.dialect.by_revision('l')} "
               f"WHERE l.revision >= ? AND l.revision <= ? AND {where} ORDER BY l.revision, l.seq LIMIT {int(limit) + 1}")
        total, previous = 0, None
        for revision, size in self._q(sql, (first, last, *params)):
            if total >= max_bytes and revision != previous:
                return previous
            total += size + EVENT_OVERHEAD_BYTES
            previous = revision
        return last

    def _event_rows(self, key_range: KeyRange | None, first: int, last: int, limit: int, with_prev: bool) -> list[Any]:
        columns = "l.key, l.revision, l.deleted, l.create_revision, l.version, l.value, l.lease, l.prev_revision"
        join = ""
        if with_prev:
            columns += ", p.create_revision, p.revision, p.version, p.value, p.lease"
            join = " LEFT JOIN ep_log p ON p.key = l.key AND p.revision = l.prev_revision"
        where, params = ("1 = 1", ()) if key_range is None else key_clause(key_range, "l.key")
        tail = f" LIMIT {int(limit)}" if limit > 0 else ""
        sql = (
            f"SELECT {columns} FROM {self.dialect.by_revision('l')}{join} WHERE l.revision >= ? AND l.revision <= ? AND {where} "
            f"ORDER BY l.revision, l.seq{tail}"
        )
        return self._q(sql, (first, last, *params))

    @staticmethod
    def _event(row: Any, with_prev: bool) -> Event:
        key, revision, deleted = bytes(row[0]), row[1], bool(row[2])
        if deleted:
            kv = KeyValue(key, 0, revision, 0, b"", 0)
        else:
            kv = KeyValue(key, row[3], revision, row[4], bytes(row[5]), row[6])
        prev = None
        if with_prev and row[7] and row[9] is not None:
            prev = KeyValue(key, row[8], row[9], row[10], bytes(row[11]), row[12])
        return Event(revision, deleted, kv, prev)

    def lease(self, lease_id: int) -> LeaseRecord | None:
        row = self.conn.execute(self.sql["lease_get"], (lease_id,)).fetchone()
        return LeaseRecord(*row) if row else None

    def lease_keys(self, lease_id: int) -> list[bytes]:
        return [bytes(r[0]) for r in self.conn.execute(self.sql["keys_with_lease"], (lease_id,)).fetchall()]

    def lease_ids(self) -> list[int]:
        return [r[0] for r in self.conn.execute(self.sql["lease_list"]).fetchall()]

    def expired_leases(self, now: float, limit: int = 100) -> list[int]:
        return [r[0] for r in self.conn.execute(self.sql["lease_expired"], (now, limit)).fetchall()]

    def db_size(self) -> int:
        return self.dialect.db_size(self.conn)


class WriteTxn(Reader):
    """One batch of write requests inside one SQL transaction.

    Every request that changes data gets the next revision; all changes of one request (a Txn,
    a DeleteRange of many keys, a lease expiry) share it, as in etcd.
    """

    def __init__(self, conn: Any, dialect: Dialect, node_name: str) -> None:
        super().__init__(conn, dialect)
        self.node_name = node_name
        self.start = self.meta(lock=True)
        self.revision = self.start.revision
        self.compact_revision = self.start.compact_revision
        self.compacted_through = self.start.compacted_through
        self.now = max(time.time(), self.start.last_change_ts + 1e-6)
        self.events: list[Event] = []
        self._op_revision: int | None = None
        self._seq = 0
        self._events_mark = 0

    # --- request boundaries -------------------------------------------------------------------
    def begin_request(self, savepoint: bool) -> None:
        self._op_revision = None
        self._events_mark = len(self.events)
        if savepoint:
            self.conn.execute("SAVEPOINT ep_request")

    def end_request(self, savepoint: bool) -> None:
        if savepoint:
            self.conn.execute("RELEASE SAVEPOINT ep_request")
        if self._op_revision is not None:
            self.revision = self._op_revision

    def abort_request(self, savepoint: bool) -> None:
        if savepoint:
            self.conn.execute("ROLLBACK TO SAVEPOINT ep_request")
            self.conn.execute("RELEASE SAVEPOINT ep_request")
        del self.events[self._events_mark:]
        self._op_revision = None

    @property
    def visible_revision(self) -> int:
        """The revision a read inside the current request observes."""
        return self._op_revision if self._op_revision is not None else self.revision

    def _next_revision(self) -> int:
        if self._op_revision is None:
            self._op_revision = self.revision + 1
            self._seq = 0
        self._seq += 1
        return self._op_revision

    def finish(self) -> None:
        """Record the new revision; the caller commits."""
        if self.revision != self.start.revision:
            self.conn.execute(self.sql["set_revision"], (self.revision, self.now, self.node_name))
            self.dialect.notify(self.conn, self.revision)

    # --- key writes ---------------------------------------------------------------------------
    def put(self, key: bytes, value: bytes, lease: int, prev: KeyValue | None) -> KeyValue:
        revision = self._next_revision()
        if prev is None:
            kv = KeyValue(key, revision, revision, 1, value, lease)
            prev_revision = 0
        else:
            kv = KeyValue(key, prev.create_revision, revision, prev.version + 1, value, lease)
            prev_revision = prev.mod_revision
        self.conn.execute(self.sql["upsert_kv"], (key, kv.create_revision, revision, kv.version, value, lease))
        self.conn.execute(
            self.sql["insert_log"],
            (key, revision, self._seq, 0, kv.create_revision, kv.version, value, lease, prev_revision, self.now),
        )
        self.events.append(Event(revision, False, kv, prev))
        return kv

    def delete(self, prev: KeyValue) -> None:
        revision = self._next_revision()
        self.conn.execute(self.sql["delete_kv"], (prev.key,))
        self.conn.execute(
            self.sql["insert_log"], (prev.key, revision, self._seq, 1, 0, 0, b"", 0, prev.mod_revision, self.now)
        )
        self.events.append(Event(revision, True, KeyValue(prev.key, 0, revision, 0, b"", 0), prev))

    def delete_range(self, key_range: KeyRange) -> list[KeyValue]:
        doomed = self.range(key_range, self.visible_revision, self.visible_revision)
        for kv in doomed:
            self.delete(kv)
        return doomed

    # --- leases -------------------------------------------------------------------------------
    def grant_lease(self, lease_id: int, ttl: int) -> None:
        if self.lease(lease_id) is not None:
            raise errors.lease_exists()
        self.conn.execute(self.sql["lease_insert"], (lease_id, ttl, ttl, self.now + ttl))

    def refresh_lease(self, lease_id: int) -> int:
        """Keep-alive: restart the lease's countdown; returns its TTL, 0 when it does not exist."""
        record = self.lease(lease_id)
        if record is None:
            return 0
        self.conn.execute(self.sql["lease_refresh"], (self.now + record.ttl, lease_id))
        return record.ttl

    def revoke_lease(self, lease_id: int) -> None:
        """Delete the lease and, in one revision, every key attached to it."""
        if self.lease(lease_id) is None:
            raise errors.lease_not_found()
        for key in self.lease_keys(lease_id):
            prev = self.get(key)
            if prev is not None:
                self.delete(prev)
        self.conn.execute(self.sql["lease_delete"], (lease_id,))

    def expire_lease(self, lease_id: int) -> bool:
        """Revoke the lease if it is still past its deadline (a keep-alive may have raced us)."""
        record = self.lease(lease_id)
        if record is None or record.expires_at > self.now:
            return False
        self.revoke_lease(lease_id)
        return True

    def restart_leases(self) -> None:
        """After a restart every lease gets its full TTL again, as etcd does on a new leader."""
        self.conn.execute(self.sql["lease_restart_all"], (self.now,))

    # --- compaction ---------------------------------------------------------------------------
    def compact(self, revision: int) -> None:
        if revision <= self.compact_revision:
            raise errors.compacted()
        if revision > self.revision:
            raise errors.future_revision()
        self.conn.execute(self.sql["set_compact"], (revision,))
        self.compact_revision = revision

    def compact_step(self, batch_revisions: int) -> bool:
        """Physically drop superseded history for one slice of revisions; True while more remains."""
        target = self.compact_revision
        if self.compacted_through >= target:
            return False
        upper = min(target, self.compacted_through + batch_revisions)
        self.conn.execute(self.sql["compact_batch"], (self.compacted_through, upper, target))
        self.conn.execute(self.sql["set_compacted_through"], (upper,))
        self.compacted_through = upper
        return upper < target

    def advance_revision(self, minimum: int) -> None:
        """Make the next revision handed out larger than ``minimum`` (used after a failover)."""
        if self.revision < minimum:
            self.revision = minimum
