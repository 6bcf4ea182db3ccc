"""User-data stages the agent runs itself (after-install, after-upgrade, after-reset, reconcile).
Commands run through a real /bin/sh: the host root gets a link to it, and the commands only write
inside the root (through $EDGEPLANE_ROOT)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from edgeplane.agent.hostroot import HostRoot
from edgeplane.agent.stages import run_stage
from edgeplane.agent.userdata import validate_user_data

USER_DATA = validate_user_data(f"""#cloud-config
stages:
  after-install.before:
    - name: first
      commands: ['echo before >> "$EDGEPLANE_ROOT/order"']
  after-install:
    - name: files and sysctl
      files:
        - {{path: /etc/motd, content: "hello", permissions: 0600}}
        - {{path: /etc/b64, content: "{base64.b64encode(b'decoded').decode()}", encoding: b64}}
      sysctl: {{vm.overcommit_memory: 1}}
      commands: ['echo main >> "$EDGEPLANE_ROOT/order"']
    - name: skipped by condition
      if: '[ -e "$EDGEPLANE_ROOT/nope" ]'
      commands: ['echo never >> "$EDGEPLANE_ROOT/order"']
    - name: failing
      commands: ['exit 4']
  after-install.after:
    - commands: ['echo after >> "$EDGEPLANE_ROOT/order"']
  boot:
    - commands: ['echo boot >> "$EDGEPLANE_ROOT/order"']
""")


def test_after_install_runs_hooks_in_order(tmp_path: Path) -> None:
    root = HostRoot(tmp_path)
    root.path("/bin").mkdir(parents=True)
    os.symlink("/bin/sh", root.path("/bin/sh"))
    events: list[tuple[str, str]] = []
    ran = run_stage("after-install", USER_DATA, root, lambda kind, sev, msg: events.append((kind, msg)))
    assert (tmp_path / "order").read_text() == "before\nmain\nafter\n"  # boot is the OS's, not run
    assert root.read_text("/etc/motd") == "hello" and oct(root.path("/etc/motd").stat().st_mode & 0o777) == "0o600"
    assert root.read_text("/etc/b64") == "decoded"
    assert root.read_text("/etc/sysctl.d/90-edgeplane-files-and-sysctl.conf") == "vm.overcommit_memory = 1\n"
    assert ran == 3
    failed = [msg for kind, msg in events if kind == "stage.failed"]
    assert len(failed) == 1 and failed[0].startswith("after-install[2] failing: /bin/sh -c 'exit 4' exited 4")


def test_without_a_shell_in_the_root_commands_are_skipped_and_logged(tmp_path: Path) -> None:
    root = HostRoot(tmp_path)
    run_stage("after-install", USER_DATA, root, lambda *a: None)
    assert not (tmp_path / "order").exists()
    assert root.read_text("/etc/motd") == "hello"  # files are still written
    assert "echo main" in root.read_text("/var/log/edgeplane/skipped-commands.log")
