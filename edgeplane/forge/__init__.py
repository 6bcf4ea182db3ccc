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

from __future__ import annotations

from edgeplane.common.lazy import lazy_exports

_EXPORTS = {
    "Artifact": "artifacts", "make_artifact": "artifacts",
    "Verified": "bundle", "build_bundle": "bundle", "extract_bundle": "bundle", "read_manifest": "bundle",
    "verify_bundle": "bundle",
    "BundleError": "errors", "DefinitionError": "errors", "ForgeError": "errors", "IsoError": "errors",
    "ProfileError": "errors", "SignatureError": "errors", "UserDataError": "errors",
    "apply_capsule": "capsule", "build_capsule": "capsule", "extract_capsule": "capsule", "verify_capsule": "capsule",
    "Definition": "definition", "build_definition": "definition", "import_definition": "definition",
    "read_definition": "definition",
    "export_definition": "export",
    "IsoResult": "iso", "build_installer_iso": "iso", "build_site_iso": "iso",
    "Manifest": "manifest",
    "generate_keypair": "signing", "load_private_key": "signing", "load_public_key": "signing",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
