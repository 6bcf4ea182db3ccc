"""Running a console: in this process (uvicorn in a thread or in the foreground) or as a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from edgeplane.common.paths import default_data_dir
from edgeplane.console.app import ConsoleConfig, create_app
from edgeplane.console.db import Database
from edgeplane.console.tenancy import bootstrap_admin


def default_db_url() -> str:
    """The embedded default: a SQLite file in the edgeplane data directory."""
    return f"sqlite:///{default_data_dir() / 'console' / 'console.db'}"


def create_admin_key(db_url: str, *, tenant: str = "default", user: str = "admin") -> str:
    """Create the tenant (if new) and an admin user (if new), and return a fresh API key for it."""
    db = Database(db_url, pool_size=1)
    try:
        db.migrate()
        with db.transaction() as tx:
            return bootstrap_admin(tx, tenant, user)["key"]
    finally:
        db.close()


def _server(config: ConsoleConfig, host: str, port: int, log_level: str, grace: float) -> Any:
    """uvicorn's server, releasing held long-polls as soon as shutdown starts.

    uvicorn runs the app's lifespan shutdown only after open requests finished or the grace
    period ran out (then cancelling them); a long-poll held for 30 s would use the whole grace.
    """
    import uvicorn

    app = create_app(config)

    class ConsoleServer(uvicorn.Server):
        async def shutdown(self, sockets: list | None = None) -> None:
            app.state.console.begin_shutdown()
            await super().shutdown(sockets)

    return ConsoleServer(uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False,
                                        timeout_graceful_shutdown=grace))


def serve(config: ConsoleConfig, host: str, port: int, *, log_level: str = "info") -> None:
    """Serve in the foreground until SIGTERM or Ctrl-C."""
    _server(config, host, port, log_level, grace=5).run()


def _wait_healthy(url: str, timeout: float, alive: Callable[[], bool]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError("console exited during start-up")
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"console at {url} did not become healthy in {timeout}s")


class ThreadedConsole:
    """A console served by uvicorn on a background thread of this process."""

    def __init__(self, config: ConsoleConfig, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = _server(config, host, port, "warning", grace=2)
        self._thread = threading.Thread(target=self._server.run, name="console", daemon=True)
        self.url = ""

    def start(self, timeout: float = 20.0) -> ThreadedConsole:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("console failed to start")
            time.sleep(0.02)
        host, port = self._server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


class ConsoleProcess:
    """``edgeplane console`` as a child process in its own process group."""

    def __init__(self, db_url: str, port: int, *, host: str = "127.0.0.1", extra_args: list[str] | None = None,
                 log_path: Path | None = None) -> None:
        self.url = f"http://{host}:{port}"
        self._argv = [sys.executable, "-c", "from edgeplane.cli import main; main()", "console",
                      "--listen", f"{host}:{port}", "--db", db_url, *(extra_args or [])]
        self._log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> ConsoleProcess:
        log = open(self._log_path, "ab") if self._log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(self._argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        _wait_healthy(self.url, timeout, lambda: self.proc.poll() is None)
        return self

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
