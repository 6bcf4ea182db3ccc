"""kube-vip static pod: ARP-announced VIP for the API server, with the reference system's fixed env."""

from __future__ import annotations

import yaml

from edgeplane.agent.render.context import NodeContext, Rendered

KUBE_VIP_IMAGE = "ghcr.io/kube-vip/kube-vip:v0.8.9"
MANIFEST_DIRS = {
    "k3s": "/var/lib/rancher/k3s/agent/pod-manifests",
    "rke2": "/var/lib/rancher/rke2/agent/pod-manifests",
}
KUBECONFIGS = {"k3s": "/etc/rancher/k3s/k3s.yaml", "rke2": "/etc/rancher/rke2/rke2.yaml"}
DEFAULT_MANIFEST_DIR = "/etc/kubernetes/manifests"
DEFAULT_KUBECONFIG = "/etc/kubernetes/admin.conf"


def manifest_path(distribution: str) -> str:
    return f"{MANIFEST_DIRS.get(distribution, DEFAULT_MANIFEST_DIR)}/kube-vip.yaml"


def render_kube_vip(ctx: NodeContext) -> Rendered:
    out = Rendered()
    if not ctx.vip_active():
        return out
    endpoint = ctx.cluster.endpoint
    env = {
        "vip_arp": "true", "port": str(endpoint.port), "vip_cidr": "32", "cp_enable": "true",
        "cp_namespace": "kube-system", "vip_ddns": "true" if endpoint.ddns else "false",
        "vip_leaderelection": "true", "vip_leaseduration": "30", "vip_renewdeadline": "20",
        "vip_retryperiod": "4", "address": endpoint.ddns or str(endpoint.vip),
    }
    for key, value in ctx.kubevip_args().items():  # vip_interface, svc_enable, vip_servicesinterface
        env[str(key)] = str(value).lower() if isinstance(value, bool) else str(value)
    kubeconfig = KUBECONFIGS.get(ctx.distribution, DEFAULT_KUBECONFIG)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "kube-vip", "namespace": "kube-system"},
        "spec": {
            "hostNetwork": True,
            "hostAliases": [{"ip": "127.0.0.1", "hostnames": ["kubernetes"]}],
            "containers": [{
                "name": "kube-vip",
                "image": KUBE_VIP_IMAGE,
                "imagePullPolicy": "IfNotPresent",
                "args": ["manager"],
                "env": [{"name": k, "value": v} for k, v in env.items()],
                "securityContext": {"capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}},
                "volumeMounts": [{"name": "kubeconfig", "mountPath": "/etc/kubernetes/admin.conf"}],
            }],
            "volumes": [{"name": "kubeconfig", "hostPath": {"path": kubeconfig}}],
        },
    }
    out.add(manifest_path(ctx.distribution), yaml.safe_dump(pod, sort_keys=False), 0o600)
    return out
