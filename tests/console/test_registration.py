"""Registration tokens and the three registration methods; host ID rules; host statuses."""

from __future__ import annotations

import pytest

from tests.console.helpers import Agent, Api, loc_msg, ready_hosts

SECRET = "s" * 40


def test_token_value_is_shown_once_and_hashed_at_rest(admin: Api) -> None:
    created = admin.ok("POST", "/v1/registration-tokens",
                       {"name": "north", "description": "stores", "expires_at": "2099-01-01T00:00:00Z"}, status=201)
    assert created["token"].startswith("eprt_")
    listed = admin.ok("GET", "/v1/registration-tokens")
    assert "token" not in listed[0] and listed[0]["name"] == "north"
    with admin.client.app.state.console.db.transaction() as tx:
        stored = tx.one("SELECT token_hash FROM registration_tokens")["token_hash"]
    assert created["token"] not in stored and len(stored) == 64


@pytest.mark.parametrize("body,loc,reason", [
    ({"name": "t", "expires_at": "2000-01-01T00:00:00Z"}, ["body", "expires_at"], "in the future"),
    ({"name": "t", "expires_at": "2099-01-01T00:00:00"}, ["body", "expires_at"], "time zone"),
    ({"name": "t"}, ["body", "expires_at"], "Field required"),
    ({"name": "t", "expires_at": "2099-01-01T00:00:00Z", "project_id": "pr_nope"}, ["body", "project_id"], "unknown project"),
])
def test_bad_tokens(admin: Api, body: dict, loc: list, reason: str) -> None:
    response = admin.post("/v1/registration-tokens", body)
    assert response.status_code == 422
    assert loc_msg(response)[0] == loc and reason in loc_msg(response)[1]
    assert admin.ok("GET", "/v1/registration-tokens") == []


@pytest.mark.parametrize("host_id,reason", [
    ("node-1", "must start with the prefix 'edge-'"),
    ("edge-" + "a" * 124, "at most 128 characters"),
    ("edge-a/b", "must not contain '/'"),
    ("edge-a.b", "must not contain '.'"),
    ("edge-a:b", "must not contain ':'"),
    ("edge-a b", "whitespace"),
    ("edge-a\tb", "whitespace"),
])
def test_host_id_rules(admin: Api, host_id: str, reason: str) -> None:
    token = admin.token()
    response = Agent(admin.client, host_id).register(mode="auto", token=token)
    assert response.status_code == 422
    assert loc_msg(response)[0] == ["body", "host_id"] and reason in loc_msg(response)[1]
    response = admin.post("/v1/hosts", {"host_ids": ["edge-ok", host_id]})
    assert response.status_code == 422 and loc_msg(response)[0] == ["body", "host_ids", 1]
    assert admin.ok("GET", "/v1/hosts") == []


def test_longest_valid_host_id(admin: Api) -> None:
    host_id = "edge-" + "a" * 123
    assert Agent(admin.client, host_id).register(mode="auto", token=admin.token()).status_code == 201


def test_auto_registration_and_status_progression(admin: Api) -> None:
    agent = Agent(admin.client, "edge-auto1")
    response = agent.register(mode="auto", token=admin.token(), tags={"store": "12"})
    assert response.status_code == 201
    assert response.json()["project"] == "default" and response.json()["heartbeat_interval"] == 30
    host = admin.ok("GET", "/v1/hosts/edge-auto1")
    assert host["status"] == "registered" and host["tags"] == {"store": "12"}
    assert agent.heartbeat(1).json() == {"spec_generation": 1, "heartbeat_interval": 30}
    host = admin.ok("GET", "/v1/hosts/edge-auto1")
    assert host["status"] == "ready" and host["inventory"]["cpu_cores"] == 4
    agent.heartbeat(1, health="unhealthy", message="disk full")
    assert admin.ok("GET", "/v1/hosts/edge-auto1")["status"] == "unhealthy"
    # Registering again (a re-install) is refused until the host is deleted.
    again = Agent(admin.client, "edge-auto1").register(mode="auto", token=admin.token("second"))
    assert again.status_code == 409 and "delete the host" in loc_msg(again)[1]
    admin.ok("DELETE", "/v1/hosts/edge-auto1", status=204)
    assert agent.heartbeat().status_code == 401
    with admin.client.app.state.console.db.transaction() as tx:
        assert "ephc_" not in str(tx.all("SELECT * FROM hosts"))


def test_stale_is_shown_but_nothing_destructive_happens(admin: Api) -> None:
    agent = Agent(admin.client, "edge-quiet")
    agent.register(mode="auto", token=admin.token())
    agent.heartbeat()
    with admin.client.app.state.console.db.transaction() as tx:
        tx.execute("UPDATE hosts SET last_heartbeat = last_heartbeat - 91000")
    host = admin.ok("GET", "/v1/hosts/edge-quiet")
    assert host["status"] == "stale" and host["spec_generation"] == 1
    assert agent.heartbeat().status_code == 200
    assert admin.ok("GET", "/v1/hosts/edge-quiet")["status"] == "ready"


def test_manual_registration_waits_visibly_until_an_operator_approves(admin: Api) -> None:
    token = admin.token()
    waiting = Agent(admin.client, "edge-m1")
    response = waiting.register(mode="manual", token=token)
    assert response.status_code == 202 and response.json()["waiting_for"] == "operator"
    host = admin.ok("GET", "/v1/hosts/edge-m1")
    assert host["status"] == "pending" and host["waiting_for"] == "operator"
    assert waiting.register(mode="manual", token=token).status_code == 202
    admin.ok("POST", "/v1/hosts/edge-m1/approve")
    assert waiting.register(mode="manual", token=token).status_code == 201
    # Pre-entered IDs register on their first call.
    admin.ok("POST", "/v1/hosts", {"host_ids": ["edge-m2", "edge-m3"], "tags": {"site": "s1"}}, status=201)
    assert admin.ok("GET", "/v1/hosts/edge-m2")["waiting_for"] == "host"
    assert Agent(admin.client, "edge-m2").register(mode="manual", token=token).status_code == 201
    assert admin.ok("GET", "/v1/hosts/edge-m2")["status"] == "registered"
    page = admin.ok("GET", "/v1/hosts?limit=2&offset=1")
    assert [h["id"] for h in page] == ["edge-m2", "edge-m3"]
    dup = admin.post("/v1/hosts", {"host_ids": ["edge-m4", "edge-m4"]})
    assert dup.status_code == 422 and loc_msg(dup)[0] == ["body", "host_ids", 1]
    assert admin.get("/v1/hosts/edge-m4").status_code == 404
    assert admin.post("/v1/hosts", {"host_ids": ["edge-m3"]}).status_code == 409


def test_registration_into_a_named_project(admin: Api) -> None:
    project = admin.ok("POST", "/v1/projects", {"name": "north"}, status=201)
    token = admin.token("north", project_id=project["id"])
    assert Agent(admin.client, "edge-p1").register(mode="auto", token=token).json()["project"] == "north"
    assert Agent(admin.client, "edge-p2").register(mode="auto", token=token, project="default").json()["project"] == "default"
    bad = Agent(admin.client, "edge-p3").register(mode="auto", token=token, project="nowhere")
    assert bad.status_code == 422 and loc_msg(bad)[0] == ["body", "project"]
    missing = Agent(admin.client, "edge-p4").register(mode="auto")
    assert missing.status_code == 422 and loc_msg(missing)[0] == ["body", "token"]


def test_qr_registration(admin: Api, other_tenant: Api) -> None:
    agent = Agent(admin.client, "edge-qr1")
    first = agent.register(mode="qr", qr_code="K7Q2M9XD", secret=SECRET)
    assert first.status_code == 202
    url = first.json()["approval_url"]
    assert url == "http://console.test/v1/qr-approvals/edge-qr1?code=K7Q2M9XD"
    assert admin.ok("GET", "/v1/hosts") == []  # invisible to tenants until approved
    assert admin.get(url).json()["host_id"] == "edge-qr1"
    wrong = admin.post("/v1/qr-approvals/edge-qr1", {"code": "WRONGCODE"})
    assert wrong.status_code == 403 and loc_msg(wrong)[0] == ["body", "code"]
    thief = Agent(admin.client, "edge-qr1").register(mode="qr", qr_code="K7Q2M9XD", secret="t" * 40)
    assert thief.status_code == 401 and loc_msg(thief)[0] == ["body", "secret"]
    viewer = admin.user("vic", "viewer")
    assert viewer.post("/v1/qr-approvals/edge-qr1", {"code": "K7Q2M9XD"}).status_code == 403
    approved = admin.ok("POST", "/v1/qr-approvals/edge-qr1", {"code": "K7Q2M9XD", "site": "store-12"})
    assert approved["tags"] == {"site": "store-12"}
    # The code is single use.
    assert other_tenant.post("/v1/qr-approvals/edge-qr1", {"code": "K7Q2M9XD"}).status_code == 404
    registered = agent.register(mode="qr", qr_code="K7Q2M9XD", secret=SECRET)
    assert registered.status_code == 201 and registered.json()["tenant"] == "default"
    assert agent.heartbeat().status_code == 200
    assert admin.ok("GET", "/v1/hosts/edge-qr1")["status"] == "ready"
    missing = Agent(admin.client, "edge-qr2").register(mode="qr", qr_code="K7Q2M9XD")
    assert missing.status_code == 422 and loc_msg(missing)[0] == ["body", "secret"]


def test_expired_qr_code(admin: Api) -> None:
    agent = Agent(admin.client, "edge-qr3")
    agent.register(mode="qr", qr_code="CODE0001", secret=SECRET)
    with admin.client.app.state.console.db.transaction() as tx:
        tx.execute("UPDATE hosts SET qr_expires_at = 1")
    response = admin.post("/v1/qr-approvals/edge-qr3", {"code": "CODE0001"})
    assert response.status_code == 410 and "expired" in loc_msg(response)[1]
    # Another host's first QR call forgets expired requests nobody approved.
    assert Agent(admin.client, "edge-qr4").register(mode="qr", qr_code="CODE0009", secret=SECRET).status_code == 202
    assert admin.post("/v1/qr-approvals/edge-qr3", {"code": "CODE0001"}).status_code == 404
    # The host starts again with a new code, which works.
    assert agent.register(mode="qr", qr_code="CODE0002", secret=SECRET).status_code == 202
    assert admin.post("/v1/qr-approvals/edge-qr3", {"code": "CODE0001"}).status_code == 403
    admin.ok("POST", "/v1/qr-approvals/edge-qr3", {"code": "CODE0002"})
    assert agent.register(mode="qr", qr_code="CODE0002", secret=SECRET).status_code == 201


def test_qr_approval_into_a_cluster(admin: Api) -> None:
    (cp,) = ready_hosts(admin, 1)
    profile = admin.profile()
    cluster = admin.ok("POST", "/v1/clusters", {"name": "store", "profile_id": profile["id"],
                                                "control_plane": [cp.host_id], "endpoint": {"ddns": "s.example"}})
    agent = Agent(admin.client, "edge-qr9")
    agent.register(mode="qr", qr_code="JOIN0001", secret=SECRET)
    for body, loc, status in [({"cluster_id": "c_nope"}, ["body", "cluster_id"], 404),
                              ({"cluster_id": cluster["id"], "pool": "control-plane"}, ["body", "pool"], 422)]:
        response = admin.post("/v1/qr-approvals/edge-qr9", {"code": "JOIN0001", **body})
        assert response.status_code == status and loc_msg(response)[0] == loc, response.text
    assert admin.get("/v1/hosts/edge-qr9").status_code == 404  # nothing written: still an unapproved request
    approved = admin.ok("POST", "/v1/qr-approvals/edge-qr9", {"code": "JOIN0001", "cluster_id": cluster["id"]})
    assert approved["joins"]["cluster_id"] == cluster["id"]
    assert agent.register(mode="qr", qr_code="JOIN0001", secret=SECRET).status_code == 201
    assert admin.ok("GET", f"/v1/clusters/{cluster['id']}")["workers"] == []
    assert agent.heartbeat(5).json()["spec_generation"] == 2
    assert admin.ok("GET", f"/v1/clusters/{cluster['id']}")["workers"] == ["edge-qr9"]
    spec = agent.spec().json()
    assert spec["action"] == "apply" and spec["cluster"]["role"] == "worker"
    assert admin.ok("GET", "/v1/hosts/edge-qr9")["joins"] is None


def test_qr_join_refused_later_becomes_an_event(admin: Api) -> None:
    (cp,) = ready_hosts(admin, 1)
    cluster = admin.ok("POST", "/v1/clusters", {"name": "store", "profile_id": admin.profile()["id"],
                                                "control_plane": [cp.host_id], "endpoint": {"ddns": "s.example"}})
    agent = Agent(admin.client, "edge-qr8")
    agent.register(mode="qr", qr_code="JOIN0002", secret=SECRET)
    admin.ok("POST", "/v1/qr-approvals/edge-qr8", {"code": "JOIN0002", "cluster_id": cluster["id"]})
    agent.register(mode="qr", qr_code="JOIN0002", secret=SECRET)
    admin.call("DELETE", f"/v1/clusters/{cluster['id']}?force=true")
    assert agent.heartbeat(6).status_code == 200
    assert admin.ok("GET", "/v1/hosts/edge-qr8")["status"] == "ready"
    assert "host.join_failed" in [e["kind"] for e in admin.ok("GET", "/v1/hosts/edge-qr8/events")]
