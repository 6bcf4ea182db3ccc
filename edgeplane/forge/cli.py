"""``edgeplane forge``: content bundles, installer and site ISOs, cluster definitions, capsules.

Thin: options are parsed here, the work happens in the forge modules (imported inside commands).
"""

from __future__ import annotations

import json
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
        except (ForgeError, ValueError) as exc:
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
    from edgeplane.forge.progress import byte_progress

    key = _public_key(public_key)
    with byte_progress(f"verifying {bundle.name}", bundle.stat().st_size if bundle.exists() else None) as advance:
        verified = verify_bundle(bundle, key, advance)
    _report_verified(bundle, verified)


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
    from edgeplane.forge.progress import byte_progress

    key = _public_key(public_key)
    with byte_progress(f"extracting {bundle.name}", bundle.stat().st_size if bundle.exists() else None) as advance:
        verified = extract_bundle(bundle, dest, key, advance)
    _report_verified(bundle, verified)
