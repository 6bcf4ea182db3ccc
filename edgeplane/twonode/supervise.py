"""The node's datastore process: started by the agent, adopted across agent restarts, and always
pointed at the leader's PostgreSQL: its own when this node leads, the peer's when it follows.

A single target (not a libpq multi-host list) means a datastore can never write to the wrong
side: with a list, one failed connection attempt to the local primary was enough for a new
leader's datastore to fall back to a stale old leader that had just resumed. Re-pointing is a
restart, which also recovers a datastore whose connection to a paused or black-holed peer hangs
(such a peer never sends a reset).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)


def datastore_dsn(target: tuple[str, int], database: str, node: str) -> str:
    """DSN of the leader's PostgreSQL; read-only (fenced) servers are refused at connect."""
    host, port = target
    return (f"postgresql://postgres@{host}:{port}/{database}?target_session_attrs=read-write"
            f"&connect_timeout=2&application_name=edgeplane-datastore-{node}")


class ManagedProcess:
    """One long-running child in its own session, its PID kept in a file so it can be adopted."""

    def __init__(self, pid_file: Path, log_file: Path, marker: str) -> None:
        self._child: tuple[subprocess.Popen, list[str]] | None = None  # started by this agent
        self.pid_file = pid_file
        self.log_file = log_file
        self.marker = marker  # an argument of its command line, so a recycled PID is not adopted

    def _running(self) -> tuple[int, list[str]] | None:
        """(pid, the argv we started it with) of our live process, or None."""
        if self._child is not None:  # our own child: no need to trust /proc (racy right after spawn)
            child, argv = self._child
            return (child.pid, argv) if child.poll() is None else None
        try:
            pid_line, argv_line = self.pid_file.read_text().split("\n", 1)
            pid, argv = int(pid_line), [str(arg) for arg in json.loads(argv_line)]
            # The process may have exec'd (the datastore becomes Envoy): recognise it by the marker.
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
            stat = Path(f"/proc/{pid}/stat").read_text()
        except (OSError, ValueError, TypeError):
            return None
        if self.marker not in cmdline or stat.rsplit(")", 1)[1].split()[0] == "Z":
            return None
        return pid, argv

    def pid(self) -> int | None:
        running = self._running()
        return running[0] if running else None

    def ensure(self, argv: list[str]) -> int:
        """Running with exactly ``argv``: adopt it, or (re)start it."""
        running = self._running()
        if running and running[1] == argv:
            return running[0]
        if running:
            log.info("re-pointing %s", self.marker)
            self.stop(graceful=False)
        return self.start(argv)

    def start(self, argv: list[str]) -> int:
        with open(self.log_file, "ab") as out:
            child = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True, cwd="/")
        self._child = (child, argv)
        # Line 1 the PID (as postmaster.pid), line 2 the argv it was started with.
        self.pid_file.write_text(f"{child.pid}\n{json.dumps(argv)}\n")
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

    def restart(self, argv: list[str], graceful: bool = True) -> int:
        self.stop(graceful=graceful)
        return self.start(argv)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def datastore_argv(command: list[str] | None, listen: str, dsn: str, node: str) -> list[str]:
    base = command or [sys.executable, "-m", "edgeplane.cli", "datastore"]
    return [*base, "--listen", listen, "--endpoint", dsn, "--node-name", node]
