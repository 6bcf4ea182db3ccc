"""One small database layer over SQLite (stdlib) and PostgreSQL (psycopg 3 pool).

SQL is written once with ``?`` placeholders and translated for PostgreSQL. Every unit of work runs
in ``Database.transaction()``: it commits on success and rolls back on any exception, so a request
that fails validation half-way leaves nothing behind. Writers on SQLite take a process lock first
so concurrent requests queue in Python instead of spinning in SQLite's busy handler.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
NOTIFY_CHANNEL = "edgeplane_spec"


def now_ms() -> int:
    return int(time.time() * 1000)


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


class DatabaseUrlError(ValueError):
    """A --db value that names no supported database."""


def parse_url(url: str) -> tuple[str, str]:
    """Return (dialect, target): a file path for SQLite, the DSN for PostgreSQL."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = url[len("sqlite://"):]
        if not path or path == "/":
            raise DatabaseUrlError(f"--db: {url!r} names no file (use sqlite:///path/console.db)")
        return SQLITE, path
    if parsed.scheme in ("postgresql", "postgres"):
        return POSTGRESQL, url
    raise DatabaseUrlError(f"--db: unsupported scheme {parsed.scheme!r} (use sqlite:/// or postgresql://)")


class Tx:
    """The open transaction handed to service code; rows come back as dicts."""

    def __init__(self, conn: Any, dialect: str) -> None:
        self._conn = conn
        self.dialect = dialect
        self.notified: set[str] = set()

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.dialect == POSTGRESQL else sql

    def execute(self, sql: str, params: tuple | list = ()) -> int:
        cur = self._conn.execute(self._sql(sql), params)
        return cur.rowcount

    def one(self, sql: str, params: tuple | list = ()) -> dict | None:
        row = self._conn.execute(self._sql(sql), params).fetchone()
        return None if row is None else dict(row)

    def all(self, sql: str, params: tuple | list = ()) -> list[dict]:
        return [dict(r) for r in self._conn.execute(self._sql(sql), params).fetchall()]

    @property
    def for_update(self) -> str:
        """Row lock suffix: PostgreSQL needs it; SQLite write transactions are already exclusive."""
        return " FOR UPDATE" if self.dialect == POSTGRESQL else ""

    def notify_spec(self, host_id: str) -> None:
        """Wake long-polls for host_id once this transaction commits (in every console process)."""
        self.notified.add(host_id)
        if self.dialect == POSTGRESQL:
            self._conn.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, host_id))


class Database:
    """A connection source for one console database."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.dialect, self._target = parse_url(url)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._pool: Any = None
        self.after_commit: list[Callable[[set[str]], None]] = []
        if self.dialect == POSTGRESQL:
            from psycopg.rows import dict_row
            from psycopg_pool import ConnectionPool

            self._pool = ConnectionPool(url, min_size=1, max_size=pool_size, kwargs={"row_factory": dict_row},
                                        open=True)
        else:
            Path(self._target).parent.mkdir(parents=True, exist_ok=True)

    @property
    def dsn(self) -> str:
        return self._target

    def _sqlite_conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._target, isolation_level=None, check_same_thread=False, timeout=30)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Tx]:
        if self.dialect == POSTGRESQL:
            with self._pool.connection() as conn, conn.transaction():
                tx = Tx(conn, self.dialect)
                yield tx
        else:
            conn = self._sqlite_conn()
            lock = self._write_lock if write else None
            if lock:
                lock.acquire()
            try:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                tx = Tx(conn, self.dialect)
                try:
                    yield tx
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            finally:
                if lock:
                    lock.release()
        if tx.notified:
            for callback in self.after_commit:
                callback(tx.notified)

    def migrate(self) -> int:
        """Apply pending migrations in order; return the schema version now in place."""
        files = sorted(
            (f for f in resources.files("edgeplane.console.migrations").iterdir() if f.name.endswith(".sql")),
            key=lambda f: f.name,
        )
        autoid = "BIGSERIAL PRIMARY KEY" if self.dialect == POSTGRESQL else "INTEGER PRIMARY KEY AUTOINCREMENT"
        blob = "BYTEA" if self.dialect == POSTGRESQL else "BLOB"
        with self.transaction() as tx:
            if self.dialect == POSTGRESQL:
                # Several consoles may start at once on one database: one migrates, the others wait.
                tx.execute("SELECT pg_advisory_xact_lock(7215001)")
            tx.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)")
            current = tx.one("SELECT COALESCE(MAX(version), 0) AS v FROM schema_version")["v"]
            for f in files:
                version = int(f.name.split("_", 1)[0])
                if version <= current:
                    continue
                script = f.read_text().replace("{autoid}", autoid).replace("{blob}", blob)
                for statement in _statements(script):
                    tx.execute(statement)
                tx.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (version, now_ms()))
                current = version
        return current

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def _statements(script: str) -> list[str]:
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
