"""The agent-facing API of docs/agent-protocol.md: heartbeat, long-poll, status, events, artifacts."""

from __future__ import annotations

import hashlib
import threading
import time

from tests.console.helpers import Api, loc_msg, ready_hosts


def test_long_poll_is_woken_by_a_change(admin: Api) -> None:
    (agent,) = ready_hosts(admin, 1)
    profile = admin.profile()
    first = agent.spec().json()
    assert first["generation"] == 1 and first["action"] == "none"
    result = {}

    def poll() -> None:
        started = time.monotonic()
        result["response"] = agent.spec(after=1, wait=20)
        result["elapsed"] = time.monotonic() - started

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    time.sleep(0.5)
    admin.ok("POST", "/v1/clusters", {"name": "c", "profile_id": profile["id"], "control_plane": [agent.host_id],
                                      "endpoint": {"ddns": "c.example"}}, status=201)
    thread.join(timeout=25)
    assert result["response"].status_code == 200 and result["elapsed"] < 5
    spec = result["response"].json()
    assert spec["generation"] == 2 and spec["action"] == "apply" and spec["cluster"]["bootstrap"] is True


def test_long_poll_times_out_with_204(admin: Api) -> None:
    (agent,) = ready_hosts(admin, 1)
    started = time.monotonic()
    response = agent.spec(after=1, wait=1)
    assert response.status_code == 204 and response.headers["X-Edgeplane-Generation"] == "1"
    assert 0.9 < time.monotonic() - started < 4
    too_long = agent.spec(after=1, wait=61)
    assert too_long.status_code == 422 and loc_msg(too_long)[0] == ["query", "wait"]


def test_heartbeat_and_status_validation(admin: Api) -> None:
    (agent,) = ready_hosts(admin, 1)
    bad = admin.client.post(f"/v1/agent/hosts/{agent.host_id}/heartbeat", headers=agent.headers,
                            json={"health": "great"})
    assert bad.status_code == 422 and loc_msg(bad)[0] == ["body", "health"]
    bad = agent.heartbeat(inventory={"arch": "sparc"})
    assert bad.status_code == 422 and loc_msg(bad)[0] == ["body", "inventory", "arch"]
    future = agent.report("ready", generation=5)
    assert future.status_code == 409 and loc_msg(future)[0] == ["body", "observed_generation"]
    assert admin.ok("GET", f"/v1/hosts/{agent.host_id}")["observed_generation"] == 0
    ok = agent.report("applying", generation=1)
    assert ok.status_code == 200 and ok.json() == {"spec_generation": 1}


def test_events_reach_host_and_cluster_history(admin: Api) -> None:
    (agent,) = ready_hosts(admin, 1)
    profile = admin.profile()
    cluster = admin.ok("POST", "/v1/clusters", {"name": "c", "profile_id": profile["id"],
                                                "control_plane": [agent.host_id], "endpoint": {"ddns": "c.example"}})
    events = [{"kind": "install.started", "message": "pulling k3s", "time": "2026-11-21T10:15:00Z"},
              {"kind": "install.failed", "severity": "error", "message": "no disk"}]
    response = admin.client.post(f"/v1/agent/hosts/{agent.host_id}/events", headers=agent.headers,
                                 json={"events": events})
    assert response.json() == {"accepted": 2}
    host_events = admin.ok("GET", f"/v1/hosts/{agent.host_id}/events")
    assert [e["kind"] for e in host_events][-2:] == ["install.started", "install.failed"]
    assert "install.failed" in [e["kind"] for e in admin.ok("GET", f"/v1/clusters/{cluster['id']}/events")]
    bad = admin.client.post(f"/v1/agent/hosts/{agent.host_id}/events", headers=agent.headers,
                            json={"events": [{"kind": "Bad Kind", "message": "x"}]})
    assert bad.status_code == 422 and loc_msg(bad)[0] == ["body", "events", 0, "kind"]
    assert admin.client.post(f"/v1/agent/hosts/{agent.host_id}/events", headers=agent.headers,
                             json={"events": []}).status_code == 422


def test_artifacts_by_digest(admin: Api, other_tenant: Api) -> None:
    (agent,) = ready_hosts(admin, 1)
    payload = bytes(range(256)) * 9000  # a bit over 2 MiB: three chunks
    digest = "sha256:" + hashlib.sha256(payload).hexdigest()
    uploaded = admin.ok("POST", "/v1/artifacts?name=provider-image", content=payload, status=201)
    assert uploaded == {"digest": digest, "name": "provider-image", "size": len(payload)}
    admin.ok("POST", "/v1/packs", {"name": "os-extras", "layer": "addon", "version": "1.0.0",
                                   "artifacts": [{"name": "provider-image", "digest": digest}]}, status=201)
    profile = admin.ok("POST", "/v1/profiles", {"name": "with-art", "layers": [
        *admin.profile("tmp")["layers"], {"layer": "addon", "pack": "os-extras", "version": "1.0.0"}]})
    admin.ok("POST", "/v1/clusters", {"name": "c", "profile_id": profile["id"], "control_plane": [agent.host_id],
                                      "endpoint": {"ddns": "c.example"}})
    assert agent.spec().json()["artifacts"] == [{"name": "provider-image", "digest": digest}]
    response = admin.client.get(f"/v1/agent/artifacts/{digest}", headers=agent.headers)
    assert response.status_code == 200 and response.content == payload
    assert response.headers["X-Content-SHA256"] == digest.split(":")[1]
    assert response.headers["Content-Length"] == str(len(payload))
    missing = admin.client.get("/v1/agent/artifacts/sha256:" + "0" * 64, headers=agent.headers)
    assert missing.status_code == 404
    malformed = admin.client.get("/v1/agent/artifacts/md5:abc", headers=agent.headers)
    assert malformed.status_code == 422 and loc_msg(malformed)[0] == ["path", "digest"]
    # Another tenant's hosts cannot fetch it.
    (foreign,) = ready_hosts(other_tenant, 1, prefix="edge-o")
    assert admin.client.get(f"/v1/agent/artifacts/{digest}", headers=foreign.headers).status_code == 404
    viewer = admin.user("v", "viewer")
    assert viewer.post("/v1/artifacts?name=x", content=b"x").status_code == 403
