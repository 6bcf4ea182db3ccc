"""Inputs of a bundle: each artifact is a file or a directory of one kind, checked before packing.

Kinds: ``profile`` (a profile YAML file), ``pack`` (a directory, optionally with ``pack.yaml`` or
``pack.json`` giving name and version, or a single archive file), ``image`` (an OCI image layout
directory or an image archive: ``docker save`` / OCI tar), ``chart`` (a Helm chart ``.tgz``) and
``file`` (anything).
"""

from __future__ import annotations

import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

from edgeplane.forge.errors import BundleError
from edgeplane.forge.profiles import ProfileInfo, load_profile, read_yaml_file

KINDS = ("profile", "pack", "image", "chart", "file")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+@-]{0,127}$")


@dataclass(frozen=True)
class Artifact:
    """One input artifact; ``files`` are (path inside the artifact, source path), sorted."""

    kind: str
    name: str
    source: Path
    files: tuple[tuple[str, Path], ...]
    version: str | None = None
    profile: ProfileInfo | None = None

    @property
    def bundle_path(self) -> str:
        return f"artifacts/{self.kind}/{self.name}"

    @property
    def size(self) -> int:
        return sum(path.stat().st_size for _, path in self.files)


def _walk(root: Path) -> tuple[tuple[str, Path], ...]:
    """Regular files under ``root`` sorted by relative path; symlinks and specials are refused."""
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            raise BundleError(f"{path}: only regular files and directories can go in a bundle")
        if path.is_file():
            found.append((path.relative_to(root).as_posix(), path))
    if not found:
        raise BundleError(f"{root}: directory is empty")
    return tuple(sorted(found))


def _check_name(name: str, source: Path) -> str:
    if not _NAME_RE.match(name):
        raise BundleError(f"{source}: artifact name {name!r} must match {_NAME_RE.pattern}")
    return name


def _tar_names(path: Path) -> set[str]:
    try:
        with tarfile.open(path) as archive:
            return {name.lstrip("./") for name in archive.getnames()}
    except (tarfile.TarError, OSError) as exc:
        raise BundleError(f"{path}: not a readable tar archive: {exc}") from None


def _check_image(source: Path) -> None:
    if source.is_dir():
        for required in ("oci-layout", "index.json"):
            if not (source / required).is_file():
                raise BundleError(f"{source}: not an OCI image layout: {required} is missing")
        return
    names = _tar_names(source)
    if not ({"oci-layout", "index.json"} <= names or "manifest.json" in names):
        raise BundleError(f"{source}: not an image archive: no index.json+oci-layout (OCI) or manifest.json (docker save)")


def _check_chart(source: Path) -> None:
    if source.is_dir():
        raise BundleError(f"{source}: a chart must be a packaged .tgz (helm package), not a directory")
    names = _tar_names(source)
    if not any(name.count("/") == 1 and name.endswith("/Chart.yaml") for name in names):
        raise BundleError(f"{source}: not a Helm chart archive: no <chart>/Chart.yaml inside")


def _pack_metadata(source: Path) -> tuple[str | None, str | None]:
    for meta in ("pack.yaml", "pack.json"):
        path = source / meta
        if path.is_file():
            data = read_yaml_file(path, BundleError)  # JSON is YAML too
            if not isinstance(data, dict):
                raise BundleError(f"{path}: must be a mapping with name and version")
            name, version = data.get("name"), data.get("version")
            return (str(name) if name else None), (str(version) if version is not None else None)
    return None, None


def make_artifact(kind: str, source: Path, name: str | None = None) -> Artifact:
    """Check one input and describe it; errors name the path and what is wrong."""
    if kind not in KINDS:
        raise BundleError(f"{source}: unknown artifact kind {kind!r} (one of {', '.join(KINDS)})")
    source = Path(source)
    if not source.exists():
        raise BundleError(f"{source}: no such file or directory ({kind})")
    if source.is_symlink() or not (source.is_file() or source.is_dir()):
        raise BundleError(f"{source}: must be a regular file or directory ({kind})")
    version: str | None = None
    profile: ProfileInfo | None = None
    if kind == "profile":
        if not source.is_file():
            raise BundleError(f"{source}: a profile must be a YAML file")
        profile = load_profile(source)
        name, version = name or profile.name, profile.version
    elif kind == "image":
        _check_image(source)
    elif kind == "chart":
        _check_chart(source)
    elif kind == "pack" and source.is_dir():
        meta_name, version = _pack_metadata(source)
        name = name or meta_name
    files = _walk(source) if source.is_dir() else ((source.name, source),)
    return Artifact(kind, _check_name(name or source.name, source), source, files, version, profile)
