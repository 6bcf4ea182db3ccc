"""Content-addressed artifacts: uploaded by operators, downloaded by agents by SHA-256 digest."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import IO, Any

from edgeplane.console import audit
from edgeplane.console.auth import Operator
from edgeplane.console.db import Database, Tx, now_ms
from edgeplane.console.errors import invalid, not_found

CHUNK = 1024 * 1024
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


def check_digest(digest: str, loc: tuple) -> None:
    if not DIGEST_RE.match(digest):
        raise invalid(loc, "must be 'sha256:' followed by 64 lowercase hex digits")


def sha256_of(spool: IO[bytes]) -> tuple[str, int]:
    spool.seek(0)
    h, size = hashlib.sha256(), 0
    while block := spool.read(CHUNK):
        h.update(block)
        size += len(block)
    return "sha256:" + h.hexdigest(), size


def store(tx: Tx, op: Operator, name: str, spool: IO[bytes]) -> dict[str, Any]:
    """Store the spooled upload (already complete on disk) under its digest."""
    digest, size = sha256_of(spool)
    if not tx.one("SELECT 1 AS x FROM artifact_chunks WHERE digest = ? AND seq = 0", (digest,)):
        spool.seek(0)
        seq = 0
        while block := spool.read(CHUNK):
            tx.execute("INSERT INTO artifact_chunks (digest, seq, data) VALUES (?, ?, ?)", (digest, seq, block))
            seq += 1
        if seq == 0:
            tx.execute("INSERT INTO artifact_chunks (digest, seq, data) VALUES (?, 0, ?)", (digest, b""))
    if not tx.one("SELECT 1 AS x FROM artifacts WHERE tenant_id = ? AND digest = ?", (op.tenant_id, digest)):
        tx.execute("INSERT INTO artifacts (tenant_id, digest, name, size, created_at) VALUES (?, ?, ?, ?, ?)",
                   (op.tenant_id, digest, name, size, now_ms()))
        audit.record(tx, tenant_id=op.tenant_id, actor=op.actor, action="upload", object_type="artifact",
                     object_id=digest, source=op.source, detail={"name": name, "size": size})
    return {"digest": digest, "name": name, "size": size}


def list_all(tx: Tx, tenant_id: str) -> list[dict[str, Any]]:
    return tx.all("SELECT digest, name, size, created_at FROM artifacts WHERE tenant_id = ? ORDER BY created_at",
                  (tenant_id,))


def size_of(tx: Tx, tenant_id: str, digest: str) -> int:
    row = tx.one("SELECT size FROM artifacts WHERE tenant_id = ? AND digest = ?", (tenant_id, digest))
    if row is None:
        raise not_found(("path", "digest"), "artifact")
    return row["size"]


def chunks(db: Database, digest: str) -> Iterator[bytes]:
    """Yield the bytes chunk by chunk, one short read transaction each."""
    seq = 0
    while True:
        with db.transaction(write=False) as tx:
            row = tx.one("SELECT data FROM artifact_chunks WHERE digest = ? AND seq = ?", (digest, seq))
        if row is None or not row["data"]:
            return
        yield bytes(row["data"])
        seq += 1
