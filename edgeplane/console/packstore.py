"""Packs (built in plus each tenant's own) and versioned cluster profiles."""

from __future__ import annotations

import json
from typing import Any

from edgeplane.console import audit, keys, profiles, tenancy
from edgeplane.console.auth import Operator
from edgeplane.common.catalogue import BUILTIN_PACKS, builtin_pack
from edgeplane.console.db import Tx, dumps, now_ms
from edgeplane.console.errors import conflict, invalid, not_found


def resolver(tx: Tx, tenant_id: str) -> profiles.PackResolver:
    def resolve(name: str, version: str) -> dict[str, Any] | None:
        pack = builtin_pack(name, version)
        if pack is not None:
            return pack
        row = tx.one("SELECT document FROM packs WHERE tenant_id = ? AND name = ? AND version = ?",
                     (tenant_id, name, version))
        return json.loads(row["document"]) if row else None
    return resolve


def list_packs(tx: Tx, tenant_id: str, layer: str | None) -> list[dict[str, Any]]:
    custom = [json.loads(r["document"]) for r in
              tx.all("SELECT document FROM packs WHERE tenant_id = ? ORDER BY name, version", (tenant_id,))]
    return [p for p in BUILTIN_PACKS + custom if layer is None or p["layer"] == layer]


def create_pack(tx: Tx, op: Operator, body: dict[str, Any]) -> dict[str, Any]:
    if body["layer"] == "kubernetes":
        raise invalid(("body", "layer"), "custom Kubernetes packs are not supported: the distribution table is built in")
    if any(p["name"] == body["name"] for p in BUILTIN_PACKS):
        raise conflict(("body", "name"), f"{body['name']!r} is a built-in pack name")
    if resolver(tx, op.tenant_id)(body["name"], body["version"]) is not None:
        raise conflict(("body", "version"), f"pack {body['name']} {body['version']} already exists")
    pack = profiles.custom_pack(body)
    for i, artifact in enumerate(pack["artifacts"]):
        if not tx.one("SELECT 1 AS x FROM artifacts WHERE tenant_id = ? AND digest = ?",
                      (op.tenant_id, artifact["digest"])):
            raise invalid(("body", "artifacts", i, "digest"), "no artifact with this digest was uploaded")
    tx.execute("INSERT INTO packs (tenant_id, name, version, document, created_at) VALUES (?, ?, ?, ?, ?)",
               (op.tenant_id, pack["name"], pack["version"], dumps(pack), now_ms()))
    audit.record(tx, tenant_id=op.tenant_id, actor=op.actor, action="create", object_type="pack",
                 object_id=f"{pack['name']}:{pack['version']}", source=op.source)
    return pack


def create_profile(tx: Tx, op: Operator, body: dict[str, Any], *, name: str | None = None) -> dict[str, Any]:
    """A new profile (version 1) or, with ``name``, the next version of an existing one."""
    if name is None:
        name = body["name"]
        if tx.one("SELECT 1 AS x FROM profiles WHERE tenant_id = ? AND name = ?", (op.tenant_id, name)):
            raise conflict(("body", "name"), f"profile {name!r} exists; add a version with POST /v1/profiles/{name}/versions")
        version = 1
        project = tenancy.project_id(tx, op.tenant_id, body.get("project_id"), ("body", "project_id"))
    else:
        latest = tx.one("SELECT MAX(version) AS v, MIN(project_id) AS p FROM profiles WHERE tenant_id = ? AND name = ?",
                        (op.tenant_id, name))
        if latest is None or latest["v"] is None:
            raise not_found(("path", "name"), f"profile {name!r}")
        version, project = latest["v"] + 1, latest["p"]
    profiles.validate_layers(body["layers"], fips=body["fips"], arch=body["arch"],
                             install_path=body["install_path"], resolve=resolver(tx, op.tenant_id))
    doc = {"name": name, "version": version, "description": body.get("description", ""), "fips": body["fips"],
           "arch": body["arch"], "install_path": body["install_path"], "layers": body["layers"]}
    profile_id = keys.new_id("p")
    tx.execute("INSERT INTO profiles (id, tenant_id, project_id, name, version, document, created_at)"
               " VALUES (?, ?, ?, ?, ?, ?, ?)", (profile_id, op.tenant_id, project, name, version, dumps(doc), now_ms()))
    audit.record(tx, tenant_id=op.tenant_id, actor=op.actor, action="create", object_type="profile",
                 object_id=profile_id, source=op.source, detail={"name": name, "version": version})
    return {"id": profile_id, "project_id": project, **doc}


def get_profile(tx: Tx, tenant_id: str, profile_id: str, loc: tuple = ("path", "profile_id")) -> dict[str, Any]:
    row = tx.one("SELECT id, project_id, document FROM profiles WHERE id = ? AND tenant_id = ?", (profile_id, tenant_id))
    if row is None:
        raise not_found(loc, "profile")
    return {"id": row["id"], "project_id": row["project_id"], **json.loads(row["document"])}


def resolved_layers(tx: Tx, tenant_id: str, profile: dict[str, Any]) -> list[dict[str, Any]]:
    return profiles.validate_layers(profile["layers"], fips=profile["fips"], arch=profile["arch"],
                                    install_path=profile["install_path"], resolve=resolver(tx, tenant_id))


def list_profiles(tx: Tx, tenant_id: str) -> list[dict[str, Any]]:
    rows = tx.all("SELECT id, project_id, document FROM profiles WHERE tenant_id = ? ORDER BY name, version", (tenant_id,))
    return [{"id": r["id"], "project_id": r["project_id"], **json.loads(r["document"])} for r in rows]
