"""The packs catalogue and cluster profile validation (each bad profile names field and reason)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.console.helpers import Api, layers, loc_msg


def test_builtin_catalogue(admin: Api) -> None:
    packs = admin.ok("GET", "/v1/packs")
    versions = {(p["name"], p["version"]) for p in packs}
    for flavour in ("pxk-e", "pxk-e-fips", "k3s", "rke2"):
        minors = sorted({v.rsplit(".", 1)[0] for n, v in versions if n == flavour})
        assert minors == [f"1.{m}" for m in range(26, 34)], flavour
    canonical = [p for p in packs if p["name"] == "canonical"]
    assert canonical and all(p["tech_preview"] for p in canonical)
    assert {p["name"] for p in packs if p["layer"] == "os"} == {"ubuntu", "opensuse-leap", "byoos"}
    assert {p["name"] for p in packs if p["layer"] == "network"} == {"calico", "flannel", "cilium"}
    assert {p["name"] for p in packs if p["layer"] == "storage"} == {"rook-ceph", "longhorn"}
    assert {"metrics-server", "kube-vip"} <= {p["name"] for p in admin.ok("GET", "/v1/packs?layer=addon")}
    k3s = next(p for p in packs if p["name"] == "k3s")
    assert set(k3s["values"]["cluster"]["config"]["disable"]) == {"traefik", "servicelb", "local-storage", "metrics-server"}
    assert k3s["values"]["cluster"]["config"]["flannel-backend"] == "none"
    rke2 = next(p for p in packs if p["name"] == "rke2")
    assert "rke2-metrics-server" in rke2["values"]["cluster"]["config"]["disable"]


def test_profile_versions_and_merged_values(admin: Api) -> None:
    body_layers = layers()
    body_layers[1]["values"] = {"cluster": {"config": {"cluster-cidr": "10.50.0.0/16"}}}
    v1 = admin.ok("POST", "/v1/profiles", {"name": "shop", "layers": body_layers}, status=201)
    v2 = admin.profile_version("shop", version="1.31.10")
    assert (v1["version"], v2["version"]) == (1, 2)
    assert [p["version"] for p in admin.ok("GET", "/v1/profiles")] == [1, 2]
    again = admin.post("/v1/profiles", {"name": "shop", "layers": layers()})
    assert again.status_code == 409 and loc_msg(again)[0] == ["body", "name"]


def _k3s_override(values: dict[str, Any]) -> list[dict[str, Any]]:
    out = layers()
    out[1]["values"] = values
    return out


def _canonical(**kw: Any) -> list[dict[str, Any]]:
    return layers("canonical", "1.31.10", cni=kw.get("cni", "calico"), csi=kw.get("csi", "longhorn"),
                  os=kw.get("os", ("ubuntu", "24.04")))


BYOOS_SUSE = [{"layer": "os", "pack": "byoos", "version": "1.0.0",
               "values": {"options": {"system.osName": "opensuse-leap"}}}] + _canonical()[1:]

BAD_PROFILES = [
    ("no kubernetes", {"layers": [layers()[0], layers()[2]]}, ["body", "layers"], "needs a 'kubernetes' layer"),
    ("wrong order", {"layers": [layers()[1], layers()[0], layers()[2]]}, ["body", "layers", 1, "layer"],
     "comes after 'kubernetes'"),
    ("two os", {"layers": [layers()[0]] + layers()}, ["body", "layers", 1, "layer"], "more than once"),
    ("unknown version", {"layers": layers("k3s", "1.25.0")}, ["body", "layers", 1, "version"], "has no version"),
    ("pack in wrong layer", {"layers": [layers()[0], {"layer": "kubernetes", "pack": "calico", "version": "3.28.2"},
                                        layers()[2]]}, ["body", "layers", 1, "pack"], "is a 'network' pack"),
    ("cilium with k3s", {"layers": layers(cni="cilium")}, ["body", "layers", 2, "pack"], "supports network packs"),
    ("longhorn with rke2", {"layers": layers("rke2", csi="longhorn")}, ["body", "layers", 3, "pack"],
     "supports storage packs"),
    ("canonical on opensuse", {"layers": _canonical(os=("opensuse-leap", "15.6"))}, ["body", "layers", 0, "pack"],
     "runs on ubuntu, not opensuse"),
    ("canonical on byoos opensuse", {"layers": BYOOS_SUSE}, ["body", "layers", 0, "pack"], "not opensuse"),
    ("canonical with flannel", {"layers": _canonical(cni="flannel")}, ["body", "layers", 2, "pack"],
     "supports network packs calico, cilium"),
    ("canonical with rook", {"layers": _canonical(csi="rook-ceph")}, ["body", "layers", 3, "pack"], "longhorn"),
    ("canonical on arm64", {"layers": _canonical(), "arch": "arm64"}, ["body", "arch"], "does not support arm64"),
    ("canonical custom path", {"layers": _canonical(), "install_path": "/opt/k"}, ["body", "install_path"],
     "custom installation paths"),
    ("canonical 1.28", {"layers": layers("canonical", "1.28.15", cni="calico", csi="longhorn")},
     ["body", "layers", 1, "version"], "has no version"),
    ("fips with k3s", {"layers": layers(), "fips": True}, ["body", "layers", 1, "pack"], "FIPS-capable"),
    ("fips with opensuse", {"layers": layers("pxk-e-fips", os=("opensuse-leap", "15.6")), "fips": True},
     ["body", "layers", 0, "pack"], "FIPS-capable"),
    ("fips with flannel", {"layers": layers("pxk-e-fips", cni="flannel"), "fips": True},
     ["body", "layers", 2, "pack"], "FIPS-capable"),
    ("pxk-e-fips on arm64", {"layers": layers("pxk-e-fips"), "arch": "arm64"}, ["body", "arch"], "arm64"),
    ("metrics-server enabled", {"layers": _k3s_override({"cluster": {"config": {"disable": ["traefik"]}}})},
     ["body", "layers", 1, "values", "cluster", "config", "disable"], "metrics-server must stay disabled"),
    ("flannel enabled", {"layers": _k3s_override({"cluster": {"config": {"flannel-backend": "vxlan"}}})},
     ["body", "layers", 1, "values", "cluster", "config", "flannel-backend"], "built-in CNI"),
    ("rke2 metrics-server", {"layers": [*layers("rke2")[:1], {**layers("rke2")[1], "values": {
        "cluster": {"config": {"disable": []}}}}, layers("rke2")[2]]},
     ["body", "layers", 1, "values", "cluster", "config", "disable"], "metrics-server must stay disabled"),
    ("bad name", {"name": "Bad Name", "layers": layers()}, ["body", "name"], "pattern"),
    ("unknown layer", {"layers": [{"layer": "gpu", "pack": "x", "version": "1"}]}, ["body", "layers", 0, "layer"],
     "Input should be"),
    ("unknown field", {"layers": layers(), "colour": "red"}, ["body", "colour"], "Extra inputs"),
]


@pytest.mark.parametrize("case", BAD_PROFILES, ids=[c[0] for c in BAD_PROFILES])
def test_bad_profiles_are_refused_and_nothing_is_written(admin: Api, case: tuple) -> None:
    _, body, loc, reason = case
    response = admin.post("/v1/profiles", {"name": "bad", **body})
    assert response.status_code == 422, response.text
    got_loc, msg = loc_msg(response)
    assert got_loc == loc and reason in msg, (got_loc, msg)
    assert admin.ok("GET", "/v1/profiles") == []


GOOD = [
    ("k3s flannel rook", {"layers": layers(cni="flannel", csi="rook-ceph")}),
    ("canonical cilium", {"layers": _canonical(cni="cilium")}),
    ("fips pxk-e", {"layers": layers("pxk-e-fips", csi="rook-ceph"), "fips": True}),
    ("byoos ubuntu canonical", {"layers": [{"layer": "os", "pack": "byoos", "version": "1.0.0"}] + _canonical()[1:]}),
    ("k3s arm64 opensuse", {"layers": layers(os=("opensuse-leap", "15.5")), "arch": "arm64"}),
    ("addons", {"layers": layers() + [{"layer": "addon", "pack": "kube-vip", "version": "0.8.4"},
                                     {"layer": "addon", "pack": "metrics-server", "version": "0.7.2"}]}),
]


@pytest.mark.parametrize("case", GOOD, ids=[c[0] for c in GOOD])
def test_good_profiles(admin: Api, case: tuple) -> None:
    admin.ok("POST", "/v1/profiles", {"name": "good", **case[1]}, status=201)


def test_custom_pack_extends_the_catalogue(admin: Api) -> None:
    admin.ok("POST", "/v1/packs", {"name": "pos-app", "layer": "addon", "version": "2.1.0",
                                   "values": {"replicas": 2}}, status=201)
    profile = admin.ok("POST", "/v1/profiles", {"name": "pos", "layers": layers() + [
        {"layer": "addon", "pack": "pos-app", "version": "2.1.0", "values": {"replicas": 3}}]}, status=201)
    assert profile["layers"][-1]["pack"] == "pos-app"
    for body, loc in [({"name": "k3s", "layer": "addon", "version": "1"}, ["body", "name"]),
                      ({"name": "mine", "layer": "kubernetes", "version": "1"}, ["body", "layer"]),
                      ({"name": "pos-app", "layer": "addon", "version": "2.1.0"}, ["body", "version"]),
                      ({"name": "x", "layer": "addon", "version": "1",
                        "artifacts": [{"name": "a", "digest": "sha256:" + "a" * 64}]}, ["body", "artifacts", 0, "digest"])]:
        response = admin.post("/v1/packs", body)
        assert response.status_code in (409, 422) and loc_msg(response)[0] == loc, response.text
    assert [p["name"] for p in admin.ok("GET", "/v1/packs?layer=addon") if not p["builtin"]] == ["pos-app"]
