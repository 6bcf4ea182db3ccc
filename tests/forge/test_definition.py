"""Cluster definitions: build, read back, rules, tampering, signatures and import into a directory."""

from __future__ import annotations

import gzip
import io
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from edgeplane.forge import (DefinitionError, SignatureError, build_definition, export_definition,
                             import_definition, load_private_key, load_public_key, read_definition)
from tests.support.ports import free_port

INFRA = b"name: edge-k3s\nversion: 1.0.0\ntype: infra\npacks: [{name: k3s, version: 1.30.2}]\n" \
        b"variables: [{name: site_vip, required: true}, {name: pods_cidr, required: true, default: 10.42.0.0/16}]\n"
APPS = b"name: shop-apps\nversion: 2.1.0\ntype: add-on\npacks: [{name: shop, version: 0.1.0}]\n"


def rewrite(archive: Path, out: Path, mutate) -> None:
    """Copy a .tgz member by member through mutate(name, data) -> data."""
    with tarfile.open(archive, "r:gz") as source:
        members = [(m, source.extractfile(m).read()) for m in source]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as target:
        for member, data in members:
            data = mutate(member.name, data)
            member.size = len(data)
            target.addfile(member, io.BytesIO(data))
    out.write_bytes(gzip.compress(buffer.getvalue()))


@pytest.fixture
def definition(tmp_path: Path, keys) -> Path:
    out = tmp_path / "shop.tgz"
    build_definition(out, "shop", [INFRA, APPS], {"site_vip": "10.0.0.5"}, load_private_key(keys.private))
    return out


def test_build_and_read_back(definition: Path, tmp_path: Path, keys) -> None:
    result = read_definition(definition, load_public_key(keys.public))
    assert result.signed and result.name == "shop"
    assert [(p.name, p.type) for p in result.profiles] == [("edge-k3s", "infra"), ("shop-apps", "add-on")]
    assert result.variables == {"site_vip": "10.0.0.5"}
    assert result.documents["profiles/edge-k3s.yaml"] == INFRA
    again = tmp_path / "again.tgz"
    build_definition(again, "shop", [INFRA, APPS], {"site_vip": "10.0.0.5"}, load_private_key(keys.private))
    assert again.read_bytes() == definition.read_bytes()


@pytest.mark.parametrize("profiles, variables, message", [
    ([], {}, "at least one profile"),
    ([INFRA, INFRA.replace(b"edge-k3s", b"other").replace(b"k3s,", b"rke2,")], {"site_vip": "x"},
     "2 infrastructure profiles"),
    ([INFRA, APPS.replace(b"shop,", b"k3s,")], {"site_vip": "x"}, "pack 'k3s' is in both 'edge-k3s' and 'shop-apps'"),
    ([INFRA], {}, "site_vip: required by profile 'edge-k3s' but has no value"),
    ([INFRA], {"site_vip": ["a"]}, "site_vip: a variable value must be a string"),
    ([b"name: x\nversion: 1\ntype: weird\n"], {}, "type: must be one of"),
])
def test_rules_are_enforced(tmp_path: Path, profiles, variables, message) -> None:
    with pytest.raises(DefinitionError, match=message):
        build_definition(tmp_path / "bad.tgz", "bad", profiles, variables)
    assert not list(tmp_path.glob("bad.tgz*"))


def test_tampering_and_keys(definition: Path, tmp_path: Path, keys, other_keys) -> None:
    tampered = tmp_path / "tampered.tgz"
    rewrite(definition, tampered, lambda name, data: data.replace(b"2.1.0", b"2.1.1") if name.endswith("shop-apps.yaml") else data)
    with pytest.raises(DefinitionError, match="profiles/shop-apps.yaml: sha256/size do not match"):
        read_definition(tampered)
    with pytest.raises(SignatureError, match="another key"):
        read_definition(definition, load_public_key(other_keys.public))
    unsigned = tmp_path / "unsigned.tgz"
    build_definition(unsigned, "u", [APPS])
    with pytest.raises(SignatureError, match="not signed"):
        read_definition(unsigned, load_public_key(keys.public))


def test_import_writes_a_directory_and_nothing_on_refusal(definition: Path, tmp_path: Path, keys, other_keys) -> None:
    root = tmp_path / "local" / "definitions"
    with pytest.raises(SignatureError):
        import_definition(definition, root, load_public_key(other_keys.public))
    assert not root.exists() or list(root.iterdir()) == []
    target = import_definition(definition, root, load_public_key(keys.public))
    assert target == root / "shop"
    assert (target / "profiles" / "shop-apps.yaml").read_bytes() == APPS
    assert (target / "source.tgz").read_bytes() == definition.read_bytes()
    with pytest.raises(DefinitionError, match="already imported"):
        import_definition(definition, root)


class _NotAConsole(BaseHTTPRequestHandler):
    """A loopback web server that is not the console: every path is 404 {"detail": "Not Found"}."""

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        body = b'{"detail":"Not Found"}'
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def not_a_console() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotAConsole)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_export_errors_are_clear(tmp_path: Path, not_a_console: str) -> None:
    with pytest.raises(DefinitionError, match="no console API at this URL"):
        export_definition(not_a_console, "epak_x", ["p_1"], "shop", tmp_path / "d.tgz")
    with pytest.raises(DefinitionError, match="cannot reach the console"):
        export_definition(f"http://127.0.0.1:{free_port()}", "epak_x", ["p_1"], "shop", tmp_path / "d.tgz", timeout=2)
    assert not (tmp_path / "d.tgz").exists()
