"""Upgrade steps have a time limit: a node that never reports is rolled back, and a rollback that
never completes ends, by the console's own sweep (through the real API, SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from edgeplane.console import ConsoleConfig, ConsoleProcess, clusters, create_admin_key, create_app
from edgeplane.console.db import Database, now_ms
from tests.console.helpers import Agent, Api, upgrading_cluster
from tests.support.ports import free_port
from tests.support.waiting import wait_for


@contextmanager
def console(db_url: str, step_timeout_s: int) -> Iterator[TestClient]:
    """A console app with its lifespan running, so its deadline sweep runs too."""
    app = create_app(ConsoleConfig(db_url=db_url, upgrade_step_timeout_s=step_timeout_s))
    with TestClient(app, base_url="http://console.test") as client:
        yield client


def _operation(api: Api, cluster_id: str) -> dict[str, Any] | None:
    return api.ok("GET", f"/v1/clusters/{cluster_id}")["operation"]


def _events(api: Api, cluster_id: str, kind: str) -> list[dict[str, Any]]:
    return [e for e in api.ok("GET", f"/v1/clusters/{cluster_id}/events") if e["kind"] == kind]


def test_silent_node_is_rolled_back_and_a_node_in_time_is_not(db_url: str) -> None:
    with console(db_url, step_timeout_s=3) as client:
        api = Api(client, create_admin_key(db_url))
        started, agents = upgrading_cluster(api, 3)
        cluster_id, order = started["id"], started["operation"]["order"]
        operation = started["operation"]
        assert operation["step_timeout_s"] == 3 and operation["current"] == order[0]
        assert operation["deadline_at"] - operation["step_started_at"] == 3000
        assert 0 <= operation["deadline_in_s"] <= 3
        agents[order[0]].report("ready")  # in time: the upgrade moves on and its clock restarts
        moved = _operation(api, cluster_id)
        assert moved["state"] == "running" and moved["done"] == [order[0]] and moved["current"] == order[1]
        assert moved["step_started_at"] >= operation["step_started_at"]
        agents[order[1]].report("applying")  # progress is not completion: the limit still applies

        rolled = wait_for("the rollback", lambda: (op := _operation(api, cluster_id)) and
                          op["state"] == "rolling-back" and op)
        assert rolled["reason"] == f"node {order[1]} did not report the upgrade within 3s"
        assert sorted(rolled["rollback"]) == sorted(order[:2])  # the failed-report path: every node moved
        timeout_events = _events(api, cluster_id, "upgrade.step_timeout")
        assert [(e["host_id"], e["severity"]) for e in timeout_events] == [(order[1], "error")]
        audit = [r for r in api.ok("GET", "/v1/audit") if r["action"] == "upgrade-step-timeout"]
        assert len(audit) == 1 and audit[0]["actor"] == "console" and audit[0]["object_id"] == cluster_id
        assert audit[0]["detail"]["host_id"] == order[1] and audit[0]["detail"]["step_timeout_s"] == 3
        for host_id in order[:2]:
            assert agents[host_id].spec().json()["cluster"]["kubernetes_version"] == "1.30.14"
            agents[host_id].report("ready")
        final = api.ok("GET", f"/v1/clusters/{cluster_id}")
        assert final["operation"] is None and final["profile_id"] == started["profile_id"]
        assert final["status"] == "running"


def test_deadline_survives_a_restart_and_an_unconfirmed_rollback_ends(db_url: str) -> None:
    key = create_admin_key(db_url)
    with console(db_url, step_timeout_s=2) as first:
        first.app.state.console.deadlines.stop()  # this console dies before its deadline: nobody sweeps
        started, agents = upgrading_cluster(Api(first, key), 1)
    cluster_id, (host_id,) = started["id"], started["operation"]["order"]
    credential = agents[host_id].credential

    # The next console has a limit of an hour; the upgrade keeps the 2 s it was started with.
    with console(db_url, step_timeout_s=3600) as second:
        api = Api(second, key)
        rolled = wait_for("the rollback", lambda: (op := _operation(api, cluster_id)) and
                          op["state"] == "rolling-back" and op)
        assert rolled["step_started_at"] >= started["operation"]["deadline_at"]  # not early, not an hour late
        assert rolled["reason"] == f"node {host_id} did not report the upgrade within 2s"
        assert rolled["deadline_at"] - rolled["step_started_at"] == 2000 and list(rolled["rollback"]) == [host_id]

        # The node never confirms the rollback either: it ends, naming the node, and the cluster
        # is left degraded (not upgrading), so scale and reconfigure work again.
        wait_for("the rollback to end", lambda: _operation(api, cluster_id) is None)
        ended = _events(api, cluster_id, "upgrade.rollback_unconfirmed")
        assert len(ended) == 1 and ended[0]["severity"] == "error" and host_id in ended[0]["message"]
        assert ended[0]["message"].startswith(f"rollback ended after 2s: {host_id} did not confirm")
        assert [r["detail"] for r in api.ok("GET", "/v1/audit") if r["action"] == "upgrade-rollback-timeout"] \
            == [{"unconfirmed": [host_id], "step_timeout_s": 2}]
        view = api.ok("GET", f"/v1/clusters/{cluster_id}")
        assert view["status"] == "degraded" and view["profile_id"] == started["profile_id"]
        api.ok("PATCH", f"/v1/clusters/{cluster_id}", {"ntp_servers": ["time.example.org"]})

        # When the node returns it applies the previous profile it was given, and all is well.
        agent = Agent(second, host_id, credential)
        spec = agent.spec().json()
        assert spec["cluster"]["kubernetes_version"] == "1.30.14"
        agent.heartbeat(0)
        agent.report("ready", spec["generation"])
        assert api.ok("GET", f"/v1/clusters/{cluster_id}")["status"] == "running"


def test_a_second_sweeper_with_a_stale_view_does_nothing(db_url: str) -> None:
    """Two processes may both list a cluster as due; whoever locks the row second must find the
    deadline moved (here the second call uses the same stale clock reading as the first)."""
    with console(db_url, step_timeout_s=1) as client:
        client.app.state.console.deadlines.stop()  # this test plays both sweepers itself
        api = Api(client, create_admin_key(db_url))
        started, _ = upgrading_cluster(api, 2)
        cluster_id = started["id"]
        db = Database(db_url, pool_size=2)
        try:
            now = wait_for("the deadline to pass",
                           lambda: (t := now_ms()) > started["operation"]["deadline_at"] and t)
            with db.transaction(write=False) as tx:
                assert clusters.upgrades_due(tx, now)[0] == [cluster_id]  # both sweepers read this
            outcomes = []
            for _ in range(2):
                with db.transaction() as tx:
                    outcomes.append(clusters.expire_upgrade_step(tx, cluster_id, now, 1))
        finally:
            db.close()
        assert outcomes == ["rolled-back", None]
        assert _operation(api, cluster_id)["state"] == "rolling-back"
        assert len(_events(api, cluster_id, "upgrade.rolling_back")) == 1


def test_limit_must_be_whole_seconds_in_range() -> None:
    for bad in (0, -5, 604801, 1.5, True):
        with pytest.raises(ValueError, match=r"^upgrade_step_timeout_s: must be whole seconds from 1 to 604800"):
            ConsoleConfig(db_url="sqlite:///unused.db", upgrade_step_timeout_s=bad)


def test_the_console_process_enforces_its_limit(tmp_path) -> None:
    db_url = f"sqlite:///{tmp_path / 'console.db'}"
    key = create_admin_key(db_url)
    process = ConsoleProcess(db_url, free_port(), extra_args=["--upgrade-step-timeout", "1"],
                             log_path=tmp_path / "console.log").start()
    try:
        with httpx.Client(base_url=process.url, timeout=10) as client:
            api = Api(client, key)  # type: ignore[arg-type] - any httpx client speaks the same API
            started, _ = upgrading_cluster(api, 1)
            assert started["operation"]["step_timeout_s"] == 1
            wait_for("the upgrade to end", lambda: _operation(api, started["id"]) is None)
            kinds = [e["kind"] for e in api.ok("GET", f"/v1/clusters/{started['id']}/events")]
            assert kinds.count("upgrade.step_timeout") == 1 and kinds.count("upgrade.rollback_unconfirmed") == 1
    finally:
        process.stop()
