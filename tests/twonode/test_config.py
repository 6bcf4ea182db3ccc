"""node.yaml validation: bad input is refused with the field and the reason."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import yaml

from edgeplane.twonode.config import ConfigError, load_config, parse_config
from edgeplane.twonode.probe import witness_ok
from tests.support.ports import free_port

GOOD = {
    "name": "a", "data_dir": "/tmp/x", "token_file": "/tmp/token",
    "peer": {"name": "b", "api": "10.0.0.2:7480", "postgres": "10.0.0.2:5432"},
}


def test_minimal_config_gets_production_defaults():
    config = parse_config(GOOD)
    assert (config.probe.interval, config.probe.threshold, config.replication.mode) == (0.5, 4, "sync")
    assert config.settings().name == "a"


@pytest.mark.parametrize("change,message", [
    ({"peer": {**GOOD["peer"], "api": "10.0.0.2"}}, "peer.api: expected HOST:PORT"),
    ({"peer": {**GOOD["peer"], "postgres": "h:99999"}}, "peer.postgres: port 99999 is outside"),
    ({"peer": {**GOOD["peer"], "name": "a"}}, "peer.name: must differ from name"),
    ({"probe": {"threshold": 0}}, "probe.threshold"),
    ({"probe": {"interval": -1}}, "probe.interval"),
    ({"replication": {"mode": "quorum"}}, "replication.mode"),
    ({"name": "bad name"}, "name"),
    ({"surprise": 1}, "surprise: Extra inputs are not permitted"),
    ({"listen": "nowhere"}, "listen: expected HOST:PORT"),
])
def test_bad_fields_are_named(change, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        parse_config({**GOOD, **change})


def test_missing_required_field_is_named():
    with pytest.raises(ConfigError, match="token_file: Field required"):
        parse_config({k: v for k, v in GOOD.items() if k != "token_file"})


def test_unreadable_or_invalid_files(tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("name: [")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(tmp_path / "list.yaml")


def test_token_must_exist_and_be_long_enough(tmp_path: Path):
    token = tmp_path / "token"
    config = parse_config({**GOOD, "token_file": str(token)})
    with pytest.raises(ConfigError, match="token_file: cannot read"):
        config.token()
    token.write_text("short")
    with pytest.raises(ConfigError, match="at least 16"):
        config.token()
    token.write_text("x" * 32 + "\n")
    assert config.token() == "x" * 32


def test_config_round_trips_through_yaml(tmp_path: Path):
    path = tmp_path / "node.yaml"
    path.write_text(yaml.safe_dump(GOOD))
    assert load_config(path).peer.name == "b"


def test_witness_answers_by_refusal_and_fails_when_silent():
    assert witness_ok(None, 0.5)
    assert witness_ok(f"127.0.0.1:{free_port()}", 0.5), "a refused connection proves the host is reachable"
    # A listener whose backlog is full drops further SYNs: the connect times out, like a dead link.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        fillers = []
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        time.sleep(0.2)
        try:
            assert not witness_ok(f"127.0.0.1:{port}", 0.3)
        finally:
            for filler in fillers:
                filler.close()
