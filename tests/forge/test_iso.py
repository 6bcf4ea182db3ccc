"""Installer and site ISOs built by forge and read back by independent readers (pycdlib, xorriso).

The boot tree used here is fake on purpose: the "kernel", "initrd" and "isolinux.bin" are random
bytes, not a bootable system; the tests check the El Torito catalogue and boot records, which is
what forge produces, not that a PC boots.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgeplane.forge import (ForgeError, IsoError, UserDataError, build_bundle, build_definition,
                             build_installer_iso, build_site_iso, make_artifact)
from tests.forge.isoread import (osirrox_extract, pycdlib_open, pycdlib_read, pycdlib_tree, xorriso,
                                 xorriso_files, xorriso_volume_id)

USER_DATA = "#cloud-config\nedgeplane:\n  site:\n    name: edge-store-42\n    tags: {city: lyon}\ninstall:\n  poweroff: true\n"


@pytest.fixture
def user_data(tmp_path: Path) -> Path:
    path = tmp_path / "user-data.yaml"
    path.write_text(USER_DATA)
    return path


@pytest.fixture
def bundle(tmp_path: Path, sources) -> Path:
    out = tmp_path / "store-content.tar.zst"
    build_bundle(out, [make_artifact("file", p) for p in sources["file"]] +
                 [make_artifact("profile", sources["profile"][0])], name="store")
    return out


@pytest.fixture
def definition(tmp_path: Path, sources) -> Path:
    out = tmp_path / "shop.tgz"
    build_definition(out, "shop", [p.read_bytes() for p in sources["profile"]])
    return out


@pytest.fixture
def boot_tree(tmp_path: Path) -> Path:
    """A fake boot tree (NOT bootable): kernel, initrd, an isolinux.bin-like image and an EFI image."""
    tree = tmp_path / "boot-tree"
    (tree / "isolinux").mkdir(parents=True)
    (tree / "boot" / "grub").mkdir(parents=True)
    (tree / "boot" / "vmlinuz").write_bytes(os.urandom(40_000))
    (tree / "boot" / "initrd.img").write_bytes(os.urandom(60_000))
    (tree / "isolinux" / "isolinux.bin").write_bytes(os.urandom(4096))
    (tree / "isolinux" / "isolinux.cfg").write_text("default edgeplane\nlabel edgeplane\n  kernel /boot/vmlinuz\n")
    (tree / "boot" / "grub" / "efi.img").write_bytes(os.urandom(8192))
    return tree


def test_installer_iso_carries_everything_at_fixed_paths(tmp_path: Path, user_data, bundle, definition, keys) -> None:
    out = tmp_path / "installer.iso"
    result = build_installer_iso(out, user_data, content=[bundle], definition=definition, label="EDGE_STORE",
                                 trusted_keys=[keys.public])
    assert not result.bootable
    expected = {"/config.yaml", "/edgeplane/agent/edgeplane-0.1.0.pyz", "/edgeplane/content/store-content.tar.zst",
                "/edgeplane/clusterconfig/definition.tgz", "/edgeplane/forge.json", "/edgeplane/keys/signer.pub.pem"}

    iso = pycdlib_open(out)
    try:
        assert iso.pvd.volume_identifier.decode().strip() == "EDGE_STORE"
        assert iso.has_rock_ridge() and iso.has_joliet()
        assert pycdlib_tree(iso, "rr_path") == expected
        assert pycdlib_tree(iso, "joliet_path") == expected
        rr_names = {c.rock_ridge.name() for c in iso.list_children(rr_path="/edgeplane/content") if c.rock_ridge}
        assert b"store-content.tar.zst" in rr_names
        assert pycdlib_read(iso, rr_path="/config.yaml").decode() == USER_DATA
        assert pycdlib_read(iso, joliet_path="/edgeplane/content/store-content.tar.zst") == bundle.read_bytes()
        index = json.loads(pycdlib_read(iso, rr_path="/edgeplane/forge.json"))
        assert iso.eltorito_boot_catalog is None
    finally:
        iso.close()
    assert {entry["path"]: entry["role"] for entry in index["files"]} == {
        "config.yaml": "user-data", "edgeplane/agent/edgeplane-0.1.0.pyz": "agent",
        "edgeplane/content/store-content.tar.zst": "content", "edgeplane/clusterconfig/definition.tgz": "definition",
        "edgeplane/keys/signer.pub.pem": "trusted-key"}
    content_entry = next(e for e in index["files"] if e["role"] == "content")
    assert content_entry["sha256"] == hashlib.sha256(bundle.read_bytes()).hexdigest()

    assert xorriso_files(out) == expected
    assert xorriso_volume_id(out) == "EDGE_STORE"
    assert osirrox_extract(out, "/edgeplane/clusterconfig/definition.tgz", tmp_path / "d.tgz") == definition.read_bytes()
    sha_line = (tmp_path / "installer.iso.sha256").read_text()
    assert sha_line == subprocess.run(["sha256sum", "installer.iso"], cwd=tmp_path, capture_output=True,
                                      text=True, check=True).stdout


def test_the_carried_agent_zipapp_runs(tmp_path: Path, user_data) -> None:
    out = tmp_path / "installer.iso"
    build_installer_iso(out, user_data)
    agent = osirrox_extract(out, "/edgeplane/agent/edgeplane-0.1.0.pyz", tmp_path / "agent.pyz")
    assert agent.startswith(b"#!/usr/bin/env python3\n")
    run = subprocess.run([sys.executable, str(tmp_path / "agent.pyz"), "version"],
                         capture_output=True, text=True, check=True, cwd=tmp_path)
    assert run.stdout.strip() == "0.1.0"


def test_boot_tree_gives_el_torito_bios_and_efi_entries(tmp_path: Path, user_data, boot_tree) -> None:
    out = tmp_path / "boot.iso"
    assert build_installer_iso(out, user_data, boot_tree=boot_tree).bootable
    iso = pycdlib_open(out)
    try:
        catalog = iso.eltorito_boot_catalog
        assert catalog is not None
        bios = iso.get_record(rr_path="/isolinux/isolinux.bin")
        assert catalog.initial_entry.load_rba == bios.extent_location()
        assert catalog.validation_entry.platform_id == 0  # x86 BIOS
        efi = iso.get_record(rr_path="/boot/grub/efi.img")
        assert [s.platform_id for s in catalog.sections] == [0xEF]
        assert catalog.sections[0].section_entries[0].load_rba == efi.extent_location()
        assert pycdlib_read(iso, rr_path="/boot/vmlinuz") == (boot_tree / "boot" / "vmlinuz").read_bytes()
        assert "/isolinux/boot.cat" in pycdlib_tree(iso)
    finally:
        iso.close()
    report = xorriso("-indev", str(out), "-report_el_torito", "plain")
    assert "/isolinux/isolinux.bin" in report and "/boot/grub/efi.img" in report
    assert "BIOS" in report and "UEFI" in report


def test_same_inputs_same_bytes(tmp_path: Path, user_data, bundle, boot_tree) -> None:
    first, second = tmp_path / "a" / "installer.iso", tmp_path / "b" / "installer.iso"
    first.parent.mkdir()
    second.parent.mkdir()
    build_installer_iso(first, user_data, content=[bundle], boot_tree=boot_tree)
    os.utime(bundle, (0, 0))  # source timestamps must not leak into the image
    build_installer_iso(second, user_data, content=[bundle], boot_tree=boot_tree)
    assert first.read_bytes() == second.read_bytes()
    assert (first.parent / "installer.iso.sha256").read_text() == (second.parent / "installer.iso.sha256").read_text()


def test_site_iso_is_cidata_with_user_data_and_meta_data(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text("#cloud-config\nedgeplane:\n  site:\n    tags: {aisle: '7'}\n")
    out = tmp_path / "site.iso"
    build_site_iso(out, site)
    iso = pycdlib_open(out)
    try:
        assert iso.pvd.volume_identifier.decode().strip() == "cidata"
        assert pycdlib_tree(iso) == {"/user-data", "/meta-data"} == pycdlib_tree(iso, "joliet_path")
        assert pycdlib_read(iso, rr_path="/user-data") == site.read_bytes()
        assert pycdlib_read(iso, rr_path="/meta-data") == b""
        assert iso.eltorito_boot_catalog is None
    finally:
        iso.close()
    assert xorriso_volume_id(out) == "cidata"
    assert xorriso_files(out) == {"/user-data", "/meta-data"}


@pytest.mark.parametrize("text, message", [
    ("edgeplane: {}\n", r"user-data.yaml:1: \(document\): first line must be '#cloud-config'"),
    ("#cloud-config\ninstall: {}\n", r"user-data.yaml: edgeplane: required"),
    ("#cloud-config\nedgeplane:\n  - a\n", r"user-data.yaml:3: edgeplane: must be a mapping"),
    ("#cloud-config\nedgeplane:\n  site:\n    nmae: x\n", r"user-data.yaml:4: edgeplane.site.nmae: unknown field"),
    ("#cloud-config\nedgeplane: {site: [\n", r"user-data.yaml:3: \(document\): not valid YAML"),
])
def test_invalid_user_data_is_refused_with_field_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "user-data.yaml"
    path.write_text(text)
    with pytest.raises(UserDataError, match=message):
        build_installer_iso(tmp_path / "x.iso", path)
    assert not list(tmp_path.glob("x.iso*"))


def test_bad_iso_inputs_are_refused(tmp_path: Path, user_data, boot_tree, sources) -> None:
    with pytest.raises(ForgeError, match="no such bundle|not a complete edgeplane bundle|corrupt bundle"):
        build_installer_iso(tmp_path / "x.iso", user_data, content=[sources["file"][0]])
    (boot_tree / "boot" / "vmlinuz").unlink()
    with pytest.raises(IsoError, match="no kernel"):
        build_installer_iso(tmp_path / "x.iso", user_data, boot_tree=boot_tree)
    with pytest.raises(ForgeError, match="not an ed25519 public key|cannot load public key"):
        build_installer_iso(tmp_path / "x.iso", user_data, trusted_keys=[user_data])
    with pytest.raises(IsoError, match="--label"):
        build_installer_iso(tmp_path / "x.iso", user_data, label="bad label!")
    with pytest.raises(UserDataError, match="no such file"):
        build_installer_iso(tmp_path / "x.iso", tmp_path / "missing.yaml")
    assert not list(tmp_path.glob("x.iso*"))


def test_isohybrid_mbr_makes_a_usb_bootable_image(tmp_path: Path, user_data, boot_tree) -> None:
    """With isolinux/isohdpfx.bin (here 432 fake bytes, not real SYSLINUX code) the ISO starts with it."""
    mbr = os.urandom(432)
    (boot_tree / "isolinux" / "isohdpfx.bin").write_bytes(mbr)
    out = tmp_path / "hybrid.iso"
    build_installer_iso(out, user_data, boot_tree=boot_tree)
    head = out.read_bytes()[:512]
    assert head[:432] == mbr and head[510:512] == b"\x55\xaa"  # MBR signature written by xorriso


def test_odd_names_and_exact_user_data_bytes(tmp_path: Path, bundle) -> None:
    """'=' in a file name must not split xorriso's pathspec; CRLF user-data stays byte for byte."""
    odd = tmp_path / "store=v2.tar.zst"
    odd.write_bytes(bundle.read_bytes())
    user_data = tmp_path / "ud.yaml"
    user_data.write_bytes(b"#cloud-config\r\nedgeplane:\r\n  site:\r\n    name: edge-crlf\r\n")
    out = tmp_path / "odd.iso"
    build_installer_iso(out, user_data, content=[odd])
    iso = pycdlib_open(out)
    try:
        assert pycdlib_read(iso, rr_path="/edgeplane/content/store=v2.tar.zst") == bundle.read_bytes()
        assert pycdlib_read(iso, rr_path="/config.yaml") == user_data.read_bytes()
    finally:
        iso.close()
