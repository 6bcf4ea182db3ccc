"""Cluster definitions: a ``.tgz`` of cluster profiles and profile variables (docs/forge.md).

Members: ``definition.json`` (index with sha256 and size of every other member), ``profiles/<name>.yaml``
(verbatim profile documents), ``variables.yaml`` (name -> value) and optionally ``definition.sig``
(ed25519 over the exact ``definition.json`` bytes). Rules: at least one profile, at most one
infrastructure profile, no pack in two profiles, every required variable has a value.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edgeplane.forge.errors import DefinitionError, ForgeError, ProfileError, SignatureError
from edgeplane.forge.manifest import safe_member_path
from edgeplane.forge.profiles import ProfileInfo, check_profile_set, parse_profile, read_yaml_file
from edgeplane.forge.reproducible import source_date_epoch, write_tgz
from edgeplane.forge.signing import sign, verify

FORMAT = "edgeplane-definition/1"
INDEX = "definition.json"
SIGNATURE = "definition.sig"
VARIABLES = "variables.yaml"
SIZE_LIMIT = 64 << 20
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_VAR_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class Definition:
    name: str
    profiles: tuple[ProfileInfo, ...]
    variables: dict[str, object]
    documents: dict[str, bytes]  # member name -> bytes (profiles and variables.yaml)
    signed: bool


def _check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise DefinitionError(f"name: {name!r} must match {_NAME_RE.pattern}")
    return name


def _load_yaml(data: bytes, where: str) -> object:
    try:
        return yaml.safe_load(data.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DefinitionError(f"{where}: not valid YAML: {exc}") from None


def _parse_profile(data: bytes, where: str) -> ProfileInfo:
    try:
        return parse_profile(_load_yaml(data, where), where)
    except ProfileError as exc:
        raise DefinitionError(str(exc)) from None


def _check_variables(variables: object, profiles: Sequence[ProfileInfo], where: str) -> dict[str, object]:
    if variables is None:
        variables = {}
    if not isinstance(variables, dict):
        raise DefinitionError(f"{where}: must be a mapping of variable name to value")
    for name, value in variables.items():
        if not isinstance(name, str) or not _VAR_RE.match(name):
            raise DefinitionError(f"{where}: {name!r}: variable names must match {_VAR_RE.pattern}")
        if isinstance(value, (dict, list)):
            raise DefinitionError(f"{where}: {name}: a variable value must be a string, number or boolean")
    for profile in profiles:
        for spec in profile.variables:
            if spec.required and spec.default is None and spec.name not in variables:
                raise DefinitionError(f"{where}: {spec.name}: required by profile {profile.name!r} but has no value")
    return dict(variables)


def _check_rules(profiles: Sequence[tuple[str, ProfileInfo]]) -> None:
    if not profiles:
        raise DefinitionError("profiles: a cluster definition needs at least one profile")
    try:
        check_profile_set(profiles)
    except ForgeError as exc:
        raise DefinitionError(f"profiles: {exc}") from None
    owner: dict[str, str] = {}
    for _, profile in profiles:
        for pack in profile.packs:
            if pack.name in owner:
                raise DefinitionError(f"profiles: pack {pack.name!r} is in both {owner[pack.name]!r} and {profile.name!r}")
            owner[pack.name] = profile.name


def build_definition(out: Path, name: str, profiles: Sequence[bytes], variables: Mapping[str, object] | None = None,
                     signing_key: Ed25519PrivateKey | None = None, sources: Sequence[str] | None = None) -> Definition:
    """Write a definition ``.tgz`` from profile documents (YAML/JSON bytes); reproducible bytes."""
    _check_name(name)
    sources = list(sources or [f"profiles[{i}]" for i in range(len(profiles))])
    parsed = [(src, _parse_profile(doc, src)) for src, doc in zip(sources, profiles)]
    _check_rules(parsed)
    values = _check_variables(dict(variables or {}), [p for _, p in parsed], "variables")
    documents = {f"profiles/{p.name}.yaml": doc for (_, p), doc in zip(parsed, profiles)}
    documents[VARIABLES] = yaml.safe_dump(values, sort_keys=True).encode()
    index = {"format": FORMAT, "name": name, "created": source_date_epoch(),
             "profiles": [{"name": p.name, "version": p.version, "type": p.type, "path": f"profiles/{p.name}.yaml"}
                          for _, p in parsed],
             "files": {member: {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                       for member, data in sorted(documents.items())}}
    raw_index = (json.dumps(index, sort_keys=True, indent=1) + "\n").encode()
    members = [(INDEX, raw_index)] + sorted(documents.items())
    if signing_key is not None:
        members.append((SIGNATURE, sign(signing_key, raw_index)))
    partial = Path(f"{out}.partial")
    try:
        write_tgz(partial, members, source_date_epoch())
        os.replace(partial, out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return Definition(name, tuple(p for _, p in parsed), values, documents, signing_key is not None)


def _read_members(path: Path) -> dict[str, bytes]:
    members: dict[str, bytes] = {}
    total = 0
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            for member in tar:
                name = safe_member_path(member.name)
                if not member.isreg():
                    raise DefinitionError(f"{path}: member {name!r} is not a regular file")
                if name in members:
                    raise DefinitionError(f"{path}: member {name!r} appears twice")
                total += member.size
                if total > SIZE_LIMIT:
                    raise DefinitionError(f"{path}: larger than {SIZE_LIMIT} bytes unpacked; not a cluster definition")
                members[name] = tar.extractfile(member).read()  # type: ignore[union-attr]
    except FileNotFoundError:
        raise DefinitionError(f"{path}: no such file") from None
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DefinitionError(f"{path}: not a readable .tgz: {exc}") from None
    except ForgeError as exc:
        raise DefinitionError(f"{path}: {exc}") from None
    return members


def read_definition(path: Path, public_key: Ed25519PublicKey | None = None) -> Definition:
    """Read and fully check a definition archive (digests, rules, and the signature when a key is given)."""
    path = Path(path)
    members = _read_members(path)
    raw_index = members.pop(INDEX, None)
    if raw_index is None:
        raise DefinitionError(f"{path}: no {INDEX}: not a cluster definition")
    signature = members.pop(SIGNATURE, None)
    if public_key is not None:
        if signature is None:
            raise SignatureError(f"{path}: definition is not signed, but a public key is configured")
        verify(public_key, signature, raw_index, what=f"{path}: {INDEX}")
    try:
        index = json.loads(raw_index)
        files, name = index["files"], index["name"]
        if index.get("format") != FORMAT:
            raise DefinitionError(f"{path}: {INDEX}: format: expected {FORMAT!r}, got {index.get('format')!r}")
        listed = [entry["path"] for entry in index["profiles"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise DefinitionError(f"{path}: {INDEX}: malformed ({exc!r})") from None
    if set(files) != set(members):
        extra = sorted(set(members) ^ set(files))
        raise DefinitionError(f"{path}: {extra[0]}: member and {INDEX} disagree (listed in one, absent from the other)")
    for member, data in members.items():
        if hashlib.sha256(data).hexdigest() != files[member].get("sha256") or len(data) != files[member].get("size"):
            raise DefinitionError(f"{path}: {member}: sha256/size do not match {INDEX}")
    parsed = []
    for member in listed:
        if member not in members:
            raise DefinitionError(f"{path}: {member}: listed as a profile but missing")
        parsed.append((member, _parse_profile(members[member], f"{path}: {member}")))
    _check_rules(parsed)
    variables = _check_variables(_load_yaml(members.get(VARIABLES, b"{}"), VARIABLES), [p for _, p in parsed],
                                 f"{path}: {VARIABLES}")
    return Definition(_check_name(name), tuple(p for _, p in parsed), variables, members, signature is not None)


def import_definition(path: Path, root: Path, public_key: Ed25519PublicKey | None = None) -> Path:
    """Check a definition and write it under ``root/<name>/`` atomically; return that directory.

    Layout (what local mode will read): ``profiles/<name>.yaml``, ``variables.yaml`` and
    ``source.tgz``, the archive as imported (with its index and signature).
    """
    definition = read_definition(path, public_key)
    root = Path(root)
    target = root / definition.name
    if target.exists():
        raise DefinitionError(f"{target}: a definition named {definition.name!r} is already imported")
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{definition.name}.partial-", dir=root))
    try:
        for member, data in definition.documents.items():
            (staging / member).parent.mkdir(parents=True, exist_ok=True)
            (staging / member).write_bytes(data)
        shutil.copyfile(path, staging / "source.tgz")
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def profile_documents(paths: Sequence[Path]) -> list[bytes]:
    """Read profile files for build_definition; the error names the missing file."""
    documents = []
    for path in paths:
        try:
            documents.append(Path(path).read_bytes())
        except OSError as exc:
            raise DefinitionError(f"{path}: cannot read: {exc.strerror}") from None
    return documents


def load_variables(path: Path | None) -> dict[str, object]:
    if path is None:
        return {}
    return _check_variables(read_yaml_file(path, DefinitionError), [], str(path))


