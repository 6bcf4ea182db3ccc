"""Cluster profiles, pure and shared: layer validation, the distribution table, FIPS, Canonical's
limits, guards, upgrade rules, and the profile block of a desired node spec.

The console validates and publishes profiles with these functions; an agent applying an offline
upgrade capsule turns the capsule's profile into a node spec with the same ones, so a profile
means the same thing whichever way it reaches a host. Nothing here touches a database: packs come
through a resolver. Errors are :class:`ProfileInvalid` with the field's location (``loc``, as in
the console's API errors) and the reason.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from edgeplane.common.catalogue import LAYERS

PackResolver = Callable[[str, str], dict[str, Any] | None]
_REQUIRED_ONCE = ("os", "kubernetes", "network")


class ProfileInvalid(ValueError):
    """A profile that breaks a rule: ``loc`` names the field (e.g. ("body", "layers", 2, "version"))."""

    def __init__(self, loc: tuple[Any, ...], msg: str) -> None:
        super().__init__(f"{'.'.join(str(part) for part in loc[1:]) or 'profile'}: {msg}")
        self.loc, self.msg = loc, msg


def invalid(loc: tuple[Any, ...], msg: str) -> ProfileInvalid:
    return ProfileInvalid(loc, msg)


def deep_merge(base: Any, override: Any) -> Any:
    """Mappings merge recursively; anything else in the override replaces the base."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = copy.deepcopy(base)
        for key, value in override.items():
            merged[key] = deep_merge(merged.get(key), value) if key in merged else copy.deepcopy(value)
        return merged
    return copy.deepcopy(override)


def lookup(values: dict[str, Any], dotted: str) -> Any:
    """Read ``a.b.c`` from nested mappings; a key may itself contain dots (``options.system.osName``)."""
    if dotted in values:
        return values[dotted]
    head, _, rest = dotted.partition(".")
    while rest:
        if head in values and isinstance(values[head], dict):
            return lookup(values[head], rest)
        nxt, _, rest = rest.partition(".")
        head = f"{head}.{nxt}"
        if head in values and not rest:
            return values[head]
    return None


def _check_order(layers: list[dict[str, Any]]) -> None:
    seen: list[str] = []
    for i, layer in enumerate(layers):
        kind = layer["layer"]
        if kind not in LAYERS:
            raise invalid(("body", "layers", i, "layer"), f"unknown layer {kind!r}; expected one of {LAYERS}")
        if kind != "addon" and kind in seen:
            raise invalid(("body", "layers", i, "layer"), f"layer {kind!r} appears more than once")
        if seen and LAYERS.index(kind) < LAYERS.index(seen[-1]):
            raise invalid(("body", "layers", i, "layer"),
                          f"layer {kind!r} comes after {seen[-1]!r}; order is {' > '.join(LAYERS)}")
        seen.append(kind)
    for kind in _REQUIRED_ONCE:
        if kind not in seen:
            raise invalid(("body", "layers"), f"a profile needs a {kind!r} layer")


def _check_guards(pack: dict[str, Any], values: dict[str, Any], i: int) -> None:
    for guard in pack["constraints"].get("guards", []):
        actual = lookup(values, guard["path"])
        if "contains" in guard:
            ok = isinstance(actual, list) and guard["contains"] in actual
        else:
            ok = actual == guard["equals"]
        if not ok:
            raise invalid(("body", "layers", i, "values", *guard["path"].split(".")), guard["reason"])


def validate_layers(layers: list[dict[str, Any]], *, fips: bool, arch: str, install_path: str,
                    resolve: PackResolver) -> list[dict[str, Any]]:
    """Return resolved layers ({layer, pack, version, values, pack_doc}) or raise ProfileInvalid."""
    _check_order(layers)
    resolved: list[dict[str, Any]] = []
    for i, layer in enumerate(layers):
        pack = resolve(layer["pack"], layer["version"])
        if pack is None:
            raise invalid(("body", "layers", i, "version"),
                          f"pack {layer['pack']!r} has no version {layer['version']!r}")
        if pack["layer"] != layer["layer"]:
            raise invalid(("body", "layers", i, "pack"),
                          f"pack {layer['pack']!r} is a {pack['layer']!r} pack, not {layer['layer']!r}")
        if fips and not pack["fips"]:
            raise invalid(("body", "layers", i, "pack"),
                          f"FIPS mode accepts only FIPS-capable packs; {layer['pack']} {layer['version']} is not")
        values = deep_merge(pack["values"], layer.get("values") or {})
        _check_guards(pack, values, i)
        resolved.append({"layer": layer["layer"], "pack": pack["name"], "version": pack["version"],
                         "values": values, "pack_doc": pack})
    _check_distribution(resolved, arch=arch, install_path=install_path)
    return resolved


def os_family(layer: dict[str, Any]) -> str | None:
    constraints = layer["pack_doc"]["constraints"]
    if "os_family" in constraints:
        return constraints["os_family"]
    name = lookup(layer["values"], constraints.get("os_family_from", ""))
    if isinstance(name, str):
        name = name.lower()
        return "opensuse" if name.startswith("opensuse") or name == "sles" else name
    return None


def _check_distribution(resolved: list[dict[str, Any]], *, arch: str, install_path: str) -> None:
    index = {layer["layer"]: i for i, layer in enumerate(resolved)}
    k8s = resolved[index["kubernetes"]]
    rules = k8s["pack_doc"]["constraints"]
    name = k8s["pack_doc"]["display_name"]
    family = os_family(resolved[index["os"]])
    if family not in rules.get("os", []):
        raise invalid(("body", "layers", index["os"], "pack"),
                      f"{name} runs on {', '.join(rules.get('os', []))}, not {family or 'an unnamed OS'}")
    for kind in ("network", "storage"):
        if kind in index and resolved[index[kind]]["pack"] not in rules.get(kind, []):
            raise invalid(("body", "layers", index[kind], "pack"),
                          f"{name} supports {kind} packs {', '.join(rules.get(kind, []))}, "
                          f"not {resolved[index[kind]]['pack']}")
    if arch not in rules.get("arch", []):
        raise invalid(("body", "arch"), f"{name} does not support {arch}")
    if install_path != "/" and not rules.get("custom_install_path", True):
        raise invalid(("body", "install_path"), f"{name} does not support custom installation paths")


def distribution(resolved: list[dict[str, Any]]) -> dict[str, Any]:
    """The Kubernetes layer's distribution facts, used by cluster validation."""
    k8s = next(layer for layer in resolved if layer["layer"] == "kubernetes")
    return {"name": k8s["pack_doc"]["constraints"]["distribution"], "version": k8s["version"],
            "display_name": k8s["pack_doc"]["display_name"], "rules": k8s["pack_doc"]["constraints"]}


def profile_block(profile: dict[str, Any], resolve: PackResolver) -> tuple[dict, list[dict], dict]:
    """A profile document as a node spec carries it: (profile block, artifacts of its packs,
    distribution facts). ``profile`` needs ``id``, ``name``, ``version``, ``layers`` and may set
    ``fips``, ``arch``, ``install_path``."""
    layers = validate_layers(profile["layers"], fips=profile.get("fips", False), arch=profile.get("arch", "amd64"),
                             install_path=profile.get("install_path", "/"), resolve=resolve)
    block = {"id": profile["id"], "name": profile["name"], "version": profile["version"],
             "fips": profile.get("fips", False), "arch": profile.get("arch", "amd64"),
             "install_path": profile.get("install_path", "/"),
             "layers": [{k: v for k, v in layer.items() if k != "pack_doc"} for layer in layers]}
    artifacts = [a for layer in layers for a in layer["pack_doc"].get("artifacts", [])]
    return block, artifacts, distribution(layers)


def with_profile(spec: dict[str, Any], block: dict, artifacts: list[dict], dist: dict) -> dict[str, Any]:
    """A node spec's profile-derived fields set from :func:`profile_block`'s result; everything
    else (cluster settings, members, generation) stays the spec's own."""
    cluster = {**spec["cluster"], "distribution": dist["name"], "kubernetes_version": dist["version"]}
    return {**spec, "cluster": cluster, "profile": block, "artifacts": artifacts}


def _minor(version: str) -> tuple[int, int]:
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


def check_upgrade_layers(old_layers: list[dict[str, Any]], new_layers: list[dict[str, Any]],
                         loc: tuple[Any, ...] = ("body", "profile_id")) -> None:
    """Same distribution, no downgrade, one minor at a time, same CNI and CSI (resolved layers)."""
    old, new = distribution(old_layers), distribution(new_layers)
    if old["name"] != new["name"]:
        raise invalid(loc, f"the Kubernetes distribution cannot change ({old['name']} to {new['name']})")
    if _minor(new["version"]) < _minor(old["version"]):
        raise invalid(loc, f"Kubernetes cannot be downgraded ({old['version']} to {new['version']})")
    if _minor(new["version"])[1] - _minor(old["version"])[1] > 1:
        raise invalid(loc, f"Kubernetes upgrades one minor version at a time ({old['version']} to {new['version']})")
    for kind in ("network", "storage"):
        before = [layer["pack"] for layer in old_layers if layer["layer"] == kind]
        after = [layer["pack"] for layer in new_layers if layer["layer"] == kind]
        if before != after:
            raise invalid(loc, f"the {kind} pack cannot change after provisioning ({before} to {after})")


def custom_pack(body: dict[str, Any]) -> dict[str, Any]:
    """A tenant's own pack document, with the defaults the console gives one (no constraints)."""
    return {"name": body["name"], "layer": body["layer"], "version": body["version"],
            "display_name": body.get("display_name") or body["name"], "builtin": False,
            "fips": body.get("fips", False), "tech_preview": False, "values": body.get("values") or {},
            "constraints": {}, "artifacts": body.get("artifacts") or []}
