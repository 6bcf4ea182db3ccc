"""Cluster lifecycle end to end through the API, with simulated agents reporting status."""

from __future__ import annotations

from tests.console.helpers import Api, loc_msg, ready_hosts
from tests.console.helpers import new_cluster as _cluster


def test_create_runs_when_every_node_reports_ready(admin: Api) -> None:
    agents = ready_hosts(admin, 4)
    profile = admin.profile()
    cluster = _cluster(admin, profile["id"], [a.host_id for a in agents[:3]], [agents[3].host_id])
    assert cluster["datastore"] == "etcd" and cluster["status"] == "provisioning"
    specs = [a.spec().json() for a in agents]
    assert [s["cluster"]["role"] for s in specs] == ["control-plane"] * 3 + ["worker"]
    assert [s["cluster"]["bootstrap"] for s in specs] == [True, False, False, False]
    assert specs[0]["cluster"]["distribution"] == "k3s"
    tokens = {s["cluster"]["join_token"] for s in specs}
    assert len(tokens) == 1 and len(tokens.pop()) == 64 and "join_token" not in cluster
    k8s = specs[0]["profile"]["layers"][1]["values"]["cluster"]["config"]
    assert "metrics-server" in k8s["disable"] and k8s["flannel-backend"] == "none"
    assert {h["status"] for h in admin.ok("GET", "/v1/hosts")} == {"in-use"}
    for agent in agents[:3]:
        agent.report("ready")
    assert admin.ok("GET", f"/v1/clusters/{cluster['id']}")["status"] == "provisioning"
    agents[3].report("ready")
    assert admin.ok("GET", f"/v1/clusters/{cluster['id']}")["status"] == "running"
    agents[3].heartbeat(3, health="unhealthy")
    assert admin.ok("GET", f"/v1/clusters/{cluster['id']}")["status"] == "degraded"
    kinds = [e["kind"] for e in admin.ok("GET", f"/v1/clusters/{cluster['id']}/events")]
    assert kinds[0] == "cluster.created" and "cluster.running" in kinds


def test_rolling_upgrade_control_planes_first_one_at_a_time(admin: Api) -> None:
    agents = ready_hosts(admin, 4)
    v1 = admin.profile()
    v2 = admin.profile_version("retail", version="1.31.10")
    cluster = _cluster(admin, v1["id"], [a.host_id for a in agents[:3]], [agents[3].host_id])
    for agent in agents:
        agent.report("ready")
    started = admin.ok("POST", f"/v1/clusters/{cluster['id']}/upgrade", {"profile_id": v2["id"]})
    assert started["status"] == "upgrading"
    order = started["operation"]["order"]
    assert order[-1] == agents[3].host_id
    for step, host_id in enumerate(order):
        agent = next(a for a in agents if a.host_id == host_id)
        versions = {a.host_id: a.spec().json()["cluster"]["kubernetes_version"] for a in agents}
        # Exactly the nodes done so far plus the current one run the new version.
        assert sorted(h for h, v in versions.items() if v == "1.31.10") == sorted(order[: step + 1])
        agent.report("applying")
        assert admin.ok("GET", f"/v1/clusters/{cluster['id']}")["operation"]["current"] == host_id
        agent.report("ready")
    done = admin.ok("GET", f"/v1/clusters/{cluster['id']}")
    assert done["operation"] is None and done["profile_id"] == v2["id"]
    kinds = [e["kind"] for e in admin.ok("GET", f"/v1/clusters/{cluster['id']}/events")]
    assert "upgrade.completed" in kinds


def test_failed_node_rolls_back_upgraded_nodes(admin: Api) -> None:
    agents = ready_hosts(admin, 3)
    v1 = admin.profile()
    v2 = admin.profile_version("retail", version="1.31.10")
    cluster = _cluster(admin, v1["id"], [a.host_id for a in agents])
    for agent in agents:
        agent.report("ready")
    order = admin.ok("POST", f"/v1/clusters/{cluster['id']}/upgrade", {"profile_id": v2["id"]})["operation"]["order"]
    by_id = {a.host_id: a for a in agents}
    by_id[order[0]].report("ready")
    by_id[order[1]].report("failed")
    state = admin.ok("GET", f"/v1/clusters/{cluster['id']}")
    assert state["operation"]["state"] == "rolling-back"
    for host_id in order[:2]:
        spec = by_id[host_id].spec().json()
        assert spec["cluster"]["kubernetes_version"] == "1.30.14"
        by_id[host_id].report("ready")
    assert by_id[order[2]].spec().json()["cluster"]["kubernetes_version"] == "1.30.14"
    final = admin.ok("GET", f"/v1/clusters/{cluster['id']}")
    assert final["operation"] is None and final["profile_id"] == v1["id"] and final["status"] == "running"


def test_cancel_rolls_back_and_delete_returns_hosts_to_ready(admin: Api) -> None:
    agents = ready_hosts(admin, 1)
    v1 = admin.profile()
    v2 = admin.profile_version("retail", version="1.31.10")
    cluster = _cluster(admin, v1["id"], [agents[0].host_id])
    assert cluster["datastore"] == "sqlite"
    agents[0].report("ready")
    admin.ok("POST", f"/v1/clusters/{cluster['id']}/upgrade", {"profile_id": v2["id"]})
    cancelled = admin.ok("POST", f"/v1/clusters/{cluster['id']}/upgrade/cancel")
    assert cancelled["operation"]["state"] == "rolling-back"
    agents[0].report("ready")
    assert admin.ok("GET", f"/v1/clusters/{cluster['id']}")["status"] == "running"
    response = admin.call("DELETE", f"/v1/clusters/{cluster['id']}")
    assert response.status_code == 202 and response.json()["status"] == "deleting"
    spec = agents[0].spec().json()
    assert spec["action"] == "reset"
    agents[0].report("ready", spec["generation"])
    assert admin.call("GET", f"/v1/clusters/{cluster['id']}").status_code == 404
    assert admin.ok("GET", f"/v1/hosts/{agents[0].host_id}")["status"] == "ready"
    assert agents[0].spec().json()["action"] == "none"


def test_scale_and_reconfigure_publish_new_generations(admin: Api) -> None:
    agents = ready_hosts(admin, 5)
    profile = admin.profile()
    cluster = _cluster(admin, profile["id"], [a.host_id for a in agents[:3]])
    before = agents[0].spec().json()["generation"]
    scaled = admin.ok("PUT", f"/v1/clusters/{cluster['id']}/pools",
                      {"control_plane": [a.host_id for a in agents[:3]], "workers": [agents[3].host_id]})
    assert scaled["workers"] == [agents[3].host_id] and scaled["generation"] == 2
    spec = agents[0].spec().json()
    assert spec["generation"] == before + 1 and spec["cluster"]["workers"][0]["host_id"] == agents[3].host_id
    admin.ok("PATCH", f"/v1/clusters/{cluster['id']}", {"ntp_servers": ["time.example.org"]})
    assert agents[3].spec().json()["cluster"]["ntp_servers"] == ["time.example.org"]
    shrunk = admin.ok("PUT", f"/v1/clusters/{cluster['id']}/pools",
                      {"control_plane": [a.host_id for a in agents[:3]], "workers": []})
    assert shrunk["leaving"] == [agents[3].host_id]
    reset = agents[3].spec().json()
    assert reset["action"] == "reset"
    agents[3].report("ready", reset["generation"])
    assert admin.ok("GET", f"/v1/hosts/{agents[3].host_id}")["status"] == "ready"


def test_bootstrap_node_publishes_the_cluster_ca_hash(admin: Api) -> None:
    agents = ready_hosts(admin, 3)
    cluster = _cluster(admin, admin.profile()["id"], [a.host_id for a in agents])
    assert all(a.spec().json()["cluster"]["ca_hash"] is None for a in agents)
    ca_hash = "sha256:" + "ab" * 32
    bad = agents[0].report("ready", kubernetes={"ca_hash": "md5:1"})
    assert bad.status_code == 422 and loc_msg(bad)[0] == ["body", "kubernetes", "ca_hash"]
    agents[1].report("ready", kubernetes={"ca_hash": "sha256:" + "cd" * 32})  # not the bootstrap node: ignored
    assert agents[2].spec().json()["cluster"]["ca_hash"] is None
    before = agents[2].spec().json()["generation"]
    agents[0].report("ready", kubernetes={"ca_hash": ca_hash, "node_ready": True})
    spec = agents[2].spec().json()
    assert spec["generation"] == before + 1 and spec["cluster"]["ca_hash"] == ca_hash
    for agent in agents:
        agent.report("ready")
    assert admin.ok("GET", f"/v1/clusters/{cluster['id']}")["status"] == "running"
