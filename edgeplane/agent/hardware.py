"""Hardware inventory read from /proc and /sys, and the reference system's minimums.

amd64: an Intel i3/i5/i7/i9/Xeon or AMD Ryzen/EPYC CPU, at least 2 cores, 8 GB memory and a
main disk of at least 100 GB that is an SSD. arm64: only the NVIDIA Jetson Orin family. Sizes
are decimal (GB = 10^9 bytes), so an "8 GB" machine whose firmware and kernel keep a little
memory still passes while a 4 GB one does not.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from edgeplane.agent.hostroot import HostRoot

GB = 10**9
MIN_CORES = 2
MIN_MEMORY = 8 * GB
MIN_DISK = 100 * GB
CPU_FAMILIES = [
    ("Intel Core i3/i5/i7/i9", re.compile(r"Intel.*Core.*\bi[3579]\b")),
    ("Intel Xeon", re.compile(r"Intel.*Xeon")),
    ("AMD Ryzen", re.compile(r"AMD Ryzen")),
    ("AMD EPYC", re.compile(r"AMD EPYC", re.IGNORECASE)),
]
# Block devices that are never the main disk: loop, RAM, compressed RAM swap, optical, floppy.
_NOT_DISKS = re.compile(r"^(loop|ram|zram|sr|fd|md|dm-)")
_MODEL_PATHS = ("/proc/device-tree/model", "/sys/firmware/devicetree/base/model")


@dataclass(frozen=True)
class Disk:
    name: str
    size_bytes: int
    rotational: bool
    removable: bool


@dataclass(frozen=True)
class Inventory:
    arch: str
    cpu_model: str
    cores: int
    memory_bytes: int
    disks: list[Disk] = field(default_factory=list)
    board_model: str = ""

    @property
    def main_disk(self) -> Disk | None:
        """The largest fixed disk: what the installer would pick for the OS and Kubernetes."""
        fixed = [d for d in self.disks if not d.removable]
        return max(fixed, key=lambda d: d.size_bytes, default=None)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    required: str
    found: str

    def __str__(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.check}: required {self.required}, found {self.found}"


def read_inventory(root: HostRoot) -> Inventory:
    cpuinfo = root.read_text("/proc/cpuinfo") or ""
    return Inventory(
        arch=_arch(root, cpuinfo),
        cpu_model=_cpu_model(cpuinfo),
        cores=len(re.findall(r"^processor\s*:", cpuinfo, re.MULTILINE)),
        memory_bytes=_mem_total(root.read_text("/proc/meminfo") or ""),
        disks=_disks(root),
        board_model=next((m.strip("\x00\n ") for p in _MODEL_PATHS if (m := root.read_text(p))), ""),
    )


def _arch(root: HostRoot, cpuinfo: str) -> str:
    declared = (root.read_text("/proc/sys/kernel/arch") or "").strip()
    if declared:
        return {"x86_64": "amd64", "aarch64": "arm64"}.get(declared, declared)
    if re.search(r"^vendor_id\s*:", cpuinfo, re.MULTILINE):
        return "amd64"
    if re.search(r"^CPU implementer\s*:", cpuinfo, re.MULTILINE):
        return "arm64"
    return "unknown"


def _cpu_model(cpuinfo: str) -> str:
    match = re.search(r"^(?:model name|Model|Hardware)\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    return match.group(1).strip() if match else ""


def _mem_total(meminfo: str) -> int:
    match = re.search(r"^MemTotal:\s*(\d+)\s*kB", meminfo, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else 0


def _disks(root: HostRoot) -> list[Disk]:
    block = root.path("/sys/block")
    if not block.is_dir():
        return []
    disks = []
    for entry in sorted(block.iterdir()):
        if _NOT_DISKS.match(entry.name):
            continue
        sectors = _int(root.read_text(f"/sys/block/{entry.name}/size"))
        disks.append(Disk(
            name=entry.name,
            size_bytes=sectors * 512,  # /sys/block/*/size counts 512-byte sectors whatever the device
            rotational=_int(root.read_text(f"/sys/block/{entry.name}/queue/rotational")) == 1,
            removable=_int(root.read_text(f"/sys/block/{entry.name}/removable")) == 1,
        ))
    return disks


def _int(text: str | None) -> int:
    try:
        return int((text or "").strip())
    except ValueError:
        return 0


def check_minimums(inv: Inventory) -> list[Finding]:
    """Every check with what was required and what was found; a host passes when all are ok."""
    findings = [_check_arch(inv)]
    if inv.arch == "amd64":
        family = next((name for name, pattern in CPU_FAMILIES if pattern.search(inv.cpu_model)), None)
        findings.append(Finding("cpu family", family is not None,
                                "Intel i3/i5/i7/i9/Xeon or AMD Ryzen/EPYC", inv.cpu_model or "no model name in /proc/cpuinfo"))
    findings.append(Finding("cpu cores", inv.cores >= MIN_CORES, f">= {MIN_CORES}", str(inv.cores)))
    findings.append(Finding("memory", inv.memory_bytes >= MIN_MEMORY, ">= 8 GB",
                            f"{inv.memory_bytes / GB:.1f} GB"))
    disk = inv.main_disk
    if disk is None:
        findings.append(Finding("main disk", False, ">= 100 GB SSD", "no fixed disk in /sys/block"))
    else:
        findings.append(Finding("main disk size", disk.size_bytes >= MIN_DISK, ">= 100 GB",
                                f"{disk.name} {disk.size_bytes / GB:.1f} GB"))
        findings.append(Finding("main disk type", not disk.rotational, "SSD (queue/rotational = 0)",
                                f"{disk.name} {'rotational (HDD)' if disk.rotational else 'SSD'}"))
    return findings


def _check_arch(inv: Inventory) -> Finding:
    if inv.arch == "arm64":
        orin = "jetson" in inv.board_model.lower() and "orin" in inv.board_model.lower()
        return Finding("platform", orin, "arm64: NVIDIA Jetson Orin", inv.board_model or "arm64, no device-tree model")
    return Finding("platform", inv.arch == "amd64", "amd64, or arm64 NVIDIA Jetson Orin", inv.arch)


def failures(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if not f.ok]
