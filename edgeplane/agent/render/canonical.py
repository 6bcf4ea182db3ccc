"""Canonical Kubernetes (the ``k8s`` snap): bootstrap configuration on the first control plane,
join configuration on the others. Built-in features the profile replaces are disabled, like the
K3s/RKE2 defaults: ingress, gateway, load balancer, local storage, metrics-server."""

from __future__ import annotations

from typing import Any

import yaml

from edgeplane.agent.render.context import DATASTORE_LISTEN, NodeContext, Rendered

BOOTSTRAP_PATH = "/var/lib/edgeplane/canonical/bootstrap.yaml"
JOIN_PATH = "/var/lib/edgeplane/canonical/join.yaml"
INSTALLER = "/opt/edgeplane/installers/canonical-install.sh"


def render_canonical(ctx: NodeContext) -> Rendered:
    sans = [san for san in (ctx.cluster.endpoint.vip, ctx.cluster.endpoint.ddns, ctx.node_ip) if san]
    kubelet_args = {"--node-ip": ctx.node_ip, "--read-only-port": "0",
                    "--pod-manifest-path": "/etc/kubernetes/manifests"}
    out = Rendered()
    if ctx.cluster.bootstrap and ctx.is_control_plane:
        pod, svc = ctx.cidrs()
        cni = ctx.cni()
        doc: dict[str, Any] = {
            "cluster-config": {
                "network": {"enabled": cni in (None, "cilium")},  # the snap's own CNI is Cilium
                "dns": {"enabled": True},
                "ingress": {"enabled": False},
                "gateway": {"enabled": False},
                "load-balancer": {"enabled": False},
                "local-storage": {"enabled": False},
                "metrics-server": {"enabled": False},
            },
            "pod-cidr": pod,
            "service-cidr": svc,
            "extra-sans": sans,
            "extra-node-kubelet-args": kubelet_args,
            **_datastore(ctx),
        }
        for key, value in ctx.cluster_config().items():
            doc[key] = value
        out.add(BOOTSTRAP_PATH, yaml.safe_dump(doc, sort_keys=False), 0o600)
        out.commands.append([INSTALLER, "bootstrap", "--file", BOOTSTRAP_PATH])
    else:
        doc = {"extra-sans": sans, "extra-node-kubelet-args": kubelet_args} if ctx.is_control_plane else {
            "extra-node-kubelet-args": kubelet_args}
        out.add(JOIN_PATH, yaml.safe_dump(doc, sort_keys=False), 0o600)
        out.commands.append([INSTALLER, "join-cluster", "--file", JOIN_PATH, "--server",
                             f"{ctx.api_host()}:{ctx.cluster.endpoint.port}"])
    return out


def _datastore(ctx: NodeContext) -> dict[str, Any]:
    if ctx.cluster.datastore == "etcd":
        return {"datastore-type": "etcd"}
    return {"datastore-type": "external", "datastore-servers": [f"http://{DATASTORE_LISTEN}"]}
