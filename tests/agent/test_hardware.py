"""Hardware inventory and minimums on fixture /proc and /sys trees (written by write_lab_host)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeplane.agent import HostRoot, check_minimums, read_inventory, write_lab_host
from edgeplane.agent.hardware import failures


def findings_for(tmp_path: Path, **host: object) -> dict[str, str]:
    write_lab_host(tmp_path, **host)  # type: ignore[arg-type]
    return {f.check: str(f) for f in failures(check_minimums(read_inventory(HostRoot(tmp_path))))}


def test_inventory_reads_proc_and_sys(tmp_path: Path) -> None:
    write_lab_host(tmp_path, cores=4, memory_gb=16, disk_gb=256)
    root = HostRoot(tmp_path)
    root.write_text("/sys/block/loop0/size", "999999999\n")       # ignored: not a disk
    root.write_text("/sys/block/sdb/size", str(32 * 10**9 // 512))  # a USB stick
    root.write_text("/sys/block/sdb/removable", "1\n")
    inv = read_inventory(root)
    assert (inv.arch, inv.cores) == ("amd64", 4)
    assert inv.cpu_model == "12th Gen Intel(R) Core(TM) i5-1235U"
    assert abs(inv.memory_bytes - 16 * 10**9) < 2048
    assert [d.name for d in inv.disks] == ["sda", "sdb"]
    assert inv.main_disk.name == "sda" and inv.main_disk.size_bytes == 256 * 10**9


@pytest.mark.parametrize("model", [
    "Intel(R) Core(TM) i3-8100 CPU @ 3.60GHz", "Intel(R) Core(TM) i9-13900K",
    "Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz", "AMD Ryzen 7 5800X 8-Core Processor",
    "AMD EPYC 7763 64-Core Processor",
])
def test_supported_amd64_hosts_pass(tmp_path: Path, model: str) -> None:
    assert findings_for(tmp_path, cpu_model=model) == {}


def test_jetson_orin_passes_other_arm64_fails(tmp_path: Path) -> None:
    assert findings_for(tmp_path / "orin", arch="aarch64", board_model="NVIDIA Jetson AGX Orin Developer Kit") == {}
    assert findings_for(tmp_path / "pi", arch="aarch64", board_model="Raspberry Pi 4 Model B Rev 1.4") == {
        "platform": "FAIL platform: required arm64: NVIDIA Jetson Orin, found Raspberry Pi 4 Model B Rev 1.4"}


def test_each_minimum_fails_precisely(tmp_path: Path) -> None:
    found = findings_for(tmp_path, cpu_model="Intel(R) Celeron(R) N4020 CPU @ 1.10GHz", cores=1,
                         memory_gb=4, disk_gb=64, rotational=True)
    assert found == {
        "cpu family": "FAIL cpu family: required Intel i3/i5/i7/i9/Xeon or AMD Ryzen/EPYC, "
                      "found Intel(R) Celeron(R) N4020 CPU @ 1.10GHz",
        "cpu cores": "FAIL cpu cores: required >= 2, found 1",
        "memory": "FAIL memory: required >= 8 GB, found 4.0 GB",
        "main disk size": "FAIL main disk size: required >= 100 GB, found sda 64.0 GB",
        "main disk type": "FAIL main disk type: required SSD (queue/rotational = 0), found sda rotational (HDD)",
    }


def test_boundaries_are_inclusive(tmp_path: Path) -> None:
    assert findings_for(tmp_path, cores=2, memory_gb=8, disk_gb=100) == {}


def test_no_disk_is_reported(tmp_path: Path) -> None:
    write_lab_host(tmp_path)
    for f in (tmp_path / "sys/block/sda").rglob("*"):
        if f.is_file():
            f.unlink()
    (tmp_path / "sys/block/sda/queue").rmdir()
    (tmp_path / "sys/block/sda").rmdir()
    found = {f.check: str(f) for f in failures(check_minimums(read_inventory(HostRoot(tmp_path))))}
    assert found == {"main disk": "FAIL main disk: required >= 100 GB SSD, found no fixed disk in /sys/block"}
