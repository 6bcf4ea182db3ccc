"""Cluster profile files as forge reads them: name, version, type and the packs they use.

A profile is a YAML (or JSON) mapping::

    name: edge-k3s          # required
    version: 1.2.0          # required
    type: infra             # infra | full | add-on (infra and full are infrastructure profiles)
    packs:                  # optional list of {name, version}
      - {name: k3s, version: 1.30.2}
    variables:              # optional: [{name, required (false), default}]
      - {name: site_vip, required: true}

The console's layer list (``layers: [{layer, pack, version, values}]``) is read as ``packs``.

Other keys are kept untouched in the file; forge only reads these.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from edgeplane.forge.errors import ForgeError, ProfileError

PROFILE_TYPES = ("infra", "full", "add-on")
INFRASTRUCTURE_TYPES = ("infra", "full")


@dataclass(frozen=True)
class PackRef:
    name: str
    version: str


@dataclass(frozen=True)
class VariableSpec:
    name: str
    required: bool = False
    default: object = None


@dataclass(frozen=True)
class ProfileInfo:
    name: str
    version: str
    type: str
    packs: tuple[PackRef, ...] = field(default_factory=tuple)
    variables: tuple[VariableSpec, ...] = field(default_factory=tuple)

    @property
    def is_infrastructure(self) -> bool:
        return self.type in INFRASTRUCTURE_TYPES


def _text(data: dict, key: str, where: str) -> str:
    value = data.get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ProfileError(f"{where}: {key}: required, must be a non-empty string")
    return value


def parse_profile(data: object, where: str) -> ProfileInfo:
    """Validate a loaded profile mapping; errors name ``where`` and the field."""
    if not isinstance(data, dict):
        raise ProfileError(f"{where}: a profile must be a mapping")
    ptype = data.get("type")
    if ptype not in PROFILE_TYPES:
        raise ProfileError(f"{where}: type: must be one of {', '.join(PROFILE_TYPES)}, got {ptype!r}")
    key, name_key = ("layers", "pack") if "layers" in data and "packs" not in data else ("packs", "name")
    packs_raw = data.get(key, [])
    if not isinstance(packs_raw, list):
        raise ProfileError(f"{where}: {key}: must be a list")
    packs = []
    for index, pack in enumerate(packs_raw):
        if not isinstance(pack, dict):
            raise ProfileError(f"{where}: {key}[{index}]: must be a mapping with {name_key} and version")
        packs.append(PackRef(_text(pack, name_key, f"{where}: {key}[{index}]"),
                             _text(pack, "version", f"{where}: {key}[{index}]")))
    return ProfileInfo(_text(data, "name", where), _text(data, "version", where), ptype, tuple(packs),
                       _variables(data.get("variables", []), where))


def _variables(raw: object, where: str) -> tuple[VariableSpec, ...]:
    if not isinstance(raw, list):
        raise ProfileError(f"{where}: variables: must be a list of {{name, required, default}}")
    specs = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ProfileError(f"{where}: variables[{index}]: must be a mapping")
        required = item.get("required", False)
        if not isinstance(required, bool):
            raise ProfileError(f"{where}: variables[{index}].required: must be true or false")
        specs.append(VariableSpec(_text(item, "name", f"{where}: variables[{index}]"), required, item.get("default")))
    return tuple(specs)


def read_yaml_file(path: Path, error: type[ForgeError]) -> object:
    """Load a YAML (or JSON) file; ``error`` carries the file name and the reason."""
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror}") from None
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise error(f"{path}: not valid YAML: {exc}") from None


def load_profile(path: Path) -> ProfileInfo:
    """Read and validate one profile file."""
    return parse_profile(read_yaml_file(path, ProfileError), str(path))


def check_profile_set(profiles: Iterable[tuple[str, ProfileInfo]]) -> None:
    """At most one infrastructure profile and no duplicate profile names (where, profile) pairs."""
    profiles = list(profiles)
    seen: dict[str, str] = {}
    for where, profile in profiles:
        if profile.name in seen:
            raise ProfileError(f"profile {profile.name!r} appears twice: {seen[profile.name]} and {where}")
        seen[profile.name] = where
    infra = [(where, p) for where, p in profiles if p.is_infrastructure]
    if len(infra) > 1:
        listed = ", ".join(f"{p.name} ({p.type}, {where})" for where, p in infra)
        raise ProfileError(f"{len(infra)} infrastructure profiles: {listed}; at most one is allowed")
