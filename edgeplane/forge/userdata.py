"""Checks of the user-data that forge puts on ISOs.

The full schema belongs to the agent (``edgeplane.agent.validate_user_data``); forge adds what an
installer needs on top of it: the document must carry an ``edgeplane:`` mapping. Site user-data
holds only overrides, so it needs no ``edgeplane:`` key, but what it has must validate.
"""

from __future__ import annotations

from pathlib import Path

import yaml

import edgeplane.agent as agent
from edgeplane.forge.errors import UserDataError

HEADER = "#cloud-config"


def read_user_data(path: Path) -> bytes:
    """The file's exact bytes (they go on the ISO unchanged), checked to be UTF-8 text."""
    try:
        raw = Path(path).read_bytes()
        raw.decode("utf-8")
    except FileNotFoundError:
        raise UserDataError(f"{path}: no such file", "(file)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserDataError(f"{path}: cannot read as UTF-8 text: {exc}", "(file)") from None
    return raw


def _edgeplane_node(text: str, source: str) -> yaml.Node | None:
    """The YAML node under the top-level ``edgeplane`` key (None when absent), with line marks."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        raise UserDataError(f"{source}:{line}: (document): not valid YAML: {getattr(exc, 'problem', exc)}", "", line) from None
    if not isinstance(root, yaml.MappingNode):
        raise UserDataError(f"{source}:1: (document): the document must be a mapping of keys", "", 1)
    for key, value in root.value:
        if key.value == "edgeplane":
            return value
    return None


def _agent_validate(text: str, source: str) -> None:
    try:
        agent.validate_user_data(text, source)
    except agent.UserDataError as exc:
        first = exc.problems[0] if exc.problems else None
        raise UserDataError(str(exc), first.field if first else "", first.line if first else None) from None


def validate_installer_user_data(text: str, source: str) -> None:
    """``#cloud-config`` header, YAML mapping, an ``edgeplane:`` mapping, and the agent's schema."""
    first = text.lstrip("\ufeff").split("\n", 1)[0].strip()
    if first != HEADER:
        raise UserDataError(f"{source}:1: (document): first line must be {HEADER!r}, got {first[:40]!r}", "", 1)
    node = _edgeplane_node(text, source)
    if node is None:
        raise UserDataError(f"{source}: edgeplane: required: installer user-data must configure the agent", "edgeplane")
    if not isinstance(node, yaml.MappingNode):
        line = node.start_mark.line + 1
        raise UserDataError(f"{source}:{line}: edgeplane: must be a mapping of agent settings", "edgeplane", line)
    _agent_validate(text, source)


def validate_site_user_data(text: str, source: str) -> None:
    """Site user-data: overrides only, checked against the agent's schema."""
    _agent_validate(text, source)
