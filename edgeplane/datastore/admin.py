"""Offline operations on a datastore database, for two-node HA and operators (no server needed)."""

from __future__ import annotations

from dataclasses import dataclass

from edgeplane.datastore.sql import make_dialect, parse_endpoint


@dataclass(frozen=True)
class Change:
    """The newest change in a database: its revision, when (never goes backwards) and by which node."""

    revision: int
    timestamp: float
    node: str


@dataclass(frozen=True)
class ChangeRecord:
    key: bytes
    value: bytes
    revision: int
    timestamp: float
    deleted: bool


def _connect(dsn: str):
    dialect = make_dialect(parse_endpoint(dsn))
    return dialect, dialect.connect()


def last_change(dsn: str) -> Change:
    dialect, conn = _connect(dsn)
    try:
        revision, timestamp, node = conn.execute(dialect.statements["last_change"]).fetchone()
        return Change(int(revision), float(timestamp), str(node))
    finally:
        conn.close()


def changes_since(dsn: str, revision: int) -> list[ChangeRecord]:
    """Every change after ``revision`` still in the history, in commit order."""
    dialect, conn = _connect(dsn)
    try:
        rows = conn.execute(dialect.statements["changes_since"], (revision,)).fetchall()
        return [ChangeRecord(bytes(k), bytes(v), int(r), float(ts), bool(d)) for k, r, d, v, ts in rows]
    finally:
        conn.close()


def advance_revision(dsn: str, minimum: int) -> None:
    """Make the next revision handed out larger than ``minimum``; never moves it backwards."""
    dialect, conn = _connect(dsn)
    try:
        conn.execute(dialect.statements["advance_revision"], (minimum, minimum))
    finally:
        conn.close()
