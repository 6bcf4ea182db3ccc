"""Registry mirrors from the user-data's external registries and mapping rules.

Every distribution gets containerd ``hosts.toml`` files (one directory per source registry host).
containerd can only swap the host, not rewrite a path prefix, so for K3s and RKE2 the agent also
writes ``registries.yaml`` whose ``rewrite`` rules map the full prefix exactly; for the plain
containerd distributions a rule whose source has a path is reported as a warning.
"""

from __future__ import annotations

import hashlib
import re

import yaml

from edgeplane.agent.render.context import NodeContext, Rendered
from edgeplane.agent.schema import ExternalRegistry, RegistryCredentials

CERTS_D = "/etc/containerd/certs.d"
REGISTRIES_YAML = {"k3s": "/etc/rancher/k3s/registries.yaml", "rke2": "/etc/rancher/rke2/registries.yaml"}


def _split(prefix: str) -> tuple[str, str]:
    host, _, path = prefix.partition("/")
    return host, path


def _registry_for(host: str, registries: list[ExternalRegistry]) -> ExternalRegistry | None:
    return next((r for r in registries if _split(r.domain)[0] == host), None)


def render_registries(ctx: NodeContext) -> Rendered:
    out = Rendered()
    agent = ctx.user_data.edgeplane
    ext = agent.externalRegistries
    registries = list(ext.registries) if ext else []
    rules = dict(ext.registryMappingRules) if ext else {}
    if agent.registryCredentials:  # the single-registry form: credentials only, no mirrors
        registries.append(ExternalRegistry(**agent.registryCredentials.model_dump()))
    if not registries and not rules:
        return out
    ca_files: dict[str, list[str]] = {}
    for reg in registries:
        host = _split(reg.domain)[0]
        for pem in reg.certificates:
            path = f"{CERTS_D}/{host}/ca-{hashlib.sha256(pem.encode()).hexdigest()[:12]}.crt"
            out.add(path, pem)
            ca_files.setdefault(host, []).append(path)
    by_source: dict[str, list[tuple[str, str, str]]] = {}
    for source, target in rules.items():
        src_host, src_path = _split(source)
        tgt_host, tgt_path = _split(target)
        by_source.setdefault(src_host, []).append((src_path, tgt_host, tgt_path))
    for src_host, mappings in sorted(by_source.items()):
        out.add(f"{CERTS_D}/{src_host}/hosts.toml", _hosts_toml(src_host, mappings, registries, ca_files))
        if ctx.distribution not in REGISTRIES_YAML:
            for src_path, _, tgt_path in mappings:
                if src_path != tgt_path:
                    out.warnings.append(
                        f"registry rule {src_host}/{src_path} -> {tgt_path}: containerd mirrors cannot rewrite "
                        "a path prefix; images keep their source path on the mirror")
    if ctx.distribution in REGISTRIES_YAML:
        out.add(REGISTRIES_YAML[ctx.distribution], _registries_yaml(by_source, registries, ca_files), 0o600)
    return out


def _hosts_toml(src_host: str, mappings: list[tuple[str, str, str]], registries: list[ExternalRegistry],
                ca_files: dict[str, list[str]]) -> str:
    lines = [f'server = "https://{src_host}"', ""]
    for tgt_host in dict.fromkeys(tgt for _, tgt, _ in mappings):
        reg = _registry_for(tgt_host, registries)
        scheme = "http" if reg and reg.insecure else "https"
        lines.append(f'[host."{scheme}://{tgt_host}"]')
        lines.append('  capabilities = ["pull", "resolve"]')
        if reg and reg.insecure:
            lines.append("  skip_verify = true")
        if ca_files.get(tgt_host):
            lines.append("  ca = [" + ", ".join(f'"{p}"' for p in ca_files[tgt_host]) + "]")
        lines.append("")
    return "\n".join(lines)


def _registries_yaml(by_source: dict[str, list[tuple[str, str, str]]], registries: list[ExternalRegistry],
                     ca_files: dict[str, list[str]]) -> str:
    mirrors = {}
    for src_host, mappings in sorted(by_source.items()):
        endpoints = []
        rewrite = {}
        for src_path, tgt_host, tgt_path in mappings:
            reg = _registry_for(tgt_host, registries)
            endpoints.append(f"{'http' if reg and reg.insecure else 'https'}://{tgt_host}")
            # "<src_path>/rest" -> "<tgt_path>/rest"; the longest source prefix is tried first
            pattern = f"^{re.escape(src_path)}/(.*)" if src_path else "^(.*)"
            rewrite[pattern] = f"{tgt_path}/$1" if tgt_path else "$1"
        mirrors[src_host] = {"endpoint": list(dict.fromkeys(endpoints)),
                             "rewrite": dict(sorted(rewrite.items(), key=lambda kv: -len(kv[0])))}
    configs = {}
    for reg in registries:
        host = _split(reg.domain)[0]
        entry: dict[str, object] = {}
        if reg.username:
            entry["auth"] = {"username": reg.username, "password": _password(reg)}
        tls: dict[str, object] = {}
        if reg.insecure:
            tls["insecure_skip_verify"] = True
        if ca_files.get(host):
            tls["ca_file"] = ca_files[host][0]
        if tls:
            entry["tls"] = tls
        if entry:
            configs[host] = entry
    return yaml.safe_dump({"mirrors": mirrors, "configs": configs}, sort_keys=False)


def _password(reg: RegistryCredentials) -> str:
    return reg.plain_password() or ""
