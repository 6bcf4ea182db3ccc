"""HTTP client for the agent protocol (docs/agent-protocol.md), honouring the user-data's proxy,
CA certificates and ``insecureSkipVerify``."""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from edgeplane.agent.artifacts import download
from edgeplane.agent.schema import Site
from edgeplane.agent.spec import Artifact, NodeSpec


class ConsoleError(RuntimeError):
    """A console answer other than success; ``detail`` is FastAPI's error list or text."""

    def __init__(self, status: int, detail: Any, date: str | None = None) -> None:
        self.status = status
        self.detail = detail
        self.date = date
        super().__init__(f"HTTP {status}: {describe_detail(detail)}")


def describe_detail(detail: Any) -> str:
    if isinstance(detail, list):
        return "; ".join(f"{'.'.join(str(p) for p in d.get('loc', []))}: {d.get('msg')}" for d in detail
                         if isinstance(d, dict))
    return str(detail)


def bypasses_proxy(host: str, no_proxy: str | None) -> bool:
    """NO_PROXY matching: exact host, domain suffix (``.example.com`` or ``example.com``), IP, CIDR."""
    for entry in filter(None, (e.strip() for e in (no_proxy or "").split(","))):
        if entry == "*" or host == entry.lstrip(".") or host.endswith("." + entry.lstrip(".")):
            return True
        try:
            if ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def ssl_context(site: Site) -> ssl.SSLContext | bool:
    if site.insecureSkipVerify:
        return False
    context = ssl.create_default_context()
    for pem in site.caCerts:
        context.load_verify_locations(cadata=pem)
    return context


class ConsoleClient:
    def __init__(self, base_url: str, site: Site, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        host = urlsplit(self.base_url).hostname or ""
        network = site.network
        proxy = network.httpsProxy if self.base_url.startswith("https") else network.httpProxy
        self.proxy = None if bypasses_proxy(host, network.noProxy) else proxy
        self.host = host
        self.port = urlsplit(self.base_url).port or (443 if self.base_url.startswith("https") else 80)
        # trust_env off: the user-data is the one source of proxy settings, not the agent's environment
        self.http = httpx.Client(base_url=self.base_url, proxy=self.proxy, verify=ssl_context(site),
                                 timeout=httpx.Timeout(timeout, read=timeout + 65), trust_env=False)
        self.credential: str | None = None

    def close(self) -> None:
        self.http.close()

    def _auth(self) -> dict[str, str]:
        if not self.credential:
            raise RuntimeError("no host credential yet: register first")
        return {"Authorization": f"Bearer {self.credential}"}

    def _json(self, response: httpx.Response, ok: tuple[int, ...]) -> Any:
        if response.status_code not in ok:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise ConsoleError(response.status_code, detail, response.headers.get("date"))
        return response.json() if response.content else None

    def register(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], str | None]:
        response = self.http.post("/v1/agent/register", json=body)
        data = self._json(response, (201, 202))
        return response.status_code, data, response.headers.get("date")

    def heartbeat(self, host_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._json(self.http.post(f"/v1/agent/hosts/{host_id}/heartbeat", json=body, headers=self._auth()),
                          (200,))

    def spec(self, host_id: str, after: int, wait: int) -> NodeSpec | None:
        response = self.http.get(f"/v1/agent/hosts/{host_id}/spec", params={"after": after, "wait": wait},
                                 headers=self._auth())
        if response.status_code == 204:
            return None
        return NodeSpec.model_validate(self._json(response, (200,)))

    def status(self, host_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._json(self.http.post(f"/v1/agent/hosts/{host_id}/status", json=body, headers=self._auth()),
                          (200,))

    def events(self, host_id: str, events: list[dict[str, Any]]) -> None:
        for start in range(0, len(events), 100):
            self._json(self.http.post(f"/v1/agent/hosts/{host_id}/events", json={"events": events[start:start + 100]},
                                      headers=self._auth()), (200,))

    def fetch_artifact(self, artifact: Artifact, target: Path) -> Path:
        return download(self.http, f"/v1/agent/artifacts/{artifact.digest}", target, artifact.sha256,
                        headers=self._auth())
