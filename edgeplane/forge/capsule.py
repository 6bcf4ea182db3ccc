"""Signed offline upgrade capsules: one new profile version plus every artifact it needs.

A capsule is a content bundle (same format, ``type: capsule``) that must be signed, must hold
exactly one profile, and must hold every pack that profile references (name and version).
Applying one to a running site needs the agent's offline upgrade path and local mode, which do
not exist yet: ``apply_capsule`` says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edgeplane.forge.artifacts import Artifact
from edgeplane.forge.bundle import Verified, build_bundle, verify_bundle
from edgeplane.forge.digest import Progress
from edgeplane.forge.errors import BundleError, NotBuiltYet
from edgeplane.forge.manifest import Manifest
from edgeplane.forge.profiles import PackRef, ProfileInfo


def _check_complete(profile: ProfileInfo, packs: set[PackRef], where: str) -> None:
    missing = [ref for ref in profile.packs if ref not in packs]
    if missing:
        needed = ", ".join(f"{ref.name} {ref.version}" for ref in missing)
        raise BundleError(f"{where}: profile {profile.name} {profile.version} needs pack(s) {needed}, not in the capsule")


def build_capsule(out: Path, artifacts: Sequence[Artifact], signing_key: Ed25519PrivateKey,
                  progress: Progress | None = None) -> Manifest:
    """Build a signed capsule; refuses a capsule that lacks a pack its profile needs."""
    profiles = [a.profile for a in artifacts if a.profile is not None]
    if len(profiles) != 1:
        raise BundleError(f"a capsule carries exactly one profile (the new version), got {len(profiles)}")
    profile = profiles[0]
    packs = {PackRef(a.name, a.version or "") for a in artifacts if a.kind == "pack"}
    _check_complete(profile, packs, str(out))
    return build_bundle(out, artifacts, name=f"{profile.name}-{profile.version}", bundle_type="capsule",
                        capsule={"profile": profile.name, "version": profile.version},
                        signing_key=signing_key, progress=progress)


def verify_capsule(path: Path, public_key: Ed25519PublicKey, progress: Progress | None = None) -> Verified:
    """Every byte, the signature (mandatory for capsules) and the completeness rule."""
    verified = verify_bundle(path, public_key, progress)
    manifest = verified.manifest
    if manifest.type != "capsule" or not manifest.capsule:
        raise BundleError(f"{path}: a content bundle, not a capsule (manifest type {manifest.type!r})")
    profiles = manifest.profiles()
    if len(profiles) != 1 or profiles[0].name != manifest.capsule.get("profile"):
        raise BundleError(f"{path}: capsule must hold exactly the profile named in its manifest")
    packs = {PackRef(a.name, a.version or "") for a in manifest.artifacts if a.kind == "pack"}
    _check_complete(profiles[0], packs, str(path))
    return verified


def apply_capsule(path: Path) -> None:
    """Not built yet: needs the agent's offline upgrade path and local mode (edgeplane/local)."""
    raise NotBuiltYet(
        f"{path}: applying a capsule to a running site is not built yet: it needs the agent's offline "
        "upgrade path and local mode (edgeplane/local); build and verify work today (docs/forge.md)")
