"""A/B slots: upgrade commits on a healthy image, falls back on a failing one, resumes after a
crash in each state, manual rollback, reset to factory. Images are real tar files whose
``health-check`` script is run by the agent."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from edgeplane.agent.hostroot import HostRoot
from edgeplane.agent.slots import MAX_TRIAL_BOOTS, SlotError, Slots, image_health_check


def image(tmp_path: Path, version: str, healthy: bool = True) -> Path:
    path = tmp_path / f"image-{version}.tar"
    script = f"#!/bin/sh\necho checking {version}\nexit {0 if healthy else 1}\n".encode()
    with tarfile.open(path, "w") as tar:
        for name, data, mode in (("health-check", script, 0o755), ("VERSION", version.encode(), 0o644)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture()
def slots(tmp_path: Path) -> tuple[Slots, list[str], HostRoot]:
    events: list[str] = []
    root = HostRoot(tmp_path / "root")
    return Slots(root, lambda kind, sev, msg: events.append(kind)), events, root


def test_upgrade_commits_then_failing_upgrade_rolls_back(tmp_path: Path, slots: tuple) -> None:
    s, events, root = slots
    health = image_health_check(root)
    s.upgrade(image(tmp_path, "v1"), "v1", "d1", health)
    state = s.upgrade(image(tmp_path, "v2"), "v2", "d2", health)
    assert (state.active, state.state, state.slots["a"].version, state.slots["b"].version) == ("b", "steady", "v1", "v2")
    assert (s.slot_dir("b") / "VERSION").read_text() == "v2"
    state = s.upgrade(image(tmp_path, "v3", healthy=False), "v3", "d3", health)
    assert (state.active, state.state) == ("b", "steady")  # back on v2
    assert state.last_result.startswith("rolled back to slot b: health check failed: checking v3")
    assert events == ["upgrade.installed", "upgrade.writing", "upgrade.switched", "upgrade.committed",
                      "upgrade.writing", "upgrade.switched", "upgrade.rolled-back"]
    assert json.loads(s.state_file.read_text())["active"] == "b"


def test_same_digest_is_a_no_op(tmp_path: Path, slots: tuple) -> None:
    s, events, root = slots
    s.upgrade(image(tmp_path, "v1"), "v1", "d1", image_health_check(root))
    s.upgrade(image(tmp_path, "v1"), "v1", "d1", image_health_check(root))
    assert events == ["upgrade.installed"]


def test_crash_while_writing_resumes_and_active_stays(tmp_path: Path, slots: tuple,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    s, events, root = slots
    health = image_health_check(root)
    s.upgrade(image(tmp_path, "v1"), "v1", "d1", health)

    def power_cut(*_: object) -> None:
        raise SystemExit("power cut")
    # the power goes right after the "writing" state was saved, before the image is written
    with monkeypatch.context() as patch:
        patch.setattr("edgeplane.agent.slots._write_image", power_cut)
        with pytest.raises(SystemExit):
            s.upgrade(image(tmp_path, "v2"), "v2", "d2", health)
    assert s.load().state == "writing" and s.load().active == "a"
    state = Slots(root).resume(health)  # the next agent start
    assert (state.state, state.active, state.slots["b"].version) == ("steady", "b", "v2")


def test_unconfirmed_trial_falls_back_after_max_boots(tmp_path: Path, slots: tuple) -> None:
    s, _, root = slots
    health = image_health_check(root)
    s.upgrade(image(tmp_path, "v1"), "v1", "d1", health)

    def hang(_: Path) -> tuple[bool, str]:
        raise SystemExit("reboot during health check")
    with pytest.raises(SystemExit):
        s.upgrade(image(tmp_path, "v2"), "v2", "d2", hang)
    for _ in range(MAX_TRIAL_BOOTS - 1):
        with pytest.raises(SystemExit):
            Slots(root).resume(hang)
    state = Slots(root).resume(hang)
    assert (state.state, state.active) == ("steady", "a")
    assert f"not confirmed after {MAX_TRIAL_BOOTS} boots" in state.last_result


def test_manual_rollback_and_reset_to_factory(tmp_path: Path, slots: tuple) -> None:
    s, events, root = slots
    health = image_health_check(root)
    with pytest.raises(SlotError, match="holds no image"):
        s.rollback(health)
    s.upgrade(image(tmp_path, "v1"), "v1", "d1", health)
    s.upgrade(image(tmp_path, "v2"), "v2", "d2", health)
    state = s.rollback(health)
    assert (state.active, state.slots["a"].version) == ("a", "v1")
    state = s.reset_to_factory()
    assert state.slots == {"a": state.slots["a"], "b": None} and state.slots["a"].version == "v1"
    assert (s.slot_dir("a") / "VERSION").read_text() == "v1" and not s.slot_dir("b").exists()
