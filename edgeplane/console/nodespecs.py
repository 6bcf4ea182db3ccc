"""Per-host desired node specs: what each member's agent is told to run, under a new generation."""

from __future__ import annotations

import json
from typing import Any

from edgeplane.common.profiles import with_profile
from edgeplane.console import hosts, packstore, profiles
from edgeplane.console.clusterrules import host_ips
from edgeplane.console.db import Tx

CP, WORKER, LEAVING = "control-plane", "worker", "leaving"


def members(tx: Tx, cluster_id: str) -> list[dict[str, Any]]:
    return tx.all(f"SELECT {hosts.HOST_COLUMNS} FROM hosts WHERE cluster_id = ? ORDER BY id", (cluster_id,))


def profile_block(tx: Tx, tenant_id: str, profile_id: str) -> tuple[dict, list[dict], dict]:
    profile = packstore.get_profile(tx, tenant_id, profile_id)
    return profiles.profile_block(profile, packstore.resolver(tx, tenant_id))


def node_spec(cluster: dict, host: dict, members: list[dict], profile: tuple[dict, list[dict], dict]) -> dict:
    settings = json.loads(cluster["settings"])
    pools = {CP: [], WORKER: []}
    for m in members:
        if m["pool"] in pools:
            pools[m["pool"]].append({"host_id": m["id"], "ips": sorted(host_ips(m))})
    spec = {
        "host_id": host["id"], "action": "apply",
        "cluster": {
            "id": cluster["id"], "name": cluster["name"], "generation": cluster["generation"], "role": host["pool"],
            "bootstrap": host["id"] == settings["bootstrap_host"], "datastore": cluster["datastore"],
            "endpoint": settings["endpoint"], "overlay_cidr": settings["overlay_cidr"], "proxy": settings["proxy"],
            "ca_certs": settings["ca_certs"], "ntp_servers": settings["ntp_servers"], "ssh_keys": settings["ssh_keys"],
            "management_mode": settings["management_mode"], "join_token": settings["join_token"],
            "ca_hash": settings.get("ca_hash"),
            "control_plane": pools[CP], "workers": pools[WORKER],
        },
    }
    return with_profile(spec, *profile)


def publish(tx: Tx, cluster: dict, only: set[str] | None = None) -> None:
    """Write the desired spec of every member (or of ``only``) from the cluster's current state."""
    rows = members(tx, cluster["id"])
    cache: dict[str, tuple] = {}
    for host in rows:
        if host["pool"] == LEAVING or (only is not None and host["id"] not in only):
            continue
        pid = host["profile_id"]
        if pid not in cache:
            cache[pid] = profile_block(tx, cluster["tenant_id"], pid)
        hosts.write_spec(tx, host["id"], node_spec(cluster, host, rows, cache[pid]))


def reset_host(tx: Tx, host_id: str) -> None:
    tx.execute("UPDATE hosts SET pool = ? WHERE id = ?", (LEAVING, host_id))
    hosts.write_spec(tx, host_id, {**hosts.empty_spec(host_id), "action": "reset"})


def detach(tx: Tx, host_id: str) -> None:
    tx.execute("UPDATE hosts SET cluster_id = NULL, pool = NULL, profile_id = NULL WHERE id = ?", (host_id,))
    hosts.write_spec(tx, host_id, hosts.empty_spec(host_id))
