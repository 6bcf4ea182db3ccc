"""Small clients for the console API used by every console test."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
from fastapi.testclient import TestClient

K3S = "1.30.14"


def inventory(index: int, arch: str = "amd64") -> dict[str, Any]:
    return {"arch": arch, "cpu_cores": 4, "memory_bytes": 16 << 30, "os": "Ubuntu 22.04",
            "nics": [{"name": "eth0", "mac": f"52:54:00:00:00:{index:02x}", "ips": [f"10.10.0.{index + 10}/24"]}],
            "disks": [{"name": "sda", "size_bytes": 256 << 30, "ssd": True}]}


def loc_msg(response: httpx.Response) -> tuple[list, str]:
    detail = response.json()["detail"][0]
    return detail["loc"], detail["msg"]


class Api:
    """An operator holding one API key."""

    def __init__(self, client: TestClient, key: str) -> None:
        self.client = client
        self.key = key

    def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self.client.request(method, path, headers={"Authorization": f"Bearer {self.key}"}, **kw)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.call("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return self.call("POST", path, json=json, **kw)

    def ok(self, method: str, path: str, json: Any = None, status: int | None = None, **kw: Any) -> Any:
        response = self.call(method, path, json=json, **kw)
        assert response.status_code < 300 if status is None else response.status_code == status, response.text
        return response.json() if response.content else None

    def user(self, name: str, role: str) -> Api:
        user = self.ok("POST", "/v1/users", {"name": name, "role": role})
        return Api(self.client, self.ok("POST", f"/v1/users/{user['id']}/api-keys", {"name": "k"})["key"])

    def token(self, name: str = "site-token", **extra: Any) -> str:
        body = {"name": name, "expires_at": "2099-01-01T00:00:00Z", **extra}
        return self.ok("POST", "/v1/registration-tokens", body)["token"]

    def profile(self, name: str = "retail", k8s: str = "k3s", version: str = K3S, **extra: Any) -> dict[str, Any]:
        body = {"name": name, "layers": layers(k8s, version), **extra}
        return self.ok("POST", "/v1/profiles", body)

    def profile_version(self, name: str, k8s: str = "k3s", version: str = K3S) -> dict[str, Any]:
        return self.ok("POST", f"/v1/profiles/{name}/versions", {"layers": layers(k8s, version)})


def layers(k8s: str = "k3s", version: str = K3S, os: tuple[str, str] = ("ubuntu", "22.04"),
           cni: str = "calico", csi: str | None = None) -> list[dict[str, Any]]:
    out = [{"layer": "os", "pack": os[0], "version": os[1]},
           {"layer": "kubernetes", "pack": k8s, "version": version},
           {"layer": "network", "pack": cni, "version": {"calico": "3.28.2", "flannel": "0.25.6",
                                                          "cilium": "1.16.3"}[cni]}]
    if csi:
        out.append({"layer": "storage", "pack": csi, "version": {"rook-ceph": "1.15.3", "longhorn": "1.7.2"}[csi]})
    return out


class Agent:
    """A simulated edge host agent speaking docs/agent-protocol.md."""

    def __init__(self, client: TestClient, host_id: str, credential: str = "") -> None:
        self.client = client
        self.host_id = host_id
        self.credential = credential

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential}"}

    def register(self, **body: Any) -> httpx.Response:
        response = self.client.post("/v1/agent/register", json={"host_id": self.host_id, **body})
        if response.status_code == 201:
            self.credential = response.json()["credential"]
        return response

    def heartbeat(self, index: int = 0, health: str = "healthy", **extra: Any) -> httpx.Response:
        return self.client.post(f"/v1/agent/hosts/{self.host_id}/heartbeat", headers=self.headers,
                                json={"health": health, "inventory": inventory(index), **extra})

    def spec(self, after: int = 0, wait: int = 0) -> httpx.Response:
        return self.client.get(f"/v1/agent/hosts/{self.host_id}/spec", params={"after": after, "wait": wait},
                               headers=self.headers)

    def report(self, phase: str = "ready", generation: int | None = None, **extra: Any) -> httpx.Response:
        if generation is None:
            generation = self.spec().json()["generation"]
        return self.client.post(f"/v1/agent/hosts/{self.host_id}/status", headers=self.headers,
                                json={"observed_generation": generation, "phase": phase, **extra})


def ready_hosts(api: Api, count: int, prefix: str = "edge-h") -> list[Agent]:
    """Register hosts with a token and send each a first heartbeat, so they are ready."""
    token = api.token(f"t{secrets.token_hex(3)}")
    agents = []
    for i in range(count):
        agent = Agent(api.client, f"{prefix}{i}")
        assert agent.register(mode="auto", token=token).status_code == 201
        assert agent.heartbeat(i).status_code == 200
        agents.append(agent)
    return agents


def new_cluster(api: Api, profile_id: str, cp: list[str], workers: list[str] = (), **extra: Any) -> dict[str, Any]:
    body = {"name": "store-1", "profile_id": profile_id, "control_plane": cp, "workers": list(workers),
            "endpoint": {"vip": "10.10.0.250"}, **extra}
    return api.ok("POST", "/v1/clusters", body, status=201)


def upgrading_cluster(api: Api, nodes: int) -> tuple[dict[str, Any], dict[str, Agent]]:
    """A running cluster of `nodes` control planes with an upgrade to 1.31 just started."""
    agents = ready_hosts(api, nodes)
    v1 = api.profile()
    v2 = api.profile_version("retail", version="1.31.10")
    cluster = new_cluster(api, v1["id"], [a.host_id for a in agents])
    for agent in agents:
        agent.report("ready")
    started = api.ok("POST", f"/v1/clusters/{cluster['id']}/upgrade", {"profile_id": v2["id"]})
    return started, {a.host_id: a for a in agents}

