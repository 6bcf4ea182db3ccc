"""Forge: installer ISOs, site user-data ISOs, content bundles, cluster definitions, capsules.

Public API (other parts import only from here):

- content bundles: :func:`make_artifact`, :func:`build_bundle`, :func:`read_manifest`,
  :func:`verify_bundle`, :func:`extract_bundle` (what an agent calls to install a bundle offline);
- ISOs: :func:`build_installer_iso`, :func:`build_site_iso` (layout constants in ``iso``);
- cluster definitions: :func:`build_definition`, :func:`read_definition`, :func:`import_definition`,
  :func:`export_definition`;
- capsules: :func:`build_capsule`, :func:`verify_capsule`, :func:`extract_capsule` (what an agent calls
  to unpack one), :func:`apply_capsule` (roll one across a site's hosts with no console);
- keys: :func:`generate_keypair`, :func:`load_private_key`, :func:`load_public_key`;
- errors: :class:`ForgeError` and its subclasses.
"""

from edgeplane.forge.artifacts import Artifact, make_artifact
from edgeplane.forge.bundle import Verified, build_bundle, extract_bundle, read_manifest, verify_bundle
from edgeplane.forge.errors import (BundleError, DefinitionError, ForgeError, IsoError, ProfileError,
                                    SignatureError, UserDataError)
from edgeplane.forge.capsule import apply_capsule, build_capsule, extract_capsule, verify_capsule
from edgeplane.forge.definition import Definition, build_definition, import_definition, read_definition
from edgeplane.forge.export import export_definition
from edgeplane.forge.iso import IsoResult, build_installer_iso, build_site_iso
from edgeplane.forge.manifest import Manifest
from edgeplane.forge.signing import generate_keypair, load_private_key, load_public_key

__all__ = [
    "Artifact", "BundleError", "Definition", "DefinitionError", "ForgeError", "IsoError", "IsoResult", "Manifest",
    "ProfileError", "SignatureError", "UserDataError", "Verified", "apply_capsule", "build_bundle",
    "build_capsule", "build_definition", "build_installer_iso", "build_site_iso", "export_definition",
    "extract_bundle", "extract_capsule", "generate_keypair", "import_definition", "load_private_key", "load_public_key",
    "make_artifact", "read_definition", "read_manifest", "verify_bundle", "verify_capsule",
]
