"""The `edgeplane forge` commands end to end through the real CLI entry point (typer runner)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from edgeplane.cli import app

runner = CliRunner()


def forge(*args: str):
    return runner.invoke(app, ["forge", *map(str, args)])


def test_content_build_inspect_verify_extract(tmp_path: Path, sources, keys, other_keys) -> None:
    bundle = tmp_path / "c.tar.zst"
    args = ["content", "build", "--out", bundle, "--name", "shop", "--sign-key", keys.private]
    for kind, paths in sources.items():
        for path in paths:
            args += [f"--{kind}", path]
    result = forge(*args)
    assert result.exit_code == 0, result.output
    assert "7 artifacts" in result.output and "signed" in result.output

    result = forge("content", "inspect", bundle)
    assert result.exit_code == 0 and "shop (content, edgeplane-bundle/1) signed" in result.output
    assert "pack     k3s 1.30.2" in result.output

    result = forge("content", "verify", bundle, "--public-key", keys.public)
    assert result.exit_code == 0 and "signature valid" in result.output

    result = forge("content", "verify", bundle, "--public-key", other_keys.public)
    assert result.exit_code == 2 and "bad signature" in result.output

    result = forge("content", "extract", bundle, tmp_path / "out", "--public-key", keys.public)
    assert result.exit_code == 0 and (tmp_path / "out" / "manifest.json").exists()


def test_content_build_errors_are_one_line(tmp_path: Path, sources) -> None:
    result = forge("content", "build", "--out", tmp_path / "x.tar.zst", "--name", "x", "--file", tmp_path / "nope")
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {tmp_path / 'nope'}: no such file or directory (file)"
    result = forge("content", "build", "--out", tmp_path / "x.tar.zst", "--name", "x")
    assert result.exit_code == 2 and "nothing to bundle" in result.output


def test_iso_and_site_iso_commands(tmp_path: Path) -> None:
    user_data = tmp_path / "ud.yaml"
    user_data.write_text("#cloud-config\nedgeplane:\n  site:\n    name: edge-1\n")
    result = forge("iso", "--user-data", user_data, "--out", tmp_path / "installer.iso", "--label", "STORE")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "installer.iso.sha256").read_text().split()[0] in result.output
    result = forge("site-iso", "--user-data", user_data, "--out", tmp_path / "site.iso")
    assert result.exit_code == 0 and (tmp_path / "site.iso").exists()
    user_data.write_text("#cloud-config\nedgeplane:\n  localUI:\n    port: many\n")
    result = forge("iso", "--user-data", user_data, "--out", tmp_path / "bad.iso")
    assert result.exit_code == 2 and "ud.yaml:4: edgeplane.localUI.port" in result.output


def test_definition_and_capsule_commands(tmp_path: Path, sources, keys, other_keys) -> None:
    definition = tmp_path / "shop.tgz"
    result = forge("definition", "build", "--out", definition, "--name", "shop",
                   "--profile", sources["profile"][0], "--profile", sources["profile"][1], "--sign-key", keys.private)
    assert result.exit_code == 0, result.output
    result = forge("definition", "inspect", definition, "--public-key", keys.public)
    assert result.exit_code == 0 and "profile edge-k3s 1.0.0 (infra, 1 packs)" in result.output
    result = forge("definition", "import", definition, "--into", tmp_path / "defs", "--public-key", other_keys.public)
    assert result.exit_code == 2 and not (tmp_path / "defs" / "shop").exists()
    result = forge("definition", "import", definition, "--into", tmp_path / "defs")
    assert result.exit_code == 0 and (tmp_path / "defs" / "shop" / "variables.yaml").exists()

    capsule = tmp_path / "c.tar.zst"
    result = forge("capsule", "build", "--out", capsule, "--profile", sources["profile"][0],
                   "--pack", sources["pack"][0], "--sign-key", keys.private)
    assert result.exit_code == 0, result.output
    result = forge("capsule", "verify", capsule, "--public-key", keys.public)
    assert result.exit_code == 0 and "signature valid" in result.output
    result = forge("capsule", "apply", capsule)
    assert result.exit_code == 2 and "--host" in result.output
    result = forge("capsule", "apply", capsule, "--host", tmp_path / "host", "--timeout", "0.2")
    assert result.exit_code == 1 and "timeout: no result after 0 s" in result.output, result.output
    assert "is the agent running" in result.output


def test_keygen_never_overwrites(tmp_path: Path) -> None:
    private, public = tmp_path / "k.pem", tmp_path / "k.pub"
    assert forge("keygen", "--private", private, "--public", public).exit_code == 0
    assert private.stat().st_mode & 0o777 == 0o600
    before = private.read_bytes()
    result = forge("keygen", "--private", private, "--public", public)
    assert result.exit_code == 2 and "refusing to overwrite" in result.output
    assert private.read_bytes() == before
