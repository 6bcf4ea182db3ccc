"""A simulated host's /proc and /sys inputs under a ``--root``, for lab sites and tests.

Lab agents run side by side on one machine, each in its own root; this writes the few files the
inventory reads so every lab host looks like a real small edge box (or a deliberately weak one).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

from edgeplane.agent.hostroot import HostRoot

INTEL_I5 = "12th Gen Intel(R) Core(TM) i5-1235U"


def write_lab_host(root: Path, *, cpu_model: str = INTEL_I5, cores: int = 4, memory_gb: float = 16,
                   disk_gb: int = 256, rotational: bool = False, arch: str = "x86_64",
                   board_model: str = "", product_uuid: str | None = None) -> None:
    """Write /proc/cpuinfo, /proc/meminfo, /proc/sys/kernel/arch, /sys/block/sda and the DMI UUID."""
    host = HostRoot(root)
    if arch == "aarch64":
        cpu = "".join(f"processor\t: {i}\nCPU implementer\t: 0x41\nCPU part\t: 0xd42\n\n" for i in range(cores))
    else:
        cpu = "".join(f"processor\t: {i}\nvendor_id\t: GenuineIntel\nmodel name\t: {cpu_model}\n\n"
                      for i in range(cores))
    host.write_text("/proc/cpuinfo", cpu)
    host.write_text("/proc/meminfo", f"MemTotal:       {int(memory_gb * 10**9 / 1024)} kB\nMemFree: 1 kB\n")
    host.write_text("/proc/sys/kernel/arch", arch + "\n")
    host.write_text("/sys/block/sda/size", f"{disk_gb * 10**9 // 512}\n")
    host.write_text("/sys/block/sda/removable", "0\n")
    host.write_text("/sys/block/sda/queue/rotational", f"{int(rotational)}\n")
    host.write_text("/sys/class/dmi/id/product_uuid", (product_uuid or str(uuid.uuid4())) + "\n")
    if board_model:
        host.write_text("/proc/device-tree/model", board_model + "\x00")


# A lab installer stands in for a distribution's installer (which downloads and installs K3s, RKE2,
# kubeadm or the k8s snap and cannot run unprivileged on a shared machine): it records its
# arguments, and sleeps while a "slow-install" marker exists so a test can kill the agent mid-step.
LAB_INSTALLER = """#!/bin/sh
# edgeplane lab installer: records its arguments instead of installing a distribution
root="${EDGEPLANE_ROOT:-/}"
echo "$(basename "$0") $*" >> "$root/var/log/installer-calls.log"
while [ -e "$root/etc/edgeplane/slow-install" ]; do sleep 0.2; done
exit 0
"""
INSTALLER_NAMES = ("k3s-install.sh", "rke2-install.sh", "kubeadm-install.sh", "canonical-install.sh")


def write_lab_installers(root: Path) -> None:
    host = HostRoot(root)
    for name in INSTALLER_NAMES:
        host.write_text(f"/opt/edgeplane/installers/{name}", LAB_INSTALLER, 0o755)
    host.path("/var/log").mkdir(parents=True, exist_ok=True)


class AgentProcess:
    """``edgeplane agent --root ROOT`` as a child process in its own process group (labs, tests)."""

    def __init__(self, root: Path, user_data: Path, extra_args: Sequence[str] = ()) -> None:
        self.root = root
        self.user_data = user_data
        self.extra_args = list(extra_args)  # e.g. --capsule-dir DIR
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> AgentProcess:
        with open(self.root / "agent.log", "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "edgeplane.cli", "agent", "--user-data", str(self.user_data),
                 "--root", str(self.root), *self.extra_args],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole group (the agent and any installer it runs) and reap it."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=10)

    @property
    def host_id(self) -> str:
        return (HostRoot(self.root).read_text("/var/lib/edgeplane/agent/host-id") or "").strip()

    def state(self, name: str) -> str:
        return HostRoot(self.root).read_text(f"/var/lib/edgeplane/agent/{name}") or ""
