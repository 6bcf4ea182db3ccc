"""Two real console processes (uvicorn subprocesses) on one PostgreSQL database."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from edgeplane.console import ConsoleProcess, create_admin_key
from tests.console.helpers import layers
from tests.support.ports import free_port

pytestmark = pytest.mark.postgres


@pytest.fixture
def two_consoles(postgres_server, tmp_path) -> Iterator[tuple[str, str, str]]:
    dsn = postgres_server.create_database("console_multi")
    key = create_admin_key(dsn)
    consoles = [ConsoleProcess(dsn, free_port(), log_path=tmp_path / f"console{i}.log") for i in range(2)]
    try:
        for console in consoles:
            console.start()
        yield consoles[0].url, consoles[1].url, key
    finally:
        for console in consoles:
            console.stop()


def test_long_poll_on_one_console_is_woken_by_a_change_through_the_other(two_consoles) -> None:
    url_a, url_b, key = two_consoles
    admin = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url_b, headers=admin, timeout=10) as b:
        token = b.post("/v1/registration-tokens", json={"name": "t", "expires_at": "2099-01-01T00:00:00Z"}).json()
        registered = b.post("/v1/agent/register", json={"host_id": "edge-mp1", "mode": "auto", "token": token["token"]})
        credential = {"Authorization": f"Bearer {registered.json()['credential']}"}
        assert b.post("/v1/agent/hosts/edge-mp1/heartbeat", headers=credential, json={"health": "healthy"}).status_code == 200
        profile = b.post("/v1/profiles", json={"name": "p", "layers": layers()}).json()
    result: dict = {}

    def poll() -> None:
        started = time.monotonic()
        result["response"] = httpx.get(f"{url_a}/v1/agent/hosts/edge-mp1/spec", params={"after": 1, "wait": 30},
                                       headers=credential, timeout=40)
        result["elapsed"] = time.monotonic() - started

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    time.sleep(1.0)  # the poll is parked in console A
    assert "response" not in result
    with httpx.Client(base_url=url_b, headers=admin, timeout=10) as b:
        created = b.post("/v1/clusters", json={"name": "c", "profile_id": profile["id"], "control_plane": ["edge-mp1"],
                                              "endpoint": {"ddns": "c.example"}})
        assert created.status_code == 201, created.text
    thread.join(timeout=35)
    # Console A re-reads on its own only every 5 s; an answer well before that came from NOTIFY.
    assert result["response"].status_code == 200 and result["elapsed"] < 1.0 + 3.0
    assert result["response"].json()["cluster"]["name"] == "c"
    # State is shared: console A sees the cluster created through B.
    assert httpx.get(f"{url_a}/v1/clusters", headers=admin).json()[0]["name"] == "c"
