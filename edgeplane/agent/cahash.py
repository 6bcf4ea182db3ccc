"""The cluster CA hash the bootstrap node reports, so joining kubeadm nodes can pin the API server.

Format as kubeadm prints it: ``sha256:`` + hex SHA-256 of the CA certificate's DER
SubjectPublicKeyInfo.
"""

from __future__ import annotations

import hashlib

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from edgeplane.agent.hostroot import HostRoot

CA_FILES = {
    "pxk-e": "/etc/kubernetes/pki/ca.crt",
    "pxk-e-fips": "/etc/kubernetes/pki/ca.crt",
    "k3s": "/var/lib/rancher/k3s/server/tls/server-ca.crt",
    "rke2": "/var/lib/rancher/rke2/server/tls/server-ca.crt",
    "canonical": "/etc/kubernetes/pki/ca.crt",
}


def ca_hash_of(pem: bytes) -> str:
    cert = x509.load_pem_x509_certificate(pem)
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(spki).hexdigest()


def cluster_ca_hash(root: HostRoot, distribution: str) -> str | None:
    """The CA hash when the distribution's CA certificate exists on this node, else None."""
    path = root.path(CA_FILES[distribution])
    try:
        return ca_hash_of(path.read_bytes())
    except (OSError, ValueError):
        return None
