"""Reset: leave Kubernetes, put the factory image back, wipe the agent state; /oem stays."""

from __future__ import annotations

import shutil

from edgeplane.agent.artifacts import ArtifactStore
from edgeplane.agent.hostroot import HostRoot
from edgeplane.agent.installer import Installer
from edgeplane.agent.oem import OEM_BUILTIN, OEM_SITE
from edgeplane.agent.schema import UserData
from edgeplane.agent.slots import Slots
from edgeplane.agent.userdata import UserDataError, load_user_data


def factory_reset(root: HostRoot, keep_registration: bool = True) -> list[str]:
    """Reset to factory: leave Kubernetes, slots back to the factory image, agent state wiped; the
    original user-data in /oem always stays (and, by default, the host ID and credential, as the
    reference's "Reset" boot entry keeps the registration)."""
    keep = {"host-id", "credential"} if keep_registration else set()
    installer = Installer(root, _original_user_data(root), "", "127.0.0.1", ArtifactStore(root), Slots(root),
                          lambda *a: None)
    installer.reset_kubernetes()
    Slots(root).reset_to_factory()
    state = root.path("/var/lib/edgeplane/agent")
    removed = []
    if state.is_dir():
        for entry in state.iterdir():
            if entry.name not in keep:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
                removed.append(entry.name)
    shutil.rmtree(root.path("/var/lib/edgeplane/artifacts"), ignore_errors=True)
    return sorted(removed)


def _original_user_data(root: HostRoot) -> UserData:
    """The /oem user-data (its after-reset stages run); defaults when there is none or it is broken."""
    builtin = root.read_text(OEM_BUILTIN)
    if builtin is None:
        return UserData()
    try:
        return load_user_data(builtin, root.read_text(OEM_SITE))
    except UserDataError:
        return UserData()
