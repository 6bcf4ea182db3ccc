"""Signed offline upgrade capsules: completeness, signature, and the not-yet-built apply step."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeplane.forge import (BundleError, NotBuiltYet, SignatureError, apply_capsule, build_bundle, build_capsule,
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
    with pytest.raises(NotBuiltYet, match="local mode"):
        apply_capsule(out)


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
