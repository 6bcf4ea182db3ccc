"""Forge: installer ISOs, site user-data ISOs, content bundles, cluster definitions, capsules.

Public API (other parts import only from here):

- content bundles: :func:`make_artifact`, :func:`build_bundle`, :func:`read_manifest`,
  :func:`verify_bundle`, :func:`extract_bundle` (what an agent calls to install a bundle offline);
- keys: :func:`generate_keypair`, :func:`load_private_key`, :func:`load_public_key`;
- errors: :class:`ForgeError` and its subclasses.
"""

from edgeplane.forge.artifacts import Artifact, make_artifact
from edgeplane.forge.bundle import Verified, build_bundle, extract_bundle, read_manifest, verify_bundle
from edgeplane.forge.errors import (BundleError, DefinitionError, ForgeError, IsoError, NotBuiltYet, ProfileError,
                                    SignatureError, UserDataError)
from edgeplane.forge.manifest import Manifest
from edgeplane.forge.signing import generate_keypair, load_private_key, load_public_key

__all__ = [
    "Artifact", "BundleError", "DefinitionError", "ForgeError", "IsoError", "Manifest", "NotBuiltYet",
    "ProfileError", "SignatureError", "UserDataError", "Verified", "build_bundle", "extract_bundle",
    "generate_keypair", "load_private_key", "load_public_key", "make_artifact", "read_manifest", "verify_bundle",
]
