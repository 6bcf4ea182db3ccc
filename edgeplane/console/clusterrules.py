"""Cluster rules: members, datastore by size, endpoint, certificates, keys, and upgrade limits.

Each check raises ApiError naming the field and the reason, before anything is written.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
from typing import Any

from edgeplane.console import hosts, packstore, profiles
from edgeplane.console.auth import Operator
from edgeplane.console.db import Tx
from edgeplane.console.errors import invalid


def choose_datastore(cp_count: int, dist: dict[str, Any], management_mode: str) -> str:
    """1 control plane: SQLite datastore; 2: two-node HA; 3, 5, ...: etcd."""
    loc = ("body", "control_plane")
    if cp_count == 1:
        return "sqlite"
    if cp_count == 2:
        if not dist["rules"].get("two_node"):
            raise invalid(loc, f"two control-plane nodes need two-node HA, which {dist['display_name']} does not "
                               "support (K3s only); use 1 or 3 control-plane nodes")
        if management_mode != "central":
            raise invalid(("body", "management_mode"), "two-node HA needs central management mode")
        return "two-node"
    if cp_count % 2 == 0:
        raise invalid(loc, f"etcd needs an odd number of control-plane nodes (got {cp_count})")
    return "etcd"


def host_ips(row: dict[str, Any]) -> set[str]:
    inventory = json.loads(row["inventory"])
    return {ip.split("/")[0] for nic in inventory.get("nics", []) for ip in nic.get("ips", [])}


def check_members(tx: Tx, op: Operator, body: dict[str, Any], arch: str, *, current: set[str]) -> dict[str, dict]:
    """Each listed host exists in the tenant, appears once and is ready (or already a member)."""
    seen: dict[str, dict] = {}
    timing = hosts.Timing()
    for pool in ("control_plane", "workers"):
        for i, host_id in enumerate(body[pool]):
            loc = ("body", pool, i)
            if host_id in seen:
                raise invalid(loc, f"host {host_id!r} is listed more than once")
            row = tx.one(f"SELECT {hosts.HOST_COLUMNS} FROM hosts WHERE id = ? AND tenant_id = ?" + tx.for_update,
                         (host_id, op.tenant_id))
            if row is None:
                raise invalid(loc, f"unknown host {host_id!r}")
            if host_id not in current:
                status = hosts.derived_status(row, timing)
                if status != "ready":
                    raise invalid(loc, f"host {host_id!r} is {status}; only ready hosts can join a cluster")
            host_arch = json.loads(row["inventory"]).get("arch")
            if host_arch and host_arch != arch:
                raise invalid(loc, f"host {host_id!r} is {host_arch} but the profile is {arch}")
            seen[host_id] = row
    return seen


def check_endpoint(body: dict[str, Any], dist: dict[str, Any], members: dict[str, dict]) -> dict[str, Any]:
    endpoint = dict(body.get("endpoint") or {})
    endpoint.setdefault("port", 6443)
    if body.get("overlay_cidr"):
        if not dist["rules"].get("overlay"):
            raise invalid(("body", "overlay_cidr"), f"{dist['display_name']} does not support the overlay network")
        network = ipaddress.ip_network(body["overlay_cidr"], strict=False)
        if network.num_addresses < 4:
            raise invalid(("body", "overlay_cidr"), "the overlay range needs at least 4 addresses")
        # The first usable address of the overlay range is the cluster's internal VIP.
        endpoint["vip"] = str(next(network.hosts()))
        return endpoint
    if not endpoint.get("vip") and not endpoint.get("ddns"):
        raise invalid(("body", "endpoint"), "set endpoint.vip or endpoint.ddns (or overlay_cidr)")
    if endpoint.get("vip"):
        for host_id, row in members.items():
            if endpoint["vip"] in host_ips(row):
                raise invalid(("body", "endpoint", "vip"), f"the VIP is host {host_id!r}'s own address")
    return endpoint


def check_ca_certs(certs: list[str]) -> None:
    from cryptography import x509

    for i, pem in enumerate(certs):
        try:
            cert = x509.load_pem_x509_certificate(pem.encode())
        except ValueError as exc:
            raise invalid(("body", "ca_certs", i), f"not a PEM X.509 certificate ({exc})") from None
        try:
            is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not is_ca:
            raise invalid(("body", "ca_certs", i), "certificate is not a CA (basicConstraints CA:TRUE missing)")


def check_ssh_keys(ssh_keys: list[str]) -> None:
    from cryptography.hazmat.primitives.serialization import load_ssh_public_key

    for i, key in enumerate(ssh_keys):
        try:
            load_ssh_public_key(key.strip().encode())
        except Exception as exc:  # noqa: BLE001 - cryptography raises several types for bad input
            raise invalid(("body", "ssh_keys", i), f"not an OpenSSH public key ({type(exc).__name__})") from None


def settings_from(body: dict[str, Any], endpoint: dict[str, Any]) -> dict[str, Any]:
    check_ca_certs(body.get("ca_certs") or [])
    check_ssh_keys(body.get("ssh_keys") or [])
    return {"endpoint": endpoint, "overlay_cidr": body.get("overlay_cidr"),
            "proxy": body.get("proxy") or {"http_proxy": None, "https_proxy": None, "no_proxy": None},
            "ca_certs": body.get("ca_certs") or [], "ntp_servers": body.get("ntp_servers") or [],
            "ssh_keys": body.get("ssh_keys") or [], "management_mode": body["management_mode"],
            "bootstrap_host": body["control_plane"][0],
            # The secret nodes join with (K3s/RKE2 token, kubeadm bootstrap token): served only in
            # members' node specs, never in cluster views or the audit log.
            "join_token": secrets.token_hex(32)}


def check_upgrade(tx: Tx, op: Operator, cluster: dict, target: dict) -> None:
    """Same profile, same distribution, no downgrade, one minor at a time, same CNI and CSI."""
    loc = ("body", "profile_id")
    current = packstore.get_profile(tx, op.tenant_id, cluster["profile_id"])
    if target["name"] != current["name"]:
        raise invalid(loc, f"must be a version of profile {current['name']!r}, not {target['name']!r}")
    if target["id"] == current["id"]:
        raise invalid(loc, f"the cluster already runs {current['name']} v{current['version']}")
    new_layers = packstore.resolved_layers(tx, op.tenant_id, target)
    profiles.check_upgrade_layers(packstore.resolved_layers(tx, op.tenant_id, current), new_layers)
    new = profiles.distribution(new_layers)
    if target["arch"] != current["arch"]:
        raise invalid(loc, "the profile architecture cannot change")
    choose_datastore({"sqlite": 1, "two-node": 2, "etcd": 3}[cluster["datastore"]], new,
                     json.loads(cluster["settings"])["management_mode"])
