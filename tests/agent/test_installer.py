"""Applying a node spec offline from a real forge content bundle (air-gap), and resuming a plan
whose installer step failed. The distribution installer is the lab installer, a fixture script
that records its arguments (the real one downloads binaries and needs root)."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from edgeplane.agent import HostRoot, write_lab_host, write_lab_installers
from edgeplane.agent.artifacts import ArtifactError, ArtifactStore, open_content_bundle
from edgeplane.agent.hostcmd import CommandFailed
from edgeplane.agent.installer import Installer
from edgeplane.agent.slots import Slots
from edgeplane.agent.spec import NodeSpec
from edgeplane.agent.userdata import validate_user_data
from edgeplane.forge import build_bundle, make_artifact


def image(path: Path) -> Path:
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("VERSION")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"v1"))
    return path


def node_spec(digest: str) -> NodeSpec:
    return NodeSpec.model_validate({
        "host_id": "edge-1", "generation": 3, "action": "apply",
        "cluster": {"id": "c_1", "name": "store", "bootstrap": True, "distribution": "rke2",
                    "kubernetes_version": "1.30.14", "control_plane": [{"host_id": "edge-1", "ips": ["10.0.0.5/24"]}]},
        "profile": {"id": "p_1", "name": "p", "version": 1, "layers": [
            {"layer": "os", "pack": "ubuntu", "version": "22.04"},
            {"layer": "kubernetes", "pack": "rke2", "version": "1.30.14"}]},
        "artifacts": [{"name": "provider-image", "digest": f"sha256:{digest}"}]})


def installer(root: HostRoot, store: ArtifactStore) -> tuple[Installer, list[str]]:
    events: list[str] = []
    return Installer(root, validate_user_data("#cloud-config\n"), "edge-1", "10.0.0.5", store,
                     Slots(root), lambda kind, sev, msg: events.append(kind)), events


@pytest.fixture()
def bundle(tmp_path: Path) -> tuple[Path, str]:
    source = image(tmp_path / "provider.tar")
    out = tmp_path / "site.tar.zst"
    build_bundle(out, [make_artifact("file", source, "provider-image")], name="site")
    return out, hashlib.sha256(source.read_bytes()).hexdigest()


def test_offline_apply_from_a_forge_bundle_and_idempotent_rerun(tmp_path: Path, bundle: tuple[Path, str]) -> None:
    root = HostRoot(tmp_path / "root")
    write_lab_host(root.root)
    write_lab_installers(root.root)
    path, digest = bundle
    inst, _ = installer(root, ArtifactStore(root, open_content_bundle(root, path)))
    # fetch, image, write files, enable the datastore service, run the installer, after-install stage
    assert inst.apply(node_spec(digest)) == 6
    assert root.read_text("/var/log/edgeplane/skipped-commands.log") == "systemctl enable --now edgeplane-datastore.service\n"
    assert Slots(root).load().slots["a"].digest == f"sha256:{digest}"
    assert "cni: canal" in root.read_text("/etc/rancher/rke2/config.yaml")
    assert root.read_text("/var/log/installer-calls.log") == (
        "rke2-install.sh --rke2-version 1.30.14 --role server --config /etc/rancher/rke2/config.yaml\n")
    again, _ = installer(root, ArtifactStore(root, open_content_bundle(root, path)))
    assert again.apply(node_spec(digest)) == 0  # a restart finds every step done


def test_missing_artifact_offline_is_named(tmp_path: Path, bundle: tuple[Path, str]) -> None:
    root = HostRoot(tmp_path / "root")
    inst, _ = installer(root, ArtifactStore(root, open_content_bundle(root, bundle[0])))
    with pytest.raises(ArtifactError, match="provider-image .* is not in the local content"):
        inst.apply(node_spec("ab" * 32))


def test_failed_installer_step_resumes_without_redoing_earlier_steps(tmp_path: Path, bundle: tuple[Path, str]) -> None:
    root = HostRoot(tmp_path / "root")
    write_lab_host(root.root)
    write_lab_installers(root.root)
    broken = root.path("/opt/edgeplane/installers/rke2-install.sh")
    good = broken.read_text()
    broken.write_text("#!/bin/sh\necho 'no space left on device' >&2\nexit 1\n")
    path, digest = bundle
    inst, _ = installer(root, ArtifactStore(root, open_content_bundle(root, path)))
    with pytest.raises(CommandFailed, match="rke2-install.sh --rke2-version 1.30.14 .* exited 1: no space left"):
        inst.apply(node_spec(digest))
    broken.write_text(good)
    assert inst.apply(node_spec(digest)) == 2  # only the installer and the after-install stage
