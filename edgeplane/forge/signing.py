"""Ed25519 keys and detached signatures (cryptography), stored as PEM files."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edgeplane.forge.errors import ForgeError, SignatureError


def generate_keypair(private_path: Path, public_path: Path) -> None:
    """Write a new ed25519 private key (mode 0600) and its public key as PEM files."""
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_pem)
    public_path.write_bytes(public_pem)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Load an unencrypted PEM ed25519 private key; the error names the file."""
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ForgeError(f"{path}: cannot load private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ForgeError(f"{path}: not an ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Load a PEM ed25519 public key; the error names the file."""
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise ForgeError(f"{path}: cannot load public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ForgeError(f"{path}: not an ed25519 public key")
    return key


def sign(key: Ed25519PrivateKey, data: bytes) -> bytes:
    return key.sign(data)


def verify(key: Ed25519PublicKey, signature: bytes, data: bytes, *, what: str) -> None:
    """Raise SignatureError naming ``what`` unless ``signature`` is ``key``'s over ``data``."""
    try:
        key.verify(signature, data)
    except InvalidSignature:
        raise SignatureError(f"{what}: bad signature (signed with another key, or modified)") from None


def verify_any(keys: Sequence[Ed25519PublicKey], signature: bytes, data: bytes, *, what: str) -> None:
    """Accept a signature made by any of ``keys`` (a site may trust more than one signer)."""
    for key in keys:
        try:
            key.verify(signature, data)
            return
        except InvalidSignature:
            continue
    count = f"any of the {len(keys)} trusted keys" if len(keys) > 1 else "the trusted key"
    raise SignatureError(f"{what}: bad signature: not made by {count} (signed with another key, or modified)")
