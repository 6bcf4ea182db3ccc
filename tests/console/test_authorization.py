"""Every endpoint refuses a missing key, a viewer's write, another tenant's objects, revoked or
expired tokens and keys, and a host credential used for another host."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.console.helpers import Agent, Api, loc_msg, ready_hosts

WRITE = {"post", "put", "patch", "delete"}


def _routes(client: TestClient) -> list[tuple[str, str]]:
    spec = client.get("/openapi.json").json()
    return [(method, path) for path, ops in spec["paths"].items() for method in ops]


def _fill(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def test_every_operator_endpoint_needs_a_key(client: TestClient) -> None:
    client.app.state.console.limiter.max_failures = 10_000
    routes = [(m, p) for m, p in _routes(client) if p != "/v1/agent/register"]
    assert len(routes) > 30
    for method, path in routes:
        response = client.request(method, _fill(path), json={})
        assert response.status_code == 401, (method, path, response.status_code)
        assert loc_msg(response)[0] == ["header", "authorization"]
        # A wrong key: refused as unknown, or (when the body is also wrong) for the body first.
        bad = client.request(method, _fill(path), headers={"Authorization": "Bearer epk_nope"})
        assert bad.status_code in (401, 422), (method, path)


def test_viewer_cannot_write_anything(admin: Api) -> None:
    viewer = admin.user("vera", "viewer")
    assert viewer.get("/v1/hosts").status_code == 200
    writes = [(m, p) for m, p in _routes(admin.client) if m in WRITE and not p.startswith("/v1/agent/")]
    bodies = {"/v1/projects": {"name": "p2"}, "/v1/users": {"name": "u2", "role": "admin"},
              "/v1/registration-tokens": {"name": "t", "expires_at": "2099-01-01T00:00:00Z"},
              "/v1/hosts": {"host_ids": ["edge-x"]}}
    for method, path in writes:
        response = viewer.call(method, _fill(path), json=bodies.get(path, {}))
        assert response.status_code in (403, 422), (method, path, response.text)
    # With a valid body the refusal is the role, and nothing was written.
    for path, body in bodies.items():
        response = viewer.post(path, json=body)
        assert response.status_code == 403, path
        assert "needs" in loc_msg(response)[1]
    assert admin.ok("GET", "/v1/hosts") == []


def test_operator_cannot_manage_users_or_tokens(admin: Api) -> None:
    operator = admin.user("otto", "operator")
    assert operator.post("/v1/registration-tokens", {"name": "t", "expires_at": "2099-01-01T00:00:00Z"}).status_code == 403
    assert operator.post("/v1/users", {"name": "x", "role": "admin"}).status_code == 403
    assert operator.get("/v1/audit").status_code == 403
    assert operator.post("/v1/hosts", {"host_ids": ["edge-a"]}).status_code == 201


def test_other_tenants_objects_are_invisible(admin: Api, other_tenant: Api) -> None:
    agents = ready_hosts(admin, 1)
    profile = admin.profile()
    cluster = admin.ok("POST", "/v1/clusters", {"name": "c1", "profile_id": profile["id"],
                                                "control_plane": [agents[0].host_id], "endpoint": {"ddns": "c1.example"}})
    host = agents[0].host_id
    assert other_tenant.get(f"/v1/hosts/{host}").status_code == 404
    assert other_tenant.call("PATCH", f"/v1/hosts/{host}", json={"tags": {"a": "b"}}).status_code == 404
    assert other_tenant.call("DELETE", f"/v1/hosts/{host}").status_code == 404
    assert other_tenant.get(f"/v1/profiles/{profile['id']}").status_code == 404
    assert other_tenant.get(f"/v1/clusters/{cluster['id']}").status_code == 404
    assert other_tenant.get(f"/v1/clusters/{cluster['id']}/events").status_code == 404
    assert other_tenant.call("DELETE", f"/v1/clusters/{cluster['id']}").status_code == 404
    assert other_tenant.ok("GET", "/v1/hosts") == [] and other_tenant.ok("GET", "/v1/clusters") == []
    # Using another tenant's host or profile to build a cluster fails on the field, not silently.
    other_profile = other_tenant.profile()
    response = other_tenant.post("/v1/clusters", {"name": "c2", "profile_id": other_profile["id"],
                                                 "control_plane": [host], "endpoint": {"ddns": "c2.example"}})
    assert response.status_code == 422 and loc_msg(response)[0] == ["body", "control_plane", 0]
    response = other_tenant.post("/v1/clusters", {"name": "c3", "profile_id": profile["id"],
                                                 "control_plane": [host], "endpoint": {"ddns": "c2.example"}})
    assert response.status_code == 404 and loc_msg(response)[0] == ["body", "profile_id"]
    assert other_tenant.post("/v1/hosts", {"host_ids": [host]}).status_code == 409


def test_revoked_api_key(admin: Api) -> None:
    user = admin.ok("POST", "/v1/users", {"name": "tmp", "role": "operator"})
    key = admin.ok("POST", f"/v1/users/{user['id']}/api-keys", {"name": "k"})
    api = Api(admin.client, key["key"])
    assert api.get("/v1/hosts").status_code == 200
    admin.ok("DELETE", f"/v1/api-keys/{key['id']}", status=204)
    response = api.get("/v1/hosts")
    assert response.status_code == 401 and "revoked" in loc_msg(response)[1]


@pytest.mark.parametrize("state", ["revoked", "expired", "unknown"])
def test_refused_registration_tokens(admin: Api, db_url: str, state: str) -> None:
    token = admin.token()
    if state == "revoked":
        token_id = admin.ok("GET", "/v1/registration-tokens")[0]["id"]
        admin.ok("DELETE", f"/v1/registration-tokens/{token_id}", status=204)
    elif state == "expired":
        with admin.client.app.state.console.db.transaction() as tx:
            tx.execute("UPDATE registration_tokens SET expires_at = 1")
    else:
        token = "eprt_" + "x" * 43
    response = Agent(admin.client, "edge-new").register(mode="auto", token=token)
    assert response.status_code == 401
    assert loc_msg(response) == (["body", "token"], f"{'unknown' if state == 'unknown' else 'registration'} "
                                 f"{'registration token' if state == 'unknown' else 'token ' + state}")
    assert admin.ok("GET", "/v1/hosts") == []


def test_host_credential_is_bound_to_its_host(admin: Api) -> None:
    a, b = ready_hosts(admin, 2)
    thief = Agent(admin.client, b.host_id, a.credential)
    for response in (thief.heartbeat(), thief.spec(), thief.report("ready", 1),
                     admin.client.post(f"/v1/agent/hosts/{b.host_id}/events", headers=thief.headers,
                                       json={"events": [{"kind": "x", "message": "y"}]})):
        assert response.status_code == 403, response.text
        assert loc_msg(response) == (["header", "authorization"], "this credential belongs to another host")
    nobody = Agent(admin.client, a.host_id, "")
    assert nobody.heartbeat().status_code == 401
    assert nobody.spec().status_code == 401
    assert Agent(admin.client, a.host_id, "ephc_wrong").heartbeat().status_code == 401
    # An operator key is not a host credential.
    assert Agent(admin.client, a.host_id, admin.key).heartbeat().status_code == 401
    assert admin.client.get("/v1/agent/artifacts/sha256:" + "0" * 64).status_code == 401


def test_failed_authentications_are_rate_limited(client: TestClient) -> None:
    for _ in range(30):
        assert client.get("/v1/hosts", headers={"Authorization": "Bearer epk_guess"}).status_code == 401
    response = client.get("/v1/hosts", headers={"Authorization": "Bearer epk_guess"})
    assert response.status_code == 429 and int(response.headers["Retry-After"]) >= 1


def test_audit_log_records_who_what_when_where(admin: Api) -> None:
    admin.ok("POST", "/v1/projects", {"name": "north"})
    admin.token("north-token")
    entries = admin.ok("GET", "/v1/audit")
    latest = entries[0]
    assert latest["actor"] == "user:admin" and latest["action"] == "create"
    assert latest["object_type"] == "registration_token" and latest["source"] == "testclient" and latest["at"] > 0
    assert "eprt_" not in str(entries)  # the token value is never recorded
    assert [e["object_type"] for e in entries[:2]] == ["registration_token", "project"]
    assert entries[1]["detail"] == {"name": "north"}


def test_every_object_endpoint_hides_other_tenants_objects(admin: Api, other_tenant: Api) -> None:
    """Walk every operator route with a path parameter and aim it at tenant A's objects as B."""
    agents = ready_hosts(admin, 2)
    profile = admin.profile()
    cluster = admin.ok("POST", "/v1/clusters", {"name": "c1", "profile_id": profile["id"],
                                                "control_plane": [agents[0].host_id], "endpoint": {"ddns": "c.example"}})
    user = admin.ok("POST", "/v1/users", {"name": "ann", "role": "viewer"})
    key = admin.ok("POST", f"/v1/users/{user['id']}/api-keys", {"name": "k"})
    admin.token("tok")
    ids = {"host_id": agents[1].host_id, "cluster_id": cluster["id"], "profile_id": profile["id"],
           "user_id": user["id"], "key_id": key["id"], "token_id": admin.ok("GET", "/v1/registration-tokens")[0]["id"],
           "name": profile["name"]}
    bodies = {"patch /v1/hosts/{host_id}": {"tags": {}}, "patch /v1/clusters/{cluster_id}": {},
              "put /v1/clusters/{cluster_id}/pools": {"control_plane": [agents[0].host_id]},
              "post /v1/clusters/{cluster_id}/upgrade": {"profile_id": profile["id"]},
              "post /v1/users/{user_id}/api-keys": {"name": "x"},
              "post /v1/profiles/{name}/versions": {"layers": profile["layers"]}}
    checked = 0
    for method, path in _routes(admin.client):
        params = re.findall(r"\{([^}]+)\}", path)
        if not params or path.startswith("/v1/agent/") or path.startswith("/v1/qr-approvals/"):
            continue
        url = path
        for name in params:
            url = url.replace("{" + name + "}", ids[name])
        response = other_tenant.call(method, url, json=bodies.get(f"{method} {path}"))
        assert response.status_code == 404, (method, path, response.text)
        checked += 1
    assert checked >= 15
    # And nothing changed for tenant A.
    assert admin.ok("GET", f"/v1/clusters/{cluster['id']}")["generation"] == 1
    assert Api(admin.client, key["key"]).get("/v1/hosts").status_code == 200
