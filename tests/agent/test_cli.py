"""`edgeplane agent` subcommands on a host root: validate, hardware, status, rollback, reset."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from typer.testing import CliRunner

from edgeplane.agent import HostRoot, write_lab_host
from edgeplane.agent.oem import keep_original_user_data
from edgeplane.agent.slots import Slots, image_health_check
from edgeplane.agent.userdata import validate_user_data
from edgeplane.cli import app

runner = CliRunner()


def image(tmp_path: Path, version: str) -> Path:
    path = tmp_path / f"{version}.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("VERSION")
        info.size = len(version)
        tar.addfile(info, io.BytesIO(version.encode()))
    return path


def test_validate_reports_field_line_reason(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("#cloud-config\nedgeplane:\n  localUI:\n    port: -1\n")
    result = runner.invoke(app, ["agent", "validate", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:4: edgeplane.localUI.port: Input should be greater than or equal to 1" in result.output
    good = tmp_path / "good.yaml"
    good.write_text("#cloud-config\n")
    assert runner.invoke(app, ["agent", "validate", str(good)]).output.strip() == "user-data is valid"


def test_hardware_exit_code(tmp_path: Path) -> None:
    write_lab_host(tmp_path / "ok")
    write_lab_host(tmp_path / "weak", cores=1)
    assert runner.invoke(app, ["agent", "--root", str(tmp_path / "ok"), "hardware"]).exit_code == 0
    weak = runner.invoke(app, ["agent", "--root", str(tmp_path / "weak"), "hardware"])
    assert weak.exit_code == 1 and "FAIL cpu cores: required >= 2, found 1" in weak.output


def test_running_without_user_data_is_refused() -> None:
    result = runner.invoke(app, ["agent"])
    assert result.exit_code == 2 and "--user-data" in result.output


def test_rollback_status_and_reset_keep_original_user_data(tmp_path: Path) -> None:
    root = HostRoot(tmp_path / "root")
    user_data = tmp_path / "ud.yaml"
    user_data.write_text("#cloud-config\nedgeplane:\n  site:\n    name: edge-x\n")
    keep_original_user_data(root, user_data, None)
    slots = Slots(root)
    slots.upgrade(image(tmp_path, "v1"), "v1", "d1", image_health_check(root))
    slots.upgrade(image(tmp_path, "v2"), "v2", "d2", image_health_check(root))
    root.write_text("/var/lib/edgeplane/agent/host-id", "edge-x\n")
    root.write_text("/var/lib/edgeplane/agent/credential", "ephc_x\n")
    root.write_text("/var/lib/edgeplane/agent/journal.jsonl", "{}\n")
    root.write_text("/etc/rancher/k3s/config.yaml", "token: x\n")
    args = ["agent", "--root", str(root.root)]
    assert "active slot a: committed v1 in slot a" in runner.invoke(app, [*args, "rollback"]).output
    assert '"active": "a"' in runner.invoke(app, [*args, "status"]).output
    result = runner.invoke(app, [*args, "reset"])
    assert result.exit_code == 0 and "journal.jsonl" in result.output
    assert not root.path("/etc/rancher").exists() and not root.state("journal.jsonl").exists()
    assert root.read_text("/oem/90_custom.yaml") == user_data.read_text()
    assert root.state("credential").exists()  # the default reset keeps the registration
    assert Slots(root).load().slots == {"a": Slots(root).load().slots["a"], "b": None}
    runner.invoke(app, [*args, "reset", "--factory"])
    assert not root.state("credential").exists() and root.read_text("/oem/90_custom.yaml")


def test_site_user_data_arriving_later_is_kept_and_originals_win(tmp_path: Path) -> None:
    root = HostRoot(tmp_path / "root")
    builtin, site = tmp_path / "ud.yaml", tmp_path / "site.yaml"
    builtin.write_text("#cloud-config\nedgeplane:\n  site:\n    name: edge-a\n")
    site.write_text("#cloud-config\nedgeplane:\n  site:\n    name: edge-site\n")
    notes: list[str] = []
    assert keep_original_user_data(root, builtin, None, notes.append) == (builtin.read_text(), None)
    # the site ISO is plugged in at a later boot: its user-data is kept from then on
    assert keep_original_user_data(root, builtin, site, notes.append)[1] == site.read_text()
    original = builtin.read_text()
    builtin.write_text("#cloud-config\n")
    assert keep_original_user_data(root, builtin, site, notes.append)[0] == original
    assert notes == [f"note: {builtin} differs from the original kept in /oem/90_custom.yaml; the original is used "
                     f"(remove {root.path('/oem/90_custom.yaml')} to take the new one)"]


def test_inventory_names_the_static_nic() -> None:
    from edgeplane.agent.hostinfo import primary_nic

    ud = validate_user_data("#cloud-config\nedgeplane:\n  site:\n    network:\n      interfaces:\n"
                            "        enp1s0: {type: static, ipAddress: 10.1.2.3/24, gateway: 10.1.2.1}\n")
    assert primary_nic(ud, "10.1.2.3") == {"name": "enp1s0", "ips": ["10.1.2.3/24"]}
    assert primary_nic(ud, "127.0.0.1") == {"name": "primary", "ips": ["127.0.0.1/32"]}
