"""Installer and site ISOs, written by Debian's ``xorriso`` (mkisofs emulation) as a subprocess.

Why xorriso and not pycdlib as the writer: it streams multi-GB content bundles straight from disk,
honours SOURCE_DATE_EPOCH and fixed file dates/ownership for byte-reproducible images, and does
El Torito (BIOS + EFI) and isohybrid USB boot the way Debian's own live images are built.
pycdlib stays as the independent reader in the tests.

Installer ISO layout (fixed paths, read by the agent):

    /config.yaml                          the validated user-data
    /edgeplane/agent/edgeplane-<v>.pyz    the agent (or the --agent wheel/zipapp given)
    /edgeplane/content/<bundle>.tar.zst   content bundles
    /edgeplane/clusterconfig/definition.tgz   the cluster definition
    /edgeplane/keys/<file>                public keys the site will require signatures from
    /edgeplane/forge.json                 index: every file above with size and sha256
    /<boot tree>                          kernel, initrd, isolinux/ and boot/grub/ when given
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edgeplane.forge.agentapp import agent_zipapp_name, build_agent_zipapp
from edgeplane.forge.bundle import read_manifest
from edgeplane.forge.definition import read_definition
from edgeplane.forge.digest import Progress, sha256_file
from edgeplane.forge.errors import IsoError
from edgeplane.forge.reproducible import source_date_epoch
from edgeplane.forge.signing import load_public_key
from edgeplane.forge.userdata import read_user_data, validate_installer_user_data, validate_site_user_data

CONFIG_PATH = "config.yaml"
AGENT_DIR = "edgeplane/agent"
CONTENT_DIR = "edgeplane/content"
DEFINITION_PATH = "edgeplane/clusterconfig/definition.tgz"
KEYS_DIR = "edgeplane/keys"
INDEX_PATH = "edgeplane/forge.json"
INDEX_FORMAT = "edgeplane-iso/1"
BIOS_IMAGE = "isolinux/isolinux.bin"
BIOS_CATALOG = "isolinux/boot.cat"
EFI_IMAGE = "boot/grub/efi.img"
EFI_CATALOG = "boot/boot.cat"
HYBRID_MBR = "isolinux/isohdpfx.bin"
SITE_LABEL = "cidata"
DEFAULT_LABEL = "EDGEPLANE"
_LABEL_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_KERNEL_RE = re.compile(r"^(vmlinuz|bzImage|kernel)", re.IGNORECASE)
_INITRD_RE = re.compile(r"^(initrd|initramfs)", re.IGNORECASE)
_PERCENT_RE = re.compile(r"(\d+(?:\.\d+)?)% done")


@dataclass(frozen=True)
class IsoResult:
    path: Path
    sha256: str
    size: int
    files: tuple[str, ...]  # ISO paths, sorted
    bootable: bool


def xorriso_path() -> str:
    found = shutil.which("xorriso")
    if not found:
        raise IsoError("xorriso is not installed (Debian: apt-get install xorriso)")
    return found


# ------------------------------------------------------------------------------------- inputs


def _check_label(label: str) -> str:
    if not _LABEL_RE.match(label):
        raise IsoError(f"--label: {label!r}: use 1-32 characters from A-Z a-z 0-9 _ -")
    return label


def _require_file(path: Path, what: str) -> Path:
    if not Path(path).is_file():
        raise IsoError(f"{what}: {path}: no such file")
    return Path(path)


def _boot_tree(tree: Path) -> tuple[dict[str, Path], list[str]]:
    """Grafts for the boot tree and the xorriso boot options; errors name the missing piece."""
    if not tree.is_dir():
        raise IsoError(f"--boot-tree: {tree}: not a directory")
    files = {p.relative_to(tree).as_posix(): p for p in sorted(tree.rglob("*")) if p.is_file()}
    names = [Path(name).name for name in files]
    if not any(_KERNEL_RE.match(n) for n in names):
        raise IsoError(f"--boot-tree: {tree}: no kernel (a file named vmlinuz*, bzImage* or kernel*)")
    if not any(_INITRD_RE.match(n) for n in names):
        raise IsoError(f"--boot-tree: {tree}: no initrd (a file named initrd* or initramfs*)")
    options: list[str] = []
    if BIOS_IMAGE in files:
        options += ["-b", BIOS_IMAGE, "-c", BIOS_CATALOG, "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table"]
        if HYBRID_MBR in files:
            options += ["-isohybrid-mbr", str(files[HYBRID_MBR])]
    if EFI_IMAGE in files:
        if not options:
            options += ["-c", EFI_CATALOG]
        else:
            options += ["-eltorito-alt-boot"]
        options += ["-e", EFI_IMAGE, "-no-emul-boot"]
    if not options:
        raise IsoError(f"--boot-tree: {tree}: no boot image ({BIOS_IMAGE} for BIOS or {EFI_IMAGE} for EFI)")
    reserved = [name for name in files if name == CONFIG_PATH or name.startswith("edgeplane/")]
    if reserved:
        raise IsoError(f"--boot-tree: {tree}: {reserved[0]} collides with a path forge writes")
    return files, options


# -------------------------------------------------------------------------------------- build


def _escape(path: str) -> str:
    """xorriso pathspecs split at '='; escape it (and the escape character) in names."""
    return path.replace("\\", "\\\\").replace("=", "\\=")


def _xorriso_date(epoch: int) -> str:
    return time.strftime("%Y%m%d%H%M%S00", time.gmtime(epoch))


def _run_xorriso(out: Path, label: str, grafts: dict[str, Path], boot_options: Sequence[str],
                 progress: Progress | None) -> None:
    """Write the image to ``out.partial`` and rename it: ``out`` is absent or whole."""
    epoch = source_date_epoch()
    partial = out.with_name(out.name + ".partial")
    partial.unlink(missing_ok=True)
    argv = [xorriso_path(), "-as", "mkisofs", "-o", str(partial), "-V", label, "-iso-level", "3",
            "-R", "-J", "-joliet-long", "-uid", "0", "-gid", "0", "-file-mode", "0444", "-dir-mode", "0555",
            "-p", "edgeplane forge", "-publisher", "edgeplane", "-A", "edgeplane forge",
            f"--modification-date={_xorriso_date(epoch)}", "--set_all_file_dates", _xorriso_date(epoch),
            *boot_options, "-graft-points"]
    argv += [f"/{_escape(iso_path)}={_escape(str(source))}" for iso_path, source in sorted(grafts.items())]
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(epoch), LC_ALL="C")
    total = sum(p.stat().st_size for p in grafts.values())
    done = 0
    with subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env) as proc:
        assert proc.stderr is not None
        log = []
        for line in proc.stderr:
            log.append(line.rstrip())
            match = _PERCENT_RE.search(line)
            if match and progress:
                now = int(total * float(match.group(1)) / 100)
                progress(now - done)
                done = now
    if proc.returncode != 0:
        partial.unlink(missing_ok=True)
        raise IsoError(f"xorriso failed (exit {proc.returncode}): " + " | ".join(log[-5:]))
    if progress:
        progress(total - done)
    os.replace(partial, out)


def _finish(out: Path, grafts: dict[str, Path], bootable: bool) -> IsoResult:
    """Write ``<out>.sha256`` (sha256sum format) next to the image."""
    digest, size = sha256_file(out)
    Path(f"{out}.sha256").write_text(f"{digest}  {out.name}\n")
    return IsoResult(out, digest, size, tuple(sorted(grafts)), bootable)


def _index(grafts: dict[str, Path], roles: dict[str, str], label: str) -> bytes:
    entries = []
    for iso_path in sorted(roles):
        digest, size = sha256_file(grafts[iso_path])
        entries.append({"path": iso_path, "role": roles[iso_path], "size": size, "sha256": digest})
    data = {"format": INDEX_FORMAT, "label": label, "created": source_date_epoch(), "files": entries}
    return (json.dumps(data, sort_keys=True, indent=1) + "\n").encode()


def _stage(staging: Path, user_data: bytes, content: Sequence[Path], definition: Path | None,
           agent: Path | None, trusted_keys: Sequence[Path], label: str) -> dict[str, Path]:
    """ISO path -> source file for everything forge carries, checked, with the forge.json index."""
    config = staging / CONFIG_PATH
    config.write_bytes(user_data)
    grafts: dict[str, Path] = {CONFIG_PATH: config}
    roles = {CONFIG_PATH: "user-data"}
    agent_file = _require_file(agent, "--agent") if agent else build_agent_zipapp(staging / agent_zipapp_name())
    if agent_file.suffix not in (".pyz", ".whl"):
        raise IsoError(f"--agent: {agent_file}: must be a zipapp (.pyz) or a wheel (.whl)")
    grafts[f"{AGENT_DIR}/{agent_file.name}"], roles[f"{AGENT_DIR}/{agent_file.name}"] = agent_file, "agent"
    for bundle in map(Path, content):
        read_manifest(_require_file(bundle, "--content"))  # only forge bundles go on the image
        iso_path = f"{CONTENT_DIR}/{bundle.name}"
        if iso_path in grafts:
            raise IsoError(f"--content: two bundles are named {bundle.name!r}")
        grafts[iso_path], roles[iso_path] = bundle, "content"
    if definition is not None:
        read_definition(_require_file(definition, "--definition"))
        grafts[DEFINITION_PATH], roles[DEFINITION_PATH] = Path(definition), "definition"
    for key in map(Path, trusted_keys):
        load_public_key(_require_file(key, "--trusted-key"))  # refuse anything but an ed25519 public key
        iso_path = f"{KEYS_DIR}/{key.name}"
        if iso_path in grafts:
            raise IsoError(f"--trusted-key: two keys are named {key.name!r}")
        grafts[iso_path], roles[iso_path] = key, "trusted-key"
    index = staging / "forge.json"
    index.write_bytes(_index(grafts, roles, label))
    grafts[INDEX_PATH] = index
    return grafts


def build_installer_iso(out: Path, user_data: Path, *, content: Sequence[Path] = (), definition: Path | None = None,
                        boot_tree: Path | None = None, label: str = DEFAULT_LABEL, agent: Path | None = None,
                        trusted_keys: Sequence[Path] = (), progress: Progress | None = None) -> IsoResult:
    """Build the installer ISO (layout in the module docstring) and its ``.sha256`` file."""
    out = Path(out)
    label = _check_label(label)
    raw = read_user_data(user_data)
    validate_installer_user_data(raw.decode("utf-8"), str(user_data))
    boot_files, boot_options = _boot_tree(Path(boot_tree)) if boot_tree else ({}, [])
    with tempfile.TemporaryDirectory(prefix="forge-iso-") as staging_dir:
        grafts = _stage(Path(staging_dir), raw, content, definition, agent, trusted_keys, label)
        grafts.update(boot_files)
        _run_xorriso(out, label, grafts, boot_options, progress)
    return _finish(out, grafts, bool(boot_options))


def build_site_iso(out: Path, user_data: Path, progress: Progress | None = None) -> IsoResult:
    """The site user-data ISO: volume ``cidata`` with ``user-data`` and an empty ``meta-data``."""
    out = Path(out)
    raw = read_user_data(user_data)
    validate_site_user_data(raw.decode("utf-8"), str(user_data))
    with tempfile.TemporaryDirectory(prefix="forge-site-") as staging_dir:
        staging = Path(staging_dir)
        (staging / "user-data").write_bytes(raw)
        (staging / "meta-data").write_bytes(b"")
        grafts = {"user-data": staging / "user-data", "meta-data": staging / "meta-data"}
        _run_xorriso(out, SITE_LABEL, grafts, [], progress)
        return _finish(out, grafts, False)
