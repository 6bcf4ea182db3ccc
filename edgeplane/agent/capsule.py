"""Offline upgrades from signed capsules (``edgeplane forge capsule build``), with no console.

A capsule reaches a running agent through its inbox (``/var/lib/edgeplane/capsules/inbox``, filled
by ``edgeplane agent apply-capsule FILE`` or ``edgeplane forge capsule apply``) or through a watched
directory (``--capsule-dir``, e.g. a mounted USB stick). The agent checks it against the keys the
site trusts (``/etc/edgeplane/keys/*.pem``), unpacks it, turns its profile into the next node spec
with the same rules the console uses (``edgeplane.common.profiles``) and applies that spec through
the usual journal, A/B image upgrade and health check. Each capsule ends with one result record
per host, keyed by the capsule's sha256, which is what a rollout coordinator waits for.

This module holds the pieces that need no running agent: delivery, results, keys and building
the spec; ``runtime.Agent`` runs the apply.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from edgeplane.agent.artifacts import CONTENT, LocalContent, sha256_file
from edgeplane.agent.hostroot import HostRoot, write_atomic
from edgeplane.agent.spec import NodeSpec
from edgeplane.common.catalogue import builtin_pack
from edgeplane.common.profiles import ProfileInvalid, check_upgrade_layers, custom_pack, profile_block, with_profile

INBOX = "/var/lib/edgeplane/capsules/inbox"
RESULTS = "/var/lib/edgeplane/capsules/results"
KEYS = "/etc/edgeplane/keys"
SUFFIX = ".capsule.tar.zst"
FINAL = ("committed", "rolled-back", "failed", "refused")


class CapsuleRefused(RuntimeError):
    """A capsule this host will not apply (unsigned, untrusted, damaged, or not an upgrade of what
    it runs); nothing was installed."""


@dataclass(frozen=True)
class Prepared:
    """A verified, unpacked capsule and the node spec it asks for."""
    sha256: str
    profile: str
    version: str
    spec: NodeSpec
    content: LocalContent


# ----------------------------------------------------------------- delivery and results
def deliver_capsule(root: Path, capsule: Path) -> str:
    """Put ``capsule`` into the inbox of the agent running in ``root`` (copy, then rename, so the
    agent never sees half a file); return its sha256, the key of its result record. A capsule
    this host already committed is not delivered again; one that ended otherwise is retried."""
    host = HostRoot(root)
    sha = sha256_file(capsule)
    previous = read_result(root, sha)
    if previous is None or previous["state"] != "committed":
        host.path(f"{RESULTS}/{sha}.json").unlink(missing_ok=True)
        target = host.path(f"{INBOX}/{sha}{SUFFIX}")
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(f".{target.name}.part")
        shutil.copyfile(capsule, part)
        part.replace(target)
    return sha


def read_result(root: Path, sha: str) -> dict[str, Any] | None:
    text = HostRoot(root).read_text(f"{RESULTS}/{sha}.json")
    return json.loads(text) if text else None


def write_result(root: HostRoot, sha: str, state: str, message: str, **extra: Any) -> dict[str, Any]:
    record = {"capsule": sha, "state": state, "message": message,
              "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **extra}
    write_atomic(root.path(f"{RESULTS}/{sha}.json"), json.dumps(record, indent=1).encode())
    return record


def wait_capsule_result(root: Path, sha: str, timeout: float = 900.0, poll: float = 0.5) -> dict[str, Any]:
    """The host's final result for capsule ``sha``; state ``timeout`` when none came in time."""
    deadline = time.monotonic() + timeout
    while True:
        result = read_result(root, sha)
        if result and result["state"] in FINAL:
            return result
        if time.monotonic() >= deadline:
            seen = f"last state {result['state']}" if result else "the capsule was not picked up"
            return {"capsule": sha, "state": "timeout",
                    "message": f"no result after {timeout:.0f} s ({seen}); is the agent running on {root}?"}
        time.sleep(poll)


def node_role(root: Path) -> str | None:
    """The role of the node in ``root`` from its last desired spec (None when it runs no cluster)."""
    text = HostRoot(root).read_text("/var/lib/edgeplane/agent/spec.json")
    spec = NodeSpec.model_validate_json(text) if text else None
    return spec.cluster.role if spec and spec.cluster else None


def pending(root: HostRoot, watched: Iterable[Path],
            hashes: dict[tuple[str, int, int], str] | None = None) -> list[tuple[Path, str]]:
    """Capsules in the inbox and the watched directories without a final result (path, sha256):
    new ones, and one an agent stop or crash interrupted (applied again: the journal resumes it)."""
    found: list[tuple[Path, str]] = []
    for directory in (root.path(INBOX), *watched):
        for path in sorted(directory.glob(f"*{SUFFIX}")) if directory.is_dir() else ():
            sha = _sha_of(path, hashes if hashes is not None else {})
            result = read_result(root.root, sha)
            if (result is None or result["state"] not in FINAL) and sha not in {s for _, s in found}:
                found.append((path, sha))
    return found


def _sha_of(path: Path, hashes: dict[tuple[str, int, int], str]) -> str:
    """sha256 of a capsule, hashed again only when its name, size or mtime changed (a stick's
    multi-GB capsule is not re-read every poll)."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in hashes:
        hashes[key] = sha256_file(path)
    return hashes[key]


# ------------------------------------------------------------------ verifying, the spec
def trusted_keys(root: HostRoot) -> list[Any]:
    """Every public key in ``/etc/edgeplane/keys`` (PEM files ending ``.pem``)."""
    from edgeplane.forge import load_public_key

    directory = root.path(KEYS)
    return [load_public_key(path) for path in sorted(directory.glob("*.pem"))] if directory.is_dir() else []


def unpacked(root: HostRoot, sha: str) -> Path:
    """Where a capsule is unpacked while it is applied (removed once it has a final result; the
    artifacts it supplied stay in the agent's artifact cache)."""
    return root.path(f"{CONTENT}/capsule-{sha[:16]}")


def prepare(root: HostRoot, capsule: Path, sha: str, current: NodeSpec | None) -> Prepared:
    """Verify and unpack ``capsule`` and build the node spec it asks for; raise CapsuleRefused."""
    from edgeplane.forge import ForgeError, extract_capsule

    if current is None or current.action != "apply" or current.cluster is None or current.profile is None:
        raise CapsuleRefused("this host runs no cluster: a capsule upgrades a running node")
    try:
        keys = trusted_keys(root)
    except ForgeError as exc:  # a key file that is not an ed25519 public key: named in the message
        raise CapsuleRefused(f"trusted keys: {exc}") from None
    if not keys:
        raise CapsuleRefused(f"no trusted public key in {root.path(KEYS)}: a capsule is applied only when "
                             "signed by a key the site trusts")
    dest = unpacked(root, sha)
    shutil.rmtree(dest, ignore_errors=True)  # a crash mid-way: unpack again, verified again
    try:
        manifest = extract_capsule(capsule, dest, keys).manifest
    except (ForgeError, OSError) as exc:
        raise CapsuleRefused(str(exc)) from None
    content = LocalContent(dest)
    try:
        spec = _next_spec(dest, manifest, current)
        missing = [a for a in spec.artifacts if content.find(a.sha256) is None]
        if missing:
            raise CapsuleRefused(f"artifact {missing[0].name} ({missing[0].digest}) of the capsule's packs is not "
                                 "in the capsule")
    except (yaml.YAMLError, OSError, ValueError) as exc:  # a profile or pack document that cannot be read
        shutil.rmtree(dest, ignore_errors=True)
        raise CapsuleRefused(f"capsule profile or pack document: {exc}") from None
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    assert manifest.capsule is not None
    return Prepared(sha, manifest.capsule["profile"], manifest.capsule["version"], spec, content)


def _next_spec(dest: Path, manifest: Any, current: NodeSpec) -> NodeSpec:
    """The current spec with the capsule's profile, resolved exactly as the console resolves one."""
    assert current.profile is not None
    profile = _profile_document(dest, manifest)
    packs = _pack_documents(dest, manifest)

    def resolve(name: str, version: str) -> dict[str, Any] | None:
        return builtin_pack(name, version) or packs.get((name, version))

    if profile.get("name") != current.profile.name:
        raise CapsuleRefused(f"capsule profile {profile.get('name')!r} is not a version of the profile this "
                             f"node runs ({current.profile.name!r})")
    profile = {**profile, "id": f"capsule:{profile['name']}:{profile['version']}"}
    try:
        block, artifacts, dist = profile_block(profile, resolve)
        # the running profile's own custom packs may not be on this host any more; the upgrade rules
        # need only its Kubernetes pack (always built in) and the network/storage pack names
        running = [{**layer.model_dump(), "pack_doc": resolve(layer.pack, layer.version) or {"constraints": {}}}
                   for layer in current.profile.layers]
        check_upgrade_layers(running, [{**layer, "pack_doc": resolve(layer["pack"], layer["version"])}
                                       for layer in block["layers"]])
    except (ProfileInvalid, KeyError) as exc:
        raise CapsuleRefused(f"capsule profile {profile['name']} {profile['version']}: {exc}") from None
    return NodeSpec.model_validate(with_profile(current.model_dump(), block, artifacts, dist))


def _profile_document(dest: Path, manifest: Any) -> dict[str, Any]:
    entry = next(a for a in manifest.artifacts if a.kind == "profile")
    document = yaml.safe_load((dest / entry.files[0].path).read_text(encoding="utf-8"))
    if not isinstance(document, dict) or not isinstance(document.get("layers"), list):
        raise CapsuleRefused(f"capsule profile {entry.name}: needs the console's `layers` list "
                             "([{layer, pack, version, values}]) to become a node spec")
    return document


def _pack_documents(dest: Path, manifest: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """The capsule's own pack documents (pack.yaml/pack.json with a ``layer``), as custom packs."""
    packs: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in (a for a in manifest.artifacts if a.kind == "pack"):
        for name in ("pack.yaml", "pack.json"):
            path = dest / entry.path / name
            document = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
            if isinstance(document, dict) and "layer" in document:
                packs[(str(document["name"]), str(document["version"]))] = custom_pack(
                    {**document, "name": str(document["name"]), "version": str(document["version"])})
    return packs
