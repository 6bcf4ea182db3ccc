"""The datastore's configuration: options with defaults, each checked with an error naming it.

Light on imports on purpose: the launcher (``frontend.serve``) checks a configuration before
anything heavy is loaded, and Envoy's embedded interpreter rebuilds it from the environment.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeplane.common.netaddr import parse_host_port
from edgeplane.common.paths import default_data_dir
from edgeplane.datastore.sql import Endpoint, default_node_name, parse_endpoint

DEFAULT_MAX_REQUEST_BYTES = 1536 * 1024  # etcd's default --max-request-bytes


@dataclass
class DatastoreConfig:
    listen: str = "127.0.0.1:2379"
    endpoint: str = ""  # empty: state.db in the data directory
    node_name: str = field(default_factory=default_node_name)
    cert_file: str | None = None
    key_file: str | None = None
    trusted_ca_file: str | None = None
    metrics_listen: str | None = None
    auto_compaction: str = "10000"
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_txn_ops: int = 128
    sqlite_synchronous: str = "full"
    progress_interval: float = 5.0
    lease_check_interval: float = 0.5

    def resolved_endpoint(self) -> Endpoint:
        if not self.endpoint:
            return Endpoint("sqlite", str(default_data_dir() / "datastore" / "state.db"))
        return parse_endpoint(self.endpoint)

    def validate(self) -> None:
        """Raise ValueError naming the option for any setting that cannot work."""
        parse_host_port(self.listen, option="--listen")
        if self.metrics_listen:
            parse_host_port(self.metrics_listen, option="--metrics-listen")
        self.resolved_endpoint()
        parse_retention(self.auto_compaction)
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("--cert-file and --key-file go together")
        if self.trusted_ca_file and not self.cert_file:
            raise ValueError("--trusted-ca-file (client certificate auth) needs --cert-file and --key-file")
        for option, path in (("--cert-file", self.cert_file), ("--key-file", self.key_file),
                             ("--trusted-ca-file", self.trusted_ca_file)):
            if path and not Path(path).is_file():
                raise ValueError(f"{option}: {path} does not exist")
        if self.max_request_bytes <= 0:
            raise ValueError("--max-request-bytes must be positive")
        if self.sqlite_synchronous.lower() not in ("full", "normal", "extra"):
            raise ValueError("--sqlite-synchronous must be full, normal or extra")

    def to_json(self, log_level: str) -> str:
        return json.dumps({"config": dataclasses.asdict(self), "log_level": log_level})

    @classmethod
    def from_json(cls, text: str) -> tuple[DatastoreConfig, str]:
        """The configuration and log level that ``to_json`` wrote."""
        document: dict[str, Any] = json.loads(text)
        return cls(**document["config"]), document["log_level"]


def parse_retention(text: str) -> tuple[str, float]:
    """``10000`` = keep that many revisions; ``30m``/``2h``/``90s`` = keep that long; ``0`` = off."""
    text = text.strip().lower()
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        if text and text[-1] in units:
            return "seconds", float(text[:-1]) * units[text[-1]]
        return "revisions", int(text)
    except ValueError:
        raise ValueError(f"--auto-compaction: {text!r} is neither a revision count nor a duration like 30m") from None
