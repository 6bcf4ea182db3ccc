"""Rendering of a node's configuration from the desired spec and the user-data.

``render_node`` returns every file (host path -> content) and command the node needs; the
installer writes them through the journal. Each distribution has its own module.
"""

from __future__ import annotations

from edgeplane.agent.render.canonical import render_canonical
from edgeplane.agent.render.context import NodeContext, Rendered, RenderedFile
from edgeplane.agent.render.host import render_host
from edgeplane.agent.render.kubeadm import kubeadm_api_version, render_kubeadm
from edgeplane.agent.render.kubevip import render_kube_vip
from edgeplane.agent.render.rancher import render_rancher
from edgeplane.agent.render.registries import render_registries

_DISTRIBUTIONS = {
    "k3s": render_rancher, "rke2": render_rancher,
    "pxk-e": render_kubeadm, "pxk-e-fips": render_kubeadm,
    "canonical": render_canonical,
}


def render_node(ctx: NodeContext) -> Rendered:
    """Host configuration first (trust store, proxies, datastore), then the distribution, then kube-vip."""
    out = Rendered()
    for part in (render_host, render_registries, _DISTRIBUTIONS[ctx.distribution], render_kube_vip):
        out.extend(part(ctx))
    return out


__all__ = ["NodeContext", "Rendered", "RenderedFile", "kubeadm_api_version", "render_node"]
