"""The SQL dialect layer: one schema and one set of statements, spoken to SQLite or PostgreSQL.

Everything above this module is dialect-free: it calls ``Dialect`` methods and the named
statements in ``Statements``. Statements are written once with ``?`` placeholders; the
PostgreSQL dialect rewrites them to psycopg's ``%s``.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

SCHEMA_VERSION = 1
NOTIFY_CHANNEL = "edgeplane_changes"
SQLITE_MAGIC = b"SQLite format 3\x00"


class StartupError(RuntimeError):
    """The database cannot be used as it is; the message says why. Nothing was modified."""


class Connection(Protocol):
    def execute(self, sql: str, params: Any = ...) -> Any: ...
    def close(self) -> None: ...


# One schema for both engines; {blob} and {real} are filled per dialect.
_SCHEMA = [
    """CREATE TABLE ep_meta (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        schema_version INTEGER NOT NULL,
        cluster_id BIGINT NOT NULL,
        member_id BIGINT NOT NULL,
        revision BIGINT NOT NULL,
        compact_revision BIGINT NOT NULL,
        compacted_through BIGINT NOT NULL,
        term BIGINT NOT NULL,
        last_change_ts {real} NOT NULL,
        last_change_node TEXT NOT NULL)""",
    """CREATE TABLE ep_kv (
        key {blob} PRIMARY KEY,
        create_revision BIGINT NOT NULL,
        mod_revision BIGINT NOT NULL,
        version BIGINT NOT NULL,
        value {blob} NOT NULL,
        lease BIGINT NOT NULL)""",
    "CREATE INDEX ep_kv_lease ON ep_kv (lease) WHERE lease <> 0",
    """CREATE TABLE ep_log (
        key {blob} NOT NULL,
        revision BIGINT NOT NULL,
        seq INTEGER NOT NULL,
        deleted SMALLINT NOT NULL,
        create_revision BIGINT NOT NULL,
        version BIGINT NOT NULL,
        value {blob} NOT NULL,
        lease BIGINT NOT NULL,
        prev_revision BIGINT NOT NULL,
        ts {real} NOT NULL,
        PRIMARY KEY (key, revision))""",
    "CREATE INDEX ep_log_revision ON ep_log (revision, seq)",
    """CREATE TABLE ep_lease (
        id BIGINT PRIMARY KEY,
        ttl BIGINT NOT NULL,
        granted_ttl BIGINT NOT NULL,
        expires_at {real} NOT NULL)""",
]

OUR_TABLES = {"ep_meta", "ep_kv", "ep_log", "ep_lease"}

_KV_COLUMNS = "key, create_revision, mod_revision, version, value, lease"
_LOG_AS_KV = "l.key, l.create_revision, l.revision, l.version, l.value, l.lease"

# Named statements, written once with '?' placeholders.
_STATEMENTS: dict[str, str] = {
    "meta": "SELECT revision, compact_revision, last_change_ts, term, cluster_id, member_id, compacted_through FROM ep_meta WHERE id = 1",
    "set_revision": "UPDATE ep_meta SET revision = ?, last_change_ts = ?, last_change_node = ? WHERE id = 1",
    "set_compact": "UPDATE ep_meta SET compact_revision = ? WHERE id = 1",
    "set_compacted_through": "UPDATE ep_meta SET compacted_through = ? WHERE id = 1",
    "last_change": "SELECT revision, last_change_ts, last_change_node FROM ep_meta WHERE id = 1",
    "get_kv": f"SELECT {_KV_COLUMNS} FROM ep_kv WHERE key = ?",
    "upsert_kv": (
        f"INSERT INTO ep_kv ({_KV_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (key) DO UPDATE SET create_revision = excluded.create_revision, "
        "mod_revision = excluded.mod_revision, version = excluded.version, value = excluded.value, "
        "lease = excluded.lease"
    ),
    "delete_kv": "DELETE FROM ep_kv WHERE key = ?",
    "insert_log": (
        "INSERT INTO ep_log (key, revision, seq, deleted, create_revision, version, value, lease, prev_revision, ts) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ),
    "log_at": "SELECT l.key, l.create_revision, l.revision, l.version, l.value, l.lease FROM ep_log l WHERE l.key = ? AND l.revision = ?",
    "keys_with_lease": "SELECT key FROM ep_kv WHERE lease = ? ORDER BY key",
    "lease_get": "SELECT id, ttl, granted_ttl, expires_at FROM ep_lease WHERE id = ?",
    "lease_insert": "INSERT INTO ep_lease (id, ttl, granted_ttl, expires_at) VALUES (?, ?, ?, ?)",
    "lease_delete": "DELETE FROM ep_lease WHERE id = ?",
    "lease_refresh": "UPDATE ep_lease SET expires_at = ? WHERE id = ?",
    "lease_list": "SELECT id FROM ep_lease ORDER BY id",
    "lease_expired": "SELECT id FROM ep_lease WHERE expires_at <= ? ORDER BY expires_at LIMIT ?",
    "lease_restart_all": "UPDATE ep_lease SET expires_at = ? + ttl",
    "compact_batch": (
        "DELETE FROM ep_log WHERE revision > ? AND revision <= ? AND (deleted = 1 OR EXISTS ("
        "SELECT 1 FROM ep_log n WHERE n.key = ep_log.key AND n.revision > ep_log.revision AND n.revision <= ?))"
    ),
    "changes_since": (
        "SELECT key, revision, deleted, value, ts FROM ep_log WHERE revision > ? ORDER BY revision, seq"
    ),
    "advance_revision": "UPDATE ep_meta SET revision = ? WHERE id = 1 AND revision < ?",
}

# Range selectors: {where} is one of the key predicates below.
KEY_WHERE = {
    "single": "key = ?",
    "from": "key >= ?",
    "between": "key >= ? AND key < ?",
}


@dataclass(frozen=True)
class Endpoint:
    """A parsed ``--endpoint``: which engine and how to reach it."""

    engine: str  # "sqlite" or "postgres"
    target: str  # file path for sqlite, libpq conninfo URL for postgres

    def describe(self) -> str:
        if self.engine == "sqlite":
            return f"sqlite:{self.target}"
        # Never show credentials; libpq URLs may list several hosts ("a:5432,b:5433").
        parsed = urlparse(self.target)
        hosts = parsed.netloc.rsplit("@", 1)[-1] or "local socket"
        return f"postgres://{hosts}{parsed.path}"


def parse_endpoint(value: str) -> Endpoint:
    """``sqlite:///abs/path.db``, ``sqlite://rel.db`` or ``postgres(ql)://...`` (libpq URL)."""
    if value.startswith("sqlite://"):
        path = unquote(value[len("sqlite://"):])
        if not path:
            raise ValueError("--endpoint: sqlite:// needs a file path, e.g. sqlite:///var/lib/edgeplane/state.db")
        return Endpoint("sqlite", path)
    if value.startswith(("postgres://", "postgresql://")):
        return Endpoint("postgres", "postgresql://" + value.split("://", 1)[1])
    raise ValueError(f"--endpoint: unsupported scheme in {value!r}; use sqlite:///PATH or postgres://USER@HOST:PORT/DB")


class Dialect:
    """What differs between engines: connecting, placeholders, locking, sizes, notifications."""

    engine: str
    shared: bool  # True when other processes may write the same database

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.statements = {name: self.translate(sql) for name, sql in _STATEMENTS.items()}

    def translate(self, sql: str) -> str:
        return sql

    def schema(self) -> list[str]:
        raise NotImplementedError

    def connect(self) -> Any:
        raise NotImplementedError

    def begin_write(self, conn: Any) -> None:
        raise NotImplementedError

    def begin_read(self, conn: Any) -> None:
        raise NotImplementedError

    def lock_meta_suffix(self) -> str:
        return ""

    def by_revision(self, alias: str) -> str:
        """``ep_log AS alias``, read through the revision index (history since a revision)."""
        return f"ep_log {alias}"

    def db_size(self, conn: Any) -> int:
        raise NotImplementedError

    def existing_tables(self, conn: Any) -> set[str]:
        raise NotImplementedError

    def checkpoint(self, conn: Any) -> None:
        """Move committed pages from the write-ahead log into the database, where one exists."""

    def notify(self, conn: Any, revision: int) -> None:
        """Tell other processes sharing the database that a new revision committed."""

    def is_connection_error(self, exc: BaseException) -> bool:
        raise NotImplementedError

    def defragment(self, conn: Any) -> None:
        raise NotImplementedError


class SQLiteDialect(Dialect):
    engine = "sqlite"
    shared = False

    def __init__(self, endpoint: Endpoint, synchronous: str = "FULL") -> None:
        super().__init__(endpoint)
        self.synchronous = synchronous.upper()

    def schema(self) -> list[str]:
        return [s.format(blob="BLOB", real="REAL") for s in _SCHEMA]

    def connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.endpoint.target, isolation_level=None, check_same_thread=False, timeout=30.0)
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        # Checkpoints run in the background (Dialect.checkpoint), not inside a client's commit.
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        return conn

    def begin_write(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")

    def by_revision(self, alias: str) -> str:
        # SQLite's planner may otherwise walk the whole key range of the history (all versions of
        # every key), which grows with history; the revision index costs O(changes since).
        return f"ep_log {alias} INDEXED BY ep_log_revision"

    def begin_read(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN")

    def db_size(self, conn: sqlite3.Connection) -> int:
        path = Path(self.endpoint.target)
        return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())

    def existing_tables(self, conn: sqlite3.Connection) -> set[str]:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        return {r[0] for r in rows}

    def is_connection_error(self, exc: BaseException) -> bool:
        return False

    def checkpoint(self, conn: sqlite3.Connection) -> None:
        # PASSIVE never waits for the writer or readers, so it adds no latency to requests.
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def defragment(self, conn: sqlite3.Connection) -> None:
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def check_file(self) -> bool:
        """Refuse a file that is not an SQLite database before SQLite touches it; True if it exists."""
        path = Path(self.endpoint.target)
        if not path.exists() or path.stat().st_size == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
            return False
        with open(path, "rb") as handle:
            magic = handle.read(len(SQLITE_MAGIC))
        if magic != SQLITE_MAGIC:
            raise StartupError(f"{path} is not an SQLite database (bad header); refusing to use it")
        return True


class PostgresDialect(Dialect):
    engine = "postgres"
    shared = True

    def translate(self, sql: str) -> str:
        return sql.replace("%", "%%").replace("?", "%s")

    def schema(self) -> list[str]:
        return [s.format(blob="BYTEA", real="DOUBLE PRECISION") for s in _SCHEMA]

    def connect(self) -> Any:
        import psycopg

        return psycopg.connect(self.endpoint.target, autocommit=True, connect_timeout=5)

    def begin_write(self, conn: Any) -> None:
        conn.execute("BEGIN")

    def lock_meta_suffix(self) -> str:
        # The row lock on ep_meta serialises writers across processes, so revision order is
        # commit order and a reader can never see revision N+1 before N.
        return " FOR UPDATE"

    def begin_read(self, conn: Any) -> None:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    def db_size(self, conn: Any) -> int:
        return int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])

    def existing_tables(self, conn: Any) -> set[str]:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        ).fetchall()
        return {r[0] for r in rows}

    def notify(self, conn: Any, revision: int) -> None:
        conn.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, str(revision)))

    def is_connection_error(self, exc: BaseException) -> bool:
        import psycopg

        return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))

    def defragment(self, conn: Any) -> None:
        conn.execute("VACUUM ep_log")
        conn.execute("VACUUM ep_kv")


def make_dialect(endpoint: Endpoint, sqlite_synchronous: str = "FULL") -> Dialect:
    if endpoint.engine == "sqlite":
        return SQLiteDialect(endpoint, sqlite_synchronous)
    return PostgresDialect(endpoint)


def prepare_database(dialect: Dialect, node_name: str) -> None:
    """Create the schema in an empty database, or check that an existing one is ours and current.

    A foreign database (other tables, none of ours), a partial or corrupt one, or one written by a
    newer edgeplane is refused with a StartupError and left byte-for-byte untouched: SQLite files
    are inspected through a read-only connection before anything may write to them.
    """
    if isinstance(dialect, SQLiteDialect) and dialect.check_file():
        _inspect_read_only(dialect)
        return
    conn = dialect.connect()
    try:
        if dialect.engine == "postgres":
            # Two datastores may start against one new database at once; one creates the schema.
            conn.execute("SELECT pg_advisory_lock(4242001)")
        if dialect.existing_tables(conn) & OUR_TABLES:
            _check_ours(dialect, conn)
        else:
            _create_schema(dialect, conn, node_name)
    finally:
        conn.close()


def _inspect_read_only(dialect: "SQLiteDialect") -> None:
    where = dialect.endpoint.describe()
    try:
        conn = sqlite3.connect(f"file:{dialect.endpoint.target}?mode=ro", uri=True)
    except sqlite3.DatabaseError as exc:
        raise StartupError(f"cannot open {where}: {exc}") from exc
    try:
        tables = dialect.existing_tables(conn)
        if not tables & OUR_TABLES:
            listing = ", ".join(sorted(tables)) or "none"
            raise StartupError(f"{where} holds a foreign database (tables: {listing}); refusing to use it")
        _check_ours(dialect, conn)
        check = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
        if check != "ok":
            raise StartupError(f"{where} failed its integrity check: {check}")
    except sqlite3.DatabaseError as exc:
        raise StartupError(f"{where} is corrupt or not a database: {exc}") from exc
    finally:
        conn.close()


def _check_ours(dialect: Dialect, conn: Any) -> None:
    where = dialect.endpoint.describe()
    ours = dialect.existing_tables(conn) & OUR_TABLES
    if ours != OUR_TABLES:
        missing = ", ".join(sorted(OUR_TABLES - ours))
        raise StartupError(f"{where} has only part of the datastore schema (missing: {missing}); refusing to use it")
    row = conn.execute("SELECT schema_version FROM ep_meta WHERE id = 1").fetchone()
    if row is None:
        raise StartupError(f"{where}: ep_meta has no row; the database is damaged")
    if row[0] > SCHEMA_VERSION:
        raise StartupError(
            f"{where} was written by a newer edgeplane (schema {row[0]}, this one understands up to "
            f"{SCHEMA_VERSION}); upgrade edgeplane"
        )


def _create_schema(dialect: Dialect, conn: Any, node_name: str) -> None:
    ids = random.SystemRandom()
    cluster_id, member_id = ids.getrandbits(63) or 1, ids.getrandbits(63) or 1
    conn.execute("BEGIN")
    try:
        for ddl in dialect.schema():
            conn.execute(ddl)
        # etcd's first revision is 1; the first write gets 2.
        conn.execute(
            dialect.translate(
                "INSERT INTO ep_meta (id, schema_version, cluster_id, member_id, revision, compact_revision, "
                "compacted_through, term, last_change_ts, last_change_node) VALUES (1, ?, ?, ?, 1, 0, 0, 1, ?, ?)"
            ),
            (SCHEMA_VERSION, cluster_id, member_id, time.time(), node_name),
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def default_node_name() -> str:
    return os.uname().nodename
