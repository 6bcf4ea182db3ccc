"""kubeadm configuration for PXK-E: InitConfiguration + ClusterConfiguration on the bootstrap
control plane, JoinConfiguration elsewhere, plus a KubeletConfiguration.

kubeadm's config API is ``kubeadm.k8s.io/v1beta4`` from Kubernetes 1.31 and ``v1beta3`` before;
the two differ in how extra arguments are written (a map in v1beta3, a list of name/value pairs in
v1beta4), which is the part most often got wrong.
"""

from __future__ import annotations

from typing import Any

import yaml

from edgeplane.agent.render.context import DATASTORE_LISTEN, NodeContext, Rendered

CONFIG_PATH = "/etc/kubernetes/kubeadm-config.yaml"
INSTALLER = "/opt/edgeplane/installers/kubeadm-install.sh"
CRI_SOCKET = "unix:///run/containerd/containerd.sock"
# the reference PXK-E pack's hardening defaults
API_SERVER_ARGS = {
    "secure-port": "6443",
    "authorization-mode": "RBAC,Node",
    "audit-log-path": "/var/log/apiserver/audit.log",
    "audit-log-maxage": "30", "audit-log-maxbackup": "10", "audit-log-maxsize": "100",
    "default-not-ready-toleration-seconds": "60", "default-unreachable-toleration-seconds": "60",
    "enable-admission-plugins": "AlwaysPullImages,NamespaceLifecycle,ServiceAccount,NodeRestriction",
    "profiling": "false",
}
CONTROLLER_MANAGER_ARGS = {"terminated-pod-gc-threshold": "25", "profiling": "false"}
KUBELET_CONFIG = {
    "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
    "readOnlyPort": 0, "protectKernelDefaults": True, "eventRecordQPS": 0,
    "featureGates": {"RotateKubeletServerCertificate": True}, "serverTLSBootstrap": True,
    "cgroupDriver": "systemd",
}


def kubeadm_api_version(kubernetes_version: str) -> str:
    major, minor = (int(part) for part in kubernetes_version.lstrip("v").split(".")[:2])
    return "kubeadm.k8s.io/v1beta4" if (major, minor) >= (1, 31) else "kubeadm.k8s.io/v1beta3"


def _args(api: str, args: dict[str, str]) -> Any:
    if api.endswith("v1beta4"):
        return [{"name": k, "value": str(v)} for k, v in args.items()]
    return {k: str(v) for k, v in args.items()}


def render_kubeadm(ctx: NodeContext) -> Rendered:
    api = kubeadm_api_version(ctx.cluster.kubernetes_version)
    overrides = ctx.cluster_config()
    docs: list[dict[str, Any]]
    if ctx.cluster.bootstrap and ctx.is_control_plane:
        docs = [_init(ctx, api, overrides), _cluster(ctx, api, overrides)]
        phase = "init"
    else:
        docs = [_join(ctx, api, overrides)]
        phase = "join"
    docs.append(KUBELET_CONFIG)
    out = Rendered()
    out.add(CONFIG_PATH, yaml.safe_dump_all(docs, sort_keys=False), 0o600)
    out.commands.append([INSTALLER, phase, "--config", CONFIG_PATH, "--kubernetes-version",
                         ctx.cluster.kubernetes_version])
    return out


def _node_registration(ctx: NodeContext, api: str) -> dict[str, Any]:
    reg: dict[str, Any] = {"name": ctx.hostname, "criSocket": CRI_SOCKET,
                           "kubeletExtraArgs": _args(api, {"node-ip": ctx.node_ip})}
    if ctx.is_control_plane and ctx.cluster.workers:
        reg["taints"] = [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]
    return reg


def _init(ctx: NodeContext, api: str, overrides: dict[str, Any]) -> dict[str, Any]:
    doc = {
        "apiVersion": api, "kind": "InitConfiguration",
        "bootstrapTokens": [{"token": ctx.kubeadm_token(), "ttl": "24h0m0s", "groups":
                             ["system:bootstrappers:kubeadm:default-node-token"],
                             "usages": ["signing", "authentication"]}],
        "certificateKey": ctx.join_secret()[:64],
        "nodeRegistration": _node_registration(ctx, api),
        "localAPIEndpoint": {"advertiseAddress": ctx.node_ip, "bindPort": ctx.cluster.endpoint.port},
    }
    return _merge(doc, overrides.get("initConfiguration"))


def _cluster(ctx: NodeContext, api: str, overrides: dict[str, Any]) -> dict[str, Any]:
    pod, svc = ctx.cidrs()
    if ctx.cluster.datastore == "etcd":
        etcd: dict[str, Any] = {"local": {"dataDir": "/etc/kubernetes/etcd", "extraArgs": _args(
            api, {"listen-client-urls": "https://0.0.0.0:2379"})}}
    else:  # edgeplane datastore (sqlite) or two-node service on the node, plain etcd v3 over loopback
        etcd = {"external": {"endpoints": [f"http://{DATASTORE_LISTEN}"]}}
    sans = [san for san in (ctx.cluster.endpoint.vip, ctx.cluster.endpoint.ddns, ctx.node_ip) if san]
    timeout = {"timeoutForControlPlane": "10m0s"} if api.endswith("v1beta3") else {}
    doc = {
        "apiVersion": api, "kind": "ClusterConfiguration",
        "clusterName": ctx.cluster.name,
        "kubernetesVersion": f"v{ctx.cluster.kubernetes_version.lstrip('v')}",
        "controlPlaneEndpoint": f"{ctx.api_host()}:{ctx.cluster.endpoint.port}",
        "networking": {"podSubnet": pod, "serviceSubnet": svc},
        "etcd": etcd,
        "apiServer": {"certSANs": sans, "extraArgs": _args(api, API_SERVER_ARGS), **timeout},
        "controllerManager": {"extraArgs": _args(api, CONTROLLER_MANAGER_ARGS)},
    }
    if api.endswith("v1beta4"):
        doc["timeouts"] = {"controlPlaneComponentHealthCheck": "10m0s"}
    return _merge(doc, overrides.get("clusterConfiguration"))


def _join(ctx: NodeContext, api: str, overrides: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": api, "kind": "JoinConfiguration",
        "discovery": {"bootstrapToken": {
            "apiServerEndpoint": f"{ctx.api_host()}:{ctx.cluster.endpoint.port}",
            "token": ctx.kubeadm_token(),
            # pin the cluster CA once the bootstrap node reported it; before that nothing can be pinned
            **({"caCertHashes": [ctx.cluster.ca_hash]} if ctx.cluster.ca_hash else {"unsafeSkipCAVerification": True}),
        }},
        "nodeRegistration": _node_registration(ctx, api),
    }
    if ctx.is_control_plane:
        doc["controlPlane"] = {"localAPIEndpoint": {"advertiseAddress": ctx.node_ip,
                                                    "bindPort": ctx.cluster.endpoint.port},
                               "certificateKey": ctx.join_secret()[:64]}
    return _merge(doc, overrides.get("joinConfiguration"))


def _merge(base: dict[str, Any], over: Any) -> dict[str, Any]:
    if not isinstance(over, dict):
        return base
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(out.get(key), dict) and isinstance(value, dict) else value
    return out
