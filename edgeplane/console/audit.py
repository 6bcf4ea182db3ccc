"""The audit log (every change: who, what, when, from where) and the event history."""

from __future__ import annotations

from typing import Any

from edgeplane.console.db import Tx, dumps, now_ms


def record(tx: Tx, *, tenant_id: str | None, actor: str, action: str, object_type: str, object_id: str,
           source: str, detail: dict[str, Any] | None = None) -> None:
    """Write one audit row inside the change's own transaction, so both land or neither does."""
    tx.execute(
        "INSERT INTO audit_log (tenant_id, actor, action, object_type, object_id, detail, source, at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (tenant_id, actor, action, object_type, object_id, dumps(detail or {}), source, now_ms()),
    )


def event(tx: Tx, *, tenant_id: str | None, kind: str, message: str, source: str = "console",
          severity: str = "info", cluster_id: str | None = None, host_id: str | None = None,
          at: int | None = None) -> None:
    tx.execute(
        "INSERT INTO events (tenant_id, cluster_id, host_id, source, kind, severity, message, at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (tenant_id, cluster_id, host_id, source, kind, severity, message, at or now_ms()),
    )
