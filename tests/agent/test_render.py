"""Per-distribution configuration: golden files, each also parsed back and checked field by field.

Set UPDATE_GOLDEN=1 to rewrite the golden files after an intended change (then review the diff).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from edgeplane.agent.render import NodeContext, kubeadm_api_version, render_node
from edgeplane.agent.spec import NodeSpec
from edgeplane.agent.userdata import validate_user_data
from edgeplane.twonode import NodeConfig

GOLDEN = Path(__file__).parent / "golden"
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
PEM_YAML = PEM.replace("\n", "\\n")

USER_DATA = validate_user_data(f"""#cloud-config
edgeplane:
  site:
    network:
      httpProxy: http://proxy.example.com:3128
      httpsProxy: http://proxy.example.com:3128
      noProxy: 10.0.0.0/8
      nameserver: 1.1.1.1
      interfaces:
        eth0: {{type: static, ipAddress: 10.10.0.21/24, gateway: 10.10.0.1}}
    caCerts: ["{PEM_YAML}"]
    ntpServers: [time.example.com]
    users:
      - {{name: ops, groups: [sudo], ssh_authorized_keys: ["ssh-ed25519 AAAAC3 ops@x"]}}
  externalRegistries:
    registries:
      - {{domain: mirror.example.com, username: u, password: p}}
    registryMappingRules:
      gcr.io/spectro-images-public: mirror.example.com/spectro
      docker.io: mirror.example.com
""")


def spec(distribution: str, *, role: str = "control-plane", bootstrap: bool = True, datastore: str = "sqlite",
         version: str = "1.30.14", cni: str | None = "calico", vip: str | None = "10.10.0.50",
         k8s_values: dict[str, Any] | None = None) -> NodeSpec:
    layers = [{"layer": "os", "pack": "ubuntu", "version": "22.04"},
              {"layer": "kubernetes", "pack": distribution, "version": version, "values": k8s_values or {}}]
    if cni:
        layers.append({"layer": "network", "pack": cni, "version": "1"})
    cps = [{"host_id": f"edge-{i}", "ips": [f"10.10.0.{20 + i}/24"]} for i in range(1, 4 if datastore == "etcd" else
                                                                                 (3 if datastore == "two-node" else 2))]
    return NodeSpec.model_validate({
        "host_id": "edge-1", "generation": 2, "action": "apply",
        "cluster": {"id": "c_1", "name": "store-12", "role": role, "bootstrap": bootstrap, "datastore": datastore,
                    "distribution": distribution, "kubernetes_version": version,
                    "endpoint": {"vip": vip, "port": 6443}, "ntp_servers": ["pool.ntp.org"],
                    "control_plane": cps, "workers": [{"host_id": "edge-9", "ips": ["10.10.0.29/24"]}]},
        "profile": {"id": "p_1", "name": "retail", "version": 1, "layers": layers},
    })


def render(node_spec: NodeSpec) -> dict[str, str]:
    out = render_node(NodeContext(node_spec, USER_DATA, host_id="edge-1", node_ip="10.10.0.21"))
    return {path: f.content for path, f in out.files.items()}


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{name} differs from the golden file (UPDATE_GOLDEN=1 to accept)"


def test_k3s_server_sqlite_golden() -> None:
    files = render(spec("k3s", k8s_values={"cluster": {"config": {"Disable": ["custom"], "kube-apiserver-arg": ["a=b"]},
                                                       "kubevipArgs": {"vip_interface": "eth0"}}}))
    text = files["/etc/rancher/k3s/config.yaml"]
    check_golden("k3s-server-sqlite.yaml", text)
    config = yaml.safe_load(text)
    assert config["disable"] == ["traefik", "servicelb", "local-storage", "metrics-server", "custom"]
    assert config["flannel-backend"] == "none" and config["disable-network-policy"] is True
    assert config["datastore-endpoint"] == "http://127.0.0.1:2379"
    assert "server" not in config and "cluster-init" not in config
    assert config["tls-san"] == ["10.10.0.50", "10.10.0.21"]
    assert config["kube-apiserver-arg"] == ["a=b"]
    unit = files["/etc/systemd/system/edgeplane-datastore.service"]
    assert "edgeplane datastore --listen 127.0.0.1:2379 --endpoint sqlite:////var/lib/edgeplane/datastore/state.db" in unit
    vip = yaml.safe_load(files["/var/lib/rancher/k3s/agent/pod-manifests/kube-vip.yaml"])
    check_golden("kube-vip.yaml", files["/var/lib/rancher/k3s/agent/pod-manifests/kube-vip.yaml"])
    assert (vip["apiVersion"], vip["kind"], vip["metadata"]["namespace"]) == ("v1", "Pod", "kube-system")
    pod = vip["spec"]
    assert pod["hostNetwork"] is True
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert env == {"vip_arp": "true", "port": "6443", "vip_cidr": "32", "cp_enable": "true",
                   "cp_namespace": "kube-system", "vip_ddns": "false", "vip_leaderelection": "true",
                   "vip_leaseduration": "30", "vip_renewdeadline": "20", "vip_retryperiod": "4",
                   "address": "10.10.0.50", "vip_interface": "eth0"}
    assert pod["containers"][0]["securityContext"]["capabilities"]["add"] == ["NET_ADMIN", "NET_RAW"]
    assert pod["volumes"][0]["hostPath"]["path"] == "/etc/rancher/k3s/k3s.yaml"


def test_k3s_flannel_keeps_builtin_cni_and_etcd_init() -> None:
    config = yaml.safe_load(render(spec("k3s", cni="flannel", datastore="etcd"))["/etc/rancher/k3s/config.yaml"])
    assert "flannel-backend" not in config and config["cluster-init"] is True
    assert "datastore-endpoint" not in config


def test_k3s_joining_etcd_server_and_agent() -> None:
    server = yaml.safe_load(render(spec("k3s", datastore="etcd", bootstrap=False))["/etc/rancher/k3s/config.yaml"])
    assert server["server"] == "https://10.10.0.50:6443" and "cluster-init" not in server
    agent_files = render(spec("k3s", role="worker", bootstrap=False))
    agent = yaml.safe_load(agent_files["/etc/rancher/k3s/config.yaml"])
    check_golden("k3s-agent.yaml", agent_files["/etc/rancher/k3s/config.yaml"])
    assert set(agent) == {"node-name", "node-ip", "token", "server", "kubelet-arg"}
    assert agent["token"] == server["token"]
    assert not any("kube-vip" in path for path in agent_files)  # kube-vip only on control planes
    assert "/etc/systemd/system/k3s-agent.service.env" in agent_files


def test_two_node_datastore_points_at_local_service() -> None:
    files = render(spec("k3s", datastore="two-node", bootstrap=False))
    config = yaml.safe_load(files["/etc/rancher/k3s/config.yaml"])
    assert config["datastore-endpoint"] == "http://127.0.0.1:2379" and "server" not in config
    unit = files["/etc/systemd/system/edgeplane-twonode.service"]
    assert "ExecStart=/usr/local/bin/edgeplane twonode run --config /etc/edgeplane/twonode/node.yaml" in unit
    node = NodeConfig.model_validate(yaml.safe_load(files["/etc/edgeplane/twonode/node.yaml"]))  # its own schema
    assert (node.name, node.peer.name, node.peer.api, node.datastore.listen) == (
        "edge-1", "edge-2", "10.10.0.22:7480", "127.0.0.1:2379")
    assert len(files["/etc/edgeplane/twonode/token"].strip()) == 64


def test_rke2_server_golden() -> None:
    text = render(spec("rke2", cni="cilium", datastore="etcd"))["/etc/rancher/rke2/config.yaml"]
    check_golden("rke2-server-etcd.yaml", text)
    config = yaml.safe_load(text)
    assert config["cni"] == "cilium"
    assert config["disable"] == ["rke2-ingress-nginx", "rke2-metrics-server"]
    other = yaml.safe_load(render(spec("rke2", cni="some-cni-pack", bootstrap=False, datastore="etcd"))
                           ["/etc/rancher/rke2/config.yaml"])
    assert other["cni"] == "none" and other["server"] == "https://10.10.0.50:9345"


@pytest.mark.parametrize(("version", "api"), [("1.30.14", "kubeadm.k8s.io/v1beta3"), ("1.31.2", "kubeadm.k8s.io/v1beta4"),
                                              ("v1.33.0", "kubeadm.k8s.io/v1beta4"), ("1.26.1", "kubeadm.k8s.io/v1beta3")])
def test_kubeadm_api_version(version: str, api: str) -> None:
    assert kubeadm_api_version(version) == api


@pytest.mark.parametrize("version", ["1.30.14", "1.32.3"])
def test_pxke_init_golden(version: str) -> None:
    text = render(spec("pxk-e", version=version, datastore="etcd"))["/etc/kubernetes/kubeadm-config.yaml"]
    check_golden(f"pxke-init-{version}.yaml", text)
    docs = list(yaml.safe_load_all(text))
    api = kubeadm_api_version(version)
    assert [(d["apiVersion"], d["kind"]) for d in docs] == [
        (api, "InitConfiguration"), (api, "ClusterConfiguration"),
        ("kubelet.config.k8s.io/v1beta1", "KubeletConfiguration")]
    init, cluster, kubelet = docs
    assert init["localAPIEndpoint"] == {"advertiseAddress": "10.10.0.21", "bindPort": 6443}
    assert cluster["controlPlaneEndpoint"] == "10.10.0.50:6443"
    assert cluster["networking"] == {"podSubnet": "192.168.0.0/16", "serviceSubnet": "192.169.0.0/16"}
    assert cluster["etcd"]["local"]["dataDir"] == "/etc/kubernetes/etcd"
    args = cluster["apiServer"]["extraArgs"]
    flat = {a["name"]: a["value"] for a in args} if api.endswith("v1beta4") else args
    assert flat["authorization-mode"] == "RBAC,Node" and flat["profiling"] == "false"
    assert kubelet["readOnlyPort"] == 0 and kubelet["protectKernelDefaults"] is True
    assert len(init["bootstrapTokens"][0]["token"].split(".")[1]) == 16


def test_pxke_join_and_external_datastore() -> None:
    docs = list(yaml.safe_load_all(render(spec("pxk-e", bootstrap=False, datastore="etcd"))
                                   ["/etc/kubernetes/kubeadm-config.yaml"]))
    join = docs[0]
    assert join["kind"] == "JoinConfiguration"
    assert join["discovery"]["bootstrapToken"]["unsafeSkipCAVerification"] is True  # no CA hash known yet
    joining = spec("pxk-e", bootstrap=False, datastore="etcd")
    pinned = joining.model_copy(update={"cluster": joining.cluster.model_copy(update={"ca_hash": "sha256:" + "e" * 64})})
    token = next(yaml.safe_load_all(render(pinned)["/etc/kubernetes/kubeadm-config.yaml"]))["discovery"]["bootstrapToken"]
    assert token["caCertHashes"] == ["sha256:" + "e" * 64] and "unsafeSkipCAVerification" not in token
    assert join["discovery"]["bootstrapToken"]["apiServerEndpoint"] == "10.10.0.50:6443"
    assert join["controlPlane"]["localAPIEndpoint"]["advertiseAddress"] == "10.10.0.21"
    init_docs = list(yaml.safe_load_all(render(spec("pxk-e"))["/etc/kubernetes/kubeadm-config.yaml"]))
    assert init_docs[1]["etcd"] == {"external": {"endpoints": ["http://127.0.0.1:2379"]}}
    assert init_docs[0]["bootstrapTokens"][0]["token"] == join["discovery"]["bootstrapToken"]["token"]


def test_canonical_bootstrap_golden() -> None:
    text = render(spec("canonical", cni="cilium"))["/var/lib/edgeplane/canonical/bootstrap.yaml"]
    check_golden("canonical-bootstrap.yaml", text)
    doc = yaml.safe_load(text)
    features = doc["cluster-config"]
    assert features["network"] == {"enabled": True}
    assert all(not features[f]["enabled"] for f in ("ingress", "gateway", "load-balancer", "local-storage",
                                                    "metrics-server"))
    assert doc["datastore-type"] == "external" and doc["datastore-servers"] == ["http://127.0.0.1:2379"]
    join = yaml.safe_load(render(spec("canonical", bootstrap=False, role="worker"))["/var/lib/edgeplane/canonical/join.yaml"])
    assert join["extra-node-kubelet-args"]["--node-ip"] == "10.10.0.21"


def test_host_configuration() -> None:
    files = render(spec("pxk-e"))
    assert files["/etc/systemd/network/10-edgeplane-eth0.network"] == (
        "[Match]\nName=eth0\n\n[Network]\nAddress=10.10.0.21/24\nGateway=10.10.0.1\n")
    assert files["/etc/systemd/resolved.conf.d/edgeplane.conf"] == "[Resolve]\nDNS=1.1.1.1\n"
    assert files["/etc/systemd/timesyncd.conf.d/edgeplane.conf"] == "[Time]\nNTP=pool.ntp.org time.example.com\n"
    assert files["/home/ops/.ssh/authorized_keys"] == "ssh-ed25519 AAAAC3 ops@x\n"
    certs = [p for p in files if p.startswith("/usr/local/share/ca-certificates/edgeplane/")]
    assert len(certs) == 1 and files[certs[0]] == PEM
    drop_in = files["/etc/systemd/system/containerd.service.d/http-proxy.conf"]
    assert drop_in.startswith("[Service]\nEnvironment=\"HTTP_PROXY=http://proxy.example.com:3128\"")
    no_proxy = drop_in.split("NO_PROXY=")[1].split('"')[0].split(",")
    assert no_proxy[:1] == ["10.0.0.0/8"]
    for needed in ("127.0.0.1", "localhost", ".svc", ".cluster.local", "192.168.0.0/16", "192.169.0.0/16",
                   "10.10.0.21", "10.10.0.50"):
        assert needed in no_proxy
    assert "/etc/systemd/system/kubelet.service.d/http-proxy.conf" in files
    assert "HTTP_PROXY=" in render(spec("k3s"))["/etc/systemd/system/k3s.service.env"]


def test_registry_mirrors() -> None:
    files = render(spec("k3s"))
    hosts = tomllib.loads(files["/etc/containerd/certs.d/gcr.io/hosts.toml"])
    assert hosts["server"] == "https://gcr.io"
    assert hosts["host"]["https://mirror.example.com"]["capabilities"] == ["pull", "resolve"]
    assert "docker.io" in {p.split("/")[4] for p in files if p.endswith("hosts.toml")}
    reg = yaml.safe_load(files["/etc/rancher/k3s/registries.yaml"])
    assert reg["mirrors"]["gcr.io"] == {"endpoint": ["https://mirror.example.com"],
                                        "rewrite": {"^spectro\\-images\\-public/(.*)": "spectro/$1"}}
    assert reg["configs"]["mirror.example.com"]["auth"] == {"username": "u", "password": "p"}
    out = render_node(NodeContext(spec("pxk-e"), USER_DATA, host_id="edge-1", node_ip="10.10.0.21"))
    assert any("cannot rewrite a path prefix" in w for w in out.warnings)


def test_vip_skipped_when_asked_or_equal_to_node_ip() -> None:
    assert not any("kube-vip" in p for p in render(spec("k3s", vip="10.10.0.21")))
    skip = USER_DATA.model_copy(update={"edgeplane": USER_DATA.edgeplane.model_copy(
        update={"vip": USER_DATA.edgeplane.vip.model_copy(update={"skip": True})})})
    out = render_node(NodeContext(spec("k3s"), skip, host_id="edge-1", node_ip="10.10.0.21"))
    assert not any("kube-vip" in p for p in out.files)


def test_join_token_from_the_spec_is_used() -> None:
    with_token = spec("k3s").model_copy(deep=True)
    cluster = with_token.cluster.model_copy(update={"join_token": "ab" * 32})
    with_token = with_token.model_copy(update={"cluster": cluster})
    assert yaml.safe_load(render(with_token)["/etc/rancher/k3s/config.yaml"])["token"] == "ab" * 32
    pxke = spec("pxk-e").model_copy(update={"cluster": spec("pxk-e").cluster.model_copy(update={"join_token": "cd" * 32})})
    init = next(yaml.safe_load_all(render(pxke)["/etc/kubernetes/kubeadm-config.yaml"]))
    fallback = next(yaml.safe_load_all(render(spec("pxk-e"))["/etc/kubernetes/kubeadm-config.yaml"]))
    assert init["certificateKey"] == "cd" * 32
    assert init["bootstrapTokens"][0]["token"] != fallback["bootstrapTokens"][0]["token"]
