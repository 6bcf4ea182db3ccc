"""Content bundles: a zstd-compressed tar of artifacts followed by a manifest (docs/forge.md).

Everything streams: files are hashed while they are written into the tar, and read back in
1 MiB pieces while being hashed, so a bundle of any size needs constant memory. The manifest
goes last (its digests are known only then) in its own zstd frame, and a small skippable frame
at the very end records where that frame starts, so ``inspect`` reads a few KiB, not the bundle.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import struct
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import zstandard
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edgeplane.forge.artifacts import Artifact
from edgeplane.forge.digest import CHUNK, CountingReader, HashingReader, Progress
from edgeplane.forge.errors import BundleError, SignatureError
from edgeplane.forge.manifest import ArtifactEntry, FileEntry, Manifest, parse_manifest, safe_member_path
from edgeplane.forge.profiles import check_profile_set
from edgeplane.forge.reproducible import source_date_epoch, tar_info
from edgeplane.forge.signing import sign, verify_any

PublicKeys = Ed25519PublicKey | Sequence[Ed25519PublicKey] | None  # one key, or every key a site trusts
MANIFEST = "manifest.json"
CHECKSUM = "manifest.sha256"
SIGNATURE = "manifest.sig"
METADATA = (MANIFEST, CHECKSUM, SIGNATURE)
METADATA_LIMIT = 64 << 20  # a manifest larger than this is an attack, not a bundle
TRAILER = struct.Struct("<II4sQ")  # skippable-frame magic, payload size, tag, manifest frame offset
TRAILER_MAGIC = 0x184D2A5E
TRAILER_TAG = b"EPMF"
DEFAULT_LEVEL = 3
DEFAULT_THREADS = 2  # always multi-threaded mode: its output does not depend on the worker count


@dataclass(frozen=True)
class Verified:
    """A bundle whose every byte matched its manifest; ``signature_checked`` iff a key was given."""

    manifest: Manifest
    signed: bool
    signature_checked: bool


# ---------------------------------------------------------------------------------------- build


def build_bundle(out: Path, artifacts: Sequence[Artifact], *, name: str, bundle_type: str = "content",
                 capsule: dict | None = None, signing_key: Ed25519PrivateKey | None = None,
                 level: int = DEFAULT_LEVEL, threads: int = DEFAULT_THREADS,
                 progress: Progress | None = None) -> Manifest:
    """Write ``out`` (.tar.zst) holding ``artifacts`` and their manifest; return the manifest.

    The bundle is written to ``out.partial`` and renamed when complete, so ``out`` is either
    absent or whole.
    """
    out = Path(out)
    ordered = sorted(artifacts, key=lambda a: (a.kind, a.name))
    _check_artifact_set(ordered)
    mtime = source_date_epoch()
    partial = out.with_name(out.name + ".partial")
    compressor = zstandard.ZstdCompressor(level=level, threads=threads, write_checksum=True)
    try:
        with open(partial, "wb") as raw:
            writer = compressor.stream_writer(raw, closefd=False, write_size=CHUNK)
            tar = tarfile.open(fileobj=writer, mode="w", format=tarfile.PAX_FORMAT, copybufsize=CHUNK)
            entries = tuple(_add_artifact(tar, artifact, mtime, progress) for artifact in ordered)
            manifest = Manifest(name, bundle_type, mtime, entries, capsule)
            raw_manifest = manifest.to_bytes()
            writer.flush(zstandard.FLUSH_FRAME)
            manifest_offset = raw.tell()
            _add_bytes(tar, MANIFEST, raw_manifest, mtime)
            _add_bytes(tar, CHECKSUM, hashlib.sha256(raw_manifest).hexdigest().encode() + b"\n", mtime)
            if signing_key is not None:
                _add_bytes(tar, SIGNATURE, sign(signing_key, raw_manifest), mtime)
            tar.close()
            writer.flush(zstandard.FLUSH_FRAME)
            raw.write(TRAILER.pack(TRAILER_MAGIC, TRAILER.size - 8, TRAILER_TAG, manifest_offset))
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(partial, out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return manifest


def _check_artifact_set(artifacts: Sequence[Artifact]) -> None:
    seen: set[tuple[str, str]] = set()
    for artifact in artifacts:
        if (artifact.kind, artifact.name) in seen:
            raise BundleError(f"two {artifact.kind} artifacts are named {artifact.name!r}: names must be unique per kind")
        seen.add((artifact.kind, artifact.name))
    check_profile_set((str(a.source), a.profile) for a in artifacts if a.profile is not None)


def _add_artifact(tar: tarfile.TarFile, artifact: Artifact, mtime: int, progress: Progress | None) -> ArtifactEntry:
    files = []
    for relative, source in artifact.files:
        member = f"{artifact.bundle_path}/{relative}"
        with open(source, "rb") as handle:
            stat = os.fstat(handle.fileno())
            reader = HashingReader(handle, progress)
            try:
                tar.addfile(tar_info(member, stat.st_size, mtime, bool(stat.st_mode & 0o111)), reader)
            except OSError as exc:
                raise BundleError(f"{source}: changed while being read ({exc})") from None
        files.append(FileEntry(member, reader.size, reader.hexdigest()))
    profile = None
    if artifact.profile is not None:
        p = artifact.profile
        profile = {"name": p.name, "version": p.version, "type": p.type,
                   "packs": [{"name": r.name, "version": r.version} for r in p.packs]}
    return ArtifactEntry(artifact.kind, artifact.name, artifact.bundle_path, artifact.version, tuple(files), profile)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mtime: int) -> None:
    tar.addfile(tar_info(name, len(data), mtime), io.BytesIO(data))


# ----------------------------------------------------------------------------------------- read


@dataclass
class _Scan:
    observed: dict[str, tuple[int, str]] = field(default_factory=dict)
    metadata: dict[str, bytes] = field(default_factory=dict)


@contextmanager
def _members(path: Path, progress: Progress | None) -> Iterator[tarfile.TarFile]:
    """The bundle's tar stream; corrupt compression or tar data becomes a BundleError."""
    try:
        with open(path, "rb") as raw:
            counted = CountingReader(raw, progress)
            reader = zstandard.ZstdDecompressor().stream_reader(counted, read_size=CHUNK, read_across_frames=True)
            with tarfile.open(fileobj=reader, mode="r|", bufsize=CHUNK) as tar:
                yield tar
    except FileNotFoundError:
        raise BundleError(f"{path}: no such bundle") from None
    except (zstandard.ZstdError, tarfile.TarError, EOFError) as exc:
        raise BundleError(f"{path}: corrupt bundle: {exc}") from None


def _scan(path: Path, sink: Callable[[str], BinaryIO] | None, progress: Progress | None) -> _Scan:
    """Read every member once, hashing artifacts and keeping the metadata members."""
    scan = _Scan()
    with _members(path, progress) as tar:
        for member in tar:
            name = safe_member_path(member.name)
            if not member.isreg():
                raise BundleError(f"{path}: member {name!r} is not a regular file")
            if name in scan.observed or name in scan.metadata:
                raise BundleError(f"{path}: member {name!r} appears twice")
            source = tar.extractfile(member)
            assert source is not None  # regular files always have data
            if name in METADATA:
                if member.size > METADATA_LIMIT:
                    raise BundleError(f"{path}: {name} is {member.size} bytes, over the {METADATA_LIMIT} limit")
                scan.metadata[name] = source.read()
                if sink is not None:
                    with sink(name) as target:
                        target.write(scan.metadata[name])
                continue
            if scan.metadata:
                raise BundleError(f"{path}: member {name!r} comes after the manifest")
            if not name.startswith("artifacts/"):
                raise BundleError(f"{path}: member {name!r} is outside artifacts/")
            scan.observed[name] = _copy_hashed(source, sink(name) if sink else None)
    return scan


def _copy_hashed(source: BinaryIO, target: BinaryIO | None) -> tuple[int, str]:
    reader = HashingReader(source)
    with target if target is not None else _NullWriter() as out:
        while chunk := reader.read(CHUNK):
            out.write(chunk)
    return reader.size, reader.hexdigest()


class _NullWriter:
    def __enter__(self) -> _NullWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def write(self, data: bytes) -> int:
        return len(data)


def _keys(public_key: PublicKeys) -> list[Ed25519PublicKey]:
    if public_key is None:
        return []
    return [public_key] if isinstance(public_key, Ed25519PublicKey) else list(public_key)


def _check(path: Path, scan: _Scan, public_key: PublicKeys) -> Verified:
    """Manifest checksum, then signature, then every file against the manifest."""
    raw = scan.metadata.get(MANIFEST)
    if raw is None:
        raise BundleError(f"{path}: no {MANIFEST}: not a complete edgeplane bundle")
    recorded = scan.metadata.get(CHECKSUM, b"").strip().decode("ascii", "replace")
    if recorded != hashlib.sha256(raw).hexdigest():
        raise BundleError(f"{path}: {MANIFEST} does not match {CHECKSUM}: the manifest was modified or is corrupt")
    signature = scan.metadata.get(SIGNATURE)
    keys = _keys(public_key)
    if keys:
        if signature is None:
            raise SignatureError(f"{path}: bundle is not signed, but a public key is configured")
        verify_any(keys, signature, raw, what=f"{path}: {MANIFEST}")
    manifest = parse_manifest(raw)
    expected = manifest.files()
    for name, (size, digest) in scan.observed.items():
        entry = expected.get(name)
        if entry is None:
            raise BundleError(f"{path}: {name}: in the bundle but not in the manifest")
        if size != entry.size:
            raise BundleError(f"{path}: {name}: size {size} does not match the manifest's {entry.size}")
        if digest != entry.sha256:
            raise BundleError(f"{path}: {name}: sha256 {digest} does not match the manifest's {entry.sha256}")
    missing = sorted(set(expected) - set(scan.observed))
    if missing:
        raise BundleError(f"{path}: {missing[0]}: listed in the manifest but missing from the bundle")
    return Verified(manifest, signature is not None, bool(keys))


def verify_bundle(path: Path, public_key: PublicKeys = None,
                  progress: Progress | None = None) -> Verified:
    """Check every byte of the bundle against its manifest (and the signature when a key is given)."""
    path = Path(path)
    return _check(path, _scan(path, None, progress), public_key)


def extract_bundle(path: Path, dest: Path, public_key: PublicKeys = None,
                   progress: Progress | None = None) -> Verified:
    """Verify and unpack a bundle into the new directory ``dest``; a refused bundle leaves nothing.

    Files go to a temporary sibling of ``dest`` while being hashed; only when the whole bundle
    has been verified is that directory renamed to ``dest``.
    """
    path, dest = Path(path), Path(dest)
    if dest.exists():
        raise BundleError(f"{dest}: already exists; extract into a new directory")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))

    def sink(name: str) -> BinaryIO:
        target = staging / name
        target.parent.mkdir(parents=True, exist_ok=True)
        return open(target, "xb")

    try:
        verified = _check(path, _scan(path, sink, progress), public_key)
        os.rename(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return verified


def read_manifest(path: Path) -> tuple[Manifest, bool]:
    """The manifest and whether it is signed, WITHOUT checking artifacts (use verify for that)."""
    path = Path(path)
    metadata = _trailer_metadata(path)
    if metadata is None:  # no trailer (e.g. recompressed by hand): read the whole stream
        metadata = _scan(path, None, None).metadata
    if MANIFEST not in metadata:
        raise BundleError(f"{path}: no {MANIFEST}: not a complete edgeplane bundle")
    return parse_manifest(metadata[MANIFEST]), SIGNATURE in metadata


def _trailer_metadata(path: Path) -> dict[str, bytes] | None:
    """Read only the manifest frame located by the trailer; None when there is no valid trailer."""
    try:
        with open(path, "rb") as raw:
            size = raw.seek(0, os.SEEK_END)
            if size < TRAILER.size:
                return None
            raw.seek(size - TRAILER.size)
            magic, length, tag, offset = TRAILER.unpack(raw.read(TRAILER.size))
            if magic != TRAILER_MAGIC or length != TRAILER.size - 8 or tag != TRAILER_TAG or offset >= size:
                return None
            raw.seek(offset)
            reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=False)
            data = b""
            while len(data) <= 3 * METADATA_LIMIT and (chunk := reader.read(CHUNK)):
                data += chunk
        metadata = {}
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for member in tar:
                if member.name in METADATA and member.isreg():
                    metadata[member.name] = tar.extractfile(member).read()  # type: ignore[union-attr]
        return metadata
    except FileNotFoundError:
        raise BundleError(f"{path}: no such bundle") from None
    except (zstandard.ZstdError, tarfile.TarError, EOFError, OSError):
        return None
