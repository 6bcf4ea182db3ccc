"""Two real console processes (uvicorn subprocesses) on one PostgreSQL database."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from edgeplane.console import ConsoleProcess, create_admin_key
from tests.console.helpers import Api, layers, upgrading_cluster
from tests.support.ports import free_port
from tests.support.waiting import wait_for

pytestmark = pytest.mark.postgres


@pytest.fixture
def two_consoles(postgres_server, tmp_path) -> Iterator[tuple[str, str, str]]:
    dsn = postgres_server.create_database(f"console_multi_{uuid.uuid4().hex[:8]}")
    key = create_admin_key(dsn)
    # A 1 s upgrade step limit: both processes' deadline sweeps race for the same upgrades.
    consoles = [ConsoleProcess(dsn, free_port(), extra_args=["--upgrade-step-timeout", "1"],
                               log_path=tmp_path / f"console{i}.log") for i in range(2)]
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


def test_two_deadline_sweeps_act_once(two_consoles) -> None:
    url_a, url_b, key = two_consoles
    with httpx.Client(base_url=url_a, timeout=10) as a, httpx.Client(base_url=url_b, timeout=10) as b:
        started, _ = upgrading_cluster(Api(a, key), 2)  # type: ignore[arg-type] - any httpx client will do
        path = f"/v1/clusters/{started['id']}"
        wait_for("the upgrade to end", lambda: Api(b, key).ok("GET", path)["operation"] is None)
        kinds = [e["kind"] for e in Api(b, key).ok("GET", f"{path}/events")]
        actions = [r["action"] for r in Api(a, key).ok("GET", "/v1/audit")]
    # Both processes saw each deadline pass; the row lock and the re-check let exactly one act.
    assert kinds.count("upgrade.step_timeout") == 1 and kinds.count("upgrade.rolling_back") == 1
    assert kinds.count("upgrade.rollback_unconfirmed") == 1
    assert actions.count("upgrade-step-timeout") == 1 and actions.count("upgrade-rollback-timeout") == 1
