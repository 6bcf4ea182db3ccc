"""Host configuration around Kubernetes: hostname, network, DNS, NTP, users and SSH keys, CA trust
store, proxy environment of the container runtime and kubelet, and the local datastore service."""

from __future__ import annotations

import hashlib
import ipaddress
import re

import yaml

from edgeplane.agent.render.context import DATASTORE_LISTEN, NodeContext, Rendered

CA_DIR = "/usr/local/share/ca-certificates/edgeplane"
TWONODE_CONFIG = "/etc/edgeplane/twonode/node.yaml"
TWONODE_TOKEN = "/etc/edgeplane/twonode/token"
TWONODE_API_PORT = 7480
# where each distribution's services read their environment
PROXY_FILES = {
    ("k3s", True): ["/etc/systemd/system/k3s.service.env"],
    ("k3s", False): ["/etc/systemd/system/k3s-agent.service.env"],
    ("rke2", True): ["/etc/default/rke2-server"],
    ("rke2", False): ["/etc/default/rke2-agent"],
}
DROP_IN_UNITS = {"canonical": ["snap.k8s.containerd", "snap.k8s.kubelet"]}
DEFAULT_DROP_IN_UNITS = ["containerd", "kubelet"]


def render_host(ctx: NodeContext) -> Rendered:
    out = Rendered()
    out.add("/etc/hostname", ctx.hostname + "\n")
    for part in (_network(ctx), _ntp(ctx), _users(ctx), _ca_certs(ctx), _proxy(ctx), _datastore_service(ctx)):
        out.extend(part)
    return out


def _network(ctx: NodeContext) -> Rendered:
    out = Rendered()
    net = ctx.user_data.edgeplane.site.network
    for name, nic in sorted(net.interfaces.items()):
        lines = ["[Match]", f"Name={name}", "", "[Network]"]
        if nic.type == "dhcp":
            lines.append("DHCP=yes")
        else:
            assert nic.ipAddress is not None
            address = ipaddress.ip_interface(nic.ipAddress.split("/")[0] + f"/{nic.prefix_length()}")
            lines.append(f"Address={address}")
            if nic.gateway:
                lines.append(f"Gateway={nic.gateway}")
        if nic.nameserver:
            lines.append(f"DNS={nic.nameserver}")
        out.add(f"/etc/systemd/network/10-edgeplane-{name}.network", "\n".join(lines) + "\n")
    if net.nameserver:
        out.add("/etc/systemd/resolved.conf.d/edgeplane.conf", f"[Resolve]\nDNS={net.nameserver}\n")
    return out


def _ntp(ctx: NodeContext) -> Rendered:
    out = Rendered()
    servers = list(dict.fromkeys([*ctx.cluster.ntp_servers, *ctx.user_data.edgeplane.site.ntpServers]))
    if servers:
        out.add("/etc/systemd/timesyncd.conf.d/edgeplane.conf", "[Time]\nNTP=" + " ".join(servers) + "\n")
        out.commands.append(["systemctl", "restart", "systemd-timesyncd"])
    return out


def _users(ctx: NodeContext) -> Rendered:
    out = Rendered()
    users = {u.name: u for u in ctx.user_data.edgeplane.site.users}
    for user in users.values():
        home = "/root" if user.name == "root" else f"/home/{user.name}"
        groups = ",".join(user.groups)
        script = f"id -u {user.name} >/dev/null 2>&1 || useradd -m {user.name}"
        script += f" && usermod -aG {groups} {user.name}" if groups else ""
        script += f" && passwd -{'l' if user.lock_passwd else 'u'} {user.name} >/dev/null 2>&1 || true"
        out.commands.append(["/bin/sh", "-c", script])  # idempotent: safe to repeat after a restart
        if user.ssh_authorized_keys:
            out.add(f"{home}/.ssh/authorized_keys", "\n".join(user.ssh_authorized_keys) + "\n", 0o600)
    if ctx.cluster.ssh_keys:  # cluster-wide keys from the console go to the default OS user
        out.add("/home/kairos/.ssh/authorized_keys.d/edgeplane-cluster", "\n".join(ctx.cluster.ssh_keys) + "\n", 0o600)
    return out


def _ca_certs(ctx: NodeContext) -> Rendered:
    out = Rendered()
    pems = list(dict.fromkeys([*ctx.user_data.edgeplane.site.caCerts, *ctx.cluster.ca_certs]))
    for pem in pems:
        name = hashlib.sha256(pem.encode()).hexdigest()[:16]
        out.add(f"{CA_DIR}/{name}.crt", pem if pem.endswith("\n") else pem + "\n")
    if pems:
        out.commands.append(["update-ca-certificates"])
    return out


def _proxy(ctx: NodeContext) -> Rendered:
    out = Rendered()
    http, https, no_proxy = ctx.proxy()
    if not (http or https):
        return out
    env = {"HTTP_PROXY": http, "HTTPS_PROXY": https, "NO_PROXY": no_proxy}
    env = {k: v for k, v in env.items() if v}
    key = (ctx.distribution, ctx.is_control_plane)
    if key in PROXY_FILES:  # K3s/RKE2 pass CONTAINERD_* on to their embedded containerd
        text = "".join(f"{k}={v}\n" for k, v in env.items()) + "".join(f"CONTAINERD_{k}={v}\n" for k, v in env.items())
        for path in PROXY_FILES[key]:
            out.add(path, text, 0o600)
    else:
        drop_in = "[Service]\n" + "".join(f'Environment="{k}={v}"\n' for k, v in env.items())
        for unit in DROP_IN_UNITS.get(ctx.distribution, DEFAULT_DROP_IN_UNITS):
            out.add(f"/etc/systemd/system/{unit}.service.d/http-proxy.conf", drop_in, 0o600)
    out.commands.append(["systemctl", "daemon-reload"])
    return out


def _datastore_service(ctx: NodeContext) -> Rendered:
    """The local etcd v3 endpoint the API server uses when the datastore is not etcd: the edgeplane
    datastore over SQLite on one node, the two-node service (PostgreSQL pair) on two."""
    out = Rendered()
    if not ctx.is_control_plane or ctx.cluster.datastore == "etcd":
        return out
    if ctx.cluster.datastore == "sqlite":
        unit = "edgeplane-datastore"
        exec_start = (f"/usr/local/bin/edgeplane datastore --listen {DATASTORE_LISTEN} "
                      "--endpoint sqlite:////var/lib/edgeplane/datastore/state.db")
    else:
        unit = "edgeplane-twonode"
        exec_start = f"/usr/local/bin/edgeplane twonode run --config {TWONODE_CONFIG}"
        out.extend(_twonode_config(ctx))
    out.add(f"/etc/systemd/system/{unit}.service", "\n".join([
        "[Unit]", f"Description=edgeplane {ctx.cluster.datastore} datastore (etcd v3 API)",
        "After=network-online.target", "Wants=network-online.target", "",
        "[Service]", f"ExecStart={exec_start}", "Restart=always", "RestartSec=2", "",
        "[Install]", "WantedBy=multi-user.target", "",
    ]))
    out.commands.append(["systemctl", "enable", "--now", f"{unit}.service"])
    return out


def _node_name(host_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "-", host_id)[:63]


def _twonode_config(ctx: NodeContext) -> Rendered:
    """node.yaml of the two-node service (schema: edgeplane.twonode.NodeConfig)."""
    out = Rendered()
    peer = next((m for m in ctx.cluster.control_plane if m.host_id != ctx.host_id), None)
    if peer is None or peer.ip() is None:
        out.warnings.append("two-node datastore: the spec names no peer control plane with an IP")
        return out
    config = {
        "name": _node_name(ctx.host_id),
        "priority": 100 if ctx.cluster.bootstrap else 50,  # the bootstrap node leads a cold start
        "data_dir": "/var/lib/edgeplane/twonode",
        "listen": f"{ctx.node_ip}:{TWONODE_API_PORT}",
        "token_file": TWONODE_TOKEN,
        "postgres": {"host": ctx.node_ip, "port": 5432},
        "peer": {"name": _node_name(peer.host_id), "api": f"{peer.ip()}:{TWONODE_API_PORT}",
                 "postgres": f"{peer.ip()}:5432"},
        "datastore": {"listen": DATASTORE_LISTEN},
    }
    out.add(TWONODE_CONFIG, yaml.safe_dump(config, sort_keys=False), 0o600)
    out.add(TWONODE_TOKEN, hashlib.sha256(f"twonode:{ctx.join_secret()}".encode()).hexdigest() + "\n", 0o600)
    return out
