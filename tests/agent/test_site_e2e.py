"""End to end: a real console process and three agent processes, each in its own --root.

Registration by token, by manual ID approval and by QR approval; a K3s cluster created on one host
and scaled to three; an upgrade where one node's image health check fails and everything rolls
back; ``kill -9`` of an agent in the middle of its install, restarted, resumes and converges;
the cluster deleted, every node reset.

Where a distribution's installer would run, the agents run the lab installer
(``edgeplane.agent.labhost.LAB_INSTALLER``), a fixture script that records its arguments: the real
K3s installer downloads binaries and needs root, which a shared test machine cannot give.
"""

from __future__ import annotations

import io
import json
import signal
import tarfile
from typing import Any

from edgeplane.agent import AgentProcess
from edgeplane.agent.cahash import ca_hash_of
from tests.agent.test_cahash import make_ca
from tests.agent.support import Site
from tests.support.waiting import wait_for

HEALTH_CHECK = b"""#!/bin/sh
# image health check: fails on a host where the test planted a marker
if [ -e "$1/etc/edgeplane/fail-health" ]; then echo "planted failure on this host"; exit 1; fi
exit 0
"""


def image_tar(version: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data, mode in (("health-check", HEALTH_CHECK, 0o755), ("VERSION", version.encode(), 0o644)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def upload_image(site: Site, version: str) -> str:
    response = site.http.post("/v1/artifacts", params={"name": f"edge-os-{version}"}, content=image_tar(version))
    assert response.status_code == 201, response.text
    return response.json()["digest"]


def journal(agent: AgentProcess) -> list[dict[str, Any]]:
    return [json.loads(line) for line in agent.state("journal.jsonl").splitlines() if line.strip()]


def test_site_registration_cluster_scale_upgrade_rollback_and_crash_resume(site: Site) -> None:
    token = site.ok("POST", "/v1/registration-tokens", {"name": "store", "expires_at": "2099-01-01T00:00:00Z"})["token"]
    v1, v2 = upload_image(site, "v1"), upload_image(site, "v2")
    for version, digest in (("1.0.0", v1), ("2.0.0", v2)):
        # the console's OS packs are its built-in table; the image rides on an add-on pack
        site.ok("POST", "/v1/packs", {"name": "edge-image", "layer": "addon", "version": version,
                                      "artifacts": [{"name": "provider-image", "digest": digest}]})
    layers = [{"layer": "os", "pack": "ubuntu", "version": "22.04"},
              {"layer": "kubernetes", "pack": "k3s", "version": "1.30.14"},
              {"layer": "network", "pack": "calico", "version": "3.28.2"},
              {"layer": "addon", "pack": "edge-image", "version": "1.0.0"}]
    profile_v1 = site.ok("POST", "/v1/profiles", {"name": "retail", "layers": layers})
    layers[3]["version"] = "2.0.0"
    profile_v2 = site.ok("POST", "/v1/profiles/retail/versions", {"layers": layers})

    # --- registration: token (auto), manual ID, QR
    auto = site.agent("auto", f"    registrationToken: {token}\n    name: edge-auto\n    tags: {{city: chicago}}\n")
    manual = site.agent("manual", f"    registrationToken: {token}\n    disableAutoRegister: true\n")
    qr = site.agent("qr", f"    registrationURL: {site.url}/v1/qr-approvals\n")
    wait_for("auto registration", lambda: site.host("edge-auto").get("status") == "ready")
    assert site.host("edge-auto")["tags"] == {"city": "chicago"}
    manual_id = wait_for("manual host ID", lambda: manual.host_id)
    assert manual_id == "edge-" + (manual.root / "sys/class/dmi/id/product_uuid").read_text().strip()
    wait_for("manual host pending", lambda: site.host(manual_id).get("status") == "pending")
    assert json.loads(manual.state("registration-status.json"))["code"] == "pending-approval"
    site.ok("POST", f"/v1/hosts/{manual_id}/approve")
    png = qr.root / "var/lib/edgeplane/agent/registration-qr.png"
    wait_for("QR code PNG", png.exists)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code = json.loads(qr.state("qr.json"))["qr_code"]
    assert "scan to approve this host" in (qr.root / "agent.log").read_text()
    project = site.ok("GET", "/v1/projects")[0]["id"]
    site.ok("POST", f"/v1/qr-approvals/{qr.host_id}", {"code": code, "project_id": project, "site": "store-12"})
    for agent in (manual, qr):
        wait_for(f"{agent.host_id} ready", lambda agent=agent: site.host(agent.host_id).get("status") == "ready")

    # --- a cluster on one host; its (planted) K3s CA is reported and handed to every member
    ca_pem = make_ca()
    (auto.root / "var/lib/rancher/k3s/server/tls").mkdir(parents=True)
    (auto.root / "var/lib/rancher/k3s/server/tls/server-ca.crt").write_bytes(ca_pem)
    cluster = site.ok("POST", "/v1/clusters", {"name": "store-12", "profile_id": profile_v1["id"],
                                               "control_plane": ["edge-auto"], "endpoint": {"vip": "10.10.0.250"}})
    cluster_url = f"/v1/clusters/{cluster['id']}"
    wait_for("cluster running", lambda: site.ok("GET", cluster_url)["status"] == "running")
    config = (auto.root / "etc/rancher/k3s/config.yaml").read_text()
    assert "datastore-endpoint: http://127.0.0.1:2379" in config and "flannel-backend: none" in config
    assert "k3s-install.sh --k3s-version 1.30.14 --role server" in (auto.root / "var/log/installer-calls.log").read_text()
    reported = site.host("edge-auto")["kubernetes"]
    assert {k: reported.get(k) for k in ("version", "role", "distribution")} == {
        "version": "1.30.14", "role": "control-plane", "distribution": "k3s"}
    slots = json.loads((auto.root / "boot/edgeplane/state.json").read_text())
    assert slots["slots"]["a"]["digest"] == v1

    # --- scale to three; the QR host's agent is killed -9 in the middle of its installer
    (qr.root / "etc/edgeplane").mkdir(parents=True, exist_ok=True)
    (qr.root / "etc/edgeplane/slow-install").touch()
    site.ok("PUT", f"{cluster_url}/pools", {"control_plane": ["edge-auto"], "workers": [manual_id, qr.host_id]})
    wait_for("QR host inside its installer",
             lambda: "k3s-install.sh" in ((qr.root / "var/log/installer-calls.log").read_text()
                                          if (qr.root / "var/log/installer-calls.log").exists() else ""))
    qr.kill(signal.SIGKILL)
    (qr.root / "etc/edgeplane/slow-install").unlink()
    interrupted = [r["step"] for r in journal(qr) if r["state"] == "done"]
    qr.start()
    wait_for("cluster of three running", lambda: site.ok("GET", cluster_url)["status"] == "running"
             and all(n["phase"] == "ready" and n["observed_generation"] == n["spec_generation"]
                     for n in site.ok("GET", cluster_url)["nodes"]) and len(site.ok("GET", cluster_url)["nodes"]) == 3)
    records = journal(qr)
    install_step = next(r["step"] for r in records if "k3s-install.sh" in r["step"])
    assert [r["state"] for r in records if r["step"] == install_step] == ["started", "started", "done"]
    assert not any(r["step"] in interrupted and r["state"] == "started" for r in records[len(records) - 3:])
    assert (qr.root / "var/log/installer-calls.log").read_text().count("k3s-install.sh") == 2
    assert "server: https://10.10.0.250:6443" in (qr.root / "etc/rancher/k3s/config.yaml").read_text()
    assert json.loads(manual.state("spec.json"))["cluster"]["ca_hash"] == ca_hash_of(ca_pem)

    # --- upgrade to the v2 image; one worker's health check fails; everything rolls back to v1
    started = site.ok("POST", f"{cluster_url}/upgrade", {"profile_id": profile_v2["id"]})
    order = started["operation"]["order"]
    failing = next(a for a in (manual, qr) if a.host_id == order[1])
    (failing.root / "etc/edgeplane").mkdir(parents=True, exist_ok=True)
    (failing.root / "etc/edgeplane/fail-health").touch()
    final = wait_for("upgrade rolled back", lambda: (lambda c: c if c["operation"] is None else None)(
        site.ok("GET", cluster_url)), timeout=60)
    assert final["profile_id"] == profile_v1["id"] and final["status"] == "running"
    failed_state = json.loads((failing.root / "boot/edgeplane/state.json").read_text())
    assert failed_state["last_result"].startswith("rolled back to slot a: health check failed: planted failure")
    assert failed_state["slots"][failed_state["active"]]["digest"] == v1
    first = json.loads((auto.root / "boot/edgeplane/state.json").read_text())
    assert first["slots"][first["active"]]["digest"] == v1 and first["slots"]["b"]["digest"] == v2
    wait_for("rollback event at the console", lambda: "upgrade.rolled-back" in [
        e["kind"] for e in site.ok("GET", f"/v1/hosts/{failing.host_id}/events")])

    # --- deleting the cluster resets every node: Kubernetes configuration gone, hosts ready again
    assert site.http.delete(cluster_url).status_code == 202
    wait_for("cluster deleted", lambda: site.http.get(cluster_url).status_code == 404)
    for agent in (auto, manual, qr):
        assert site.host(agent.host_id)["status"] == "ready"
        assert not (agent.root / "etc/rancher").exists()
        assert "k3s-install.sh reset" in (agent.root / "var/log/installer-calls.log").read_text()
