"""Stopping a console while agents hold long-polls: they get an answer, nothing is cancelled.

A real console process (uvicorn, SQLite) and a real HTTP client parked in the spec long-poll.
"""

from __future__ import annotations

import threading

import httpx

from edgeplane.console import ConsoleProcess, create_admin_key
from tests.support.ports import free_port


def test_sigterm_answers_held_long_polls_instead_of_cancelling_them(tmp_path) -> None:
    db_url = f"sqlite:///{tmp_path / 'console.db'}"
    key = create_admin_key(db_url)
    log = tmp_path / "console.log"
    console = ConsoleProcess(db_url, free_port(), log_path=log).start()
    try:
        with httpx.Client(base_url=console.url, headers={"Authorization": f"Bearer {key}"}, timeout=10) as api:
            token = api.post("/v1/registration-tokens", json={"name": "t", "expires_at": "2099-01-01T00:00:00Z"}).json()
            registered = api.post("/v1/agent/register", json={"host_id": "edge-stop", "mode": "auto",
                                                               "token": token["token"]})
        credential = {"Authorization": f"Bearer {registered.json()['credential']}"}
        parked = threading.Event()
        result: dict = {}

        def poll() -> None:
            with httpx.Client(base_url=console.url, headers=credential, timeout=40) as agent:
                generation = agent.get("/v1/agent/hosts/edge-stop/spec").json()["generation"]
                parked.set()
                try:
                    result["response"] = agent.get("/v1/agent/hosts/edge-stop/spec",
                                                   params={"after": int(generation), "wait": 30})
                except httpx.HTTPError as exc:
                    result["error"] = exc

        thread = threading.Thread(target=poll, daemon=True)
        thread.start()
        assert parked.wait(10)
        threading.Event().wait(1.0)  # the second request is now held by the console
    finally:
        console.stop()
    thread.join(timeout=15)
    assert "error" not in result, result.get("error")
    assert result["response"].status_code == 204
    assert console.proc.returncode in (0, -15)  # uvicorn re-raises SIGTERM once it has shut down
    text = log.read_text()
    assert "timeout graceful shutdown exceeded" not in text and "CancelledError" not in text, text
