"""Where edgeplane keeps its state when the user does not say."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "EDGEPLANE_DATA_DIR"


def default_data_dir() -> Path:
    """The data directory: $EDGEPLANE_DATA_DIR, /var/lib/edgeplane for root, else XDG data home."""
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        return Path(override)
    if os.geteuid() == 0:
        return Path("/var/lib/edgeplane")
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "edgeplane"
