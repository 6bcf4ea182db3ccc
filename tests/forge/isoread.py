"""Independent ISO readers for the tests: pycdlib (Python) and Debian's xorriso/osirrox (C)."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pycdlib


def pycdlib_open(path: Path) -> pycdlib.PyCdlib:
    iso = pycdlib.PyCdlib()
    iso.open(str(path))
    return iso


def pycdlib_read(iso: pycdlib.PyCdlib, **path: str) -> bytes:
    out = io.BytesIO()
    iso.get_file_from_iso_fp(out, **path)
    return out.getvalue()


def pycdlib_tree(iso: pycdlib.PyCdlib, kind: str = "rr_path") -> set[str]:
    """Every file path as seen through Rock Ridge (rr_path) or Joliet (joliet_path) names."""
    found: set[str] = set()
    for dirpath, _dirs, files in iso.walk(**{kind: "/"}):
        for name in files:
            found.add(f"{dirpath.rstrip('/')}/{name}")
    return found


def xorriso(*args: str) -> str:
    result = subprocess.run(["xorriso", *args], capture_output=True, text=True, check=True)
    return result.stdout + result.stderr


def xorriso_files(path: Path) -> set[str]:
    out = subprocess.run(["xorriso", "-indev", str(path), "-find", "/", "-type", "f"],
                         capture_output=True, text=True, check=True).stdout
    return {line.strip().strip("'") for line in out.splitlines() if line.strip()}


def xorriso_volume_id(path: Path) -> str:
    for line in xorriso("-indev", str(path), "-pvd_info").splitlines():
        if line.startswith("Volume Id"):
            return line.split(":", 1)[1].strip()
    raise AssertionError("xorriso printed no Volume Id")


def osirrox_extract(path: Path, iso_path: str, dest: Path) -> bytes:
    subprocess.run(["osirrox", "-indev", str(path), "-extract", iso_path, str(dest)], capture_output=True, check=True)
    return dest.read_bytes()
