"""``edgeplane forge``: content bundles, installer and site ISOs, cluster definitions, capsules.

Thin: options are parsed here, the work happens in the forge modules (imported inside commands).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, Optional

import typer

app = typer.Typer(help="Build installer ISOs, site ISOs, content bundles, cluster definitions and capsules.",
                  no_args_is_help=True)
content_app = typer.Typer(help="Content bundles (.tar.zst) of packs, images, charts, profiles and files.",
                          no_args_is_help=True)
app.add_typer(content_app, name="content")

Paths = Optional[list[Path]]


def _fail_cleanly(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn forge errors into one line on stderr and exit status 2 (no traceback)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from edgeplane.forge.errors import ForgeError

        try:
            return func(*args, **kwargs)
        except (ForgeError, ValueError, OSError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None

    return wrapper


@app.command()
@_fail_cleanly
def keygen(private: Path = typer.Option(..., "--private", help="Private key file to create (mode 0600)"),
           public: Path = typer.Option(..., "--public", help="Public key file to write")) -> None:
    """Create an ed25519 key pair for signing bundles, definitions and capsules."""
    from edgeplane.forge.signing import generate_keypair

    try:
        generate_keypair(private, public)
    except FileExistsError:
        raise ValueError(f"{private}: already exists; refusing to overwrite a private key") from None
    typer.echo(f"wrote {private} and {public}")


def _collect(profiles: Paths, packs: Paths, images: Paths, charts: Paths, files: Paths) -> list:
    from edgeplane.forge.artifacts import make_artifact

    groups = {"profile": profiles, "pack": packs, "image": images, "chart": charts, "file": files}
    return [make_artifact(kind, path) for kind, paths in groups.items() for path in paths or []]


def _private_key(path: Path | None):
    from edgeplane.forge.signing import load_private_key

    return load_private_key(path) if path else None


def _public_key(path: Path | None):
    from edgeplane.forge.signing import load_public_key

    return load_public_key(path) if path else None


@content_app.command("build")
@_fail_cleanly
def content_build(
    out: Path = typer.Option(..., "--out", help="Bundle to write (.tar.zst)"),
    name: str = typer.Option(..., "--name", help="Bundle name recorded in the manifest"),
    profile: Paths = typer.Option(None, "--profile", help="Profile YAML file (repeatable; at most one infra/full)"),
    pack: Paths = typer.Option(None, "--pack", help="Pack directory or archive (repeatable)"),
    image: Paths = typer.Option(None, "--image", help="OCI image layout directory or image archive (repeatable)"),
    chart: Paths = typer.Option(None, "--chart", help="Helm chart .tgz (repeatable)"),
    file: Paths = typer.Option(None, "--file", help="Any file or directory (repeatable)"),
    sign_key: Optional[Path] = typer.Option(None, "--sign-key", help="ed25519 private key (PEM) to sign the manifest"),
    level: int = typer.Option(3, "--level", min=1, max=19, help="zstd compression level"),
) -> None:
    """Build a content bundle with a manifest of every artifact (sha256 and size)."""
    from edgeplane.forge.bundle import build_bundle
    from edgeplane.forge.progress import byte_progress

    artifacts = _collect(profile, pack, image, chart, file)
    if not artifacts:
        raise ValueError("nothing to bundle: give at least one --profile, --pack, --image, --chart or --file")
    key = _private_key(sign_key)
    with byte_progress(f"building {out.name}", sum(a.size for a in artifacts)) as advance:
        manifest = build_bundle(out, artifacts, name=name, signing_key=key, level=level, progress=advance)
    typer.echo(f"{out}: {len(manifest.artifacts)} artifacts, {manifest.size} bytes{', signed' if key else ''}")


@content_app.command("inspect")
@_fail_cleanly
def content_inspect(bundle: Path = typer.Argument(..., help="Bundle (.tar.zst)"),
                    as_json: bool = typer.Option(False, "--json", help="Print the raw manifest")) -> None:
    """Show a bundle's manifest (reads only the manifest; use verify to check the artifacts)."""
    from edgeplane.forge.bundle import read_manifest

    manifest, signed = read_manifest(bundle)
    if as_json:
        typer.echo(manifest.to_bytes().decode(), nl=False)
        return
    typer.echo(f"{manifest.name} ({manifest.type}, {manifest.format}) {'signed' if signed else 'unsigned'}, "
               f"{manifest.size} bytes")
    for artifact in manifest.artifacts:
        version = f" {artifact.version}" if artifact.version else ""
        typer.echo(f"  {artifact.kind:8} {artifact.name}{version}  {len(artifact.files)} files, {artifact.size} bytes")


@content_app.command("verify")
@_fail_cleanly
def content_verify(bundle: Path = typer.Argument(..., help="Bundle (.tar.zst)"),
                   public_key: Optional[Path] = typer.Option(None, "--public-key", help="Require a signature by this key")) -> None:
    """Check every artifact byte against the manifest, and the signature when a key is given."""
    from edgeplane.forge.bundle import verify_bundle

    key = _public_key(public_key)
    with _file_progress("verifying", bundle) as advance:
        verified = verify_bundle(bundle, key, advance)
    _report_verified(bundle, verified)


def _file_progress(verb: str, path: Path):
    """A progress bar over the compressed bytes of ``path`` (unknown total when it is missing)."""
    from edgeplane.forge.progress import byte_progress

    return byte_progress(f"{verb} {path.name}", path.stat().st_size if path.exists() else None)


def _report_verified(path: Path, verified: Any) -> None:
    signature = ("signature valid" if verified.signature_checked else
                 "signed, signature NOT checked (no --public-key)" if verified.signed else "unsigned")
    typer.echo(f"{path}: OK, {len(verified.manifest.files())} files match the manifest, {signature}")


@content_app.command("extract")
@_fail_cleanly
def content_extract(bundle: Path = typer.Argument(..., help="Bundle (.tar.zst)"),
                    dest: Path = typer.Argument(..., help="New directory to create"),
                    public_key: Optional[Path] = typer.Option(None, "--public-key", help="Require a signature by this key")) -> None:
    """Verify a bundle completely, then unpack it into a new directory (nothing on refusal)."""
    from edgeplane.forge.bundle import extract_bundle

    key = _public_key(public_key)
    with _file_progress("extracting", bundle) as advance:
        verified = extract_bundle(bundle, dest, key, advance)
    _report_verified(bundle, verified)


# ------------------------------------------------------------------------------------------ ISOs


@app.command()
@_fail_cleanly
def iso(user_data: Path = typer.Option(..., "--user-data", help="#cloud-config user-data with an edgeplane: mapping"),
        out: Path = typer.Option(..., "--out", help="ISO to write; <out>.sha256 is written next to it"),
        content: Paths = typer.Option(None, "--content", help="Content bundle to carry (repeatable)"),
        definition: Optional[Path] = typer.Option(None, "--definition", help="Cluster definition .tgz to carry"),
        boot_tree: Optional[Path] = typer.Option(None, "--boot-tree", help="Kernel, initrd, isolinux/ and/or boot/grub/ tree"),
        label: str = typer.Option("EDGEPLANE", "--label", help="Volume label"),
        agent: Optional[Path] = typer.Option(None, "--agent", help="Agent wheel or zipapp (default: zipapp of this edgeplane)"),
        trusted_key: Paths = typer.Option(None, "--trusted-key", help="ed25519 public key the site will require signatures from (repeatable)")) -> None:
    """Build a reproducible installer ISO (ISO 9660 + Rock Ridge + Joliet, El Torito with --boot-tree)."""
    from edgeplane.forge.iso import build_installer_iso
    from edgeplane.forge.progress import byte_progress

    total = sum(p.stat().st_size for p in content or [] if p.exists())
    with byte_progress(f"writing {out.name}", total or None) as advance:
        result = build_installer_iso(out, user_data, content=content or [], definition=definition,
                                     boot_tree=boot_tree, label=label, agent=agent, trusted_keys=trusted_key or [],
                                     progress=advance)
    typer.echo(f"{result.path}: {result.size} bytes, sha256 {result.sha256}{', bootable' if result.bootable else ''}")


@app.command("site-iso")
@_fail_cleanly
def site_iso(user_data: Path = typer.Option(..., "--user-data", help="Site #cloud-config user-data (overrides)"),
             out: Path = typer.Option(..., "--out", help="ISO to write (volume label cidata)")) -> None:
    """Build the site user-data ISO: volume cidata with user-data and meta-data."""
    from edgeplane.forge.iso import build_site_iso

    result = build_site_iso(out, user_data)
    typer.echo(f"{result.path}: {result.size} bytes, sha256 {result.sha256}")


# ---------------------------------------------------------------------------------- definitions

definition_app = typer.Typer(help="Cluster definitions (.tgz of profiles and variables).", no_args_is_help=True)
app.add_typer(definition_app, name="definition")


@definition_app.command("build")
@_fail_cleanly
def definition_build(out: Path = typer.Option(..., "--out", help="Definition to write (.tgz)"),
                     name: str = typer.Option(..., "--name", help="Definition name"),
                     profile: list[Path] = typer.Option(..., "--profile", help="Profile YAML file (repeatable)"),
                     variables: Optional[Path] = typer.Option(None, "--variables", help="YAML mapping of variable values"),
                     sign_key: Optional[Path] = typer.Option(None, "--sign-key", help="ed25519 private key (PEM)")) -> None:
    """Build a cluster definition from local profile files."""
    from edgeplane.forge.definition import build_definition, load_variables, profile_documents

    result = build_definition(out, name, profile_documents(profile), load_variables(variables), _private_key(sign_key),
                              sources=[str(p) for p in profile])
    typer.echo(f"{out}: {len(result.profiles)} profiles, {len(result.variables)} variables")


@definition_app.command("export")
@_fail_cleanly
def definition_export(console: str = typer.Option(..., "--console", help="Console base URL"),
                      api_key: str = typer.Option(..., "--api-key", envvar="EDGEPLANE_API_KEY", help="Console API key"),
                      profile_id: list[str] = typer.Option(..., "--profile-id", help="Console profile ID (repeatable)"),
                      name: str = typer.Option(..., "--name", help="Definition name"),
                      out: Path = typer.Option(..., "--out", help="Definition to write (.tgz)"),
                      variables: Optional[Path] = typer.Option(None, "--variables", help="YAML mapping of variable values"),
                      sign_key: Optional[Path] = typer.Option(None, "--sign-key", help="ed25519 private key (PEM)")) -> None:
    """Export profiles from the console into a cluster definition."""
    from edgeplane.forge.definition import load_variables
    from edgeplane.forge.export import export_definition

    result = export_definition(console, api_key, profile_id, name, out, load_variables(variables), _private_key(sign_key))
    typer.echo(f"{out}: {len(result.profiles)} profiles exported")


@definition_app.command("inspect")
@_fail_cleanly
def definition_inspect(archive: Path = typer.Argument(..., help="Definition (.tgz)"),
                       public_key: Optional[Path] = typer.Option(None, "--public-key", help="Require a signature by this key")) -> None:
    """Check a definition and list its profiles and variables."""
    from edgeplane.forge.definition import read_definition

    result = read_definition(archive, _public_key(public_key))
    typer.echo(f"{result.name}: {'signed' if result.signed else 'unsigned'}")
    for p in result.profiles:
        typer.echo(f"  profile {p.name} {p.version} ({p.type}, {len(p.packs)} packs)")
    for key in sorted(result.variables):
        typer.echo(f"  variable {key}")


@definition_app.command("import")
@_fail_cleanly
def definition_import(archive: Path = typer.Argument(..., help="Definition (.tgz)"),
                      into: Path = typer.Option(..., "--into", help="Local definitions directory"),
                      public_key: Optional[Path] = typer.Option(None, "--public-key", help="Require a signature by this key")) -> None:
    """Check a definition and write it into a local directory (what local mode will read)."""
    from edgeplane.forge.definition import import_definition

    target = import_definition(archive, into, _public_key(public_key))
    typer.echo(f"imported into {target}")


# ------------------------------------------------------------------------------------- capsules

capsule_app = typer.Typer(help="Signed offline upgrade capsules (a profile version and all it needs).",
                          no_args_is_help=True)
app.add_typer(capsule_app, name="capsule")


@capsule_app.command("build")
@_fail_cleanly
def capsule_build(out: Path = typer.Option(..., "--out", help="Capsule to write (.tar.zst)"),
                  profile: Path = typer.Option(..., "--profile", help="The new profile version (YAML)"),
                  pack: Paths = typer.Option(None, "--pack", help="Pack directory with pack.yaml (repeatable)"),
                  image: Paths = typer.Option(None, "--image", help="OCI layout or image archive (repeatable)"),
                  chart: Paths = typer.Option(None, "--chart", help="Helm chart .tgz (repeatable)"),
                  file: Paths = typer.Option(None, "--file", help="Any file or directory (repeatable)"),
                  sign_key: Path = typer.Option(..., "--sign-key", help="ed25519 private key (PEM); capsules are always signed")) -> None:
    """Build a signed capsule; refused when a pack the profile references is missing."""
    from edgeplane.forge.capsule import build_capsule
    from edgeplane.forge.progress import byte_progress

    artifacts = _collect([profile], pack, image, chart, file)
    key = _private_key(sign_key)
    with byte_progress(f"building {out.name}", sum(a.size for a in artifacts)) as advance:
        manifest = build_capsule(out, artifacts, key, advance)
    typer.echo(f"{out}: capsule {manifest.name}, {len(manifest.artifacts)} artifacts, signed")


@capsule_app.command("verify")
@_fail_cleanly
def capsule_verify(capsule: Path = typer.Argument(..., help="Capsule (.tar.zst)"),
                   public_key: Path = typer.Option(..., "--public-key", help="The signer's public key")) -> None:
    """Check every byte, the signature and that the profile's packs are all inside."""
    from edgeplane.forge.capsule import verify_capsule

    key = _public_key(public_key)
    with _file_progress("verifying", capsule) as advance:
        verified = verify_capsule(capsule, key, advance)
    _report_verified(capsule, verified)


@capsule_app.command("apply")
@_fail_cleanly
def capsule_apply(capsule: Path = typer.Argument(..., help="Capsule (.tar.zst)"),
                  host: Paths = typer.Option(..., "--host", help="A host's agent root ('/' on the host itself); "
                                             "repeatable: control planes go first, one host at a time"),
                  timeout: float = typer.Option(900.0, "--timeout", help="Seconds to wait for each host")) -> None:
    """Upgrade a running site with no console: host by host, each health-gated; stops at the first failure."""
    from edgeplane.forge.capsule import apply_capsule

    results = apply_capsule(capsule, host, timeout=timeout, say=typer.echo)
    if len(results) < len(host) or any(r["state"] != "committed" for r in results):
        raise typer.Exit(1)
    typer.echo(f"{capsule}: all {len(results)} hosts committed")
