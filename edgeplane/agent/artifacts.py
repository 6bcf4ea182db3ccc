"""Artifacts named in a node spec by sha256, fetched from the console or a local content bundle.

Downloads go to ``<digest>.part`` and resume with an HTTP ``Range`` request after an interruption
(a server that answers 200 instead of 206 gets the file again from the start). Nothing is used
before its sha256 matched; a mismatch deletes the partial file so the next try starts clean.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import httpx

from edgeplane.agent.hostroot import HostRoot
from edgeplane.agent.spec import Artifact

CHUNK = 1 << 20
CACHE = "/var/lib/edgeplane/artifacts"
CONTENT = "/var/lib/edgeplane/content"


class ArtifactError(RuntimeError):
    """An artifact that could not be obtained or did not match its digest."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def download(client: httpx.Client, url: str, target: Path, sha256: str, headers: dict[str, str] | None = None,
             on_progress: Callable[[int, int | None], None] | None = None) -> Path:
    """Download ``url`` into ``target`` (via ``target.part``, resuming), verify, rename."""
    part = target.with_name(target.name + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    request_headers = dict(headers or {})
    if have:
        request_headers["Range"] = f"bytes={have}-"
    with client.stream("GET", url, headers=request_headers) as response:
        if response.status_code == 416:  # the partial file already holds everything
            pass
        elif response.status_code in (200, 206):
            mode = "ab" if response.status_code == 206 and have else "wb"
            total = _total(response, have if mode == "ab" else 0)
            with open(part, mode) as handle:
                done = have if mode == "ab" else 0
                for chunk in response.iter_bytes():  # as it arrives: a cut keeps what came
                    handle.write(chunk)
                    done += len(chunk)
                    if on_progress:
                        on_progress(done, total)
                handle.flush()
                os.fsync(handle.fileno())
        else:
            raise ArtifactError(f"GET {url}: HTTP {response.status_code}")
    return _verify_and_place(part, target, sha256, url)


def _total(response: httpx.Response, offset: int) -> int | None:
    length = response.headers.get("content-length")
    return offset + int(length) if length and length.isdigit() else None


def _verify_and_place(part: Path, target: Path, sha256: str, where: str) -> Path:
    actual = sha256_file(part)
    if actual != sha256:
        part.unlink(missing_ok=True)
        raise ArtifactError(f"{where}: sha256 {actual} does not match the expected {sha256}")
    os.replace(part, target)
    return target


class LocalContent:
    """An extracted content bundle (``edgeplane.forge.extract_bundle``), looked up by sha256."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._index: dict[str, Path] | None = None

    def find(self, sha256: str) -> Path | None:
        if self._index is None:
            self._index = {sha256_file(p): p for p in sorted(self.directory.rglob("*")) if p.is_file()}
        return self._index.get(sha256)


def open_content_bundle(root: HostRoot, bundle: Path) -> LocalContent:
    """Verify and extract a bundle file once (by its own hash) and return it as a local source."""
    from edgeplane.forge import extract_bundle

    if bundle.is_dir():
        return LocalContent(bundle)
    dest = root.path(f"{CONTENT}/{sha256_file(bundle)[:16]}")
    if not dest.exists():
        extract_bundle(bundle, dest)
    return LocalContent(dest)


class ArtifactStore:
    """The cache under the root plus where to get what is missing: local content first, then console."""

    def __init__(self, root: HostRoot, local: LocalContent | None = None,
                 console: Callable[[Artifact, Path], Path] | None = None) -> None:
        self.cache = root.path(CACHE)
        self.local = local
        self.console = console

    def path_of(self, artifact: Artifact) -> Path:
        return self.cache / artifact.sha256

    def ensure(self, artifact: Artifact) -> Path:
        target = self.path_of(artifact)
        if target.exists():
            if sha256_file(target) == artifact.sha256:
                return target
            target.unlink()  # damaged on disk: fetch again
        target.parent.mkdir(parents=True, exist_ok=True)
        found = self.local.find(artifact.sha256) if self.local else None
        if found is not None:
            part = target.with_name(target.name + ".part")
            shutil.copyfile(found, part)
            return _verify_and_place(part, target, artifact.sha256, str(found))
        if self.console is None:
            raise ArtifactError(f"artifact {artifact.name} ({artifact.digest}) is not in the local content "
                                "and there is no console connection to fetch it")
        return self.console(artifact, target)
