"""K3s and RKE2 ``config.yaml`` (and the installer invocation) from the desired spec.

Both read the same flat YAML of CLI flags. Defaults follow the reference system: the bundled
ingress, service load balancer, local storage and metrics-server are disabled (the profile brings
its own), and the built-in CNI is off when the profile's network layer chooses another one.
"""

from __future__ import annotations

from typing import Any

import yaml

from edgeplane.agent.render.context import DATASTORE_LISTEN, NodeContext, Rendered

K3S_DISABLES = ["traefik", "servicelb", "local-storage", "metrics-server"]
RKE2_DISABLES = ["rke2-ingress-nginx", "rke2-metrics-server"]
RKE2_BUILTIN_CNIS = {"canal", "calico", "cilium", "flannel"}
CONFIG_PATHS = {"k3s": "/etc/rancher/k3s/config.yaml", "rke2": "/etc/rancher/rke2/config.yaml"}
INSTALLERS = {"k3s": "/opt/edgeplane/installers/k3s-install.sh", "rke2": "/opt/edgeplane/installers/rke2-install.sh"}
# per-flag list merge: the profile may add to these, never silently drop the defaults
_LIST_FLAGS = {"disable", "tls-san", "kube-apiserver-arg", "kubelet-arg", "kube-controller-manager-arg", "node-label"}


def render_rancher(ctx: NodeContext) -> Rendered:
    dist = ctx.distribution
    config = _base_config(ctx) | _datastore(ctx) | _cni(ctx)
    for key, value in ctx.cluster_config().items():
        key = "disable" if key == "Disable" else key  # the reference pack spells it "Disable"
        if key in _LIST_FLAGS and isinstance(value, list):
            config[key] = list(dict.fromkeys([*config.get(key, []), *value]))
        elif key not in ("cluster-cidr", "service-cidr") or ctx.is_control_plane:
            config[key] = value
    if not ctx.is_control_plane:
        config = {k: v for k, v in config.items() if k in _AGENT_FLAGS}
    out = Rendered()
    out.add(CONFIG_PATHS[dist], yaml.safe_dump(config, sort_keys=False), 0o600)
    role = ("server" if ctx.is_control_plane else "agent")
    out.commands.append([INSTALLERS[dist], f"--{dist}-version", ctx.cluster.kubernetes_version, "--role", role,
                         "--config", CONFIG_PATHS[dist]])
    return out


_AGENT_FLAGS = {"node-name", "node-ip", "token", "server", "kubelet-arg", "node-label", "with-node-id"}


def _base_config(ctx: NodeContext) -> dict[str, Any]:
    pod, svc = ctx.cidrs()
    config: dict[str, Any] = {
        "node-name": ctx.hostname,
        "node-ip": ctx.node_ip,
        "token": ctx.join_secret(),
        "write-kubeconfig-mode": "0600",
        "cluster-cidr": pod,
        "service-cidr": svc,
        "tls-san": [san for san in (ctx.cluster.endpoint.vip, ctx.cluster.endpoint.ddns, ctx.node_ip) if san],
        "disable": list(K3S_DISABLES if ctx.distribution == "k3s" else RKE2_DISABLES),
        "kubelet-arg": ["read-only-port=0", "event-qps=0"],
    }
    # workers join through the API endpoint; so do extra etcd servers. With an external datastore
    # (sqlite, two-node) every server reads the shared state instead of joining a peer.
    joins_peer = not ctx.is_control_plane or (ctx.cluster.datastore == "etcd" and not ctx.cluster.bootstrap)
    if joins_peer:
        config["server"] = f"https://{ctx.api_host()}:{9345 if ctx.distribution == 'rke2' else ctx.cluster.endpoint.port}"
    return config


def _datastore(ctx: NodeContext) -> dict[str, Any]:
    if not ctx.is_control_plane:
        return {}
    if ctx.cluster.datastore in ("sqlite", "two-node"):
        # the local edgeplane datastore (SQLite) or two-node service (PostgreSQL pair) speaks etcd v3
        return {"datastore-endpoint": f"http://{DATASTORE_LISTEN}"}
    # etcd on 3+ control planes: the bootstrap server initialises embedded etcd, the others join it
    return {"cluster-init": True} if ctx.cluster.bootstrap and ctx.distribution == "k3s" else {}


def _cni(ctx: NodeContext) -> dict[str, Any]:
    cni = ctx.cni()
    if ctx.distribution == "rke2":
        return {"cni": cni if cni in RKE2_BUILTIN_CNIS else ("canal" if cni is None else "none")}
    if cni in (None, "flannel"):
        return {}
    return {"flannel-backend": "none", "disable-network-policy": True}
