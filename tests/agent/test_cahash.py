"""Cluster CA hash: same value as kubeadm's documented openssl recipe, found per distribution."""

from __future__ import annotations

import datetime
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from edgeplane.agent.cahash import CA_FILES, ca_hash_of, cluster_ca_hash
from edgeplane.agent.hostroot import HostRoot


def make_ca() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(7).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def test_matches_the_openssl_recipe(tmp_path: Path) -> None:
    pem = make_ca()
    (tmp_path / "ca.crt").write_bytes(pem)
    # kubeadm docs: openssl x509 -pubkey -in ca.crt | openssl rsa/pkey -pubin -outform der | sha256sum
    pub = subprocess.run(["openssl", "x509", "-pubkey", "-noout", "-in", str(tmp_path / "ca.crt")],
                         check=True, capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub, check=True,
                         capture_output=True).stdout
    digest = subprocess.run(["sha256sum"], input=der, check=True, capture_output=True).stdout.split()[0].decode()
    assert ca_hash_of(pem) == f"sha256:{digest}"


def test_found_per_distribution_or_none(tmp_path: Path) -> None:
    root = HostRoot(tmp_path)
    assert cluster_ca_hash(root, "k3s") is None
    pem = make_ca()
    root.write_text(CA_FILES["k3s"], pem.decode())
    assert cluster_ca_hash(root, "k3s") == ca_hash_of(pem)
    root.write_text(CA_FILES["pxk-e"], "not a certificate")
    assert cluster_ca_hash(root, "pxk-e") is None
