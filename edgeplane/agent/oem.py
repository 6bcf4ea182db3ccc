"""The original user-data, kept in /oem (the reference platform's location) for every later start
and for resets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from edgeplane.agent.hostroot import HostRoot

OEM_BUILTIN = "/oem/90_custom.yaml"
OEM_SITE = "/oem/user-data"


def keep_original_user_data(root: HostRoot, builtin: Path, site: Path | None,
                            say: Callable[[str], None] = print) -> tuple[str, str | None]:
    """Copy the user-data to /oem the first time each source is seen (the site user-data usually
    arrives at a later boot than the built-in one); later starts and resets read the copies, so
    the original survives whatever happens to the given files."""
    sources = ((OEM_BUILTIN, builtin), (OEM_SITE, site))
    for oem, given in sources:
        if given is None:
            continue
        text = given.read_text(encoding="utf-8")
        kept = root.read_text(oem)
        if kept is None:
            root.write_text(oem, text, 0o600)
        elif kept != text:
            say(f"note: {given} differs from the original kept in {oem}; the original is used "
                f"(remove {root.path(oem)} to take the new one)")
    return root.read_text(OEM_BUILTIN) or "", root.read_text(OEM_SITE)
