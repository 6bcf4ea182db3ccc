"""Registration tokens and the three ways a host registers: auto, manual (pre-entered IDs) and QR."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from edgeplane.console import audit, clusters, hosts, keys, tenancy
from edgeplane.console.auth import Operator
from edgeplane.console.db import Tx, dumps, now_ms
from edgeplane.console.errors import ApiError, conflict, invalid, not_found, unauthorized
from edgeplane.console.hostids import host_id_problem

QR_TTL_MS = 30 * 60 * 1000
RETRY_AFTER_S = 10


@dataclass(frozen=True)
class Outcome:
    status_code: int
    body: dict[str, Any]


# ----------------------------------------------------------------------------------- tokens

def create_token(tx: Tx, op: Operator, body: dict[str, Any]) -> dict[str, Any]:
    if tx.one("SELECT 1 AS x FROM registration_tokens WHERE tenant_id = ? AND name = ?", (op.tenant_id, body["name"])):
        raise conflict(("body", "name"), f"token {body['name']!r} already exists")
    project = tenancy.project_id(tx, op.tenant_id, body.get("project_id"), ("body", "project_id"))
    expires_at = int(body["expires_at"].timestamp() * 1000)
    if expires_at <= now_ms():
        raise invalid(("body", "expires_at"), "must be in the future")
    value = keys.new_secret(keys.TOKEN_PREFIX)
    token = {"id": keys.new_id("rt"), "name": body["name"], "description": body.get("description", ""),
             "project_id": project, "expires_at": expires_at, "revoked_at": None, "created_at": now_ms()}
    tx.execute("INSERT INTO registration_tokens (id, tenant_id, project_id, name, description, token_hash, expires_at,"
               " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
               (token["id"], op.tenant_id, project, token["name"], token["description"], keys.digest(value),
                expires_at, token["created_at"]))
    audit.record(tx, tenant_id=op.tenant_id, actor=op.actor, action="create", object_type="registration_token",
                 object_id=token["id"], source=op.source, detail={"name": body["name"], "expires_at": expires_at})
    return {**token, "token": value}


def list_tokens(tx: Tx, tenant_id: str) -> list[dict[str, Any]]:
    return tx.all("SELECT id, name, description, project_id, expires_at, revoked_at, created_at"
                  " FROM registration_tokens WHERE tenant_id = ? ORDER BY name", (tenant_id,))


def revoke_token(tx: Tx, op: Operator, token_id: str) -> None:
    row = tx.one("SELECT revoked_at FROM registration_tokens WHERE id = ? AND tenant_id = ?", (token_id, op.tenant_id))
    if row is None:
        raise not_found(("path", "token_id"), "registration token")
    if row["revoked_at"] is None:
        tx.execute("UPDATE registration_tokens SET revoked_at = ? WHERE id = ?", (now_ms(), token_id))
        audit.record(tx, tenant_id=op.tenant_id, actor=op.actor, action="revoke", object_type="registration_token",
                     object_id=token_id, source=op.source)


def _token(tx: Tx, value: str) -> dict[str, Any]:
    row = tx.one("SELECT id, tenant_id, project_id, expires_at, revoked_at FROM registration_tokens"
                 " WHERE token_hash = ?", (keys.digest(value),))
    loc = ("body", "token")
    if row is None:
        raise unauthorized("unknown registration token", loc)
    if row["revoked_at"] is not None:
        raise unauthorized("registration token revoked", loc)
    if row["expires_at"] <= now_ms():
        raise unauthorized("registration token expired", loc)
    return row


# ----------------------------------------------------------------------------------- hosts calling in

def _insert_host(tx: Tx, host_id: str, *, tenant_id: str | None, project_id: str | None, registration: str,
                 approved: bool, tags: dict, inventory: dict | None, qr: tuple[str, str] | None = None) -> None:
    now = now_ms()
    tx.execute(
        "INSERT INTO hosts (id, tenant_id, project_id, registration, approved, tags, inventory, qr_code_hash,"
        " qr_secret_hash, qr_expires_at, spec, spec_generation, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
        (host_id, tenant_id, project_id, registration, int(approved), dumps(tags), dumps(inventory or {}),
         keys.digest(qr[0]) if qr else None, keys.digest(qr[1]) if qr else None,
         now + QR_TTL_MS if qr else None, dumps({**hosts.empty_spec(host_id), "generation": 1}), now, now))


def _issue_credential(tx: Tx, row: dict[str, Any], source: str, timing: hosts.Timing) -> Outcome:
    credential = keys.new_secret(keys.CREDENTIAL_PREFIX)
    tx.execute("UPDATE hosts SET credential_hash = ?, approved = 1, qr_code_hash = NULL, qr_secret_hash = NULL,"
               " qr_expires_at = NULL, updated_at = ? WHERE id = ?", (keys.digest(credential), now_ms(), row["id"]))
    names = tx.one("SELECT t.name AS tenant, p.name AS project FROM tenants t JOIN projects p ON p.tenant_id = t.id"
                   " WHERE t.id = ? AND p.id = ?", (row["tenant_id"], row["project_id"]))
    audit.record(tx, tenant_id=row["tenant_id"], actor=f"host:{row['id']}", action="register", object_type="host",
                 object_id=row["id"], source=source, detail={"registration": row["registration"]})
    audit.event(tx, tenant_id=row["tenant_id"], host_id=row["id"], kind="host.registered",
                message=f"registered ({row['registration']})")
    return Outcome(201, {"host_id": row["id"], "status": "registered", "credential": credential,
                         "tenant": names["tenant"], "project": names["project"],
                         "heartbeat_interval": timing.heartbeat_interval_s})


def _pending(host_id: str, approval_url: str | None = None) -> Outcome:
    body = {"host_id": host_id, "status": "pending", "waiting_for": "operator", "retry_after": RETRY_AFTER_S}
    if approval_url:
        body["approval_url"] = approval_url
    return Outcome(202, body)


def register(tx: Tx, body: dict[str, Any], *, source: str, prefix: str, base_url: str,
             timing: hosts.Timing) -> Outcome:
    host_id = body["host_id"]
    problem = host_id_problem(host_id, prefix)
    if problem:
        raise invalid(("body", "host_id"), problem)
    existing = tx.one("SELECT * FROM hosts WHERE id = ?" + tx.for_update, (host_id,))
    if existing is not None and existing["credential_hash"]:
        raise conflict(("body", "host_id"), "this host ID is already registered; delete the host in the console first")
    if body["mode"] == "qr":
        return _register_qr(tx, body, existing, source=source, base_url=base_url, timing=timing)
    if not body.get("token"):
        raise invalid(("body", "token"), f"required for {body['mode']} registration")
    token = _token(tx, body["token"])
    if body.get("project"):
        row = tx.one("SELECT id FROM projects WHERE tenant_id = ? AND name = ?", (token["tenant_id"], body["project"]))
        if row is None:
            raise invalid(("body", "project"), f"unknown project {body['project']!r}")
        project = row["id"]
    elif token["project_id"]:
        project = token["project_id"]
    else:
        raise invalid(("body", "project"), "the token has no default project; name one")
    if existing is None:
        _insert_host(tx, host_id, tenant_id=token["tenant_id"], project_id=project, registration=body["mode"],
                     approved=body["mode"] == "auto", tags=body.get("tags") or {}, inventory=body.get("inventory"))
        if body["mode"] == "manual":
            audit.event(tx, tenant_id=token["tenant_id"], host_id=host_id, kind="host.waiting",
                        message="called in for manual registration; waiting for an operator")
            return _pending(host_id)
        return _issue_credential(tx, tx.one("SELECT * FROM hosts WHERE id = ?", (host_id,)), source, timing)
    if existing["tenant_id"] != token["tenant_id"]:
        raise conflict(("body", "host_id"), "this host ID is taken")
    if body["mode"] == "auto" or existing["approved"]:
        return _issue_credential(tx, existing, source, timing)
    return _pending(host_id)


def _register_qr(tx: Tx, body: dict[str, Any], existing: dict | None, *, source: str, base_url: str,
                 timing: hosts.Timing) -> Outcome:
    for field in ("qr_code", "secret"):
        if not body.get(field):
            raise invalid(("body", field), "required for qr registration")
    host_id = body["host_id"]
    url = f"{base_url.rstrip('/')}/v1/qr-approvals/{host_id}?code={body['qr_code']}"
    if existing is None:
        # Unauthenticated requests must not pile up: forget those nobody approved in time.
        tx.execute("DELETE FROM hosts WHERE tenant_id IS NULL AND qr_expires_at < ?", (now_ms(),))
        _insert_host(tx, host_id, tenant_id=None, project_id=None, registration="qr", approved=False,
                     tags=body.get("tags") or {}, inventory=body.get("inventory"),
                     qr=(body["qr_code"], body["secret"]))
        return _pending(host_id, url)
    if existing["registration"] != "qr" or existing["qr_secret_hash"] is None:
        raise conflict(("body", "host_id"), "this host ID is known through another registration method")
    if existing["qr_secret_hash"] != keys.digest(body["secret"]):
        raise unauthorized("secret differs from the one this host started with", ("body", "secret"))
    if existing["approved"]:
        return _issue_credential(tx, existing, source, timing)
    if existing["qr_expires_at"] <= now_ms() or existing["qr_code_hash"] != keys.digest(body["qr_code"]):
        # A fresh code restarts the approval window; the old code stops working.
        tx.execute("UPDATE hosts SET qr_code_hash = ?, qr_expires_at = ?, updated_at = ? WHERE id = ?",
                   (keys.digest(body["qr_code"]), now_ms() + QR_TTL_MS, now_ms(), host_id))
    return _pending(host_id, url)


# ----------------------------------------------------------------------------------- operators

def pre_enter(tx: Tx, op: Operator, body: dict[str, Any], prefix: str) -> list[str]:
    """Manual registration: the listed IDs may register; hosts already waiting are approved."""
    project = tenancy.project_id(tx, op.tenant_id, body.get("project_id"), ("body", "project_id"))
    for i, host_id in enumerate(body["host_ids"]):
        loc = ("body", "host_ids", i)
        problem = host_id_problem(host_id, prefix)
        if problem:
            raise invalid(loc, problem)
        if body["host_ids"].index(host_id) != i:
            raise invalid(loc, f"host ID {host_id!r} is listed twice")
        row = tx.one("SELECT tenant_id, approved FROM hosts WHERE id = ?" + tx.for_update, (host_id,))
        if row is None:
            _insert_host(tx, host_id, tenant_id=op.tenant_id, project_id=project, registration="manual",
                         approved=True, tags=body.get("tags") or {}, inventory=None)
        elif row["tenant_id"] != op.tenant_id:
            raise conflict(loc, f"host ID {host_id!r} is taken")
        elif row["approved"]:
            raise conflict(loc, f"host {host_id!r} is already entered")
        else:
            tx.execute("UPDATE hosts SET approved = 1, project_id = ?, updated_at = ? WHERE id = ?",
                       (project, now_ms(), host_id))
        audit.record(tx, tenant_id=op.tenant_id, actor=op.actor, action="pre-enter", object_type="host",
                     object_id=host_id, source=op.source, detail={"project_id": project})
    return body["host_ids"]


def approve(tx: Tx, op: Operator, host_id: str) -> None:
    row = hosts.get_row(tx, op.tenant_id, host_id, lock=True)
    if row["approved"]:
        raise conflict(("path", "host_id"), "host is already approved")
    tx.execute("UPDATE hosts SET approved = 1, updated_at = ? WHERE id = ?", (now_ms(), host_id))
    audit.record(tx, tenant_id=op.tenant_id, actor=op.actor, action="approve", object_type="host", object_id=host_id,
                 source=op.source)


def _qr_request(tx: Tx, host_id: str, code: str, loc: tuple) -> dict[str, Any]:
    row = tx.one("SELECT * FROM hosts WHERE id = ?" + tx.for_update, (host_id,))
    if row is None or row["registration"] != "qr" or row["tenant_id"] is not None or row["qr_code_hash"] is None:
        raise not_found(("path", "host_id"), "pending QR registration")
    if row["qr_code_hash"] != keys.digest(code):
        raise ApiError(403, loc, "code does not match the one the host shows", "forbidden")
    if row["qr_expires_at"] <= now_ms():
        raise ApiError(410, loc, "code expired; the host shows a new one", "expired")
    return row


def qr_request(tx: Tx, host_id: str, code: str) -> dict[str, Any]:
    row = _qr_request(tx, host_id, code, ("query", "code"))
    return {"host_id": host_id, "requested_at": row["created_at"], "expires_at": row["qr_expires_at"],
            "inventory": hosts.view(row, hosts.Timing())["inventory"]}


def qr_approve(tx: Tx, op: Operator, host_id: str, body: dict[str, Any]) -> dict[str, Any]:
    row = _qr_request(tx, host_id, body["code"], ("body", "code"))
    project = tenancy.project_id(tx, op.tenant_id, body.get("project_id"), ("body", "project_id"))
    tags = json.loads(row["tags"])
    if body.get("site"):
        tags["site"] = body["site"]
    joins = None
    if body.get("cluster_id"):
        clusters.check_join(tx, op, body["cluster_id"], body["pool"])
        joins = {"cluster_id": body["cluster_id"], "pool": body["pool"], "by": op.name}
    tx.execute("UPDATE hosts SET tenant_id = ?, project_id = ?, approved = 1, tags = ?, qr_code_hash = NULL,"
               " pending_join = ?, updated_at = ? WHERE id = ?",
               (op.tenant_id, project, dumps(tags), dumps(joins) if joins else None, now_ms(), host_id))
    audit.record(tx, tenant_id=op.tenant_id, actor=op.actor, action="approve-qr", object_type="host",
                 object_id=host_id, source=op.source,
                 detail={"project_id": project, "site": body.get("site"), "joins": joins})
    return {"host_id": host_id, "project_id": project, "tags": tags, "joins": joins, "status": "pending",
            "waiting_for": "host"}
