"""``node.yaml``: one node of a two-node pair, validated with errors that name the field."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edgeplane.common.netaddr import AddressError, parse_host_port

from .machine import Settings


class ConfigError(ValueError):
    """node.yaml cannot be used; the message names the field and the reason."""


def _address(value: str, field: str) -> str:
    try:
        parse_host_port(value, option=field)
    except AddressError as exc:
        raise ValueError(str(exc)) from None
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PostgresConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(5432, ge=1, le=65535)
    database: str = Field("edgeplane", pattern=r"^[a-z_][a-z0-9_]{0,62}$")


class PeerConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
    api: str  # the peer agent's HOST:PORT
    postgres: str  # the peer's PostgreSQL HOST:PORT

    @field_validator("api", "postgres")
    @classmethod
    def _hostport(cls, value: str, info) -> str:
        return _address(value, f"peer.{info.field_name}")


class DatastoreConfig(_Strict):
    listen: str = "127.0.0.1:2379"
    command: list[str] | None = None  # default: this Python running `edgeplane datastore`

    @field_validator("listen")
    @classmethod
    def _hostport(cls, value: str) -> str:
        return _address(value, "datastore.listen")


class ProbeConfig(_Strict):
    interval: float = Field(0.5, gt=0, le=60)
    timeout: float = Field(1.0, gt=0, le=60)
    threshold: int = Field(4, ge=1, le=1000)
    startup_grace: float = Field(10.0, ge=0)


class ReplicationConfig(_Strict):
    mode: Literal["sync", "async"] = "sync"
    downgrade_after: float = Field(5.0, gt=0)
    resync_after: float = Field(10.0, gt=0)
    sync_max_lag_bytes: int = Field(16 * 1024 * 1024, ge=0)
    revision_gap: int = Field(100_000, ge=1)
    wal_timeout: float = Field(5.0, gt=0)


class NodeConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
    priority: int = 0
    data_dir: Path
    listen: str = "127.0.0.1:7480"  # this agent's API
    token_file: Path  # shared secret of the pair's agent APIs
    postgres: PostgresConfig = PostgresConfig()
    peer: PeerConfig
    datastore: DatastoreConfig = DatastoreConfig()
    probe: ProbeConfig = ProbeConfig()
    replication: ReplicationConfig = ReplicationConfig()
    witness: str | None = None  # HOST (ICMP ping) or HOST:PORT (TCP connect); gateway by default in docs

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        return _address(value, "listen")

    @model_validator(mode="after")
    def _distinct(self) -> "NodeConfig":
        if self.peer.name == self.name:
            raise ValueError("peer.name: must differ from name")
        return self

    def settings(self) -> Settings:
        return Settings(
            name=self.name, priority=self.priority, interval_s=self.probe.interval,
            threshold=self.probe.threshold, startup_grace_s=self.probe.startup_grace,
            downgrade_after_s=self.replication.downgrade_after, resync_after_s=self.replication.resync_after,
            synchronous=self.replication.mode == "sync", sync_max_lag_bytes=self.replication.sync_max_lag_bytes,
        )

    def token(self) -> str:
        try:
            token = self.token_file.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"token_file: cannot read {self.token_file}: {exc.strerror}") from None
        if len(token) < 16:
            raise ConfigError(f"token_file: {self.token_file} must hold a token of at least 16 characters")
        return token


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "node.yaml"
        message = re.sub(r"^Value error, ", "", item["msg"])
        if message.startswith(where + ":"):
            parts.append(message)
        else:
            parts.append(f"{where}: {message}")
    return "; ".join(parts)


def parse_config(data: object, source: str = "node.yaml") -> NodeConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    try:
        return NodeConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_describe(exc)}") from None


def load_config(path: Path) -> NodeConfig:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_config(data, str(path))
