"""Where the agent's host paths live: ``/`` on a real host, a directory with ``--root``.

Every file the agent reads (/proc, /sys, the user-data) or writes (/etc, /opt, /var, the boot
slots) goes through ``HostRoot.path`` so tests and lab demos run unprivileged, side by side.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

AGENT_STATE = "/var/lib/edgeplane/agent"


@dataclass(frozen=True)
class HostRoot:
    root: Path = Path("/")

    def path(self, host_path: str) -> Path:
        """The real location of an absolute host path such as ``/etc/hostname``."""
        if not host_path.startswith("/"):
            raise ValueError(f"host path must be absolute: {host_path!r}")
        return self.root / host_path.lstrip("/")

    @property
    def is_real_host(self) -> bool:
        return self.root.resolve() == Path("/")

    def state(self, name: str) -> Path:
        """A file in the agent's own state directory."""
        return self.path(f"{AGENT_STATE}/{name}")

    def read_text(self, host_path: str) -> str | None:
        """File content, or None when it does not exist or cannot be read."""
        try:
            return self.path(host_path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None

    def write_text(self, host_path: str, content: str, mode: int = 0o644) -> bool:
        """Atomically write ``content``; return False when the file already held exactly it."""
        return write_atomic(self.path(host_path), content.encode(), mode)


def write_atomic(target: Path, data: bytes, mode: int = 0o644) -> bool:
    """Write via a temp file + fsync + rename so a crash leaves the old or the new file, never half."""
    try:
        if target.read_bytes() == data and (target.stat().st_mode & 0o777) == mode:
            return False
    except OSError:
        pass
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True
