"""The node's datastore process: started by the agent, adopted across agent restarts, restarted
on promotion so it re-points at the local (now primary) PostgreSQL even when its old connection
to the previous leader hangs (a paused or black-holed peer never sends a reset).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)


def datastore_dsn(local: tuple[str, int], peer: tuple[str, int], database: str, node: str) -> str:
    """libpq multi-host DSN: local first, then the peer; always the one that accepts writes."""
    # Hosts and ports as query parameters: a multi-host netloc confuses URL parsers.
    hosts = ",".join(h for h, _ in (local, peer))
    ports = ",".join(str(p) for _, p in (local, peer))
    return (f"postgresql://postgres@/{database}?host={hosts}&port={ports}&target_session_attrs=read-write"
            f"&connect_timeout=2&application_name=edgeplane-datastore-{node}")


class ManagedProcess:
    """One long-running child in its own session, its PID kept in a file so it can be adopted."""

    def __init__(self, argv: list[str], pid_file: Path, log_file: Path, marker: str) -> None:
        self.argv = argv
        self.pid_file = pid_file
        self.log_file = log_file
        self.marker = marker  # substring of its command line, so a recycled PID is not adopted

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            stat = Path(f"/proc/{pid}/stat").read_text()
        except (OSError, ValueError):
            return None
        if self.marker not in cmdline or stat.rsplit(")", 1)[1].split()[0] == "Z":
            return None
        return pid

    def ensure(self) -> int:
        return self.pid() or self.start()

    def start(self) -> int:
        with open(self.log_file, "ab") as out:
            child = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True, cwd="/")
        self.pid_file.write_text(str(child.pid))
        log.info("started %s (pid %d)", self.marker, child.pid)
        return child.pid

    def stop(self, timeout: float = 5.0, graceful: bool = True) -> None:
        pid = self.pid()
        if pid is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL) if graceful else (signal.SIGKILL,):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.pid() == pid:
                _reap(pid)
                time.sleep(0.05)
            if self.pid() != pid:
                break
        _reap(pid)

    def restart(self, graceful: bool = True) -> int:
        self.stop(graceful=graceful)
        return self.start()


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def datastore_argv(command: list[str] | None, listen: str, dsn: str, node: str) -> list[str]:
    base = command or [sys.executable, "-m", "edgeplane.cli", "datastore"]
    return [*base, "--listen", listen, "--endpoint", dsn, "--node-name", node]
