"""Offline upgrade capsules applied to a running lab site whose console is stopped.

The lab site (``edgeplane.lab.site.LabSite``, what ``make run`` starts) brings up a real console
process and three real agent processes, each in its own ``--root``, and forms a K3s cluster
(one control plane, two workers). Then the console process is stopped and capsules are rolled
out with ``edgeplane forge capsule apply`` and ``edgeplane agent apply-capsule`` (real CLI
processes): a capsule with a newer K3s and a first provider image, then one with the next K3s
and a new image whose health check fails on one worker (that host rolls back, the rollout stops,
the last host is untouched), and capsules that are unsigned, signed with another key or damaged
(refused, nothing installed). Finally the console is started again and learns the versions.

The one fake is at the true boundary: where a distribution's installer would run, the lab hosts
run the lab installer (``edgeplane.agent.labhost.LAB_INSTALLER``), which records its arguments
in ``ROOT/var/log/installer-calls.log`` - the real K3s installer downloads binaries and needs
root. Provider images are small tars carrying the image's own ``health-check`` script (the
same one the agent's end-to-end test uses), which the agent runs after switching slots.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from edgeplane.agent import AgentProcess
from edgeplane.common.catalogue import K8S_VERSIONS
from edgeplane.forge import build_bundle, build_capsule, generate_keypair, load_private_key, make_artifact
from edgeplane.lab.site import LabSite
from tests.agent.test_site_e2e import image_tar
from tests.support.ports import free_port
from tests.support.waiting import wait_for

LAYERS = [("os", "ubuntu", "22.04"), ("kubernetes", "k3s", None), ("network", "calico", "3.28.2"),
          ("addon", "edge-image", None)]


@dataclass
class Lab:
    site: LabSite
    base: Path
    private_key: Path
    other_key: Path
    http: httpx.Client

    def roots(self) -> dict[str, Path]:
        return {name: agent.root for name, agent in self.site.agents.items()}

    def host_ids(self) -> dict[str, str]:
        return {name: agent.host_id for name, agent in self.site.agents.items()}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A lab site that reached a running cluster, every host trusting the test's signing key,
    and its console process stopped."""
    base = tmp_path_factory.mktemp("capsule-site")
    site = LabSite(base / "lab", f"127.0.0.1:{free_port()}", say=lambda line: None)
    ready, stop = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            site.run(ready, stop)
        except BaseException as exc:  # noqa: BLE001 - reported by the fixture
            errors.append(exc)
            ready.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert ready.wait(240) and not errors, f"lab site did not come up: {errors}"
        private, public = base / "signer.pem", base / "signer.pub.pem"
        generate_keypair(private, public)
        generate_keypair(base / "other.pem", base / "other.pub.pem")
        for agent in site.agents.values():
            keys = agent.root / "etc/edgeplane/keys"
            keys.mkdir(parents=True)
            (keys / "site.pem").write_bytes(public.read_bytes())
        http = httpx.Client(base_url=site.console.url, headers={"Authorization": f"Bearer {site.admin_key}"},
                            timeout=30)
        site.console.stop()
        with pytest.raises(httpx.TransportError):
            http.get("/healthz", timeout=2)
        yield Lab(site, base, private, base / "other.pem", http)
        http.close()
    finally:
        stop.set()
        thread.join(60)


def make_capsule(lab: Lab, version: int, k3s: str, image: bytes, *, key: Path | None = None) -> Path:
    """A capsule of the lab's profile ``lab-k3s`` version ``version``: every pack it references,
    the image-carrying add-on pack (its pack.yaml names the image by digest) and the image."""
    work = lab.base / f"v{version}"
    (work / "packs").mkdir(parents=True, exist_ok=True)
    digest = "sha256:" + hashlib.sha256(image).hexdigest()
    (work / "edge-os.tar").write_bytes(image)
    layers = []
    for layer, pack, pinned in LAYERS:
        pack_version = pinned or (k3s if pack == "k3s" else f"{version}.0.0")
        layers.append({"layer": layer, "pack": pack, "version": pack_version})
        directory = work / "packs" / pack
        directory.mkdir(exist_ok=True)
        document: dict[str, Any] = {"name": pack, "version": pack_version}
        if pack == "edge-image":
            document.update(layer="addon", artifacts=[{"name": "provider-image", "digest": digest}])
        (directory / "pack.yaml").write_text(json.dumps(document))
    profile = work / "lab-k3s.yaml"
    profile.write_text(json.dumps({"name": "lab-k3s", "version": version, "type": "infra", "layers": layers}))
    artifacts = [make_artifact("profile", profile), make_artifact("file", work / "edge-os.tar"),
                 *(make_artifact("pack", d) for d in sorted((work / "packs").iterdir()))]
    out = lab.base / f"lab-k3s-{version}.capsule.tar.zst"
    build_capsule(out, artifacts, load_private_key(key or lab.private_key))
    return out


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgeplane.cli", *args], capture_output=True, text=True,
                          timeout=600, check=False)


def installer_log(root: Path) -> str:
    path = root / "var/log/installer-calls.log"
    return path.read_text() if path.exists() else ""


def slots(root: Path) -> dict[str, Any]:
    path = root / "boot/edgeplane/state.json"
    return json.loads(path.read_text()) if path.exists() else {}


def active_digest(root: Path) -> str | None:
    state = slots(root)
    image = state.get("slots", {}).get(state.get("active", "a"))
    return image["digest"] if image else None


def spec_version(root: Path) -> str:
    return json.loads((root / "var/lib/edgeplane/agent/spec.json").read_text())["cluster"]["kubernetes_version"]


def results(root: Path) -> list[dict[str, Any]]:
    directory = root / "var/lib/edgeplane/capsules/results"
    return [json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))] if directory.is_dir() else []


def inbox_emptied(root: Path) -> None:
    """The inbox copy and the unpacked capsule are removed just after the result is written."""
    wait_for("inbox emptied", lambda: not list((root / "var/lib/edgeplane/capsules/inbox").iterdir())
             and not list((root / "var/lib/edgeplane/content").glob("capsule-*")), timeout=30)


def result_of(root: Path, capsule: Path) -> dict[str, Any] | None:
    path = root / "var/lib/edgeplane/capsules/results" / f"{hashlib.sha256(capsule.read_bytes()).hexdigest()}.json"
    return json.loads(path.read_text()) if path.exists() else None


def test_capsules_roll_a_site_forward_with_no_console_and_stop_at_a_failed_health_check(lab: Lab) -> None:
    roots = lab.roots()
    hosts = [roots["qr"], roots["manual"], roots["auto"]]  # the control plane ("auto") is listed last

    # --- 1: newer K3s and the first provider image, on every host, control plane first
    v2_image = image_tar("v2")
    v2 = make_capsule(lab, 2, "1.31.10", v2_image)
    done = cli("forge", "capsule", "apply", str(v2), "--timeout", "120",
               *(arg for h in hosts for arg in ("--host", str(h))))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"[1/3] {roots['auto']}: committed" in done.stdout, done.stdout
    assert "all 3 hosts committed" in done.stdout
    v2_digest = "sha256:" + hashlib.sha256(v2_image).hexdigest()
    for name, root in roots.items():
        assert f"k3s-install.sh --k3s-version 1.31.10 --role {'server' if name == 'auto' else 'agent'}" in \
            installer_log(root), (name, installer_log(root))
        assert active_digest(root) == v2_digest and spec_version(root) == "1.31.10"
        assert [r["state"] for r in results(root)] == ["committed"]
        inbox_emptied(root)  # the result is written first, then the inbox copy removed

    # --- 2: next K3s and a new image whose health check fails on the first worker in line
    v3_image = image_tar("v3")
    v3 = make_capsule(lab, 3, "1.32.6", v3_image)
    failing, untouched = roots["qr"], roots["manual"]
    (failing / "etc/edgeplane/fail-health").touch()
    before_untouched = installer_log(untouched)
    done = cli("forge", "capsule", "apply", str(v3), "--timeout", "120",
               *(arg for h in hosts for arg in ("--host", str(h))))
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"rollout stopped at {failing}; hosts not touched: {untouched}" in done.stdout, done.stdout
    # the control plane upgraded through the A/B slots: written to slot b, health-checked, committed
    auto_slots = slots(roots["auto"])
    assert auto_slots["active"] == "b" and auto_slots["last_result"].startswith("committed")
    assert active_digest(roots["auto"]) == "sha256:" + hashlib.sha256(v3_image).hexdigest()
    assert "--k3s-version 1.32.6" in installer_log(roots["auto"]) and spec_version(roots["auto"]) == "1.32.6"
    # the failing worker switched, failed its health check and fell back; nothing else changed
    failed_slots = slots(failing)
    assert failed_slots["active"] == "a" and active_digest(failing) == v2_digest
    assert failed_slots["last_result"].startswith("rolled back to slot a: health check failed: planted failure")
    assert "1.32.6" not in installer_log(failing) and spec_version(failing) == "1.31.10"
    assert result_of(failing, v3)["state"] == "rolled-back"
    applied = json.loads((failing / "var/lib/edgeplane/agent/applied.json").read_text())
    assert applied["phase"] == "ready" and "rolled back" in applied["message"]
    # the last host never saw the capsule
    assert installer_log(untouched) == before_untouched and spec_version(untouched) == "1.31.10"
    assert result_of(untouched, v3) is None and result_of(untouched, v2)["state"] == "committed"
    assert active_digest(untouched) == v2_digest
    (failing / "etc/edgeplane/fail-health").unlink()

    # --- 3: the console comes back and learns what each host runs from the agents' queued reports
    lab.site.console.start()
    ids = lab.host_ids()
    expected = {ids["auto"]: "1.32.6", ids["qr"]: "1.31.10", ids["manual"]: "1.31.10"}

    def versions() -> dict[str, str]:
        return {h: (lab.http.get(f"/v1/hosts/{h}").json().get("kubernetes") or {}).get("version") for h in expected}

    wait_for("the console shows the hosts' new versions", lambda: versions() == expected, timeout=90)
    kinds = wait_for("capsule events in the console", lambda: (lambda k: k if "capsule.rolled-back" in k else None)(
        [e["kind"] for e in lab.http.get(f"/v1/hosts/{ids['qr']}/events").json()]), timeout=90)
    assert "capsule.committed" in kinds and "upgrade.rolled-back" in kinds
    lab.site.console.stop()


@pytest.mark.parametrize("damage", ["unsigned", "other-key", "tampered", "no-trusted-key"])
def test_an_unsigned_foreign_or_damaged_capsule_is_refused_and_installs_nothing(lab: Lab, damage: str) -> None:
    root = lab.roots()["manual"]
    good = make_capsule(lab, 9, "1.32.6", image_tar("v9"))
    capsule = lab.base / f"{damage}.capsule.tar.zst"
    expected = {"unsigned": "bundle is not signed", "other-key": "bad signature", "tampered": "",
                "no-trusted-key": "no trusted public key"}[damage]
    if damage == "unsigned":
        manifest_source = lab.base / "v9"
        artifacts = [make_artifact("profile", manifest_source / "lab-k3s.yaml"),
                     make_artifact("file", manifest_source / "edge-os.tar"),
                     *(make_artifact("pack", d) for d in sorted((manifest_source / "packs").iterdir()))]
        build_bundle(capsule, artifacts, name="lab-k3s-9", bundle_type="capsule",
                     capsule={"profile": "lab-k3s", "version": "9"})
    elif damage == "other-key":
        capsule = make_capsule(lab, 9, "1.32.6", image_tar("v9"), key=lab.other_key).rename(capsule)
    else:
        data = bytearray(good.read_bytes())
        if damage == "tampered":
            data[len(data) // 3] ^= 0x01
        capsule.write_bytes(bytes(data))
    keys = root / "etc/edgeplane/keys"
    if damage == "no-trusted-key":
        (keys / "site.pem").rename(lab.base / "site.pem.away")
    watched = (root / "var/log/installer-calls.log", root / "boot/edgeplane/state.json",
               root / "var/lib/edgeplane/agent/spec.json", root / "etc/rancher/k3s/config.yaml")
    before = {p: p.read_bytes() if p.exists() else None for p in watched}
    try:
        done = cli("agent", "--root", str(root), "apply-capsule", str(capsule), "--timeout", "120")
    finally:
        if damage == "no-trusted-key":
            (lab.base / "site.pem.away").rename(keys / "site.pem")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "refused:" in done.stdout and expected in done.stdout, done.stdout
    assert {p: p.read_bytes() if p.exists() else None for p in watched} == before
    sha = hashlib.sha256(capsule.read_bytes()).hexdigest()
    assert not (root / f"var/lib/edgeplane/content/capsule-{sha[:16]}").exists()
    inbox_emptied(root)


def test_a_capsule_on_a_usb_stick_directory_upgrades_the_host_it_is_plugged_into(lab: Lab) -> None:
    """``--capsule-dir`` plays the mounted stick: the agent (restarted with it, console still
    stopped) applies what it finds there once and leaves the stick as it was."""
    root = lab.roots()["manual"]
    old = lab.site.agents["manual"]
    old.kill()
    stick = lab.base / "usb-stick"
    stick.mkdir()
    lab.site.agents["manual"] = AgentProcess(root, old.user_data, ["--capsule-dir", str(stick)]).start()
    target = K8S_VERSIONS[K8S_VERSIONS.index(spec_version(root)) + 1]
    image = image_tar("stick")
    capsule = make_capsule(lab, 7, target, image)
    (stick / capsule.name).write_bytes(capsule.read_bytes())
    result = wait_for("the stick's capsule applied", lambda: (lambda r: r if r and r["state"] not in (
        "verifying", "applying") else None)(result_of(root, capsule)), timeout=120)
    assert result["state"] == "committed", result
    assert f"--k3s-version {target}" in installer_log(root) and spec_version(root) == target
    assert active_digest(root) == "sha256:" + hashlib.sha256(image).hexdigest()
    assert [p.name for p in stick.iterdir()] == [capsule.name]
    status = cli("agent", "--root", str(root), "status")
    assert f"capsule {result['capsule'][:12]}: committed" in status.stdout, status.stdout


def test_an_agent_killed_inside_a_capsule_install_resumes_it_after_a_restart(lab: Lab) -> None:
    """``kill -9`` while the capsule's K3s installer runs; the restarted agent (console still
    stopped) finds the capsule unfinished in its inbox and completes the same journaled plan."""
    root = lab.roots()["qr"]
    agent = lab.site.agents["qr"]
    target = K8S_VERSIONS[K8S_VERSIONS.index(spec_version(root)) + 1]
    capsule = make_capsule(lab, 8, target, image_tar("resume"))
    (root / "etc/edgeplane/slow-install").touch()
    delivered = cli("agent", "--root", str(root), "apply-capsule", str(capsule), "--no-wait")
    assert delivered.returncode == 0, delivered.stderr
    wait_for("the capsule's installer running", lambda: f"--k3s-version {target}" in installer_log(root), 120)
    agent.kill()
    (root / "etc/edgeplane/slow-install").unlink()
    assert result_of(root, capsule)["state"] == "applying"
    agent.start()
    result = wait_for("the capsule finished after the restart", lambda: (lambda r: r if r and r["state"] not in (
        "verifying", "applying") else None)(result_of(root, capsule)), timeout=120)
    assert result["state"] == "committed", result
    assert spec_version(root) == target and installer_log(root).count(f"--k3s-version {target}") == 2
    inbox_emptied(root)
