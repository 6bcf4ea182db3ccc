"""Turning a desired node spec into a converged node: a journaled plan of idempotent steps.

apply: fetch artifacts (verified) -> A/B image upgrade when the provider image changed -> write
every rendered file -> run the host commands and the distribution installer. The plan's ID is the
spec generation plus a hash of everything it would do, so a restart (even ``kill -9`` mid-step)
resumes the same plan and a changed spec starts a new one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgeplane.agent.artifacts import ArtifactStore
from edgeplane.agent.hostcmd import run_host_command
from edgeplane.agent.hostroot import HostRoot
from edgeplane.agent.journal import Journal, Step
from edgeplane.agent.render import NodeContext, Rendered, render_node
from edgeplane.agent.render.canonical import INSTALLER as CANONICAL_INSTALLER
from edgeplane.agent.render.kubeadm import INSTALLER as KUBEADM_INSTALLER
from edgeplane.agent.render.rancher import INSTALLERS as RANCHER_INSTALLERS
from edgeplane.agent.schema import UserData
from edgeplane.agent.slots import Slots, image_health_check
from edgeplane.agent.spec import Artifact, NodeSpec
from edgeplane.agent.stages import run_stage

PROVIDER_IMAGE = "provider-image"
WRITTEN = "written-files.json"
AFTER_INSTALL_DONE = "after-install.done"
KUBERNETES_STATE = ("/etc/rancher", "/var/lib/rancher", "/etc/kubernetes", "/var/lib/edgeplane/canonical",
                    "/var/lib/edgeplane/datastore", "/var/lib/edgeplane/twonode")
ALL_INSTALLERS = (*RANCHER_INSTALLERS.values(), KUBEADM_INSTALLER, CANONICAL_INSTALLER)
EventSink = Callable[[str, str, str], None]


class UpgradeRolledBack(RuntimeError):
    """The new image failed its health check; the host is back on the previous slot."""


@dataclass
class Installer:
    root: HostRoot
    user_data: UserData
    host_id: str
    node_ip: str
    store: ArtifactStore
    slots: Slots
    on_event: EventSink

    @property
    def journal(self) -> Journal:
        return Journal(self.root.state("journal.jsonl"))

    def plan(self, spec: NodeSpec) -> tuple[str, list[Step]]:
        if spec.action == "reset":
            return f"g{spec.generation}-reset", [Step("reset kubernetes", self.reset_kubernetes)]
        if spec.action == "none" or spec.cluster is None:
            return f"g{spec.generation}-none", []
        rendered = render_node(NodeContext(spec, self.user_data, self.host_id, self.node_ip))
        steps = [Step(f"fetch {a.name}", lambda a=a: self.store.ensure(a)) for a in spec.artifacts]
        image = next((a for a in spec.artifacts if a.name == PROVIDER_IMAGE), None)
        if image is not None:
            steps.append(Step(f"image {image.digest[7:19]}", lambda: self._upgrade(spec, image)))
        steps.append(Step("write files", lambda: self._write(rendered)))
        for index, argv in enumerate(rendered.commands):
            steps.append(Step(f"run {index}: {Path(argv[0]).name} {' '.join(argv[1:2])}".strip(),
                              lambda argv=argv: run_host_command(self.root, argv)))
        if not self.root.state(AFTER_INSTALL_DONE).exists():
            steps.append(Step("stage after-install", self._after_install))
        if rendered.warnings:
            steps.append(Step("report warnings", lambda: [self.on_event("config.warning", "warning", w)
                                                          for w in rendered.warnings]))
        digest = hashlib.sha256(json.dumps({
            "files": {p: f.content for p, f in rendered.files.items()}, "commands": rendered.commands,
            "artifacts": [a.digest for a in spec.artifacts]}, sort_keys=True).encode()).hexdigest()
        return f"g{spec.generation}-{digest[:12]}", steps

    def apply(self, spec: NodeSpec) -> int:
        """Run (or resume) the plan for ``spec``; return how many steps ran this time."""
        plan_id, steps = self.plan(spec)
        return self.journal.run(plan_id, steps, lambda step, state: self.on_event(
            "install.step", "info", f"{plan_id}: {step} {state}"))

    def _upgrade(self, spec: NodeSpec, image_artifact: Artifact) -> None:
        os_layer = spec.profile.layer("os") if spec.profile else None
        version = f"{os_layer.pack}-{os_layer.version}" if os_layer else image_artifact.digest[7:19]
        version += f"+{image_artifact.digest[7:15]}"
        state = self.slots.upgrade(self.store.ensure(image_artifact), version, image_artifact.digest,
                                   image_health_check(self.root))
        running = state.slots[state.active]
        if running is None or running.digest != image_artifact.digest:  # the new image was refused
            raise UpgradeRolledBack(state.last_result)
        if state.last_result.startswith("committed"):
            run_stage("after-upgrade", self.user_data, self.root, self.on_event)

    def _write(self, rendered: Rendered) -> None:
        written = set(self._written())
        for path, file in rendered.files.items():
            self.root.write_text(path, file.content, file.mode)
            written.add(path)
        self.root.write_text(f"/var/lib/edgeplane/agent/{WRITTEN}", json.dumps(sorted(written), indent=1))

    def _written(self) -> list[str]:
        return json.loads(self.root.read_text(f"/var/lib/edgeplane/agent/{WRITTEN}") or "[]")

    def _after_install(self) -> None:
        run_stage("after-install", self.user_data, self.root, self.on_event)
        self.root.write_text(f"/var/lib/edgeplane/agent/{AFTER_INSTALL_DONE}", "done\n")

    def reset_kubernetes(self) -> None:
        """Leave the cluster: the installers' own reset, then every file the agent wrote and the
        Kubernetes state directories (idempotent: missing files are fine)."""
        for installer in ALL_INSTALLERS:
            if self.root.path(installer).exists():
                run_host_command(self.root, [installer, "reset"])
        for path in self._written():
            self.root.path(path).unlink(missing_ok=True)
        for directory in KUBERNETES_STATE:
            shutil.rmtree(self.root.path(directory), ignore_errors=True)
        self.root.state(WRITTEN).unlink(missing_ok=True)
        self.root.state(AFTER_INSTALL_DONE).unlink(missing_ok=True)
        self.on_event("reset.kubernetes", "info", "left the cluster: Kubernetes state removed")
        run_stage("after-reset", self.user_data, self.root, self.on_event)
