"""Fixtures for forge tests: small but real artifacts (OCI layout, docker archive, chart, pack)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from edgeplane.forge import generate_keypair


@dataclass
class Keys:
    private: Path
    public: Path


def _keys(base: Path, name: str) -> Keys:
    keys = Keys(base / f"{name}.pem", base / f"{name}.pub.pem")
    generate_keypair(keys.private, keys.public)
    return keys


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return _keys(tmp_path, "signer")


@pytest.fixture
def other_keys(tmp_path: Path) -> Keys:
    return _keys(tmp_path, "other")


def _tar_bytes(members: dict[str, bytes], gz: bool = False) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if gz else "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def make_oci_layout(root: Path) -> Path:
    """A minimal OCI image layout: one config blob, one layer blob, manifest and index."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def blob(data: bytes) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    layer = blob(_tar_bytes({"hello.txt": b"hello from the image\n"}, gz=True))
    config = blob(json.dumps({"architecture": "amd64", "os": "linux"}).encode())
    manifest = blob(json.dumps({"schemaVersion": 2, "config": config, "layers": [layer]}).encode())
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [manifest]}))
    return root


@pytest.fixture
def sources(tmp_path: Path) -> dict[str, list[Path]]:
    """One of each artifact kind, as CLI-style groups: kind -> paths."""
    base = tmp_path / "src"
    base.mkdir()
    (base / "infra.yaml").write_text(
        "name: edge-k3s\nversion: 1.0.0\ntype: infra\npacks:\n  - {name: k3s, version: 1.30.2}\n")
    (base / "apps.yaml").write_text("name: shop-apps\nversion: 2.1.0\ntype: add-on\n")
    pack = base / "k3s-pack"
    (pack / "manifests").mkdir(parents=True)
    (pack / "pack.yaml").write_text("name: k3s\nversion: 1.30.2\n")
    (pack / "manifests" / "values.yaml").write_text("cluster:\n  config: {}\n")
    image_dir = make_oci_layout(base / "nginx-oci")
    archive = base / "busybox.tar"
    archive.write_bytes(_tar_bytes({"manifest.json": b"[]", "layer.tar": b"x" * 1000}))
    chart = base / "shop-0.1.0.tgz"
    chart.write_bytes(_tar_bytes({"shop/Chart.yaml": b"name: shop\nversion: 0.1.0\n",
                                  "shop/values.yaml": b"replicas: 1\n"}, gz=True))
    blob_file = base / "firmware.bin"
    blob_file.write_bytes(os.urandom(300_000))
    return {"profile": [base / "infra.yaml", base / "apps.yaml"], "pack": [pack], "image": [image_dir, archive],
            "chart": [chart], "file": [blob_file]}
