"""A real PostgreSQL server for tests: initdb + pg_ctl from Debian's postgresql package.

PostgreSQL refuses to run as root, so when the tests run as root the cluster is created and run
as the ``postgres`` system user (which Debian's package creates).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.ports import free_port


def postgres_bin_dir() -> Path | None:
    """Directory holding initdb/pg_ctl, newest major version first; None when not installed."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(candidate, "initdb")):
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


@dataclass
class PostgresServer:
    """One running PostgreSQL cluster on 127.0.0.1:port with trust authentication."""

    data_dir: Path
    port: int
    bin_dir: Path
    user: str = "postgres"

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        """Create a fresh database and return its DSN."""
        self.psql(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        out = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d", dbname,
             "-v", "ON_ERROR_STOP=1", "-Atc", sql],
            check=True, capture_output=True, text=True,
        )
        return out.stdout

    def stop(self) -> None:
        subprocess.run(
            _as_server_user([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"]),
            capture_output=True,
        )


def _run_checked(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{argv[-1] if argv else argv} failed ({result.returncode}): {result.stderr or result.stdout}")


def start_postgres(base_dir: Path) -> PostgresServer:
    """initdb a new cluster under base_dir and start it on a free port (fsync kept on)."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    base_dir.mkdir(parents=True, exist_ok=True)
    data_dir = base_dir / "pgdata"
    if os.geteuid() == 0:
        shutil.chown(base_dir, "postgres", "postgres")
        os.chmod(base_dir, 0o755)
        # Every parent must be traversable by the postgres user.
        for parent in base_dir.parents:
            if parent == Path("/"):
                break
            mode = os.stat(parent).st_mode
            if not mode & 0o001:
                os.chmod(parent, mode | 0o001)
    _run_checked(_as_server_user([str(bin_dir / "initdb"), "-D", str(data_dir), "-U", "postgres", "-A", "trust",
                                  "-E", "UTF8", "--no-locale"]))
    log = base_dir / "postgres.log"
    for attempt in range(3):
        # A port found free can be taken by another process before the server binds it: retry.
        port = free_port()
        options = (f"-c port={port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={base_dir} "
                   "-c max_connections=200")
        try:
            _run_checked(_as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-l", str(log), "-o",
                                          options, "-w", "start"]))
            return PostgresServer(data_dir=data_dir, port=port, bin_dir=bin_dir)
        except RuntimeError as exc:
            if attempt == 2:
                raise RuntimeError(f"{exc}\nserver log:\n{log.read_text(errors='replace')[-2000:]}") from None
    raise AssertionError("unreachable")
