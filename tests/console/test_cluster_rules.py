"""Cluster creation, scaling and upgrade rules: each bad request names field and reason, writes nothing."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from tests.console.helpers import Api, layers, loc_msg, ready_hosts


def _cert(ca: bool) -> str:
    key = ed25519.Ed25519PrivateKey.generate()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "site-ca")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True).sign(key, None))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _ssh_key() -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode() + " ops@x"


@pytest.fixture
def site(admin: Api) -> dict:
    agents = ready_hosts(admin, 5)
    ids = [a.host_id for a in agents]
    return {"agents": agents, "ids": ids, "k3s": admin.profile()["id"],
            "rke2": admin.profile("rke2-prof", k8s="rke2")["id"],
            "canonical": admin.ok("POST", "/v1/profiles", {"name": "can", "layers": layers(
                "canonical", "1.31.10", os=("ubuntu", "24.04"), csi="longhorn")})["id"]}


def _body(site: dict, **kw) -> dict:
    body = {"name": "c1", "profile_id": site["k3s"], "control_plane": site["ids"][:1],
            "endpoint": {"vip": "10.10.0.250"}}
    body.update(kw)
    return body


BAD = [
    ("two cp rke2", dict(profile_id="rke2", control_plane=2), ["body", "control_plane"], "does not support"),
    ("two cp canonical", dict(profile_id="canonical", control_plane=2), ["body", "control_plane"], "does not support"),
    ("two cp local", dict(control_plane=2, management_mode="local"), ["body", "management_mode"], "central"),
    ("four cp etcd", dict(control_plane=4), ["body", "control_plane"], "odd number"),
    ("no endpoint", dict(endpoint=None), ["body", "endpoint"], "set endpoint.vip or endpoint.ddns"),
    ("vip is a host ip", dict(endpoint={"vip": "10.10.0.10"}), ["body", "endpoint", "vip"], "own address"),
    ("bad vip", dict(endpoint={"vip": "10.10.0.300"}), ["body", "endpoint", "vip"], "IP"),
    ("bad ddns", dict(endpoint={"ddns": "not a name"}), ["body", "endpoint", "ddns"], "DNS name"),
    ("overlay canonical", dict(profile_id="canonical", overlay_cidr="100.64.0.0/24"), ["body", "overlay_cidr"],
     "overlay"),
    ("overlay host bits", dict(overlay_cidr="100.64.0.1/24"), ["body", "overlay_cidr"], "network"),
    ("unknown host", dict(control_plane=["edge-ghost"]), ["body", "control_plane", 0], "unknown host"),
    ("host twice", dict(workers="dup"), ["body", "workers", 0], "more than once"),
    ("unknown profile", dict(profile_id="p_nope"), ["body", "profile_id"], "not found"),
    ("no control plane", dict(control_plane=[]), ["body", "control_plane"], "at least 1"),
    ("bad ca cert", dict(ca_certs=["-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"]),
     ["body", "ca_certs", 0], "PEM"),
    ("leaf not ca", dict(ca_certs="leaf"), ["body", "ca_certs", 0], "not a CA"),
    ("bad ssh key", dict(ssh_keys=["ssh-ed25519 AAAAnotbase64 x"]), ["body", "ssh_keys", 0], "OpenSSH"),
    ("bad ntp", dict(ntp_servers=["pool ntp"]), ["body", "ntp_servers"], "host name"),
    ("bad proxy", dict(proxy={"http_proxy": "ftp://x"}), ["body", "proxy", "http_proxy"], "pattern"),
    ("bad mode", dict(management_mode="remote"), ["body", "management_mode"], "Input should be"),
    ("bad name", dict(name="C_1"), ["body", "name"], "pattern"),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_clusters_are_refused_and_nothing_is_written(admin: Api, site: dict, case: tuple) -> None:
    _, changes, loc, reason = case
    changes = dict(changes)
    if changes.get("profile_id") in site:
        changes["profile_id"] = site[changes["profile_id"]]
    if isinstance(changes.get("control_plane"), int):
        changes["control_plane"] = site["ids"][: changes["control_plane"]]
    if changes.get("workers") == "dup":
        changes["workers"] = site["ids"][:1]
    if changes.get("ca_certs") == "leaf":
        changes["ca_certs"] = [_cert(ca=False)]
    body = {k: v for k, v in _body(site, **changes).items() if v is not None}
    response = admin.post("/v1/clusters", body)
    assert response.status_code in (404, 422), response.text
    got_loc, msg = loc_msg(response)
    assert got_loc == loc and reason in msg, (got_loc, msg)
    assert admin.ok("GET", "/v1/clusters") == []
    assert {h["status"] for h in admin.ok("GET", "/v1/hosts")} == {"ready"}
    assert all(a.spec().json()["generation"] == 1 for a in site["agents"])


def test_datastore_follows_size(admin: Api, site: dict) -> None:
    ids = site["ids"]
    one = admin.ok("POST", "/v1/clusters", _body(site, name="one", workers=[ids[1]]), status=201)
    two = admin.ok("POST", "/v1/clusters", _body(site, name="two", control_plane=ids[2:4]), status=201)
    assert (one["datastore"], two["datastore"]) == ("sqlite", "two-node")
    assert site["agents"][2].spec().json()["cluster"]["datastore"] == "two-node"


def test_etcd_cluster_with_overlay_and_settings(admin: Api, site: dict) -> None:
    body = _body(site, control_plane=site["ids"][:3], overlay_cidr="100.64.0.0/24", endpoint=None,
                 ca_certs=[_cert(ca=True)], ssh_keys=[_ssh_key()], ntp_servers=["time.example.org"],
                 proxy={"https_proxy": "http://proxy:3128", "no_proxy": "10.0.0.0/8"})
    cluster = admin.ok("POST", "/v1/clusters", {k: v for k, v in body.items() if v is not None}, status=201)
    assert cluster["datastore"] == "etcd" and cluster["endpoint"]["vip"] == "100.64.0.1"
    spec = site["agents"][0].spec().json()["cluster"]
    assert spec["overlay_cidr"] == "100.64.0.0/24" and spec["proxy"]["https_proxy"] == "http://proxy:3128"
    assert spec["ca_certs"][0].startswith("-----BEGIN CERTIFICATE-----") and spec["ssh_keys"][0].startswith("ssh-ed25519")


def test_hosts_in_use_or_not_ready_cannot_join(admin: Api, site: dict) -> None:
    admin.ok("POST", "/v1/clusters", _body(site), status=201)
    busy = admin.post("/v1/clusters", _body(site, name="c2"))
    assert busy.status_code == 422 and "is in-use" in loc_msg(busy)[1]
    admin.ok("POST", "/v1/hosts", {"host_ids": ["edge-later"]}, status=201)
    pending = admin.post("/v1/clusters", _body(site, name="c3", control_plane=["edge-later"]))
    assert pending.status_code == 422 and "is pending" in loc_msg(pending)[1]
    name = admin.post("/v1/clusters", _body(site, control_plane=site["ids"][1:2]))
    assert name.status_code == 409 and loc_msg(name)[0] == ["body", "name"]


def test_arch_must_match_hosts(admin: Api, site: dict) -> None:
    arm = admin.ok("POST", "/v1/profiles", {"name": "arm", "layers": layers(), "arch": "arm64"})
    response = admin.post("/v1/clusters", _body(site, profile_id=arm["id"]))
    assert response.status_code == 422 and "is amd64 but the profile is arm64" in loc_msg(response)[1]


def test_scale_rules(admin: Api, site: dict) -> None:
    ids = site["ids"]
    cluster = admin.ok("POST", "/v1/clusters", _body(site, control_plane=ids[:3]), status=201)
    path = f"/v1/clusters/{cluster['id']}/pools"
    for body, loc, reason in [
        ({"control_plane": ids[:4]}, ["body", "control_plane"], "odd number"),
        ({"control_plane": ids[:1]}, ["body", "control_plane"], "cannot change after creation"),
        ({"control_plane": []}, ["body", "control_plane"], "at least one"),
        ({"control_plane": ids[:3], "workers": [ids[2]]}, ["body", "workers", 0], "more than once"),
        ({"control_plane": ids[:2] + [ids[3]], "workers": [ids[2]]}, ["body", "workers", 0], "remove it first"),
        ({"control_plane": ids[:3], "workers": ["edge-ghost"]}, ["body", "workers", 0], "unknown host"),
    ]:
        response = admin.call("PUT", path, json=body)
        assert response.status_code == 422, response.text
        assert loc_msg(response)[0] == loc and reason in loc_msg(response)[1], loc_msg(response)
    state = admin.ok("GET", f"/v1/clusters/{cluster['id']}")
    assert state["generation"] == 1 and state["control_plane"] == sorted(ids[:3]) and state["workers"] == []
    scaled = admin.ok("PUT", path, {"control_plane": ids[:3], "workers": ids[3:5]})
    assert scaled["workers"] == sorted(ids[3:5])
    immutable = admin.call("PATCH", f"/v1/clusters/{cluster['id']}", json={"overlay_cidr": "100.64.0.0/24"})
    assert immutable.status_code == 422 and loc_msg(immutable)[0] == ["body", "overlay_cidr"]


def test_upgrade_rules(admin: Api, site: dict) -> None:
    agents = site["agents"]
    cluster = admin.ok("POST", "/v1/clusters", _body(site), status=201)
    path = f"/v1/clusters/{cluster['id']}/upgrade"
    v2 = admin.profile_version("retail", version="1.31.10")
    not_running = admin.post(path, {"profile_id": v2["id"]})
    assert not_running.status_code == 409 and "provisioning" in loc_msg(not_running)[1]
    agents[0].report("ready")
    skip = admin.profile_version("retail", version="1.33.2")
    down = admin.profile_version("retail", version="1.29.15")
    rke2 = admin.profile_version("retail", k8s="rke2", version="1.31.10")
    flannel = admin.ok("POST", "/v1/profiles/retail/versions", {"layers": layers(cni="flannel")})
    for profile_id, reason in [(site["rke2"], "must be a version of profile 'retail'"),
                               (site["k3s"], "already runs"), (skip["id"], "one minor version at a time"),
                               (down["id"], "cannot be downgraded"), (rke2["id"], "distribution cannot change"),
                               (flannel["id"], "network pack cannot change"), ("p_nope", "not found")]:
        response = admin.post(path, {"profile_id": profile_id})
        assert response.status_code in (404, 422) and loc_msg(response)[0] == ["body", "profile_id"]
        assert reason in loc_msg(response)[1], loc_msg(response)
    assert admin.ok("GET", f"/v1/clusters/{cluster['id']}")["operation"] is None
    admin.ok("POST", path, {"profile_id": v2["id"]})
    busy = admin.call("PUT", f"/v1/clusters/{cluster['id']}/pools", json={"control_plane": site["ids"][:1]})
    assert busy.status_code == 409 and "upgrade is in progress" in loc_msg(busy)[1]
    assert admin.post(path, {"profile_id": v2["id"]}).status_code == 409
    assert admin.post(f"/v1/clusters/{cluster['id']}/upgrade/cancel").status_code == 200
    assert admin.post(f"/v1/clusters/{cluster['id']}/upgrade/cancel").status_code == 409
