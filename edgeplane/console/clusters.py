"""Clusters: views, derived status and the lifecycle engine (create, scale, reconfigure, upgrade, delete).

Every transition happens inside one transaction with the cluster row locked, so any number of
console processes can share one PostgreSQL database. Almost all are caused by a request (an
operator's call or an agent's status report); the one exception is an upgrade step running out
of time (``expire_upgrade_step``), which a dead node cannot report, so each console process's
``deadlines.UpgradeDeadlines`` sweep calls it.
"""

from __future__ import annotations

import json
from typing import Any

from edgeplane.console import audit, clusterrules, hosts, keys, nodespecs, packstore, profiles, tenancy
from edgeplane.console.auth import Operator
from edgeplane.console.db import Tx, dumps, now_ms
from edgeplane.console.errors import ApiError, conflict, invalid, not_found
from edgeplane.console.nodespecs import CP, LEAVING, WORKER

DEFAULT_STEP_TIMEOUT_S = 1800
MAX_STEP_TIMEOUT_S = 7 * 24 * 3600


# ----------------------------------------------------------------------------------- views

def _row(tx: Tx, tenant_id: str, cluster_id: str, *, lock: bool = False) -> dict[str, Any]:
    row = tx.one("SELECT * FROM clusters WHERE id = ? AND tenant_id = ?" + (tx.for_update if lock else ""),
                 (cluster_id, tenant_id))
    if row is None:
        raise not_found(("path", "cluster_id"), "cluster")
    return row


def _healthy(host: dict, timing: hosts.Timing) -> bool:
    return (hosts.derived_status(host, timing) == "in-use" and host["phase"] == "ready"
            and host["observed_generation"] == host["spec_generation"])


def derived_status(cluster: dict, members: list[dict], timing: hosts.Timing) -> str:
    if cluster["deleting"]:
        return "deleting"
    if cluster["operation"]:
        return "upgrading"
    active = [m for m in members if m["pool"] != LEAVING]
    if active and all(_healthy(m, timing) for m in active):
        return "running"
    return "degraded" if cluster["ever_running"] else "provisioning"


def view(tx: Tx, cluster: dict, timing: hosts.Timing) -> dict[str, Any]:
    members = nodespecs.members(tx, cluster["id"])
    settings = json.loads(cluster["settings"])
    settings.pop("bootstrap_host", None)
    settings.pop("join_token", None)
    return {
        "id": cluster["id"], "name": cluster["name"], "project_id": cluster["project_id"],
        "profile_id": cluster["profile_id"], "datastore": cluster["datastore"], "generation": cluster["generation"],
        "status": derived_status(cluster, members, timing),
        "control_plane": [m["id"] for m in members if m["pool"] == CP],
        "workers": [m["id"] for m in members if m["pool"] == WORKER],
        "leaving": [m["id"] for m in members if m["pool"] == LEAVING],
        "nodes": [{"host_id": m["id"], "pool": m["pool"], "status": hosts.derived_status(m, timing),
                   "profile_id": m["profile_id"], "spec_generation": m["spec_generation"],
                   "observed_generation": m["observed_generation"], "phase": m["phase"]} for m in members],
        "operation": _operation_view(cluster["operation"]),
        **settings, "created_at": cluster["created_at"], "updated_at": cluster["updated_at"],
    }


def _operation_view(stored: str | None) -> dict[str, Any] | None:
    """The stored operation plus the seconds left before its step times out (by the console's clock)."""
    if not stored:
        return None
    operation = json.loads(stored)
    if operation.get("deadline_at"):
        operation["deadline_in_s"] = max(0, -(-(operation["deadline_at"] - now_ms()) // 1000))
    return operation


def get(tx: Tx, tenant_id: str, cluster_id: str, timing: hosts.Timing) -> dict[str, Any]:
    return view(tx, _row(tx, tenant_id, cluster_id), timing)


def list_all(tx: Tx, tenant_id: str, timing: hosts.Timing) -> list[dict[str, Any]]:
    return [view(tx, c, timing) for c in tx.all("SELECT * FROM clusters WHERE tenant_id = ? ORDER BY name", (tenant_id,))]


# ----------------------------------------------------------------------------------- lifecycle

def create(tx: Tx, op: Operator, body: dict[str, Any], timing: hosts.Timing) -> dict[str, Any]:
    if tx.one("SELECT 1 AS x FROM clusters WHERE tenant_id = ? AND name = ?", (op.tenant_id, body["name"])):
        raise conflict(("body", "name"), f"cluster {body['name']!r} already exists")
    project = tenancy.project_id(tx, op.tenant_id, body.get("project_id"), ("body", "project_id"))
    profile = packstore.get_profile(tx, op.tenant_id, body["profile_id"], ("body", "profile_id"))
    dist = profiles.distribution(packstore.resolved_layers(tx, op.tenant_id, profile))
    datastore = clusterrules.choose_datastore(len(body["control_plane"]), dist, body["management_mode"])
    members = clusterrules.check_members(tx, op, body, profile["arch"], current=set())
    settings = clusterrules.settings_from(body, clusterrules.check_endpoint(body, dist, members))
    cluster_id, now = keys.new_id("c"), now_ms()
    tx.execute("INSERT INTO clusters (id, tenant_id, project_id, name, profile_id, settings, datastore, generation,"
               " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
               (cluster_id, op.tenant_id, project, body["name"], profile["id"], dumps(settings), datastore, now, now))
    for pool, ids in ((CP, body["control_plane"]), (WORKER, body["workers"])):
        for host_id in ids:
            tx.execute("UPDATE hosts SET cluster_id = ?, pool = ?, profile_id = ? WHERE id = ?",
                       (cluster_id, pool, profile["id"], host_id))
    cluster = _row(tx, op.tenant_id, cluster_id)
    nodespecs.publish(tx, cluster)
    audit.record(tx, tenant_id=op.tenant_id, actor=op.actor, action="create", object_type="cluster",
                 object_id=cluster_id, source=op.source, detail={"name": body["name"], "profile_id": profile["id"]})
    audit.event(tx, tenant_id=op.tenant_id, cluster_id=cluster_id, kind="cluster.created",
                message=f"{datastore} cluster with {len(body['control_plane'])} control-plane and "
                        f"{len(body['workers'])} worker nodes, profile {profile['name']} v{profile['version']}")
    return view(tx, cluster, timing)


def _idle(cluster: dict) -> None:
    if cluster["deleting"]:
        raise conflict(("path", "cluster_id"), "cluster is being deleted")
    if cluster["operation"]:
        raise conflict(("path", "cluster_id"), "an upgrade is in progress; wait for it or cancel it")


def _bump(tx: Tx, cluster: dict, **changes: Any) -> dict:
    sets = ", ".join(f"{k} = ?" for k in changes)
    tx.execute(f"UPDATE clusters SET {sets}{', ' if sets else ''}generation = generation + 1, updated_at = ?"
               " WHERE id = ?", (*changes.values(), now_ms(), cluster["id"]))
    return tx.one("SELECT * FROM clusters WHERE id = ?", (cluster["id"],))


def scale(tx: Tx, op: Operator, cluster_id: str, body: dict[str, Any], timing: hosts.Timing) -> dict[str, Any]:
    cluster = _row(tx, op.tenant_id, cluster_id, lock=True)
    _idle(cluster)
    current = {m["id"]: m["pool"] for m in nodespecs.members(tx, cluster_id) if m["pool"] != LEAVING}
    profile = packstore.get_profile(tx, op.tenant_id, cluster["profile_id"])
    dist = profiles.distribution(packstore.resolved_layers(tx, op.tenant_id, profile))
    if not body["control_plane"]:
        raise invalid(("body", "control_plane"), "a cluster needs at least one control-plane node")
    datastore = clusterrules.choose_datastore(len(body["control_plane"]), dist, json.loads(cluster["settings"])["management_mode"])
    if datastore != cluster["datastore"]:
        raise invalid(("body", "control_plane"), f"the cluster's datastore is {cluster['datastore']}; "
                      f"{len(body['control_plane'])} control-plane nodes would need {datastore}, and the datastore "
                      "cannot change after creation")
    clusterrules.check_members(tx, op, body, profile["arch"], current=set(current))
    wanted = {h: CP for h in body["control_plane"]} | {h: WORKER for h in body["workers"]}
    for pool_key, pool in (("control_plane", CP), ("workers", WORKER)):
        for i, host_id in enumerate(body[pool_key]):
            if host_id in current and current[host_id] != pool:
                raise invalid(("body", pool_key, i), f"host {host_id!r} is a {current[host_id]} node; "
                              "remove it first, then add it to the other pool")
    added = [h for h in wanted if h not in current]
    removed = [h for h in current if h not in wanted]
    if not added and not removed:
        return view(tx, cluster, timing)
    for host_id in added:
        tx.execute("UPDATE hosts SET cluster_id = ?, pool = ?, profile_id = ? WHERE id = ?",
                   (cluster_id, wanted[host_id], cluster["profile_id"], host_id))
    for host_id in removed:
        nodespecs.reset_host(tx, host_id)
    cluster = _bump(tx, cluster)
    nodespecs.publish(tx, cluster)
    audit.record(tx, tenant_id=op.tenant_id, actor=op.actor, action="scale", object_type="cluster",
                 object_id=cluster_id, source=op.source, detail={"added": added, "removed": removed})
    audit.event(tx, tenant_id=op.tenant_id, cluster_id=cluster_id, kind="cluster.scaled",
                message=f"added {added or 'none'}, removing {removed or 'none'}")
    return view(tx, cluster, timing)


def _pools(tx: Tx, cluster_id: str) -> dict[str, list[str]]:
    members = nodespecs.members(tx, cluster_id)
    return {"control_plane": [m["id"] for m in members if m["pool"] == CP],
            "workers": [m["id"] for m in members if m["pool"] == WORKER]}


def check_join(tx: Tx, op: Operator, cluster_id: str, pool: str) -> None:
    """Whether a host approved by QR may later join this cluster's pool (checked at approval)."""
    cluster = tx.one("SELECT * FROM clusters WHERE id = ? AND tenant_id = ?", (cluster_id, op.tenant_id))
    if cluster is None:
        raise not_found(("body", "cluster_id"), "cluster")
    if cluster["deleting"]:
        raise conflict(("body", "cluster_id"), "cluster is being deleted")
    if pool == CP:
        profile = packstore.get_profile(tx, op.tenant_id, cluster["profile_id"])
        dist = profiles.distribution(packstore.resolved_layers(tx, op.tenant_id, profile))
        count = len(_pools(tx, cluster_id)["control_plane"]) + 1
        try:
            datastore = clusterrules.choose_datastore(count, dist, json.loads(cluster["settings"])["management_mode"])
        except ApiError:
            datastore = None
        if datastore != cluster["datastore"]:
            raise invalid(("body", "pool"), f"a {cluster['datastore']} cluster cannot take a control-plane node "
                                            f"number {count}; join it as a worker")


def join_pending(tx: Tx, host_id: str, pending: str) -> int:
    """On a QR-approved host's first heartbeat: scale its cluster to include it. A refusal (the
    cluster changed since the approval) becomes an event, never a failed heartbeat."""
    joins = json.loads(pending)
    row = tx.one("SELECT tenant_id FROM hosts WHERE id = ?", (host_id,))
    op = Operator("", joins["by"], row["tenant_id"], "operator", "qr-approval")
    # A savepoint keeps the other heartbeats of the batch safe whatever happens here.
    tx.execute("SAVEPOINT qr_join")
    try:
        body = _pools(tx, joins["cluster_id"])
        body["control_plane" if joins["pool"] == CP else "workers"].append(host_id)
        scale(tx, op, joins["cluster_id"], body, hosts.Timing())
    except Exception as exc:  # noqa: BLE001 - any refusal becomes an event, never a failed heartbeat
        tx.execute("ROLLBACK TO SAVEPOINT qr_join")
        audit.event(tx, tenant_id=row["tenant_id"], host_id=host_id, kind="host.join_failed", severity="warning",
                    message=f"could not join cluster {joins['cluster_id']} as {joins['pool']}: "
                            f"{exc.msg if isinstance(exc, ApiError) else type(exc).__name__}")
    tx.execute("RELEASE SAVEPOINT qr_join")
    tx.execute("UPDATE hosts SET pending_join = NULL WHERE id = ?", (host_id,))
    return hosts.spec_of(tx, host_id)[0]


def reconfigure(tx: Tx, op: Operator, cluster_id: str, body: dict[str, Any], timing: hosts.Timing) -> dict[str, Any]:
    cluster = _row(tx, op.tenant_id, cluster_id, lock=True)
    _idle(cluster)
    settings = json.loads(cluster["settings"])
    changes = {k: v for k, v in body.items() if v is not None}
    clusterrules.check_ca_certs(changes.get("ca_certs", []))
    clusterrules.check_ssh_keys(changes.get("ssh_keys", []))
    settings.update(changes)
    cluster = _bump(tx, cluster, settings=dumps(settings))
    nodespecs.publish(tx, cluster)
    audit.record(tx, tenant_id=op.tenant_id, actor=op.actor, action="reconfigure", object_type="cluster",
                 object_id=cluster_id, source=op.source, detail={"fields": sorted(changes)})
    audit.event(tx, tenant_id=op.tenant_id, cluster_id=cluster_id, kind="cluster.reconfigured",
                message=f"changed {', '.join(sorted(changes)) or 'nothing'}")
    return view(tx, cluster, timing)


def upgrade(tx: Tx, op: Operator, cluster_id: str, profile_id: str, timing: hosts.Timing,
            step_timeout_s: int = DEFAULT_STEP_TIMEOUT_S) -> dict[str, Any]:
    """Start a rolling upgrade: control planes first, one node at a time, each gated on its health
    and limited to step_timeout_s (kept in the operation, so every console process enforces the
    limit the upgrade started with)."""
    cluster = _row(tx, op.tenant_id, cluster_id, lock=True)
    _idle(cluster)
    target = packstore.get_profile(tx, op.tenant_id, profile_id, ("body", "profile_id"))
    clusterrules.check_upgrade(tx, op, cluster, target)
    members = nodespecs.members(tx, cluster_id)
    status = derived_status(cluster, members, timing)
    if status != "running":
        raise conflict(("path", "cluster_id"), f"cluster is {status}; upgrades start only on a running cluster")
    order = [m["id"] for m in members if m["pool"] == CP] + [m["id"] for m in members if m["pool"] == WORKER]
    operation = {"type": "upgrade", "state": "running", "from_profile_id": cluster["profile_id"],
                 "to_profile_id": target["id"], "order": order, "done": [], "current": None,
                 "waiting_generation": None, "rollback": {}, "reason": None, "started_at": now_ms(),
                 "step_timeout_s": step_timeout_s, "step_started_at": None, "deadline_at": None}
    audit.record(tx, tenant_id=op.tenant_id, actor=op.actor, action="upgrade", object_type="cluster",
                 object_id=cluster_id, source=op.source, detail={"to_profile_id": target["id"]})
    audit.event(tx, tenant_id=op.tenant_id, cluster_id=cluster_id, kind="upgrade.started",
                message=f"to {target['name']} v{target['version']}: {len(order)} nodes, control planes first")
    cluster = _step(tx, cluster, operation)
    return view(tx, cluster, timing)


def _save_op(tx: Tx, cluster: dict, operation: dict | None, **changes: Any) -> dict:
    return _bump(tx, cluster, operation=dumps(operation) if operation else None, **changes)


def _store_op(tx: Tx, cluster: dict, operation: dict) -> dict:
    """Write the operation document alone (no new cluster generation: no node's spec changes)."""
    cluster["operation"] = dumps(operation)
    tx.execute("UPDATE clusters SET operation = ? WHERE id = ?", (cluster["operation"], cluster["id"]))
    return cluster


def _arm(operation: dict, now: int | None = None) -> None:
    """Start the clock of the current step: one node's upgrade, or the whole rollback."""
    now = now or now_ms()
    operation.setdefault("step_timeout_s", DEFAULT_STEP_TIMEOUT_S)  # an operation from before step limits
    operation["step_started_at"] = now
    operation["deadline_at"] = now + operation["step_timeout_s"] * 1000


def _duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    return "".join(f"{v}{unit}" for v, unit in ((hours, "h"), *zip(divmod(rest, 60), "ms")) if v) or "0s"


def _step(tx: Tx, cluster: dict, operation: dict) -> dict:
    """Move the upgrade to its next node, or finish it."""
    remaining = [h for h in operation["order"] if h not in operation["done"]]
    if not remaining:
        audit.event(tx, tenant_id=cluster["tenant_id"], cluster_id=cluster["id"], kind="upgrade.completed",
                    message=f"all {len(operation['done'])} nodes upgraded")
        cluster = _save_op(tx, cluster, None, profile_id=operation["to_profile_id"])
        nodespecs.publish(tx, cluster)
        return cluster
    host_id = remaining[0]
    tx.execute("UPDATE hosts SET profile_id = ? WHERE id = ?", (operation["to_profile_id"], host_id))
    cluster = _save_op(tx, cluster, operation)
    nodespecs.publish(tx, cluster, only={host_id})
    operation["current"] = host_id
    operation["waiting_generation"] = hosts.spec_of(tx, host_id)[0]
    _arm(operation)
    audit.event(tx, tenant_id=cluster["tenant_id"], cluster_id=cluster["id"], host_id=host_id, kind="upgrade.node",
                message=f"upgrading {host_id} ({len(operation['done']) + 1}/{len(operation['order'])}), "
                        f"limit {_duration(operation['step_timeout_s'])}")
    return _store_op(tx, cluster, operation)


def _roll_back(tx: Tx, cluster: dict, operation: dict, reason: str) -> dict:
    """Return every node already moved to the new profile to the old one, all at once."""
    touched = operation["done"] + ([operation["current"]] if operation["current"] else [])
    operation.update(state="rolling-back", reason=reason, current=None, waiting_generation=None)
    for host_id in touched:
        tx.execute("UPDATE hosts SET profile_id = ? WHERE id = ?", (operation["from_profile_id"], host_id))
    cluster = _save_op(tx, cluster, operation)
    nodespecs.publish(tx, cluster, only=set(touched))
    operation["rollback"] = {h: hosts.spec_of(tx, h)[0] for h in touched}
    audit.event(tx, tenant_id=cluster["tenant_id"], cluster_id=cluster["id"], kind="upgrade.rolling_back",
                severity="warning", message=f"{reason}; rolling back {touched or 'no nodes'}")
    if not touched:
        return _finish_rollback(tx, cluster, operation)
    _arm(operation)  # the rollback as a whole gets the same limit as one step
    return _store_op(tx, cluster, operation)


def _finish_rollback(tx: Tx, cluster: dict, operation: dict) -> dict:
    audit.event(tx, tenant_id=cluster["tenant_id"], cluster_id=cluster["id"], kind="upgrade.rolled_back",
                message=f"upgrade ended ({operation['reason']}); every node runs the previous profile")
    return _save_op(tx, cluster, None)


def upgrades_due(tx: Tx, now: int) -> tuple[list[str], int | None]:
    """IDs of clusters whose upgrade step or rollback is past its deadline (or has none yet), and
    the earliest deadline still ahead, if any."""
    due, ahead = [], []
    for row in tx.all("SELECT id, operation FROM clusters WHERE operation IS NOT NULL"):
        deadline = json.loads(row["operation"]).get("deadline_at") or 0
        if deadline <= now:
            due.append(row["id"])
        else:
            ahead.append(deadline)
    return due, min(ahead, default=None)


def expire_upgrade_step(tx: Tx, cluster_id: str, now: int, step_timeout_s: int) -> str | None:
    """Act on an upgrade whose clock ran out; return what was done (None: nothing was due).

    A running step is rolled back exactly like a node that reported ``failed``. A rollback whose
    nodes did not all confirm ends: their desired specs already name the previous profile, which
    they apply when they return; the cluster shows ``degraded`` until then, and the operator may
    scale, reconfigure or delete it. Safe in several processes at once: the row is locked and the
    deadline read again under the lock, so whoever comes second finds nothing due.
    """
    cluster = tx.one("SELECT * FROM clusters WHERE id = ?" + tx.for_update, (cluster_id,))
    operation = json.loads(cluster["operation"]) if cluster and cluster["operation"] else None
    if operation is None or (operation.get("deadline_at") or 0) > now:
        return None
    if not operation.get("deadline_at"):  # started by a console without step limits: the clock starts now
        operation["step_timeout_s"] = step_timeout_s
        _arm(operation, now)
        _store_op(tx, cluster, operation)
        return "armed"
    if operation["state"] == "running":
        _time_out_step(tx, cluster, operation)
        return "rolled-back"
    _abandon_rollback(tx, cluster, operation)
    return "rollback-ended"


def _time_out_step(tx: Tx, cluster: dict, operation: dict) -> None:
    host_id, limit_s = operation["current"], operation["step_timeout_s"]
    reason = f"node {host_id} did not report the upgrade within {_duration(limit_s)}"
    audit.record(tx, tenant_id=cluster["tenant_id"], actor="console", action="upgrade-step-timeout",
                 object_type="cluster", object_id=cluster["id"], source="console",
                 detail={"host_id": host_id, "step_timeout_s": limit_s, "step_started_at": operation["step_started_at"]})
    audit.event(tx, tenant_id=cluster["tenant_id"], cluster_id=cluster["id"], host_id=host_id,
                kind="upgrade.step_timeout", severity="error", message=reason)
    _roll_back(tx, cluster, operation, reason)


def _abandon_rollback(tx: Tx, cluster: dict, operation: dict) -> None:
    silent, limit_s = sorted(operation["rollback"]), operation["step_timeout_s"]
    audit.record(tx, tenant_id=cluster["tenant_id"], actor="console", action="upgrade-rollback-timeout",
                 object_type="cluster", object_id=cluster["id"], source="console",
                 detail={"unconfirmed": silent, "step_timeout_s": limit_s})
    audit.event(tx, tenant_id=cluster["tenant_id"], cluster_id=cluster["id"], kind="upgrade.rollback_unconfirmed",
                severity="error",
                message=f"rollback ended after {_duration(limit_s)}: {', '.join(silent)} did not confirm the "
                        f"previous profile (the upgrade stopped because {operation['reason']}); their specs name it "
                        "and they apply it when they return, the cluster is degraded until then (replace them with "
                        "PUT /pools, or delete the cluster, if they will not return)")
    _save_op(tx, cluster, None)


def cancel_upgrade(tx: Tx, op: Operator, cluster_id: str, timing: hosts.Timing) -> dict[str, Any]:
    cluster = _row(tx, op.tenant_id, cluster_id, lock=True)
    operation = json.loads(cluster["operation"]) if cluster["operation"] else None
    if operation is None or operation["state"] != "running":
        raise conflict(("path", "cluster_id"), "no running upgrade to cancel")
    audit.record(tx, tenant_id=op.tenant_id, actor=op.actor, action="cancel-upgrade", object_type="cluster",
                 object_id=cluster_id, source=op.source)
    return view(tx, _roll_back(tx, cluster, operation, f"cancelled by {op.actor}"), timing)


def delete(tx: Tx, op: Operator, cluster_id: str, *, force: bool, timing: hosts.Timing) -> dict[str, Any] | None:
    """Reset every node; hosts return to ready as their agents confirm (or at once with force)."""
    cluster = _row(tx, op.tenant_id, cluster_id, lock=True)
    audit.record(tx, tenant_id=op.tenant_id, actor=op.actor, action="delete", object_type="cluster",
                 object_id=cluster_id, source=op.source, detail={"force": force})
    members = nodespecs.members(tx, cluster_id)
    if force:
        for m in members:
            nodespecs.detach(tx, m["id"])
            hosts.write_spec(tx, m["id"], {**hosts.empty_spec(m["id"]), "action": "reset"})
        return _remove(tx, cluster, "deleted with force; agents reset their nodes without confirming")
    if not cluster["deleting"]:
        for m in members:
            if m["pool"] != LEAVING:
                nodespecs.reset_host(tx, m["id"])
        cluster = _save_op(tx, cluster, None, deleting=1)
        audit.event(tx, tenant_id=op.tenant_id, cluster_id=cluster_id, kind="cluster.deleting",
                    message=f"resetting {len(members)} nodes")
    if not members:
        return _remove(tx, cluster, "no nodes left")
    return view(tx, cluster, timing)


def _remove(tx: Tx, cluster: dict, why: str) -> None:
    audit.event(tx, tenant_id=cluster["tenant_id"], cluster_id=cluster["id"], kind="cluster.deleted", message=why)
    tx.execute("DELETE FROM clusters WHERE id = ?", (cluster["id"],))


def _learn_ca_hash(tx: Tx, cluster: dict, host: dict) -> dict:
    """The bootstrap node reports the cluster CA's hash; every member's spec then carries it so
    joining nodes can verify the API server they join (kubeadm discovery)."""
    reported = json.loads(host["kubernetes"] or "{}").get("ca_hash")
    settings = json.loads(cluster["settings"])
    if not reported or host["id"] != settings["bootstrap_host"] or reported == settings.get("ca_hash"):
        return cluster
    settings["ca_hash"] = reported
    cluster = _bump(tx, cluster, settings=dumps(settings))
    nodespecs.publish(tx, cluster)
    audit.event(tx, tenant_id=cluster["tenant_id"], cluster_id=cluster["id"], host_id=host["id"],
                kind="cluster.ca_hash", message=f"cluster CA {reported[:19]}… published to every member")
    return cluster


def on_host_report(tx: Tx, host: dict, timing: hosts.Timing) -> None:
    """React to an agent's status report: leave, gate an upgrade step, roll back, mark running."""
    cluster = tx.one("SELECT * FROM clusters WHERE id = ?" + tx.for_update, (host["cluster_id"],))
    if cluster is None:
        return
    cluster = _learn_ca_hash(tx, cluster, host)
    current_gen = host["observed_generation"] == host["spec_generation"]
    if host["pool"] == LEAVING:
        if current_gen and host["phase"] == "ready":
            nodespecs.detach(tx, host["id"])
            audit.event(tx, tenant_id=cluster["tenant_id"], cluster_id=cluster["id"], host_id=host["id"],
                        kind="node.left", message=f"{host['id']} reset and returned to ready")
            if cluster["deleting"] and not nodespecs.members(tx, cluster["id"]):
                _remove(tx, cluster, "every node reset")
        return
    operation = json.loads(cluster["operation"]) if cluster["operation"] else None
    if operation and operation["state"] == "running" and host["id"] == operation["current"] \
            and host["observed_generation"] >= operation["waiting_generation"]:
        if host["phase"] == "ready":
            operation["done"].append(host["id"])
            _step(tx, cluster, operation)
        elif host["phase"] == "failed":
            _roll_back(tx, cluster, operation, f"node {host['id']} failed the upgrade")
        return
    if operation and operation["state"] == "rolling-back" and host["id"] in operation["rollback"]:
        if host["phase"] == "ready" and host["observed_generation"] >= operation["rollback"][host["id"]]:
            del operation["rollback"][host["id"]]
            if operation["rollback"]:
                _store_op(tx, cluster, operation)
            else:
                _finish_rollback(tx, cluster, operation)
        return
    if not cluster["ever_running"] and not cluster["deleting"]:
        members = nodespecs.members(tx, cluster["id"])
        if all(_healthy(m, timing) for m in members):
            tx.execute("UPDATE clusters SET ever_running = 1 WHERE id = ?", (cluster["id"],))
            audit.event(tx, tenant_id=cluster["tenant_id"], cluster_id=cluster["id"], kind="cluster.running",
                        message=f"all {len(members)} nodes ready")
