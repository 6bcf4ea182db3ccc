"""The desired node spec as the console sends it (docs/agent-protocol.md §3), as pydantic models.

Unknown fields are ignored so a newer console does not break an older agent; the fields the
agent acts on are typed and checked.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Distribution = Literal["pxk-e", "pxk-e-fips", "k3s", "rke2", "canonical"]
Datastore = Literal["sqlite", "two-node", "etcd"]


class Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Endpoint(Loose):
    vip: str | None = None
    ddns: str | None = None
    port: int = 6443


class Proxy(Loose):
    http_proxy: str | None = None
    https_proxy: str | None = None
    no_proxy: str | None = None


class Member(Loose):
    host_id: str
    ips: list[str] = Field(default_factory=list)

    def ip(self) -> str | None:
        return str(ipaddress.ip_interface(self.ips[0]).ip) if self.ips else None


class Cluster(Loose):
    id: str
    name: str
    generation: int = 1
    role: Literal["control-plane", "worker"] = "control-plane"
    bootstrap: bool = False
    datastore: Datastore = "sqlite"
    distribution: Distribution = "k3s"
    kubernetes_version: str
    endpoint: Endpoint = Field(default_factory=Endpoint)
    overlay_cidr: str | None = None
    proxy: Proxy = Field(default_factory=Proxy)
    ca_certs: list[str] = Field(default_factory=list)
    ntp_servers: list[str] = Field(default_factory=list)
    ssh_keys: list[str] = Field(default_factory=list)
    management_mode: Literal["central", "local"] = "central"
    control_plane: list[Member] = Field(default_factory=list)
    workers: list[Member] = Field(default_factory=list)
    join_token: str | None = None  # the cluster's join secret (a fallback is derived when absent)
    ca_hash: str | None = Field(None, pattern=r"^sha256:[0-9a-f]{64}$")  # cluster CA, once bootstrapped


class Layer(Loose):
    layer: str
    pack: str
    version: str
    values: dict[str, Any] = Field(default_factory=dict)


class Profile(Loose):
    id: str
    name: str
    version: int | str
    fips: bool = False
    arch: str = "amd64"
    layers: list[Layer] = Field(default_factory=list)

    def layer(self, kind: str) -> Layer | None:
        return next((layer for layer in self.layers if layer.layer == kind), None)


class Artifact(Loose):
    name: str
    digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    size: int | None = None

    @property
    def sha256(self) -> str:
        return self.digest.removeprefix("sha256:")


class NodeSpec(Loose):
    host_id: str
    generation: int
    action: Literal["none", "apply", "reset"]
    cluster: Cluster | None = None
    profile: Profile | None = None
    artifacts: list[Artifact] = Field(default_factory=list)
