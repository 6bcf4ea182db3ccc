"""Request bodies. Pydantic refuses malformed input with 422 naming the field before any code runs."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, IPvAnyAddress, IPvAnyNetwork, field_validator

Name = Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$",
                            description="lower-case letters, digits and '-', at most 63 characters")]
Role = Literal["admin", "operator", "viewer"]
LayerKind = Literal["os", "kubernetes", "network", "storage", "addon"]
TagKey = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[A-Za-z0-9]([A-Za-z0-9._/-]*[A-Za-z0-9])?$")]
TagValue = Annotated[str, Field(max_length=253)]
Tags = dict[TagKey, TagValue]
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProjectIn(Body):
    name: Name


class UserIn(Body):
    name: Name
    role: Role


class ApiKeyIn(Body):
    name: Annotated[str, Field(min_length=1, max_length=100)] = "api-key"


class ArtifactRef(Body):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    digest: Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")]


class PackIn(Body):
    name: Name
    layer: LayerKind
    version: Annotated[str, Field(pattern=r"^[0-9A-Za-z][0-9A-Za-z.+-]{0,63}$")]
    display_name: Annotated[str, Field(max_length=200)] = ""
    fips: bool = False
    values: dict[str, Any] = {}
    artifacts: list[ArtifactRef] = []


class LayerIn(Body):
    layer: LayerKind
    pack: Annotated[str, Field(min_length=1, max_length=63)]
    version: Annotated[str, Field(min_length=1, max_length=64)]
    values: dict[str, Any] = {}


class ProfileVersionIn(Body):
    description: Annotated[str, Field(max_length=2000)] = ""
    fips: bool = False
    arch: Literal["amd64", "arm64"] = "amd64"
    install_path: Annotated[str, Field(pattern=r"^/([A-Za-z0-9._-]+/?)*$")] = "/"
    layers: Annotated[list[LayerIn], Field(min_length=1, max_length=30)]


class ProfileIn(ProfileVersionIn):
    name: Name
    project_id: str | None = None


class TokenIn(Body):
    name: Name
    description: Annotated[str, Field(max_length=2000)] = ""
    project_id: str | None = None
    expires_at: datetime

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must include a time zone (e.g. 2027-01-01T00:00:00Z)")
        return value


class HostsIn(Body):
    host_ids: Annotated[list[str], Field(min_length=1, max_length=1000)]
    project_id: str | None = None
    tags: Tags = {}


class HostPatch(Body):
    tags: Tags


class QrApproveIn(Body):
    code: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{6,64}$")]
    project_id: str | None = None
    site: Annotated[str, Field(min_length=1, max_length=253)] | None = None
    cluster_id: str | None = None
    pool: Literal["control-plane", "worker"] = "worker"


class Endpoint(Body):
    vip: IPvAnyAddress | None = None
    ddns: str | None = None
    port: Annotated[int, Field(ge=1, le=65535)] = 6443

    @field_validator("ddns")
    @classmethod
    def _ddns(cls, value: str | None) -> str | None:
        if value is not None and not _HOSTNAME.match(value):
            raise ValueError("must be a DNS name")
        return value


class Proxy(Body):
    http_proxy: Annotated[str, Field(pattern=r"^https?://[^\s]+$")] | None = None
    https_proxy: Annotated[str, Field(pattern=r"^https?://[^\s]+$")] | None = None
    no_proxy: Annotated[str, Field(pattern=r"^[^\s]*$")] | None = None


def _hostnames(values: list[str]) -> list[str]:
    for value in values:
        if not _HOSTNAME.match(value):
            raise ValueError(f"{value!r} is not a host name or address")
    return values


class ClusterSettings(Body):
    proxy: Proxy | None = None
    ca_certs: Annotated[list[str], Field(max_length=20)] | None = None
    ntp_servers: Annotated[list[str], Field(max_length=10)] | None = None
    ssh_keys: Annotated[list[str], Field(max_length=50)] | None = None

    @field_validator("ntp_servers")
    @classmethod
    def _ntp(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _hostnames(value)


class ClusterIn(ClusterSettings):
    name: Name
    project_id: str | None = None
    profile_id: str
    control_plane: Annotated[list[str], Field(min_length=1, max_length=99)]
    workers: Annotated[list[str], Field(max_length=1000)] = []
    endpoint: Endpoint | None = None
    overlay_cidr: IPvAnyNetwork | None = None
    management_mode: Literal["central", "local"] = "central"


class PoolsIn(Body):
    control_plane: Annotated[list[str], Field(max_length=99)]
    workers: Annotated[list[str], Field(max_length=1000)] = []


class UpgradeIn(Body):
    profile_id: str


# ----------------------------------------------------------------------------------- agent side

class Inventory(BaseModel):
    model_config = ConfigDict(extra="allow")
    arch: Literal["amd64", "arm64"] | None = None
    cpu_cores: Annotated[int, Field(ge=1, le=4096)] | None = None
    cpu_model: Annotated[str, Field(max_length=200)] | None = None
    memory_bytes: Annotated[int, Field(ge=0)] | None = None
    disks: Annotated[list[dict[str, Any]], Field(max_length=64)] = []
    nics: Annotated[list[dict[str, Any]], Field(max_length=64)] = []
    os: Annotated[str, Field(max_length=200)] | None = None
    agent_version: Annotated[str, Field(max_length=64)] | None = None


class RegisterIn(Body):
    host_id: Annotated[str, Field(max_length=512)]
    mode: Literal["auto", "manual", "qr"]
    token: Annotated[str, Field(max_length=200)] | None = None
    project: Name | None = None
    qr_code: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{6,64}$")] | None = None
    secret: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{32,128}$")] | None = None
    tags: Tags = {}
    inventory: Inventory | None = None


class HeartbeatIn(Body):
    health: Literal["healthy", "unhealthy"]
    message: Annotated[str, Field(max_length=2000)] = ""
    inventory: Inventory | None = None


class KubernetesStatus(BaseModel):
    model_config = ConfigDict(extra="allow")
    version: Annotated[str, Field(max_length=64)] | None = None
    node_ready: bool | None = None
    role: Literal["control-plane", "worker"] | None = None
    ca_hash: Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")] | None = None


class StatusIn(Body):
    observed_generation: Annotated[int, Field(ge=0)]
    phase: Literal["applying", "ready", "failed"]
    message: Annotated[str, Field(max_length=2000)] = ""
    kubernetes: KubernetesStatus | None = None


class EventIn(Body):
    kind: Annotated[str, Field(pattern=r"^[a-z0-9._-]{1,64}$")]
    severity: Literal["info", "warning", "error"] = "info"
    message: Annotated[str, Field(max_length=2000)]
    time: datetime | None = None


class EventsIn(Body):
    events: Annotated[list[EventIn], Field(min_length=1, max_length=100)]
