"""The bundle manifest: every artifact file with its sha256 and size, as canonical JSON.

The manifest bytes are what gets signed, so they are produced once (sorted keys, fixed
indentation) and stored verbatim in the bundle.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import asdict, dataclass

from edgeplane.forge.artifacts import KINDS
from edgeplane.forge.errors import BundleError
from edgeplane.forge.profiles import ProfileInfo, check_profile_set, parse_profile

FORMAT = "edgeplane-bundle/1"
BUNDLE_TYPES = ("content", "capsule")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class ArtifactEntry:
    kind: str
    name: str
    path: str
    version: str | None
    files: tuple[FileEntry, ...]
    profile: dict | None = None  # name, version, type, packs of a profile artifact

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


@dataclass(frozen=True)
class Manifest:
    name: str
    type: str
    created: int
    artifacts: tuple[ArtifactEntry, ...]
    capsule: dict | None = None  # for capsules: {"profile": name, "version": v}
    format: str = FORMAT

    @property
    def size(self) -> int:
        return sum(a.size for a in self.artifacts)

    def files(self) -> dict[str, FileEntry]:
        return {f.path: f for a in self.artifacts for f in a.files}

    def profiles(self) -> list[ProfileInfo]:
        return [parse_profile(a.profile, f"manifest: {a.path}") for a in self.artifacts if a.kind == "profile"]

    def to_bytes(self) -> bytes:
        data = asdict(self)
        data["size"] = self.size
        return (json.dumps(data, sort_keys=True, indent=1, ensure_ascii=True) + "\n").encode()


def safe_member_path(path: str) -> str:
    """Refuse absolute paths, ``..`` and odd spellings: members must stay inside the bundle."""
    if not path or path.startswith("/") or "\\" in path or "\x00" in path:
        raise BundleError(f"unsafe path in bundle: {path!r}")
    if posixpath.normpath(path) != path or path.split("/")[0] in ("..", "."):
        raise BundleError(f"unsafe path in bundle: {path!r}")
    return path


def _require(data: dict, key: str, kind: type | tuple, where: str):
    value = data.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise BundleError(f"manifest: {where}{key}: missing or wrong type")
    return value


def parse_manifest(raw: bytes) -> Manifest:
    """Parse and structurally validate manifest bytes; errors name the field."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"manifest: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BundleError("manifest: must be a JSON object")
    if data.get("format") != FORMAT:
        raise BundleError(f"manifest: format: expected {FORMAT!r}, got {data.get('format')!r}")
    if data.get("type") not in BUNDLE_TYPES:
        raise BundleError(f"manifest: type: must be one of {BUNDLE_TYPES}, got {data.get('type')!r}")
    artifacts = []
    for index, item in enumerate(_require(data, "artifacts", list, "")):
        where = f"artifacts[{index}]."
        if not isinstance(item, dict):
            raise BundleError(f"manifest: artifacts[{index}]: must be an object")
        files = []
        for findex, entry in enumerate(_require(item, "files", list, where)):
            fwhere = f"{where}files[{findex}]."
            if not isinstance(entry, dict):
                raise BundleError(f"manifest: {fwhere[:-1]}: must be an object")
            sha = _require(entry, "sha256", str, fwhere)
            if not _SHA_RE.match(sha):
                raise BundleError(f"manifest: {fwhere}sha256: not a lowercase hex sha256")
            size = _require(entry, "size", int, fwhere)
            if size < 0:
                raise BundleError(f"manifest: {fwhere}size: negative")
            files.append(FileEntry(safe_member_path(_require(entry, "path", str, fwhere)), size, sha))
        kind, path = _require(item, "kind", str, where), _require(item, "path", str, where)
        if kind not in KINDS:
            raise BundleError(f"manifest: {where}kind: {kind!r} is not one of {', '.join(KINDS)}")
        stray = [f.path for f in files if not f.path.startswith(f"{path}/")]
        if stray:
            raise BundleError(f"manifest: {where}files: {stray[0]!r} is outside the artifact's path {path!r}")
        version = item.get("version")
        artifacts.append(ArtifactEntry(kind, _require(item, "name", str, where), path,
                                       version if isinstance(version, str) else None, tuple(files),
                                       item.get("profile") if isinstance(item.get("profile"), dict) else None))
    manifest = Manifest(_require(data, "name", str, ""), data["type"], _require(data, "created", int, ""),
                        tuple(artifacts), data.get("capsule") if isinstance(data.get("capsule"), dict) else None)
    paths = [f.path for a in manifest.artifacts for f in a.files]
    if len(paths) != len(set(paths)):
        raise BundleError("manifest: the same file path is listed twice")
    check_profile_set((a.path, p) for a, p in zip([a for a in manifest.artifacts if a.kind == "profile"],
                                                  manifest.profiles()))
    return manifest
