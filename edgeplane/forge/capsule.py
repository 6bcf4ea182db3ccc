"""Signed offline upgrade capsules: one new profile version plus every artifact it needs.

A capsule is a content bundle (same format, ``type: capsule``) that must be signed, must hold
exactly one profile, and must hold every pack that profile references (name and version).
``extract_capsule`` is what an agent calls to unpack one it received; ``apply_capsule`` rolls one
across a site's hosts with no console: each host's agent upgrades itself (A/B image, health check,
rollback), one host at a time, and the rollout stops at the first host that does not commit.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edgeplane.forge.artifacts import Artifact
from edgeplane.forge.bundle import Verified, build_bundle, extract_bundle, verify_bundle
from edgeplane.forge.digest import Progress
from edgeplane.forge.errors import BundleError, SignatureError
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


def _check_capsule(path: Path, verified: Verified) -> Verified:
    manifest = verified.manifest
    if manifest.type != "capsule" or not manifest.capsule:
        raise BundleError(f"{path}: a content bundle, not a capsule (manifest type {manifest.type!r})")
    profiles = manifest.profiles()
    if len(profiles) != 1 or profiles[0].name != manifest.capsule.get("profile"):
        raise BundleError(f"{path}: capsule must hold exactly the profile named in its manifest")
    packs = {PackRef(a.name, a.version or "") for a in manifest.artifacts if a.kind == "pack"}
    _check_complete(profiles[0], packs, str(path))
    return verified


def verify_capsule(path: Path, public_key: Ed25519PublicKey, progress: Progress | None = None) -> Verified:
    """Every byte, the signature (mandatory for capsules) and the completeness rule."""
    return _check_capsule(path, verify_bundle(path, public_key, progress))


def extract_capsule(path: Path, dest: Path, public_keys: Sequence[Ed25519PublicKey],
                    progress: Progress | None = None) -> Verified:
    """Verify (signed by one of ``public_keys``, complete) and unpack into the new directory
    ``dest``; a refused capsule leaves nothing behind."""
    if not public_keys:
        raise SignatureError(f"{path}: no trusted public key configured; a capsule is accepted only when signed "
                             "by a key the site trusts")
    verified = extract_bundle(path, dest, list(public_keys), progress)
    try:
        return _check_capsule(path, verified)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise


def apply_capsule(path: Path, hosts: Sequence[Path], *, timeout: float = 900.0,
                  say: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Roll a capsule across a site with no console, health-gated like an online upgrade.

    ``hosts`` are agent host roots (``/`` on the host itself). Control planes go first, then
    workers (as the console orders an upgrade); each host's running agent gets the capsule in its
    inbox, verifies it with its own trusted keys and upgrades itself, and the next host starts
    only after this one committed (new version installed, image health check passed). The first
    host that refuses, rolls back or fails stops the rollout; later hosts are not touched.
    Returns each touched host's result record (``state`` ``committed`` on success).
    """
    from edgeplane.agent import deliver_capsule, node_role, wait_capsule_result

    if not hosts:
        raise BundleError(f"{path}: no hosts given; name each host's agent root (--host)")
    ordered = sorted(hosts, key=lambda root: node_role(Path(root)) != "control-plane")
    results: list[dict[str, Any]] = []
    for index, root in enumerate(ordered, 1):
        say(f"[{index}/{len(ordered)}] {root}: delivering {Path(path).name}")
        result = wait_capsule_result(Path(root), deliver_capsule(Path(root), Path(path)), timeout)
        results.append(result)
        say(f"[{index}/{len(ordered)}] {root}: {result['state']}: {result['message']}")
        if result["state"] != "committed":
            untouched = ", ".join(str(r) for r in ordered[index:]) or "none"
            say(f"rollout stopped at {root}; hosts not touched: {untouched}")
            break
    return results
