"""Two-node HA: PostgreSQL leader/follower pair with liveness probes, promotion and rejoin.

Public API (other parts and the lab import only these; loaded on first use so that
``edgeplane --help`` does not pay for pydantic and httpx):

- ``NodeConfig``, ``load_config``, ``ConfigError``: node.yaml.
- ``run_node(config)``: the node agent (`edgeplane twonode run`).
- ``node_status(path)``, ``lab_status(dir)``, ``set_paused(path, paused)``: talk to running agents.
- ``run_lab(dir)``, ``Lab``, ``write_pair``: a complete pair on loopback (`edgeplane lab twonode`).
"""

from __future__ import annotations

from edgeplane.common.lazy import lazy_exports

_EXPORTS = {
    "ConfigError": "config", "NodeConfig": "config", "load_config": "config",
    "run_node": "agent",
    "node_status": "client", "lab_status": "client", "set_paused": "client",
    "Lab": "lab", "run_lab": "lab", "write_pair": "lab",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
