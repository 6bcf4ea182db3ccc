"""The built-in packs catalogue: OS, Kubernetes, network (CNI), storage (CSI) and add-on packs.

Facts follow the reference distribution table (../shared/reference/seeds, newest snapshot):
K3s, RKE2 and PXK-E run on openSUSE or Ubuntu with Calico or Flannel and Rook Ceph; Canonical
Kubernetes (tech preview) runs on Ubuntu with Calico or Cilium and Longhorn, AMD64 only, without
one- or two-node HA, overlay or custom install paths. Kubernetes versions 1.26-1.33 (Canonical
from 1.30, its first release). A pack's ``guards`` are rules its merged values must keep, each with
the reason shown when a profile breaks it.
"""

from __future__ import annotations

from typing import Any

import yaml

K8S_VERSIONS = ["1.26.15", "1.27.16", "1.28.15", "1.29.15", "1.30.14", "1.31.10", "1.32.6", "1.33.2"]
LAYERS = ["os", "kubernetes", "network", "storage", "addon"]

_METRICS_REASON = "metrics-server must stay disabled in the distribution: edgeplane installs its own"
_CNI_REASON = "the distribution's built-in CNI must stay disabled: the network layer provides the CNI"

_K3S_VALUES = """
cluster:
  config:
    # The network layer installs the CNI, so the built-in Flannel and network policy are off.
    flannel-backend: none
    disable-network-policy: true
    # Traefik, service LB and local-path are left to add-on packs; metrics-server is installed
    # by edgeplane itself.
    disable: [traefik, servicelb, local-storage, metrics-server]
    cluster-cidr: 10.42.0.0/16
    service-cidr: 10.43.0.0/16
  kubevipArgs:
    vip_interface: eth0
"""

_RKE2_VALUES = """
cluster:
  config:
    cni: none
    enable-servicelb: false
    disable: [rke2-ingress-nginx, rke2-traefik, rke2-local-path-provisioner, rke2-metrics-server]
    cluster-cidr: 10.42.0.0/16
    service-cidr: 10.43.0.0/16
  kubevipArgs:
    vip_interface: eth0
"""

_PXKE_VALUES = """
cluster:
  config:
    podSubnet: 192.168.0.0/16
    serviceSubnet: 192.169.0.0/16
    apiServer:
      secure-port: "6443"
      authorization-mode: RBAC,Node
      profiling: "false"
    kubelet:
      read-only-port: "0"
      protect-kernel-defaults: "true"
  kubevipArgs:
    vip_interface: eth0
"""

_CANONICAL_VALUES = """
cluster:
  config:
    network: {enabled: false}
    load-balancer: {enabled: false}
    local-storage: {enabled: false}
    metrics-server: {enabled: false}
    ingress: {enabled: false}
"""

_BYOOS_VALUES = """
pack:
  content:
    images:
      - image: "{{.spectro.pack.edge-native-byoi.options.system.uri}}"
options:
  system.uri: "{{ .spectro.pack.edge-native-byoi.options.system.registry }}/{{ .spectro.pack.edge-native-byoi.options.system.repo }}:{{ .spectro.pack.edge-native-byoi.options.system.k8sDistribution }}-{{ .spectro.system.kubernetes.version }}-{{ .spectro.pack.edge-native-byoi.options.system.peVersion }}-{{ .spectro.pack.edge-native-byoi.options.system.customTag }}"
  system.registry: ttl.sh
  system.repo: ubuntu
  system.k8sDistribution: k3s
  system.osName: ubuntu
  system.peVersion: v4.4.12
  system.customTag: demo
  system.osVersion: 22
"""


def _pack(name: str, layer: str, version: str, display: str, *, values: str = "{}", fips: bool = False,
          tech_preview: bool = False, constraints: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name, "layer": layer, "version": version, "display_name": display, "builtin": True,
        "fips": fips, "tech_preview": tech_preview, "values": yaml.safe_load(values) or {},
        "constraints": constraints or {}, "artifacts": [],
    }


def _kubernetes(name: str, display: str, versions: list[str], values: str, **kw: Any) -> list[dict[str, Any]]:
    return [_pack(name, "kubernetes", v, display, values=values, **kw) for v in versions]


_TABLE_K3S_RKE2_PXKE = {"os": ["ubuntu", "opensuse"], "network": ["calico", "flannel"], "storage": ["rook-ceph"],
                        "arch": ["amd64", "arm64"], "overlay": True, "custom_install_path": True}


def _builtin() -> list[dict[str, Any]]:
    packs = [
        _pack("ubuntu", "os", "22.04", "Ubuntu 22.04 LTS", fips=True, constraints={"os_family": "ubuntu"}),
        _pack("ubuntu", "os", "24.04", "Ubuntu 24.04 LTS", constraints={"os_family": "ubuntu"}),
        _pack("opensuse-leap", "os", "15.5", "openSUSE Leap 15.5", constraints={"os_family": "opensuse"}),
        _pack("opensuse-leap", "os", "15.6", "openSUSE Leap 15.6", constraints={"os_family": "opensuse"}),
        _pack("byoos", "os", "1.0.0", "Bring your own OS (provider image)", values=_BYOOS_VALUES, fips=True,
              constraints={"os_family_from": "options.system.osName"}),
    ]
    k3s_guards = [
        {"path": "cluster.config.disable", "contains": "metrics-server", "reason": _METRICS_REASON},
        {"path": "cluster.config.flannel-backend", "equals": "none", "reason": _CNI_REASON},
    ]
    rke2_guards = [
        {"path": "cluster.config.disable", "contains": "rke2-metrics-server", "reason": _METRICS_REASON},
        {"path": "cluster.config.cni", "equals": "none", "reason": _CNI_REASON},
    ]
    canonical_guards = [
        {"path": "cluster.config.metrics-server.enabled", "equals": False, "reason": _METRICS_REASON},
        {"path": "cluster.config.network.enabled", "equals": False, "reason": _CNI_REASON},
    ]
    packs += _kubernetes("k3s", "Optimized K3s", K8S_VERSIONS, _K3S_VALUES, constraints={
        **_TABLE_K3S_RKE2_PXKE, "distribution": "k3s", "two_node": True, "guards": k3s_guards})
    packs += _kubernetes("rke2", "Optimized RKE2", K8S_VERSIONS, _RKE2_VALUES, constraints={
        **_TABLE_K3S_RKE2_PXKE, "distribution": "rke2", "two_node": False, "guards": rke2_guards})
    packs += _kubernetes("pxk-e", "eXtended Kubernetes Edge (PXK-E, kubeadm)", K8S_VERSIONS, _PXKE_VALUES,
                         constraints={**_TABLE_K3S_RKE2_PXKE, "distribution": "pxk-e", "two_node": False})
    packs += _kubernetes("pxk-e-fips", "eXtended Kubernetes Edge FIPS (PXK-E FIPS)", K8S_VERSIONS, _PXKE_VALUES,
                         fips=True, constraints={**_TABLE_K3S_RKE2_PXKE, "distribution": "pxk-e-fips",
                                                 "os": ["ubuntu"], "arch": ["amd64"], "two_node": False})
    packs += _kubernetes("canonical", "Optimized Canonical Kubernetes", K8S_VERSIONS[4:], _CANONICAL_VALUES,
                         tech_preview=True, constraints={
                             "distribution": "canonical", "os": ["ubuntu"], "network": ["calico", "cilium"],
                             "storage": ["longhorn"], "arch": ["amd64"], "overlay": False, "two_node": False,
                             "custom_install_path": False, "guards": canonical_guards})
    packs += [
        _pack("calico", "network", "3.28.2", "Calico", fips=True),
        _pack("flannel", "network", "0.25.6", "Flannel"),
        _pack("cilium", "network", "1.16.3", "Cilium"),
        _pack("rook-ceph", "storage", "1.15.3", "Rook Ceph", fips=True),
        _pack("longhorn", "storage", "1.7.2", "Longhorn"),
        _pack("metrics-server", "addon", "0.7.2", "metrics-server", fips=True),
        _pack("kube-vip", "addon", "0.8.4", "kube-vip", fips=True, values="vip_arp: true\nvip_leaderelection: true\n"),
        _pack("ingress-nginx", "addon", "4.11.3", "ingress-nginx"),
    ]
    return packs


BUILTIN_PACKS: list[dict[str, Any]] = _builtin()
_BY_KEY = {(p["name"], p["version"]): p for p in BUILTIN_PACKS}


def builtin_pack(name: str, version: str) -> dict[str, Any] | None:
    return _BY_KEY.get((name, version))
