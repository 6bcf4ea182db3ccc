"""The agent as a zipapp: the installed ``edgeplane`` package in one reproducible ``.pyz`` file.

The zipapp holds edgeplane's own code only; its third-party dependencies (listed in
pyproject.toml) come with the OS image the host runs. Entries are sorted, dated
SOURCE_DATE_EPOCH and stored with fixed permissions, so the same code gives the same bytes.
"""

from __future__ import annotations

import time
import zipfile
from pathlib import Path

import edgeplane
from edgeplane.forge.reproducible import source_date_epoch

MAIN = "from edgeplane.cli import main\n\nmain()\n"
_SKIP_PARTS = {"__pycache__"}
_SKIP_SUFFIXES = {".pyc", ".pyo"}


def agent_zipapp_name() -> str:
    return f"edgeplane-{edgeplane.__version__}.pyz"


def _entry(name: str, epoch: int) -> zipfile.ZipInfo:
    # zip dates cannot predate 1980; clamp like reproducible-builds tools do
    stamp = time.gmtime(max(epoch, 315532800))[:6]
    info = zipfile.ZipInfo(name, date_time=stamp)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def build_agent_zipapp(out: Path) -> Path:
    """Write the zipapp to ``out`` (``python3 out --help`` runs the edgeplane CLI)."""
    package = Path(edgeplane.__file__).parent
    epoch = source_date_epoch()
    files = sorted(
        p for p in package.rglob("*")
        if p.is_file() and not _SKIP_PARTS & set(p.parts) and p.suffix not in _SKIP_SUFFIXES
    )
    with open(out, "wb") as handle:
        handle.write(b"#!/usr/bin/env python3\n")
        with zipfile.ZipFile(handle, "w") as archive:
            archive.writestr(_entry("__main__.py", epoch), MAIN)
            for path in files:
                name = "edgeplane/" + path.relative_to(package).as_posix()
                archive.writestr(_entry(name, epoch), path.read_bytes())
    out.chmod(0o755)
    return out
