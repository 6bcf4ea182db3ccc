"""The step journal: which steps of which plan are done, so a restart resumes where it stopped.

One JSON line per record, appended and fsynced before the step's effect is acknowledged. A plan
is identified by the spec generation and a hash of everything rendered, so a changed spec is a
new plan while a restart of the same one skips what is already done. Steps themselves are
idempotent (atomic file writes, "create if missing" commands), so re-running a step that was
started but not recorded as done converges to the same state.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[], None]


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._done: set[tuple[str, str]] = set()
        self._load()

    def _load(self) -> None:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return
        for line in lines:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line after a crash: that step simply was not recorded
            if record.get("state") == "done":
                self._done.add((record["plan"], record["step"]))

    def is_done(self, plan: str, step: str) -> bool:
        return (plan, step) in self._done

    def record(self, plan: str, step: str, state: str, detail: str = "") -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"time": time.time(), "plan": plan, "step": step, "state": state, "detail": detail})
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        if state == "done":
            self._done.add((plan, step))

    def run(self, plan: str, steps: Sequence[Step], on_step: Callable[[str, str], None] | None = None) -> int:
        """Run the steps not yet done for ``plan``, in order; return how many ran. A failing step
        is recorded as failed and its exception propagates (the next attempt re-runs it)."""
        ran = 0
        for step in steps:
            if self.is_done(plan, step.name):
                continue
            self.record(plan, step.name, "started")
            if on_step:
                on_step(step.name, "started")
            try:
                step.run()
            except Exception as exc:
                self.record(plan, step.name, "failed", str(exc)[:500])
                raise
            self.record(plan, step.name, "done")
            ran += 1
        return ran

    def steps_done(self, plan: str) -> list[str]:
        return [step for p, step in self._done if p == plan]
