"""Helpers shared by the agent's process-level tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from edgeplane.agent import AgentProcess, write_lab_host, write_lab_installers
from edgeplane.console import ConsoleProcess, create_admin_key
from tests.support.ports import free_port


class Site:
    """A real console process (SQLite, 5 s heartbeats) and the agent processes a test starts."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        db_url = f"sqlite:///{tmp / 'console.db'}"
        self.key = create_admin_key(db_url)
        port = free_port()
        self.console = ConsoleProcess(db_url, port, extra_args=[
            "--heartbeat-interval", "5", "--public-url", f"http://127.0.0.1:{port}"], log_path=tmp / "console.log")
        self.url = self.console.url
        self.http = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.key}"}, timeout=30)
        self.agents: list[AgentProcess] = []

    def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        response = self.http.request(method, path, json=body, **kw)
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    def agent(self, name: str, site_yaml: str) -> AgentProcess:
        root = self.tmp / name
        write_lab_host(root)
        write_lab_installers(root)
        user_data = self.tmp / f"{name}.yaml"
        user_data.write_text(f"#cloud-config\nedgeplane:\n  site:\n    consoleEndpoint: {self.url}\n{site_yaml}")
        agent = AgentProcess(root, user_data).start()
        self.agents.append(agent)
        return agent

    def host(self, host_id: str) -> dict[str, Any]:
        response = self.http.get(f"/v1/hosts/{host_id}")
        return response.json() if response.status_code == 200 else {}

    def close(self) -> None:
        for agent in self.agents:
            agent.kill()
        self.http.close()
        self.console.stop()
