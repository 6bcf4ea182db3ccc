"""Signed offline upgrade capsules: completeness, signature, unpacking for an agent, and the
rollout coordinator's own rules (the rollout on a real lab site is in test_capsule_site.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeplane.forge import (BundleError, SignatureError, apply_capsule, build_bundle, build_capsule, extract_capsule,
                             load_private_key, load_public_key, make_artifact, verify_capsule)


@pytest.fixture
def capsule_inputs(sources) -> list:
    return [make_artifact("profile", sources["profile"][0]), make_artifact("pack", sources["pack"][0]),
            make_artifact("image", sources["image"][0])]


def test_build_and_verify(tmp_path: Path, capsule_inputs, keys) -> None:
    out = tmp_path / "edge-k3s-1.0.0.capsule.tar.zst"
    manifest = build_capsule(out, capsule_inputs, load_private_key(keys.private))
    assert manifest.type == "capsule" and manifest.capsule == {"profile": "edge-k3s", "version": "1.0.0"}
    verified = verify_capsule(out, load_public_key(keys.public))
    assert verified.signature_checked


def test_extract_accepts_any_trusted_key_and_refuses_without_one(tmp_path: Path, capsule_inputs, keys,
                                                                 other_keys) -> None:
    out = tmp_path / "c.capsule.tar.zst"
    build_capsule(out, capsule_inputs, load_private_key(keys.private))
    trusted = [load_public_key(other_keys.public), load_public_key(keys.public)]
    verified = extract_capsule(out, tmp_path / "unpacked", trusted)
    assert verified.manifest.capsule == {"profile": "edge-k3s", "version": "1.0.0"}
    assert (tmp_path / "unpacked" / "artifacts" / "pack" / "k3s" / "pack.yaml").is_file()
    with pytest.raises(SignatureError, match="no trusted public key configured"):
        extract_capsule(out, tmp_path / "none", [])
    with pytest.raises(SignatureError, match="not made by the trusted key"):
        extract_capsule(out, tmp_path / "other", [load_public_key(other_keys.public)])
    plain = tmp_path / "plain.tar.zst"
    build_bundle(plain, capsule_inputs, name="plain", signing_key=load_private_key(keys.private))
    with pytest.raises(BundleError, match="not a capsule"):
        extract_capsule(plain, tmp_path / "plain", trusted)
    # nothing of a refused capsule is left behind, not even its temporary directory
    assert sorted(p.name for p in tmp_path.iterdir() if p.name not in ("src", "keys")) == [
        "c.capsule.tar.zst", "other.pem", "other.pub.pem", "plain.tar.zst", "signer.pem", "signer.pub.pem", "unpacked"]


def test_apply_needs_hosts_and_stops_at_a_host_whose_agent_never_answers(tmp_path: Path, capsule_inputs,
                                                                         keys) -> None:
    out = tmp_path / "c.capsule.tar.zst"
    build_capsule(out, capsule_inputs, load_private_key(keys.private))
    with pytest.raises(BundleError, match="no hosts given"):
        apply_capsule(out, [])
    first, second = tmp_path / "host-1", tmp_path / "host-2"  # host roots with no agent running
    lines: list[str] = []
    results = apply_capsule(out, [first, second], timeout=0.5, say=lines.append)
    assert [r["state"] for r in results] == ["timeout"]
    assert "is the agent running" in results[0]["message"]
    assert f"rollout stopped at {first}; hosts not touched: {second}" in lines
    assert len(list((first / "var/lib/edgeplane/capsules/inbox").iterdir())) == 1
    assert not second.exists()


def test_a_capsule_missing_a_pack_is_refused(tmp_path: Path, capsule_inputs, keys) -> None:
    without_pack = [a for a in capsule_inputs if a.kind != "pack"]
    with pytest.raises(BundleError, match="needs pack\\(s\\) k3s 1.30.2, not in the capsule"):
        build_capsule(tmp_path / "c.tar.zst", without_pack, load_private_key(keys.private))
    with pytest.raises(BundleError, match="exactly one profile"):
        build_capsule(tmp_path / "c.tar.zst", capsule_inputs[1:], load_private_key(keys.private))
    assert not list(tmp_path.glob("c.tar.zst*"))


def test_other_key_and_plain_bundles_are_refused(tmp_path: Path, capsule_inputs, keys, other_keys) -> None:
    out = tmp_path / "c.tar.zst"
    build_capsule(out, capsule_inputs, load_private_key(keys.private))
    with pytest.raises(SignatureError):
        verify_capsule(out, load_public_key(other_keys.public))
    plain = tmp_path / "plain.tar.zst"
    build_bundle(plain, capsule_inputs, name="plain", signing_key=load_private_key(keys.private))
    with pytest.raises(BundleError, match="not a capsule"):
        verify_capsule(plain, load_public_key(keys.public))
    # A capsule without its pack, signed by hand as a plain bundle of type capsule, is still refused.
    incomplete = tmp_path / "incomplete.tar.zst"
    build_bundle(incomplete, [capsule_inputs[0]], name="x", bundle_type="capsule",
                 capsule={"profile": "edge-k3s", "version": "1.0.0"}, signing_key=load_private_key(keys.private))
    with pytest.raises(BundleError, match="needs pack"):
        verify_capsule(incomplete, load_public_key(keys.public))
