"""What the agent tells the console about the host: its node IP and the inventory payload."""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlsplit

from edgeplane import __version__
from edgeplane.agent.hardware import Inventory
from edgeplane.agent.schema import UserData


def node_ip(user_data: UserData, console_url: str | None) -> str:
    """The static address from the user-data, else the source address of the route to the console."""
    for nic in user_data.edgeplane.site.network.interfaces.values():
        if nic.type == "static" and nic.ipAddress:
            return nic.ipAddress.split("/")[0]
    if console_url:
        host = urlsplit(console_url).hostname or "127.0.0.1"
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.connect((host, 9))  # no packet is sent for UDP connect
                return probe.getsockname()[0]
        except OSError:
            pass
    return "127.0.0.1"


def primary_nic(user_data: UserData, ip: str) -> dict[str, Any]:
    """The NIC carrying the node IP: the static interface of the user-data when it is one (with its
    prefix length), else an unnamed ``primary`` with a host route."""
    for name, nic in sorted(user_data.edgeplane.site.network.interfaces.items()):
        if nic.type == "static" and nic.ipAddress and nic.ipAddress.split("/")[0] == ip:
            return {"name": name, "ips": [f"{ip}/{nic.prefix_length()}"]}
    return {"name": "primary", "ips": [f"{ip}/32"]}


def inventory_payload(inv: Inventory, nic: dict[str, Any]) -> dict[str, Any]:
    return {
        "arch": inv.arch if inv.arch in ("amd64", "arm64") else None,
        "cpu_cores": inv.cores, "cpu_model": inv.cpu_model, "memory_bytes": inv.memory_bytes,
        "disks": [{"name": d.name, "size_bytes": d.size_bytes, "ssd": not d.rotational} for d in inv.disks],
        "nics": [nic],
        "agent_version": __version__,
    }
