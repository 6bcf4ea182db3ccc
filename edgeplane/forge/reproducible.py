"""Fixed timestamps and ownership so that the same inputs give the same bytes.

The build time is SOURCE_DATE_EPOCH when set (reproducible-builds.org), else a fixed epoch
(2020-01-01T00:00:00Z) rather than "now": a forge output never depends on when it was built.
"""

from __future__ import annotations

import os
import tarfile

DEFAULT_EPOCH = 1577836800  # 2020-01-01T00:00:00Z


def source_date_epoch() -> int:
    """SOURCE_DATE_EPOCH as an int, DEFAULT_EPOCH when unset; a bad value is an error, not ignored."""
    raw = os.environ.get("SOURCE_DATE_EPOCH")
    if raw is None or raw == "":
        return DEFAULT_EPOCH
    if not raw.isdigit():
        raise ValueError(f"SOURCE_DATE_EPOCH: must be a non-negative integer, got {raw!r}")
    return int(raw)


def tar_info(name: str, size: int, mtime: int, executable: bool = False) -> tarfile.TarInfo:
    """A regular-file header with no trace of the build machine (owner, mode, time)."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = mtime
    info.mode = 0o755 if executable else 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_tgz(out: "os.PathLike[str] | str", members: list[tuple[str, bytes]], mtime: int) -> None:
    """A gzip'd tar of in-memory members with no name or time in the gzip header."""
    import gzip
    import io

    with open(out, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name, data in members:
                tar.addfile(tar_info(name, len(data), mtime), io.BytesIO(data))
