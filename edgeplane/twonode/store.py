"""What the agent needs from the data: latest change, revision floor, epochs, split-write export.

Change records and revisions belong to the datastore (``edgeplane.datastore``: ``last_change``,
``changes_since``, ``advance_revision``); the agent adds one small table of its own,
``edgeplane_twonode_epochs``, replicated with everything else, recording each promotion.
"""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import psycopg

EPOCHS_DDL = """
CREATE TABLE IF NOT EXISTS edgeplane_twonode_epochs (
    epoch integer PRIMARY KEY,
    node text NOT NULL,
    promoted_at double precision NOT NULL,
    from_revision bigint NOT NULL
)"""


@dataclass(frozen=True)
class Latest:
    revision: int = 0
    timestamp: float = 0.0
    node: str = ""


def _datastore():
    try:
        import edgeplane.datastore as datastore

        datastore.last_change  # noqa: B018 - fail here, with a clear message, if it is missing
    except (ImportError, AttributeError) as exc:
        raise RuntimeError("edgeplane.datastore.last_change/changes_since/advance_revision are missing: "
                           "two-node HA needs the datastore's PostgreSQL backend") from exc
    return datastore


def _schema_missing(exc: Exception) -> bool:
    return isinstance(exc, psycopg.errors.UndefinedTable) or "does not exist" in str(exc)


def latest_change(dsn: str) -> Latest:
    """The newest change in the store; an empty Latest before the datastore created its schema."""
    datastore = _datastore()
    try:
        change = datastore.last_change(dsn)
    except Exception as exc:
        if _schema_missing(exc):
            return Latest()
        raise
    if change is None:
        return Latest()
    return Latest(revision=int(change.revision), timestamp=float(change.timestamp), node=str(change.node))


def advance_revision(dsn: str, minimum: int) -> bool:
    """Move the revision counter past ``minimum``; False when the store has no schema yet."""
    try:
        _datastore().advance_revision(dsn, minimum)
    except Exception as exc:
        if _schema_missing(exc):
            return False
        raise
    return True


def ensure_epochs(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True, connect_timeout=3) as conn:
        conn.execute(EPOCHS_DDL)


def record_epoch(dsn: str, node: str, from_revision: int) -> int:
    """Insert the next epoch (this node promoted at this time from this revision); return it."""
    with psycopg.connect(dsn, connect_timeout=3) as conn:
        conn.execute(EPOCHS_DDL)
        epoch = conn.execute("SELECT COALESCE(max(epoch), 0) + 1 FROM edgeplane_twonode_epochs").fetchone()[0]
        conn.execute("INSERT INTO edgeplane_twonode_epochs VALUES (%s, %s, %s, %s)",
                     (epoch, node, time.time(), from_revision))
    return epoch


def epochs(dsn: str) -> list[tuple[int, str, int]]:
    """(epoch, node, from_revision) rows, oldest first; empty when the table does not exist."""
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=3) as conn:
            rows = conn.execute("SELECT epoch, node, from_revision FROM edgeplane_twonode_epochs"
                                " ORDER BY epoch").fetchall()
    except psycopg.errors.UndefinedTable:
        return []
    return [(int(e), str(n), int(r)) for e, n, r in rows]


def current_epoch(dsn: str) -> int:
    rows = epochs(dsn)
    return rows[-1][0] if rows else 0


def fork_revision(loser: list[tuple[int, str, int]], winner: list[tuple[int, str, int]]) -> int:
    """The revision where the two histories split: the earliest start of an epoch only one side has."""
    shared = set(loser) & set(winner)
    starts = [row[2] for row in (*loser, *winner) if row not in shared]
    return min(starts) if starts else 0


def split_writes(loser_dsn: str, winner_dsn: str) -> list[dict]:
    """Changes the loser has and the winner does not, since the fork point."""
    datastore = _datastore()
    base = fork_revision(epochs(loser_dsn), epochs(winner_dsn))
    winner_has = {_identity(c) for c in datastore.changes_since(winner_dsn, base)}
    return [_record(c) for c in datastore.changes_since(loser_dsn, base) if _identity(c) not in winner_has]


def _identity(change) -> tuple:
    return (int(change.revision), bytes(change.key), bytes(change.value), bool(change.deleted))


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="backslashreplace")


def _record(change) -> dict:
    key, value = bytes(change.key), bytes(change.value)
    return {
        "key": _text(key), "value": _text(value),
        "key_b64": base64.b64encode(key).decode(), "value_b64": base64.b64encode(value).decode(),
        "revision": int(change.revision), "timestamp": float(change.timestamp), "deleted": bool(change.deleted),
    }


def write_export(directory: Path, node: str, winner: str, writes: list[dict]) -> Path:
    """Save split writes as JSON under ``directory`` (written to a temp name, then renamed)."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    path = directory / f"split-writes-{stamp}.json"
    document = {"node": node, "winner": winner, "created": time.time(), "count": len(writes), "writes": writes}
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as out:
        json.dump(document, out, indent=1)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    return path
