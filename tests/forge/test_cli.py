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
