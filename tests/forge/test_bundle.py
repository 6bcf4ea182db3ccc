"""Content bundles built, inspected, verified, extracted and tampered with (real files, real zstd)."""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard

from edgeplane.forge import (BundleError, ProfileError, SignatureError, build_bundle, extract_bundle,
                             load_private_key, load_public_key, make_artifact, read_manifest, verify_bundle)
from edgeplane.forge.bundle import TRAILER


def artifacts_of(sources: dict[str, list[Path]]) -> list:
    return [make_artifact(kind, path) for kind, paths in sources.items() for path in paths]


@pytest.fixture
def signed_bundle(tmp_path: Path, sources, keys) -> Path:
    out = tmp_path / "content.tar.zst"
    build_bundle(out, artifacts_of(sources), name="store", signing_key=load_private_key(keys.private))
    return out


def repack(bundle: Path, out: Path, mutate: Callable[[str, bytes], bytes]) -> None:
    """Rewrite a bundle member by member (same order), passing each member's data through mutate."""
    data = zstandard.ZstdDecompressor().stream_reader(bundle.read_bytes(), read_across_frames=True).read()
    result = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(data)) as source, tarfile.open(fileobj=result, mode="w") as target:
        for member in source:
            content = mutate(member.name, source.extractfile(member).read())
            member.size = len(content)
            target.addfile(member, io.BytesIO(content))
    out.write_bytes(zstandard.ZstdCompressor().compress(result.getvalue()))


def signed_manifest_with(bundle: Path, name: bytes) -> bytes:
    """The bundle's manifest bytes with its name field changed (one byte for '"storf"')."""
    data = zstandard.ZstdDecompressor().stream_reader(bundle.read_bytes(), read_across_frames=True).read()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.extractfile("manifest.json").read().replace(b'"store"', name)


def flip_byte(data: bytes, index: int = 0) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1:]


def test_manifest_lists_every_artifact_file_with_size_and_sha256(signed_bundle: Path, sources, keys) -> None:
    verified = verify_bundle(signed_bundle, load_public_key(keys.public))
    assert verified.signed and verified.signature_checked
    kinds = {(a.kind, a.name) for a in verified.manifest.artifacts}
    assert kinds == {("profile", "edge-k3s"), ("profile", "shop-apps"), ("pack", "k3s"), ("image", "nginx-oci"),
                     ("image", "busybox.tar"), ("chart", "shop-0.1.0.tgz"), ("file", "firmware.bin")}
    files = verified.manifest.files()
    firmware = files["artifacts/file/firmware.bin/firmware.bin"]
    assert firmware.size == 300_000
    assert firmware.sha256 == subprocess.run(["sha256sum", str(sources["file"][0])], capture_output=True,
                                             text=True, check=True).stdout.split()[0]
    oci = sources["image"][0]
    expected_oci = {f"artifacts/image/nginx-oci/{p.relative_to(oci).as_posix()}" for p in oci.rglob("*") if p.is_file()}
    assert expected_oci <= set(files)
    assert {p.version for p in verified.manifest.artifacts if p.kind == "pack"} == {"1.30.2"}


def test_system_tar_reads_the_bundle(signed_bundle: Path) -> None:
    """GNU tar with zstd (an independent reader) lists the same members, manifest last."""
    listing = subprocess.run(["tar", "--zstd", "-tf", str(signed_bundle)], capture_output=True, text=True,
                             check=True).stdout.split()
    assert listing[-3:] == ["manifest.json", "manifest.sha256", "manifest.sig"]
    assert "artifacts/chart/shop-0.1.0.tgz/shop-0.1.0.tgz" in listing


def test_inspect_reads_the_manifest_with_and_without_the_trailer(signed_bundle: Path, tmp_path: Path) -> None:
    manifest, signed = read_manifest(signed_bundle)
    assert signed and manifest.name == "store"
    no_trailer = tmp_path / "no-trailer.tar.zst"
    no_trailer.write_bytes(signed_bundle.read_bytes()[:-TRAILER.size])
    assert read_manifest(no_trailer)[0] == manifest


def test_two_builds_give_the_same_bytes(tmp_path: Path, sources) -> None:
    first, second = tmp_path / "a.tar.zst", tmp_path / "b.tar.zst"
    build_bundle(first, artifacts_of(sources), name="same")
    build_bundle(second, list(reversed(artifacts_of(sources))), name="same", threads=1)
    assert first.read_bytes() == second.read_bytes()  # input order and zstd worker count do not matter


def test_two_infrastructure_profiles_are_refused(tmp_path: Path, sources) -> None:
    full = tmp_path / "full.yaml"
    full.write_text("name: other-os\nversion: 3\ntype: full\n")
    artifacts = artifacts_of(sources) + [make_artifact("profile", full)]
    with pytest.raises(ProfileError, match=r"2 infrastructure profiles: edge-k3s \(infra.*other-os \(full"):
        build_bundle(tmp_path / "x.tar.zst", artifacts, name="x")
    assert not list(tmp_path.glob("x.tar.zst*"))


@pytest.mark.parametrize("kind, make, message", [
    ("file", lambda p: p / "missing.bin", "no such file or directory"),
    ("image", lambda p: p, "not an OCI image layout: oci-layout is missing"),
    ("chart", lambda p: p / "src" / "firmware.bin", "not a readable tar archive"),
    ("profile", lambda p: p / "src" / "k3s-pack" / "pack.yaml", "type: must be one of"),
])
def test_bad_inputs_get_precise_errors(tmp_path: Path, sources, kind, make, message) -> None:
    with pytest.raises(Exception, match=message):
        make_artifact(kind, make(tmp_path))


def test_every_artifact_file_with_one_changed_byte_is_detected(signed_bundle: Path, tmp_path: Path, keys) -> None:
    names = sorted(read_manifest(signed_bundle)[0].files())
    for target in names:
        tampered = tmp_path / "tampered.tar.zst"
        repack(signed_bundle, tampered, lambda name, data: flip_byte(data, len(data) // 2) if name == target else data)
        with pytest.raises(BundleError, match=f"{target}: sha256 .* does not match"):
            verify_bundle(tampered, load_public_key(keys.public))
        with pytest.raises(BundleError):
            verify_bundle(tampered)  # the digests alone catch it, key or not


def test_a_changed_manifest_byte_is_detected(signed_bundle: Path, tmp_path: Path, keys) -> None:
    tampered = tmp_path / "manifest.tar.zst"
    repack(signed_bundle, tampered,
           lambda name, data: data.replace(b'"store"', b'"storf"') if name == "manifest.json" else data)
    with pytest.raises(BundleError, match="manifest.json does not match manifest.sha256"):
        verify_bundle(tampered)
    # An attacker who also fixes the checksum is stopped by the signature.
    forged = signed_manifest_with(signed_bundle, b'"storf"')

    def forge(name: str, data: bytes) -> bytes:
        if name == "manifest.json":
            return forged
        if name == "manifest.sha256":
            return hashlib.sha256(forged).hexdigest().encode() + b"\n"
        return data

    repack(signed_bundle, tampered, forge)
    with pytest.raises(SignatureError, match="bad signature"):
        verify_bundle(tampered, load_public_key(keys.public))


def test_a_changed_byte_anywhere_in_the_file_is_detected(signed_bundle: Path, tmp_path: Path, keys) -> None:
    raw = signed_bundle.read_bytes()
    body = len(raw) - TRAILER.size  # the trailer is only an inspect shortcut; verify never trusts it
    tampered = tmp_path / "flipped.tar.zst"
    for index in range(0, body, max(1, body // 40)):
        tampered.write_bytes(flip_byte(raw, index))
        with pytest.raises(BundleError):
            verify_bundle(tampered, load_public_key(keys.public))


def test_another_key_and_missing_signature_are_refused(signed_bundle: Path, tmp_path: Path, sources, other_keys) -> None:
    with pytest.raises(SignatureError, match="signed with another key"):
        verify_bundle(signed_bundle, load_public_key(other_keys.public))
    unsigned = tmp_path / "unsigned.tar.zst"
    build_bundle(unsigned, artifacts_of(sources), name="u")
    with pytest.raises(SignatureError, match="not signed, but a public key is configured"):
        verify_bundle(unsigned, load_public_key(other_keys.public))
    assert not verify_bundle(unsigned).signed


def test_extract_installs_a_good_bundle(signed_bundle: Path, tmp_path: Path, sources, keys) -> None:
    dest = tmp_path / "site" / "content" / "store"
    extract_bundle(signed_bundle, dest, load_public_key(keys.public))
    copied = dest / "artifacts" / "file" / "firmware.bin" / "firmware.bin"
    assert copied.read_bytes() == sources["file"][0].read_bytes()
    assert (dest / "manifest.sig").exists()
    with pytest.raises(BundleError, match="already exists"):
        extract_bundle(signed_bundle, dest)


@pytest.mark.parametrize("case", ["other-key", "artifact-byte", "last-artifact-byte", "traversal"])
def test_nothing_is_installed_from_a_refused_bundle(signed_bundle: Path, tmp_path: Path, keys, other_keys, case) -> None:
    bundle, key = signed_bundle, load_public_key(keys.public)
    if case == "other-key":
        key = load_public_key(other_keys.public)
    else:
        bundle = tmp_path / "bad.tar.zst"
        last = sorted(read_manifest(signed_bundle)[0].files())[-1]
        if case == "traversal":
            data = io.BytesIO()
            with tarfile.open(fileobj=data, mode="w") as tar:
                info = tarfile.TarInfo("../escaped.txt")
                info.size = 3
                tar.addfile(info, io.BytesIO(b"bad"))
            bundle.write_bytes(zstandard.ZstdCompressor().compress(data.getvalue()))
        else:
            target = "artifacts/chart/shop-0.1.0.tgz/shop-0.1.0.tgz" if case == "artifact-byte" else last
            repack(signed_bundle, bundle, lambda name, data: flip_byte(data) if name == target else data)
    install_root = tmp_path / "install"
    install_root.mkdir()
    with pytest.raises(BundleError):
        extract_bundle(bundle, install_root / "store", key)
    assert list(install_root.iterdir()) == []
    assert not (tmp_path / "escaped.txt").exists()


def test_build_verify_and_extract_stream_in_constant_memory(tmp_path: Path) -> None:
    """A 48 MiB artifact goes through with Python allocations far below its size (1 MiB pieces)."""
    import os
    import tracemalloc

    big = tmp_path / "layer.bin"
    with open(big, "wb") as handle:
        for _ in range(48):
            handle.write(os.urandom(1 << 20))
    bundle = tmp_path / "big.tar.zst"
    tracemalloc.start()
    try:
        build_bundle(bundle, [make_artifact("file", big)], name="big")
        verify_bundle(bundle)
        extract_bundle(bundle, tmp_path / "out")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 12 << 20, f"peak Python allocations {peak >> 20} MiB for a 48 MiB bundle"
    assert (tmp_path / "out" / "artifacts" / "file" / "layer.bin" / "layer.bin").stat().st_size == 48 << 20
