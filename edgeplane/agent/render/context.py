"""What every renderer gets: the node spec, the merged user-data and the host's own facts."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from edgeplane.agent.schema import UserData
from edgeplane.agent.spec import Cluster, NodeSpec, Profile

DEFAULT_CIDRS = {  # (pod, service) per distribution, as each ships them
    "k3s": ("10.42.0.0/16", "10.43.0.0/16"),
    "rke2": ("10.42.0.0/16", "10.43.0.0/16"),
    "pxk-e": ("192.168.0.0/16", "192.169.0.0/16"),  # the reference PXK-E pack's defaults
    "pxk-e-fips": ("192.168.0.0/16", "192.169.0.0/16"),
    "canonical": ("10.1.0.0/16", "10.152.183.0/24"),
}
DATASTORE_LISTEN = "127.0.0.1:2379"  # the local etcd v3 endpoint served by edgeplane datastore / two-node


@dataclass(frozen=True)
class RenderedFile:
    content: str
    mode: int = 0o644


@dataclass
class Rendered:
    """Files to write (host path -> content), commands to run after, and warnings to report."""

    files: dict[str, RenderedFile] = field(default_factory=dict)
    commands: list[list[str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add(self, path: str, content: str, mode: int = 0o644) -> None:
        self.files[path] = RenderedFile(content, mode)

    def extend(self, other: Rendered) -> None:
        self.files.update(other.files)
        self.commands.extend(other.commands)
        self.warnings.extend(other.warnings)


@dataclass(frozen=True)
class NodeContext:
    spec: NodeSpec
    user_data: UserData
    host_id: str
    node_ip: str

    @property
    def cluster(self) -> Cluster:
        assert self.spec.cluster is not None, "render needs a spec with a cluster"
        return self.spec.cluster

    @property
    def profile(self) -> Profile | None:
        return self.spec.profile

    @property
    def distribution(self) -> str:
        return self.cluster.distribution

    @property
    def is_control_plane(self) -> bool:
        return self.cluster.role == "control-plane"

    @property
    def hostname(self) -> str:
        return self.user_data.edgeplane.site.hostName or self.host_id

    def k8s_values(self) -> dict[str, Any]:
        layer = self.profile.layer("kubernetes") if self.profile else None
        return layer.values if layer else {}

    def cluster_config(self) -> dict[str, Any]:
        """``cluster.config`` of the Kubernetes layer (the pack's flags, merged with overrides)."""
        config = self.k8s_values().get("cluster", {}).get("config", {})
        return config if isinstance(config, dict) else {}

    def kubevip_args(self) -> dict[str, Any]:
        return dict(self.k8s_values().get("cluster", {}).get("kubevipArgs", {}) or {})

    def cni(self) -> str | None:
        """The CNI pack of the profile's network layer; None means the distribution's own."""
        layer = self.profile.layer("network") if self.profile else None
        return layer.pack.lower() if layer else None

    def cidrs(self) -> tuple[str, str]:
        pod, svc = DEFAULT_CIDRS[self.distribution]
        config = self.cluster_config()
        return str(config.get("cluster-cidr", pod)), str(config.get("service-cidr", svc))

    def api_host(self) -> str:
        """Where joining nodes reach the API server: the VIP, the DDNS name, or the bootstrap node."""
        endpoint = self.cluster.endpoint
        if endpoint.vip:
            return endpoint.vip
        if endpoint.ddns:
            return endpoint.ddns
        first = next((m.ip() for m in self.cluster.control_plane if m.ip()), None)
        return first or self.node_ip

    def join_secret(self) -> str:
        """The cluster's shared join secret (see docs/agent.md: derived until the console sends one)."""
        if self.cluster.join_token:
            return self.cluster.join_token
        return hashlib.sha256(f"edgeplane-join:{self.cluster.id}".encode()).hexdigest()

    def kubeadm_token(self) -> str:
        digest = hashlib.sha256(self.join_secret().encode()).hexdigest()
        return f"{digest[:6]}.{digest[6:22]}"

    def vip_active(self) -> bool:
        """kube-vip runs on control planes when a VIP is set, not skipped, and not the host's own IP."""
        vip = self.cluster.endpoint.vip
        return bool(vip) and self.is_control_plane and not self.user_data.edgeplane.vip.skip and vip != self.node_ip

    def proxy(self) -> tuple[str | None, str | None, str]:
        """(HTTP_PROXY, HTTPS_PROXY, NO_PROXY): cluster spec over user-data; NO_PROXY always covers
        loopback, cluster-internal names and CIDRs, the node and the VIP."""
        site = self.user_data.edgeplane.site.network
        spec = self.cluster.proxy
        http = spec.http_proxy or site.httpProxy
        https = spec.https_proxy or site.httpsProxy
        pod, svc = self.cidrs()
        extra = [spec.no_proxy or site.noProxy or "", "127.0.0.1,localhost,.svc,.cluster.local", pod, svc,
                 self.node_ip, self.cluster.endpoint.vip or ""]
        items: list[str] = []
        for chunk in extra:
            for item in (part.strip() for part in chunk.split(",")):
                if item and item not in items:
                    items.append(item)
        return http, https, ",".join(items)
