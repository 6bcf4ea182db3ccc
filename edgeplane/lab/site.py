"""``edgeplane lab site``: a console and three edge hosts on loopback, from nothing to a cluster.

The console runs as its own process on embedded SQLite; each host is an ``edgeplane agent`` process
with its own ``--root`` (simulated /proc and /sys of a small edge box, and lab installers that
record their arguments instead of installing K3s). The lab plays the operator: it registers one
host by token, approves one by its manual ID and one by its QR code, then forms a K3s cluster of
the three and waits until every node reports ready. Talks to the parts only through their public
modules and the console's REST API.
"""

from __future__ import annotations

import json
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

MARKER = ".edgeplane-lab-site"
K3S_LAYERS = [{"layer": "os", "pack": "ubuntu", "version": "22.04"},
              {"layer": "kubernetes", "pack": "k3s", "version": "1.30.14"},
              {"layer": "network", "pack": "calico", "version": "3.28.2"}]


class LabError(RuntimeError):
    """The lab could not be brought up; the message says which step."""


@dataclass
class LabSite:
    directory: Path
    listen: str = "127.0.0.1:8080"
    say: Callable[[str], None] = print
    agents: dict[str, Any] = field(default_factory=dict)
    console: Any = None
    http: httpx.Client | None = None
    admin_key: str = ""

    # ------------------------------------------------------------------ setup
    def prepare_directory(self) -> None:
        """A fresh lab each run; refuse to wipe a directory the lab did not create."""
        if self.directory.exists() and any(self.directory.iterdir()):
            if not (self.directory / MARKER).exists():
                raise LabError(f"{self.directory} is not empty and is not a lab site directory; choose another --dir")
            shutil.rmtree(self.directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / MARKER).write_text("created by edgeplane lab site; wiped on the next run\n")

    def start_console(self) -> None:
        from edgeplane.common.netaddr import parse_host_port
        from edgeplane.console import ConsoleProcess, create_admin_key

        host, port = parse_host_port(self.listen, option="--listen")
        db_url = f"sqlite:///{self.directory / 'console.db'}"
        self.admin_key = create_admin_key(db_url)
        console = ConsoleProcess(db_url, port, host=host, log_path=self.directory / "console.log", extra_args=[
            "--heartbeat-interval", "5", "--public-url", f"http://{host}:{port}"])
        try:
            self.console = console.start()
        except (RuntimeError, TimeoutError) as exc:
            console.stop()
            raise LabError(f"the console did not start on {self.listen} ({exc}); is the port taken? "
                           f"try another --listen address; see {self.directory / 'console.log'}") from None
        self.http = httpx.Client(base_url=self.console.url, headers={"Authorization": f"Bearer {self.admin_key}"},
                                 timeout=30)

    def api(self, method: str, path: str, body: Any = None) -> Any:
        assert self.http is not None
        response = self.http.request(method, path, json=body)
        if response.status_code >= 300:
            raise LabError(f"{method} {path}: HTTP {response.status_code} {response.text}")
        return response.json() if response.content else None

    def start_agent(self, name: str, site_yaml: str) -> Any:
        from edgeplane.agent import AgentProcess, write_lab_host, write_lab_installers

        root = self.directory / "hosts" / name
        write_lab_host(root)
        write_lab_installers(root)
        user_data = root / "user-data.yaml"
        user_data.write_text(f"#cloud-config\nedgeplane:\n  site:\n    consoleEndpoint: {self.console.url}\n{site_yaml}")
        agent = AgentProcess(root, user_data).start()
        self.agents[name] = agent
        return agent

    # ------------------------------------------------------------------- flow
    def run(self, ready: threading.Event | None = None, stop: threading.Event | None = None) -> None:
        started = time.monotonic()
        try:
            self.prepare_directory()
            self.start_console()
            self.say(f"console: {self.console.url}  (log: {self.directory / 'console.log'})")
            self.register_hosts()
            cluster = self.form_cluster()
            self.say(f"cluster {cluster['name']} ({cluster['id']}) running on {len(self.agents)} hosts "
                     f"after {time.monotonic() - started:.0f} s")
            self.summary()
            if ready:
                ready.set()
            (stop or _until_signal()).wait()
        finally:
            self.close()

    def register_hosts(self) -> None:
        token = self.api("POST", "/v1/registration-tokens", {"name": "lab-site", "expires_at": "2099-01-01T00:00:00Z"})
        auto = self.start_agent("auto", f"    registrationToken: {token['token']}\n    name: edge-lab-auto\n")
        manual = self.start_agent("manual", f"    registrationToken: {token['token']}\n    disableAutoRegister: true\n")
        qr = self.start_agent("qr", f"    registrationURL: {self.console.url}/v1/qr-approvals\n")
        self.wait("token host registered", lambda: self.host_status(auto.host_id) == "ready")
        self.say(f"registered by token:     {auto.host_id}")
        manual_id = self.wait("manual host ID", lambda: manual.host_id if self.host_status(manual.host_id) else "")
        self.api("POST", f"/v1/hosts/{manual_id}/approve")
        self.say(f"approved by manual ID:   {manual_id}")
        png = qr.root / "var/lib/edgeplane/agent/registration-qr.png"
        self.wait("QR code", png.exists)
        code = json.loads(qr.state("qr.json"))["qr_code"]
        project = self.api("GET", "/v1/projects")[0]["id"]
        self.api("POST", f"/v1/qr-approvals/{qr.host_id}", {"code": code, "project_id": project, "site": "lab"})
        self.say(f"approved by QR code:     {qr.host_id}  (QR image: {png})")
        for agent in (manual, qr):
            self.wait(f"{agent.host_id} ready", lambda agent=agent: self.host_status(agent.host_id) == "ready", 60)

    def form_cluster(self) -> dict[str, Any]:
        profile = self.api("POST", "/v1/profiles", {"name": "lab-k3s", "layers": K3S_LAYERS})
        ids = [agent.host_id for agent in self.agents.values()]
        cluster = self.api("POST", "/v1/clusters", {"name": "lab-store", "profile_id": profile["id"],
                                                    "control_plane": ids[:1], "workers": ids[1:],
                                                    "endpoint": {"vip": "10.10.0.250"}})
        return self.wait("cluster running", lambda: (lambda c: c if c["status"] == "running" else None)(
            self.api("GET", f"/v1/clusters/{cluster['id']}")), 90)

    def summary(self) -> None:
        self.say("")
        self.say(f"  console URL:  {self.console.url}")
        self.say(f"  admin key:    {self.admin_key}")
        self.say(f"  try:          curl -H 'Authorization: Bearer {self.admin_key}' {self.console.url}/v1/hosts")
        for name, agent in self.agents.items():
            self.say(f"  host {name:7s} {agent.host_id}  root {agent.root}")
        self.say("  note: the hosts are simulated and their K3s installer is the lab installer, which records")
        self.say("        its arguments (ROOT/var/log/installer-calls.log); the rendered configuration is in")
        self.say("        ROOT/etc/rancher/k3s; no Kubernetes processes run in the lab.")
        self.say("  Ctrl-C stops the console and the agents.")

    # ---------------------------------------------------------------- helpers
    def host_status(self, host_id: str) -> str:
        if not host_id or self.http is None:
            return ""
        response = self.http.get(f"/v1/hosts/{host_id}")
        return response.json().get("status", "") if response.status_code == 200 else ""

    def wait(self, what: str, check: Callable[[], Any], timeout: float = 45.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = check()
            if result:
                return result
            time.sleep(0.25)
        logs = ", ".join(str(a.root / "agent.log") for a in self.agents.values())
        raise LabError(f"timed out after {timeout:.0f} s waiting for {what} (agent logs: {logs})")

    def close(self) -> None:
        for agent in self.agents.values():
            agent.kill(signal.SIGTERM)
        if self.http is not None:
            self.http.close()
        if self.console is not None:
            self.console.stop()


def _until_signal() -> threading.Event:
    """An event set by SIGTERM (Ctrl-C arrives as KeyboardInterrupt and unwinds through ``finally``)."""
    event = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: event.set())
    return event
