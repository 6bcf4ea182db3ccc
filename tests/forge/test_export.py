"""Definition export against the real console (edgeplane.console on loopback, SQLite), over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from edgeplane.console import ConsoleConfig, ThreadedConsole, create_admin_key
from edgeplane.forge import DefinitionError, export_definition, import_definition, read_definition

LAYERS = [{"layer": "os", "pack": "ubuntu", "version": "22.04"},
          {"layer": "kubernetes", "pack": "k3s", "version": "1.30.14"},
          {"layer": "network", "pack": "calico", "version": "3.28.2"}]


@pytest.fixture
def console(tmp_path: Path) -> Iterator[tuple[str, str]]:
    db_url = f"sqlite:///{tmp_path / 'console.db'}"
    key = create_admin_key(db_url)
    server = ThreadedConsole(ConsoleConfig(db_url=db_url)).start()
    try:
        yield server.url, key
    finally:
        server.stop()


def test_export_from_the_console_then_import(tmp_path: Path, console) -> None:
    url, key = console
    created = httpx.post(f"{url}/v1/profiles", json={"name": "retail", "layers": LAYERS},
                         headers={"Authorization": f"Bearer {key}"}).raise_for_status().json()
    out = tmp_path / "retail.tgz"
    definition = export_definition(url, key, [created["id"]], "retail", out)
    assert [(p.name, p.version, p.type) for p in definition.profiles] == [("retail", "1", "infra")]
    assert [(r.name, r.version) for r in definition.profiles[0].packs] == [
        ("ubuntu", "22.04"), ("k3s", "1.30.14"), ("calico", "3.28.2")]
    assert read_definition(out).name == "retail"
    target = import_definition(out, tmp_path / "local")
    assert b"layers:" in (target / "profiles" / "retail.yaml").read_bytes()


def test_export_errors_name_the_cause(tmp_path: Path, console) -> None:
    url, key = console
    with pytest.raises(DefinitionError, match="--api-key: the console refused it \\(401\\)"):
        export_definition(url, "epak_wrong", ["p_1"], "x", tmp_path / "x.tgz")
    with pytest.raises(DefinitionError, match="--profile-id p_nope: no such profile"):
        export_definition(url, key, ["p_nope"], "x", tmp_path / "x.tgz")
    assert not (tmp_path / "x.tgz").exists()
