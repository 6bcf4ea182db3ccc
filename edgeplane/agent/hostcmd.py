"""Running host commands (installers, systemctl, update-ca-certificates) under a host root.

On the real host (root ``/``) commands run as given. Under ``--root DIR`` a command runs only
when its executable exists inside DIR (tests and labs place fixture installers there, e.g.
``DIR/opt/edgeplane/installers/k3s-install.sh``), with the root passed as ``EDGEPLANE_ROOT``;
other host commands are skipped and the skip is logged to ``DIR/var/log/edgeplane/skipped-commands.log``,
so a lab never touches the machine it runs on.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass

from edgeplane.agent.hostroot import HostRoot

SEARCH_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
SKIP_LOG = "/var/log/edgeplane/skipped-commands.log"


class CommandFailed(RuntimeError):
    def __init__(self, argv: list[str], code: int, output: str) -> None:
        super().__init__(f"{shlex.join(argv)} exited {code}: {output.strip()[-400:]}")
        self.code = code


@dataclass(frozen=True)
class CommandResult:
    ran: bool
    output: str = ""


def run_host_command(root: HostRoot, argv: list[str], timeout: float = 1800) -> CommandResult:
    if root.is_real_host:
        return _run(argv, dict(os.environ), timeout)
    resolved = _resolve_in_root(root, argv[0])
    if resolved is None:
        with open(_skip_log(root), "a", encoding="utf-8") as log:
            log.write(shlex.join(argv) + "\n")
        return CommandResult(ran=False)
    env = dict(os.environ, EDGEPLANE_ROOT=str(root.root))
    return _run([resolved, *argv[1:]], env, timeout, shown=argv)


def _skip_log(root: HostRoot) -> str:
    path = root.path(SKIP_LOG)
    path.parent.mkdir(parents=True, exist_ok=True)
    return str(path)


def _resolve_in_root(root: HostRoot, program: str) -> str | None:
    candidates = [program] if program.startswith("/") else [f"{d}/{program}" for d in SEARCH_PATH]
    for candidate in candidates:
        path = root.path(candidate)
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return None


def _run(argv: list[str], env: dict[str, str], timeout: float, shown: list[str] | None = None) -> CommandResult:
    proc = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout, check=False)
    if proc.returncode != 0:  # report the command as the user-data or renderer wrote it
        raise CommandFailed(shown or argv, proc.returncode, proc.stdout)
    return CommandResult(ran=True, output=proc.stdout)
