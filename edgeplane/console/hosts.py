"""Edge hosts: derived status, views, heartbeats, status reports, events from agents, operator edits."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from edgeplane.console import audit, keys
from edgeplane.console.auth import Host, Operator
from edgeplane.console.db import Tx, dumps, now_ms
from edgeplane.console.errors import conflict, forbidden, not_found, unauthorized


@dataclass(frozen=True)
class Timing:
    heartbeat_interval_s: int = 30
    stale_after_intervals: int = 3

    @property
    def stale_after_ms(self) -> int:
        return self.heartbeat_interval_s * self.stale_after_intervals * 1000


def empty_spec(host_id: str) -> dict[str, Any]:
    return {"host_id": host_id, "action": "none", "cluster": None, "profile": None, "artifacts": []}


def derived_status(row: dict[str, Any], timing: Timing, now: int | None = None) -> str:
    """pending / registered / stale / unhealthy / in-use / ready. Stale is shown, never acted on."""
    if not row["credential_hash"]:
        return "pending"
    if row["last_heartbeat"] is None:
        return "registered"
    if (now or now_ms()) - row["last_heartbeat"] > timing.stale_after_ms:
        return "stale"
    if row["health"] == "unhealthy":
        return "unhealthy"
    return "in-use" if row["cluster_id"] else "ready"


HOST_COLUMNS = ("id, tenant_id, project_id, registration, approved, waiting_for, credential_hash, tags, inventory,"
                " health, health_message, last_heartbeat, cluster_id, pool, profile_id, spec_generation,"
                " observed_generation, phase, phase_message, kubernetes, pending_join, created_at, updated_at")


def view(row: dict[str, Any], timing: Timing) -> dict[str, Any]:
    return {
        "id": row["id"], "project_id": row["project_id"], "status": derived_status(row, timing),
        "registration": row["registration"],
        "waiting_for": None if row["credential_hash"] else ("host" if row["approved"] else "operator"),
        "tags": json.loads(row["tags"]), "inventory": json.loads(row["inventory"]),
        "health": row["health"], "health_message": row["health_message"], "last_heartbeat": row["last_heartbeat"],
        "cluster_id": row["cluster_id"], "pool": row["pool"], "profile_id": row["profile_id"],
        "spec_generation": row["spec_generation"], "observed_generation": row["observed_generation"],
        "phase": row["phase"], "phase_message": row["phase_message"],
        "kubernetes": json.loads(row["kubernetes"]) if row["kubernetes"] else None,
        "joins": json.loads(row["pending_join"]) if row["pending_join"] else None,
        "created_at": row["created_at"], "updated_at": row["updated_at"],
    }


def get_row(tx: Tx, tenant_id: str, host_id: str, loc: tuple = ("path", "host_id"), *, lock: bool = False) -> dict:
    row = tx.one(f"SELECT {HOST_COLUMNS} FROM hosts WHERE id = ? AND tenant_id = ?" + (tx.for_update if lock else ""),
                 (host_id, tenant_id))
    if row is None:
        raise not_found(loc, f"host {host_id!r}")
    return row


def list_rows(tx: Tx, tenant_id: str, limit: int, offset: int) -> list[dict[str, Any]]:
    """One page of the tenant's hosts in ID order."""
    return tx.all(f"SELECT {HOST_COLUMNS} FROM hosts WHERE tenant_id = ? ORDER BY id LIMIT ? OFFSET ?",
                  (tenant_id, limit, offset))


def heartbeat(tx: Tx, host_id: str, credential: str, body: dict[str, Any]) -> tuple[int, str | None]:
    """Record a heartbeat in one statement that also checks the credential.

    Returns the spec generation and the cluster pool a QR approval asked this host to join, if any.
    """
    now = now_ms()
    inventory = dumps(body["inventory"]) if body.get("inventory") is not None else None
    row = tx.one(
        "UPDATE hosts SET last_heartbeat = ?, health = ?, health_message = ?, inventory = COALESCE(?, inventory),"
        " updated_at = ? WHERE id = ? AND credential_hash = ? RETURNING spec_generation, pending_join",
        (now, body["health"], body.get("message", ""), inventory, now, host_id, keys.digest(credential)))
    if row is None:
        owner = tx.one("SELECT id FROM hosts WHERE credential_hash = ?", (keys.digest(credential),))
        if owner is None:
            raise unauthorized("unknown host credential")
        raise forbidden("this credential belongs to another host")
    return row["spec_generation"], row["pending_join"]


def spec_of(tx: Tx, host_id: str) -> tuple[int, dict[str, Any]]:
    row = tx.one("SELECT spec_generation, spec FROM hosts WHERE id = ?", (host_id,))
    return row["spec_generation"], json.loads(row["spec"])


def write_spec(tx: Tx, host_id: str, spec: dict[str, Any]) -> int:
    """Store a new desired spec under the next generation and wake the host's long-polls."""
    row = tx.one("SELECT spec_generation FROM hosts WHERE id = ?" + tx.for_update, (host_id,))
    generation = row["spec_generation"] + 1
    tx.execute("UPDATE hosts SET spec = ?, spec_generation = ?, updated_at = ? WHERE id = ?",
               (dumps({**spec, "generation": generation}), generation, now_ms(), host_id))
    tx.notify_spec(host_id)
    return generation


def record_status(tx: Tx, host: Host, body: dict[str, Any]) -> dict[str, Any]:
    """Store the agent's observed status; returns the locked host row as it is now."""
    row = tx.one(f"SELECT {HOST_COLUMNS} FROM hosts WHERE id = ?" + tx.for_update, (host.host_id,))
    if body["observed_generation"] > row["spec_generation"]:
        raise conflict(("body", "observed_generation"),
                       f"generation {body['observed_generation']} was never issued (current {row['spec_generation']})")
    tx.execute("UPDATE hosts SET observed_generation = ?, phase = ?, phase_message = ?, kubernetes = ?, updated_at = ?"
               " WHERE id = ?", (body["observed_generation"], body["phase"], body.get("message", ""),
                                 dumps(body.get("kubernetes") or {}), now_ms(), host.host_id))
    if row["phase"] != body["phase"] or row["observed_generation"] != body["observed_generation"]:
        audit.event(tx, tenant_id=host.tenant_id, cluster_id=row["cluster_id"], host_id=host.host_id, source="agent",
                    kind=f"node.{body['phase']}", severity="error" if body["phase"] == "failed" else "info",
                    message=f"generation {body['observed_generation']}: {body.get('message') or body['phase']}")
    row.update(observed_generation=body["observed_generation"], phase=body["phase"],
               kubernetes=dumps(body.get("kubernetes") or {}))
    return row


def record_events(tx: Tx, host: Host, events: list[dict[str, Any]]) -> int:
    row = tx.one("SELECT cluster_id FROM hosts WHERE id = ?", (host.host_id,))
    for e in events:
        at = int(e["time"].timestamp() * 1000) if e.get("time") else None
        audit.event(tx, tenant_id=host.tenant_id, cluster_id=row["cluster_id"], host_id=host.host_id, source="agent",
                    kind=e["kind"], severity=e["severity"], message=e["message"], at=at)
    return len(events)


def set_tags(tx: Tx, op: Operator, host_id: str, tags: dict[str, str]) -> None:
    get_row(tx, op.tenant_id, host_id)
    tx.execute("UPDATE hosts SET tags = ?, updated_at = ? WHERE id = ?", (dumps(tags), now_ms(), host_id))
    audit.record(tx, tenant_id=op.tenant_id, actor=op.actor, action="update", object_type="host", object_id=host_id,
                 source=op.source, detail={"tags": tags})


def delete(tx: Tx, op: Operator, host_id: str) -> None:
    row = get_row(tx, op.tenant_id, host_id, lock=True)
    if row["cluster_id"]:
        raise conflict(("path", "host_id"), "host is in a cluster; remove it from the cluster's pools first")
    tx.execute("DELETE FROM hosts WHERE id = ?", (host_id,))
    audit.record(tx, tenant_id=op.tenant_id, actor=op.actor, action="delete", object_type="host", object_id=host_id,
                 source=op.source)


def events(tx: Tx, tenant_id: str, *, host_id: str | None = None, cluster_id: str | None = None,
           limit: int = 200) -> list[dict[str, Any]]:
    column, value = ("host_id", host_id) if host_id else ("cluster_id", cluster_id)
    rows = tx.all(f"SELECT id, cluster_id, host_id, source, kind, severity, message, at FROM events"
                  f" WHERE tenant_id = ? AND {column} = ? ORDER BY id DESC LIMIT ?", (tenant_id, value, limit))
    return list(reversed(rows))
