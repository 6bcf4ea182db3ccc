"""Loading, validating and merging user-data documents.

Every problem is reported as ``source:line: field.path: reason`` so a technician holding the
USB stick's file can go straight to the line. The site user-data (second source, plugged in at
the site) is merged over the built-in one with these rules:

- mappings merge key by key, recursively; a scalar in the site document replaces the built-in one;
- lists replace, except the ones that add up naturally: ``edgeplane.site.caCerts`` and
  ``edgeplane.externalRegistries.registries[].certificates`` (union, built-in first),
  ``edgeplane.site.users`` and ``edgeplane.externalRegistries.registries`` (merged by ``name`` /
  ``domain``; a site entry replaces the built-in entry with the same key), and each
  ``stages.<stage>`` list (site steps appended; a site step with the name of a built-in one
  replaces it in place);
- an explicit ``null`` in the site document removes the built-in value (back to the default).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edgeplane.agent.schema import UserData
from edgeplane.agent.yamllines import YamlSyntaxError, load_with_lines

CLOUD_CONFIG_HEADER = "#cloud-config"
KeyPath = tuple[str | int, ...]

# list path (with "*" for any index) -> key that identifies an entry, or None for a union of values
_LIST_MERGE: dict[KeyPath, str | None] = {
    ("edgeplane", "site", "caCerts"): None,
    ("edgeplane", "site", "users"): "name",
    ("edgeplane", "externalRegistries", "registries"): "domain",
    ("edgeplane", "externalRegistries", "registries", "*", "certificates"): None,
    ("stages", "*"): "name",
}


@dataclass(frozen=True)
class Problem:
    source: str
    line: int | None
    field: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where}: {self.field or '(document)'}: {self.reason}"


class UserDataError(ValueError):
    """User-data that cannot be used; ``problems`` lists every field at fault."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("invalid user-data:\n" + "\n".join(f"  {p}" for p in problems))


@dataclass(frozen=True)
class _Document:
    source: str
    data: dict[str, Any]
    lines: dict[KeyPath, int]


def _parse(text: str, source: str) -> _Document:
    first = text.lstrip("\ufeff").split("\n", 1)[0].strip()
    if first != CLOUD_CONFIG_HEADER:
        raise UserDataError([Problem(source, 1, "", f"first line must be {CLOUD_CONFIG_HEADER!r}, got {first[:40]!r}")])
    try:
        data, lines = load_with_lines(text)
    except YamlSyntaxError as exc:
        raise UserDataError([Problem(source, exc.line, "", f"not valid YAML: {exc.reason}")]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserDataError([Problem(source, 1, "", "the document must be a mapping of keys")])
    return _Document(source, data, lines)


def _dotted(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _validate(data: dict[str, Any], origin: dict[KeyPath, tuple[str, int | None]], default_source: str) -> UserData:
    try:
        return UserData.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(part for part in err["loc"] if not str(part).startswith("function-") and part != "[key]")
            source, line = _origin_of(origin, loc, default_source)
            reason = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                reason = "unknown field (check the spelling; see docs/agent.md for the keys)"
            problems.append(Problem(source, line, _dotted(loc), reason))
        raise UserDataError(problems) from None


def _origin_of(origin: dict[KeyPath, tuple[str, int | None]], loc: KeyPath, default: str) -> tuple[str, int | None]:
    for cut in range(len(loc), -1, -1):
        found = origin.get(tuple(loc[:cut]))
        if found is not None:
            return found
    return default, None


def _origins(doc: _Document) -> dict[KeyPath, tuple[str, int | None]]:
    return {path: (doc.source, line) for path, line in doc.lines.items()}


def validate_user_data(text: str, source: str = "user-data") -> UserData:
    """Parse and validate one user-data document; raise UserDataError naming field, line and reason."""
    doc = _parse(text, source)
    return _validate(doc.data, _origins(doc), source)


def load_user_data(builtin: str, site: str | None = None, *,
                   builtin_source: str = "user-data", site_source: str = "site-user-data") -> UserData:
    """Validate the built-in user-data, merge the site user-data over it, validate the result."""
    base = _parse(builtin, builtin_source)
    origin = _origins(base)
    _validate(base.data, origin, builtin_source)
    if site is None:
        return _validate(base.data, origin, builtin_source)
    over = _parse(site, site_source)
    merged = merge_documents(base.data, over.data)
    origin.update(_origins(over))
    return _validate(merged, origin, site_source)


def load_user_data_files(builtin: Path, site: Path | None = None) -> UserData:
    """``load_user_data`` on files; problems are reported with the file names."""
    return load_user_data(
        builtin.read_text(encoding="utf-8"),
        site.read_text(encoding="utf-8") if site else None,
        builtin_source=str(builtin),
        site_source=str(site) if site else "site-user-data",
    )


def merge_documents(base: Any, over: Any, path: KeyPath = ()) -> Any:
    """The site-over-built-in merge described in the module docstring (pure; inputs untouched)."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            if value is None:
                out.pop(key, None)
            elif key in out:
                out[key] = merge_documents(out[key], value, (*path, key))
            else:
                out[key] = value
        return out
    if isinstance(base, list) and isinstance(over, list):
        rule = _list_rule(path)
        if rule is _REPLACE:
            return list(over)
        if rule is None:
            return base + [item for item in over if item not in base]
        return _merge_keyed(base, over, rule)
    return over


_REPLACE = object()


def _list_rule(path: KeyPath) -> Any:
    for pattern, key in _LIST_MERGE.items():
        if len(pattern) == len(path) and all(p == "*" or p == q for p, q in zip(pattern, path)):
            return key
    return _REPLACE


def _merge_keyed(base: list[Any], over: list[Any], key: str) -> list[Any]:
    out = list(base)
    index = {item.get(key): i for i, item in enumerate(out) if isinstance(item, dict) and item.get(key)}
    for item in over:
        name = item.get(key) if isinstance(item, dict) else None
        if name is not None and name in index:
            out[index[name]] = item
        else:
            out.append(item)
    return out
