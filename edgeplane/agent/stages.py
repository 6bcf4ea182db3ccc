"""The user-data ``stages`` the agent itself is responsible for.

The boot-time stages (``rootfs``, ``initramfs``, ``boot``, ``fs``, ``network``) belong to the OS
image's cloud-init runner and are only validated here. The agent runs the lifecycle ones at its
own lifecycle points: ``after-install`` after the node's first successful Kubernetes install,
``after-upgrade`` after an A/B upgrade is committed, ``after-reset`` after leaving a cluster, and
``reconcile`` five minutes after start and then every hour (the reference system's schedule).
Each runs ``<stage>.before``, ``<stage>``, ``<stage>.after``. A step supports ``if`` (a shell
condition), ``files``, ``sysctl``, ``users`` and ``commands``; commands go through the host-command
runner, so under ``--root`` they run only when ``/bin/sh`` exists inside the root.
"""

from __future__ import annotations

import base64
import gzip
from collections.abc import Callable

from edgeplane.agent.hostcmd import CommandFailed, run_host_command
from edgeplane.agent.hostroot import HostRoot
from edgeplane.agent.schema import StageFile, StageStep, UserData

AGENT_STAGES = ("after-install", "after-upgrade", "after-reset", "reconcile")
RECONCILE_FIRST_S = 5 * 60
RECONCILE_EVERY_S = 60 * 60
EventSink = Callable[[str, str, str], None]


def run_stage(stage: str, user_data: UserData, root: HostRoot, on_event: EventSink) -> int:
    """Run every step of ``stage`` (with its .before/.after hooks); return how many ran."""
    ran = 0
    for name in (f"{stage}.before", stage, f"{stage}.after"):
        for index, step in enumerate(user_data.stages.get(name, [])):
            label = f"{name}[{index}]{' ' + step.name if step.name else ''}"
            try:
                if _run_step(step, root):
                    ran += 1
            except CommandFailed as exc:
                on_event("stage.failed", "error", f"{label}: {exc}")
                continue
            on_event("stage.done", "info", label)
    return ran


def _run_step(step: StageStep, root: HostRoot) -> bool:
    if step.if_ and not _condition(step.if_, root):
        return False
    for file in step.files:
        root.write_text(file.path, _content(file), file.permissions if file.permissions is not None else 0o644)
    if step.sysctl:
        body = "".join(f"{key} = {value}\n" for key, value in step.sysctl.items())
        root.write_text(f"/etc/sysctl.d/90-edgeplane-{step.name or 'stage'}.conf".replace(" ", "-"), body)
        run_host_command(root, ["sysctl", "--system"])
    for user, options in step.users.items():
        groups = ",".join(options.get("groups", []))
        script = f"id -u {user} >/dev/null 2>&1 || useradd -m {user}" + (f" && usermod -aG {groups} {user}" if groups else "")
        run_host_command(root, ["/bin/sh", "-c", script])
    for command in step.commands:
        run_host_command(root, ["/bin/sh", "-c", command])
    return True


def _condition(expression: str, root: HostRoot) -> bool:
    """True when the shell condition holds; a root without a shell cannot say, so: not run."""
    if not (root.is_real_host or root.path("/bin/sh").exists()):
        return False
    try:
        return run_host_command(root, ["/bin/sh", "-c", expression]).ran
    except CommandFailed:
        return False


def _content(file: StageFile) -> str:
    data = file.content.encode()
    if "b64" in file.encoding or "base64" in file.encoding:
        data = base64.b64decode(data)
    if file.encoding.startswith("gz"):
        data = gzip.decompress(data)
    return data.decode()
