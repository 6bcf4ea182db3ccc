"""Tenants, projects, users and API keys."""

from __future__ import annotations

from edgeplane.console import audit, keys
from edgeplane.console.auth import Operator
from edgeplane.console.db import Tx, now_ms
from edgeplane.console.errors import conflict, invalid, not_found

DEFAULT_PROJECT = "default"


def ensure_tenant(tx: Tx, name: str) -> str:
    """The tenant's id, creating it (with its default project) when absent."""
    row = tx.one("SELECT id FROM tenants WHERE name = ?", (name,))
    if row:
        return row["id"]
    tenant_id = keys.new_id("t")
    tx.execute("INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?)", (tenant_id, name, now_ms()))
    tx.execute("INSERT INTO projects (id, tenant_id, name, created_at) VALUES (?, ?, ?, ?)",
               (keys.new_id("pr"), tenant_id, DEFAULT_PROJECT, now_ms()))
    audit.record(tx, tenant_id=tenant_id, actor="cli", action="create", object_type="tenant", object_id=tenant_id,
                 source="local", detail={"name": name})
    return tenant_id


def create_user(tx: Tx, tenant_id: str, name: str, role: str, *, actor: str, source: str) -> dict:
    if tx.one("SELECT 1 AS x FROM users WHERE tenant_id = ? AND name = ?", (tenant_id, name)):
        raise conflict(("body", "name"), f"user {name!r} already exists")
    user = {"id": keys.new_id("u"), "tenant_id": tenant_id, "name": name, "role": role, "created_at": now_ms()}
    tx.execute("INSERT INTO users (id, tenant_id, name, role, created_at) VALUES (?, ?, ?, ?, ?)",
               (user["id"], tenant_id, name, role, user["created_at"]))
    audit.record(tx, tenant_id=tenant_id, actor=actor, action="create", object_type="user", object_id=user["id"],
                 source=source, detail={"name": name, "role": role})
    return user


def create_api_key(tx: Tx, tenant_id: str, user_id: str, name: str, *, actor: str, source: str) -> dict:
    """A new key; the value is returned here only, the database keeps its SHA-256."""
    if not tx.one("SELECT 1 AS x FROM users WHERE id = ? AND tenant_id = ?", (user_id, tenant_id)):
        raise not_found(("path", "user_id"), "user")
    value = keys.new_secret(keys.API_KEY_PREFIX)
    key_id = keys.new_id("k")
    tx.execute("INSERT INTO api_keys (id, user_id, key_hash, name, created_at) VALUES (?, ?, ?, ?, ?)",
               (key_id, user_id, keys.digest(value), name, now_ms()))
    audit.record(tx, tenant_id=tenant_id, actor=actor, action="create", object_type="api_key", object_id=key_id,
                 source=source, detail={"user_id": user_id, "name": name})
    return {"id": key_id, "user_id": user_id, "name": name, "key": value}


def revoke_api_key(tx: Tx, op: Operator, key_id: str) -> None:
    row = tx.one("SELECT k.id, k.revoked_at FROM api_keys k JOIN users u ON u.id = k.user_id"
                 " WHERE k.id = ? AND u.tenant_id = ?", (key_id, op.tenant_id))
    if row is None:
        raise not_found(("path", "key_id"), "API key")
    if row["revoked_at"] is None:
        tx.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ?", (now_ms(), key_id))
        audit.record(tx, tenant_id=op.tenant_id, actor=op.actor, action="revoke", object_type="api_key",
                     object_id=key_id, source=op.source)


def bootstrap_admin(tx: Tx, tenant: str, user: str) -> dict:
    """What `edgeplane console admin-key` does: tenant if needed, an admin user, and a key for it."""
    tenant_id = ensure_tenant(tx, tenant)
    row = tx.one("SELECT id, role FROM users WHERE tenant_id = ? AND name = ?", (tenant_id, user))
    if row is None:
        user_id = create_user(tx, tenant_id, user, "admin", actor="cli", source="local")["id"]
    elif row["role"] != "admin":
        raise invalid(("user",), f"user {user!r} exists with role {row['role']!r}, not admin")
    else:
        user_id = row["id"]
    key = create_api_key(tx, tenant_id, user_id, "admin-key", actor="cli", source="local")
    return {"tenant_id": tenant_id, "user_id": user_id, "key": key["key"]}


def project_id(tx: Tx, tenant_id: str, project: str | None, loc: tuple) -> str:
    """Resolve a project id (or, when None, the tenant's default project) inside tenant_id."""
    if project is None:
        row = tx.one("SELECT id FROM projects WHERE tenant_id = ? AND name = ?", (tenant_id, DEFAULT_PROJECT))
    else:
        row = tx.one("SELECT id FROM projects WHERE tenant_id = ? AND id = ?", (tenant_id, project))
    if row is None:
        raise invalid(loc, f"unknown project {project!r}")
    return row["id"]


def create_project(tx: Tx, op: Operator, name: str) -> dict:
    if tx.one("SELECT 1 AS x FROM projects WHERE tenant_id = ? AND name = ?", (op.tenant_id, name)):
        raise conflict(("body", "name"), f"project {name!r} already exists")
    project = {"id": keys.new_id("pr"), "name": name, "created_at": now_ms()}
    tx.execute("INSERT INTO projects (id, tenant_id, name, created_at) VALUES (?, ?, ?, ?)",
               (project["id"], op.tenant_id, name, project["created_at"]))
    audit.record(tx, tenant_id=op.tenant_id, actor=op.actor, action="create", object_type="project",
                 object_id=project["id"], source=op.source, detail={"name": name})
    return project
