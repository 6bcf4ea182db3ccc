"""The edge host ID, derived in the documented priority and kept stable across restarts.

Priority: (1) ``site.name``; (2) the first readable ``site.deviceUIDPaths`` file (its regex's
first group, or whole match, when a regex is given), as ``<prefix>-<value>``; (3) a random UUID,
as ``<prefix>-<hex>``. The result loses the characters the reference system forbids, is cut to
128 characters and is persisted, so a random or UID-derived ID survives restarts.
"""

from __future__ import annotations

import re
import uuid

from edgeplane.agent.hostroot import HostRoot
from edgeplane.agent.schema import Site

MAX_LENGTH = 128
FORBIDDEN = set("/?#&+%,$~!@*(){}|=;:<>'.^\"")
RANDOM = "$random"
ID_FILE = "host-id"


class HostIdError(ValueError):
    """No usable host ID could be derived (e.g. an explicit name made only of forbidden characters)."""


def sanitise(raw: str) -> str:
    """Drop forbidden characters, turn whitespace runs into '-', cut to 128 characters."""
    kept = "".join(ch for ch in raw.strip() if ch not in FORBIDDEN)
    return re.sub(r"\s+", "-", kept)[:MAX_LENGTH]


def _from_uid_paths(site: Site, root: HostRoot) -> str | None:
    for uid_path in site.deviceUIDPaths:
        if uid_path.name == RANDOM:
            return None
        content = root.read_text(uid_path.name)
        if not content or not content.strip():
            continue
        value = content.strip()
        if uid_path.regex:
            match = re.search(uid_path.regex, value)
            if not match:
                continue
            value = match.group(1) if match.groups() else match.group(0)
        if sanitise(value):
            return f"{site.prefix}-{value}"
    return None


def derive_host_id(site: Site, root: HostRoot) -> tuple[str, str]:
    """(host ID, how it was derived: 'name' | 'device-uid' | 'persisted' | 'random'); persists it."""
    if site.name:
        host_id, how = sanitise(site.name), "name"
        if not host_id:
            raise HostIdError(f"edgeplane.site.name {site.name!r} has only forbidden characters")
    else:
        persisted = (root.read_text(f"/var/lib/edgeplane/agent/{ID_FILE}") or "").strip()
        if persisted:
            return persisted, "persisted"
        derived = _from_uid_paths(site, root)
        host_id, how = (sanitise(derived), "device-uid") if derived else (
            sanitise(f"{site.prefix}-{uuid.uuid4().hex}"), "random")
    root.write_text(f"/var/lib/edgeplane/agent/{ID_FILE}", host_id + "\n")
    return host_id, how
