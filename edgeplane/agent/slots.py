"""A/B image slots: an explicit, persisted state machine (what GRUB entries and a boot counter do
on a real host).

States (``BootState.state``)::

    steady --upgrade--> writing --image written--> trial --health ok--> steady (committed)
                                                      \\--health failed / too many boots--> steady (rolled back)
    steady --manual rollback--> trial (switched to the passive slot) --> steady
    any --reset to factory--> steady (slot a = factory image, slot b empty)

``writing`` only ever touches the passive slot, so a crash there leaves the active slot as it was
(the write restarts). ``trial`` records the slot to fall back to; each agent start during a trial
counts as a boot, and after ``MAX_TRIAL_BOOTS`` unconfirmed boots the agent falls back without
asking the new image anything, as a bootloader would. Every transition is saved atomically before
it is acted on and reported through ``on_event``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

from edgeplane.agent.hostroot import HostRoot, write_atomic

BOOT_DIR = "/boot/edgeplane"
MAX_TRIAL_BOOTS = 3
HEALTH_CHECK = "health-check"  # an executable an image may carry at its top level
SlotName = Literal["a", "b"]
EventSink = Callable[[str, str, str], None]  # kind, severity, message


class SlotError(RuntimeError):
    """An A/B operation that is not possible in the current state."""


@dataclass(frozen=True)
class SlotImage:
    digest: str
    version: str


@dataclass(frozen=True)
class BootState:
    active: SlotName = "a"
    state: Literal["steady", "writing", "trial"] = "steady"
    slots: dict[str, SlotImage | None] = field(default_factory=lambda: {"a": None, "b": None})
    target: SlotImage | None = None       # image being written (state writing)
    source: str | None = None             # where the image being written comes from
    fallback: SlotName | None = None      # slot to return to (state trial)
    trial_boots: int = 0
    last_result: str = ""
    updated: float = 0.0

    @property
    def passive(self) -> SlotName:
        return "b" if self.active == "a" else "a"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _other(slot: SlotName) -> SlotName:
    return "b" if slot == "a" else "a"


class Slots:
    def __init__(self, root: HostRoot, on_event: EventSink | None = None) -> None:
        self.root = root
        self.on_event = on_event or (lambda kind, severity, message: None)
        self.state_file = root.path(f"{BOOT_DIR}/state.json")

    # ------------------------------------------------------------------ state
    def load(self) -> BootState:
        try:
            raw = json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return BootState()
        slots = {k: SlotImage(**v) if v else None for k, v in raw.pop("slots").items()}
        target = SlotImage(**raw.pop("target")) if raw.get("target") else None
        raw.pop("target", None)
        return BootState(slots=slots, target=target, **raw)

    def _save(self, state: BootState, event: tuple[str, str, str] | None = None) -> BootState:
        state = replace(state, updated=time.time())
        write_atomic(self.state_file, json.dumps(state.to_dict(), indent=2).encode())
        if event:
            self.on_event(*event)
        return state

    def slot_dir(self, slot: SlotName) -> Path:
        return self.root.path(f"{BOOT_DIR}/slots/{slot}")

    # ------------------------------------------------------------- operations
    def install_first(self, image: Path, version: str, digest: str) -> BootState:
        """A host with no image yet: write the factory copy and slot a, no fallback exists."""
        _write_image(image, self.root.path(f"{BOOT_DIR}/factory"))
        write_atomic(self.root.path(f"{BOOT_DIR}/factory.json"), json.dumps(asdict(SlotImage(digest, version))).encode())
        _write_image(image, self.slot_dir("a"))
        state = BootState(active="a", slots={"a": SlotImage(digest, version), "b": None},
                          last_result=f"installed {version} in slot a")
        return self._save(state, ("upgrade.installed", "info", f"image {version} installed in slot a"))

    def upgrade(self, image: Path, version: str, digest: str, health: Callable[[Path], tuple[bool, str]]) -> BootState:
        state = self.load()
        if state.slots[state.active] is None:
            return self.install_first(image, version, digest)
        if state.state != "steady":
            state = self.resume(health)
        current = state.slots[state.active]
        if current and current.digest == digest:
            return state
        target_slot = state.passive
        state = self._save(replace(state, state="writing", target=SlotImage(digest, version), source=str(image)),
                           ("upgrade.writing", "info", f"writing {version} to passive slot {target_slot}"))
        return self._finish_write(state, health)

    def _finish_write(self, state: BootState, health: Callable[[Path], tuple[bool, str]]) -> BootState:
        assert state.target is not None and state.source is not None
        target_slot = state.passive
        _write_image(Path(state.source), self.slot_dir(target_slot))
        slots = dict(state.slots, **{target_slot: state.target})
        state = self._save(
            replace(state, state="trial", slots=slots, active=target_slot, fallback=state.active, trial_boots=1,
                    target=None, source=None),
            ("upgrade.switched", "info", f"switched to slot {target_slot} ({state.target.version}); health check"))
        return self._check(state, health)

    def _check(self, state: BootState, health: Callable[[Path], tuple[bool, str]]) -> BootState:
        ok, reason = health(self.slot_dir(state.active))
        image = state.slots[state.active]
        version = image.version if image else "?"
        if ok:
            return self._save(replace(state, state="steady", fallback=None, trial_boots=0,
                                      last_result=f"committed {version} in slot {state.active}"),
                              ("upgrade.committed", "info", f"slot {state.active} ({version}) healthy, committed"))
        return self._fall_back(state, f"health check failed: {reason}")

    def _fall_back(self, state: BootState, reason: str) -> BootState:
        assert state.fallback is not None
        back = state.fallback
        image = state.slots[back]
        return self._save(
            replace(state, state="steady", active=back, fallback=None, trial_boots=0,
                    last_result=f"rolled back to slot {back}: {reason}"),
            ("upgrade.rolled-back", "error",
             f"rolled back to slot {back} ({image.version if image else '?'}): {reason}"))

    def resume(self, health: Callable[[Path], tuple[bool, str]]) -> BootState:
        """On agent start: finish an interrupted write, or count a trial boot and re-check."""
        state = self.load()
        if state.state == "writing":
            return self._finish_write(state, health)
        if state.state == "trial":
            state = self._save(replace(state, trial_boots=state.trial_boots + 1))
            if state.trial_boots > MAX_TRIAL_BOOTS:
                return self._fall_back(state, f"not confirmed after {MAX_TRIAL_BOOTS} boots")
            return self._check(state, health)
        return state

    def rollback(self, health: Callable[[Path], tuple[bool, str]]) -> BootState:
        """Manual rollback: boot the passive slot (it is health-checked like an upgrade)."""
        state = self.load()
        if state.state != "steady":
            raise SlotError(f"cannot roll back while {state.state}; wait for it to finish")
        if state.slots[state.passive] is None:
            raise SlotError(f"passive slot {state.passive} holds no image to roll back to")
        state = self._save(replace(state, state="trial", active=state.passive, fallback=state.active, trial_boots=1),
                           ("upgrade.manual-rollback", "warning", f"manual rollback to slot {state.passive}"))
        return self._check(state, health)

    def reset_to_factory(self) -> BootState:
        shutil.rmtree(self.root.path(f"{BOOT_DIR}/slots"), ignore_errors=True)
        meta = self.root.path(f"{BOOT_DIR}/factory.json")
        if not meta.exists():
            return self._save(BootState(last_result="reset: no factory image"), ("reset.slots", "info", "no image"))
        factory = SlotImage(**json.loads(meta.read_text()))
        shutil.copytree(self.root.path(f"{BOOT_DIR}/factory"), self.slot_dir("a"))
        return self._save(BootState(slots={"a": factory, "b": None}, last_result=f"reset to factory image {factory.version}"),
                          ("reset.slots", "info", f"slots reset to factory image {factory.version}"))


def _write_image(image: Path, slot_dir: Path) -> None:
    """Replace a slot's content with the image (a tar is unpacked; anything else is stored as is)."""
    staging = slot_dir.with_name(slot_dir.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    if tarfile.is_tarfile(image):
        with tarfile.open(image) as tar:
            tar.extractall(staging, filter="data")
    else:
        shutil.copyfile(image, staging / "image")
    shutil.rmtree(slot_dir, ignore_errors=True)
    staging.rename(slot_dir)


def image_health_check(root: HostRoot, timeout: float = 120) -> Callable[[Path], tuple[bool, str]]:
    """The health check of a switched-to slot: the image's own ``health-check`` when it has one."""

    def check(slot_dir: Path) -> tuple[bool, str]:
        script = slot_dir / HEALTH_CHECK
        if not script.exists():
            return True, "image has no health-check"
        proc = subprocess.run([str(script), str(root.root)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=timeout, check=False, env={"EDGEPLANE_ROOT": str(root.root),
                                                                             "PATH": "/usr/bin:/bin"})
        return proc.returncode == 0, (proc.stdout.strip()[-300:] or f"exit {proc.returncode}")

    return check
