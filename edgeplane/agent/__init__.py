"""Agent: runs on every edge host; user-data, identity, registration, install, A/B upgrades.

Public API (other parts import only these names):

- ``validate_user_data(text) -> UserData`` and ``UserDataError`` (forge validates ISO user-data);
- ``load_user_data(builtin, site)``: the built-in user-data with the site user-data merged over it;
- ``HostRoot``, ``derive_host_id``, ``read_inventory``, ``check_minimums``;
- labs and tests: ``write_lab_host`` (simulated /proc and /sys), ``write_lab_installers`` (installers
  that record their arguments), ``AgentProcess`` (an agent child process in its own root).
"""

from edgeplane.agent.hardware import Finding, Inventory, check_minimums, read_inventory
from edgeplane.agent.hostid import HostIdError, derive_host_id, sanitise
from edgeplane.agent.hostroot import HostRoot
from edgeplane.agent.labhost import AgentProcess, write_lab_host, write_lab_installers
from edgeplane.agent.schema import UserData
from edgeplane.agent.userdata import Problem, UserDataError, load_user_data, merge_documents, validate_user_data

__all__ = [
    "AgentProcess", "Finding", "HostIdError", "HostRoot", "Inventory", "Problem", "UserData", "UserDataError",
    "check_minimums", "derive_host_id", "load_user_data", "merge_documents", "read_inventory",
    "sanitise", "validate_user_data", "write_lab_host", "write_lab_installers",
]
