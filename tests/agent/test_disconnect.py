"""An agent keeps running through a console outage (the console process is stopped), keeps the
node as it was, and on reconnection delivers the events it queued on disk meanwhile; when the
console later forgets the host (deleted by an operator) the agent registers again."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from edgeplane.agent import AgentProcess, write_lab_host, write_lab_installers
from edgeplane.console import ConsoleProcess, create_admin_key
from tests.support.waiting import wait_for
from tests.support.ports import free_port




@pytest.fixture()
def parts(tmp_path: Path) -> Iterator[dict]:
    db = f"sqlite:///{tmp_path / 'console.db'}"
    key = create_admin_key(db)
    port = free_port()
    started: dict = {"db": db, "key": key, "port": port, "consoles": []}

    def console() -> ConsoleProcess:
        proc = ConsoleProcess(db, port, extra_args=["--heartbeat-interval", "5"], log_path=tmp_path / "console.log")
        started["consoles"].append(proc)
        return proc.start()

    started["console"] = console
    try:
        yield started
    finally:
        for proc in started["consoles"]:
            proc.stop()
        if "agent" in started:
            started["agent"].kill()


def test_agent_survives_an_outage_and_delivers_queued_events(parts: dict, tmp_path: Path) -> None:
    first = parts["console"]()
    api = httpx.Client(base_url=first.url, headers={"Authorization": f"Bearer {parts['key']}"})
    token = api.post("/v1/registration-tokens", json={"name": "t", "expires_at": "2099-01-01T00:00:00Z"}).json()["token"]
    root = tmp_path / "host"
    write_lab_host(root)
    write_lab_installers(root)
    user_data = tmp_path / "user-data.yaml"
    user_data.write_text(f"#cloud-config\nedgeplane:\n  site:\n    consoleEndpoint: {first.url}\n"
                         f"    registrationToken: {token}\n    name: edge-outage\n")
    agent = parts["agent"] = AgentProcess(root, user_data).start()
    wait_for("host ready", lambda: api.get("/v1/hosts/edge-outage").json().get("status") == "ready")
    first.stop()
    outbox = root / "var/lib/edgeplane/agent/outbox.jsonl"
    wait_for("disconnection noticed and queued", lambda: outbox.exists() and "console.disconnected" in outbox.read_text())
    time.sleep(3)
    assert agent.proc is not None and agent.proc.poll() is None  # still running, nothing to do but wait
    parts["console"]()
    wait_for("queued events delivered", lambda: {"console.disconnected", "console.reconnected"} <= {
        e["kind"] for e in api.get("/v1/hosts/edge-outage/events").json()}, timeout=40)
    assert not outbox.exists()
    assert api.get("/v1/hosts/edge-outage").json()["status"] == "ready"
    old_credential = agent.state("credential")
    assert api.delete("/v1/hosts/edge-outage").status_code == 204
    wait_for("registered again", lambda: api.get("/v1/hosts/edge-outage").json().get("status") == "ready", timeout=60)
    assert agent.state("credential") not in ("", old_credential)
    api.close()
