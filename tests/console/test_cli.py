"""`edgeplane console admin-key` and option errors, through the real command."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from edgeplane.console import ConsoleProcess
from tests.support.ports import free_port

CLI = [sys.executable, "-c", "from edgeplane.cli import main; main()", "console"]


def test_admin_key_creates_a_working_admin(tmp_path) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    out = subprocess.run([*CLI, "admin-key", "--db", db], capture_output=True, text=True, check=True)
    key = out.stdout.strip()
    assert key.startswith("epk_") and len(key) > 40
    console = ConsoleProcess(db, free_port(), log_path=tmp_path / "console.log").start()
    try:
        who = httpx.get(f"{console.url}/v1/whoami", headers={"Authorization": f"Bearer {key}"}).json()
        assert who["role"] == "admin" and who["user"] == "admin"
        assert httpx.get(f"{console.url}/openapi.json").json()["openapi"].startswith("3.")
    finally:
        console.stop()
    # The key is stored only as a hash.
    assert key.encode() not in (tmp_path / "c.db").read_bytes()


def test_bad_options_are_named(tmp_path) -> None:
    bad_db = subprocess.run([*CLI, "admin-key", "--db", "mysql://x"], capture_output=True, text=True)
    assert bad_db.returncode == 2 and "--db: unsupported scheme 'mysql'" in bad_db.stderr
    bad_listen = subprocess.run([*CLI, "--listen", "nowhere", "--db", f"sqlite:///{tmp_path / 'x.db'}"],
                                capture_output=True, text=True)
    assert bad_listen.returncode == 2 and "--listen: expected HOST:PORT" in bad_listen.stderr
    for value, why in (("0", "--upgrade-step-timeout: must be whole seconds from 1 to 604800 (got 0)"),
                       ("604801", "--upgrade-step-timeout: must be whole seconds from 1 to 604800 (got 604801)"),
                       ("soon", "Invalid value for '--upgrade-step-timeout':")):
        bad_limit = subprocess.run([*CLI, "--upgrade-step-timeout", value, "--db", f"sqlite:///{tmp_path / 'x.db'}"],
                                   capture_output=True, text=True)
        flat = " ".join(bad_limit.stderr.replace("│", " ").split())  # typer may draw a wrapped box
        assert bad_limit.returncode == 2 and why in flat, bad_limit.stderr


def test_threaded_console_for_the_lab(tmp_path) -> None:
    from edgeplane.console import ConsoleConfig, ThreadedConsole, create_admin_key

    db = f"sqlite:///{tmp_path / 'lab.db'}"
    key = create_admin_key(db, tenant="lab", user="lab-admin")
    console = ThreadedConsole(ConsoleConfig(db_url=db)).start()
    try:
        who = httpx.get(f"{console.url}/v1/whoami", headers={"Authorization": f"Bearer {key}"}).json()
        assert who["user"] == "lab-admin"
    finally:
        console.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{console.url}/healthz")
