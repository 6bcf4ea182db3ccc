"""Agent: runs on every edge host; user-data, identity, registration, install, A/B upgrades.

Public API (other parts import only these names; loaded on first use so that ``edgeplane --help``
does not pay for pydantic and PyYAML):

- ``validate_user_data(text, source) -> UserData`` and ``UserDataError`` (forge validates ISO
  user-data; ``problems`` lists ``source``, ``line``, ``field``, ``reason``);
- ``load_user_data(builtin, site)``: the built-in user-data with the site user-data merged over it;
- ``HostRoot``, ``derive_host_id``, ``read_inventory``, ``check_minimums``;
- offline upgrade capsules (``edgeplane.forge.apply_capsule`` rolls one across a site):
  ``deliver_capsule(root, file) -> sha256`` (into a running agent's inbox),
  ``wait_capsule_result(root, sha256, timeout)``, ``node_role(root)``;
- labs and tests: ``write_lab_host`` (simulated /proc and /sys), ``write_lab_installers`` (installers
  that record their arguments), ``AgentProcess`` (an agent child process in its own root).
"""

from __future__ import annotations

from edgeplane.common.lazy import lazy_exports

_EXPORTS = {
    "deliver_capsule": "capsule", "node_role": "capsule", "wait_capsule_result": "capsule",
    "Finding": "hardware", "Inventory": "hardware", "check_minimums": "hardware", "read_inventory": "hardware",
    "HostIdError": "hostid", "derive_host_id": "hostid", "sanitise": "hostid",
    "HostRoot": "hostroot",
    "AgentProcess": "labhost", "write_lab_host": "labhost", "write_lab_installers": "labhost",
    "UserData": "schema",
    "Problem": "userdata", "UserDataError": "userdata", "load_user_data": "userdata",
    "merge_documents": "userdata", "validate_user_data": "userdata",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
