"""The local PostgreSQL cluster of one node: create, configure, start/stop, promote, clone.

Everything PostgreSQL-specific the agent does goes through ``LocalPostgres``; the state machine
never sees SQL or process handling. Binaries are called by absolute path and, when edgeplane
runs as root, as the ``postgres`` system user (PostgreSQL refuses to run as root).

Configuration is split in two files included from ``postgresql.conf`` and owned by us:
``edgeplane.conf`` (static: port, WAL and replication settings; rewritten before every start
because a clone copies the peer's) and ``edgeplane-dynamic.conf`` (synchronous standby names,
the read-only fence, ``primary_conninfo``), changed at runtime and applied with SIGHUP, which
works even while commits hang waiting for a vanished synchronous standby.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

log = logging.getLogger(__name__)

STATIC_CONF = "edgeplane.conf"
DYNAMIC_CONF = "edgeplane-dynamic.conf"
SERVER_USER = "postgres"


class PostgresError(RuntimeError):
    """A PostgreSQL operation failed; the message names the step and carries the tool's output."""


def find_bin_dir() -> Path:
    """Directory of initdb/pg_ctl/pg_basebackup, newest major version first."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(candidate, "pg_basebackup")):
            return Path(candidate)
    found = shutil.which("pg_basebackup")
    if found:
        return Path(found).parent
    raise PostgresError("PostgreSQL server binaries not found (Debian: apt-get install postgresql)")


def slot_name(node_name: str) -> str:
    """A replication slot / application name derived from a node name ([a-z0-9_] only)."""
    return "edgeplane_" + re.sub(r"[^a-z0-9_]", "_", node_name.lower())


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


@dataclass(frozen=True)
class Dynamic:
    """Settings the agent changes at runtime."""

    synchronous_standby: str | None = None  # application name of the synchronous standby
    read_only: bool = False  # the fence used while two leaders reconcile
    primary_conninfo: str | None = None  # set on a follower
    primary_slot: str | None = None

    def render(self) -> str:
        lines = ["# Managed by the edgeplane two-node agent; rewritten at runtime."]
        names = f'"{self.synchronous_standby}"' if self.synchronous_standby else ""
        lines.append(f"synchronous_standby_names = {_quote(names)}")
        lines.append(f"default_transaction_read_only = {'on' if self.read_only else 'off'}")
        lines.append(f"primary_conninfo = {_quote(self.primary_conninfo or '')}")
        lines.append(f"primary_slot_name = {_quote(self.primary_slot or '')}")
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class ReplicaInfo:
    """One row of pg_stat_replication as the leader sees its follower."""

    application_name: str
    state: str
    sync_state: str
    lag_bytes: int


@dataclass
class LocalPostgres:
    """The PostgreSQL cluster under ``base_dir/pgdata`` listening on ``host:port``."""

    base_dir: Path
    port: int
    host: str = "127.0.0.1"
    database: str = "edgeplane"
    wal_timeout_s: float = 5.0
    bin_dir: Path = field(default_factory=find_bin_dir)

    # -- layout ---------------------------------------------------------------------------
    @property
    def pgdata(self) -> Path:
        return self.base_dir / "pgdata"

    @property
    def socket_dir(self) -> Path:
        return self.base_dir / "run"

    @property
    def log_file(self) -> Path:
        return self.base_dir / "postgres.log"

    def dsn(self, dbname: str | None = None) -> str:
        return f"postgresql://{SERVER_USER}@{self.host}:{self.port}/{dbname or self.database}"

    def exists(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    def is_standby_on_disk(self) -> bool:
        return (self.pgdata / "standby.signal").exists()

    # -- running tools as the server user ---------------------------------------------------
    def _run(self, argv: list[str], step: str, timeout: float = 120) -> str:
        kwargs: dict = {}
        if os.geteuid() == 0:
            kwargs = {"user": SERVER_USER, "group": SERVER_USER, "extra_groups": []}
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd="/", **kwargs)
        except subprocess.TimeoutExpired as exc:
            raise PostgresError(f"{step}: timed out after {timeout:.0f}s") from exc
        if done.returncode != 0:
            raise PostgresError(f"{step} failed (exit {done.returncode}): {(done.stderr or done.stdout).strip()}")
        return done.stdout

    def _own(self, path: Path) -> None:
        if os.geteuid() == 0:
            shutil.chown(path, SERVER_USER, SERVER_USER)

    def prepare_dirs(self) -> None:
        """Create base and socket directories owned by the server user, and check reachability."""
        for path in (self.base_dir, self.socket_dir):
            path.mkdir(parents=True, exist_ok=True)
            self._own(path)
        if os.geteuid() == 0:
            for parent in self.base_dir.resolve().parents:
                if not os.stat(parent).st_mode & 0o001:
                    raise PostgresError(
                        f"data_dir: {parent} is not traversable by the {SERVER_USER} user (chmod o+x it)")

    # -- lifecycle ------------------------------------------------------------------------
    def initdb(self) -> None:
        """Create a new cluster (checksums on, trust for local connections)."""
        self.prepare_dirs()
        self._run([str(self.bin_dir / "initdb"), "-D", str(self.pgdata), "-U", SERVER_USER, "-A", "trust",
                   "-E", "UTF8", "--no-locale", "--data-checksums"], "initdb")
        with open(self.pgdata / "postgresql.conf", "a") as conf:
            conf.write(f"\ninclude_if_exists = '{STATIC_CONF}'\ninclude_if_exists = '{DYNAMIC_CONF}'\n")

    def write_static_config(self, peer_hosts: list[str]) -> None:
        """Port, listen address, WAL/replication settings, and pg_hba lines for the peer."""
        wal_timeout = f"{max(1, int(self.wal_timeout_s * 1000))}ms"
        settings = {
            "port": str(self.port),
            "listen_addresses": _quote(self.host),
            "unix_socket_directories": _quote(str(self.socket_dir)),
            "wal_level": "replica",
            "max_wal_senders": "10",
            "max_replication_slots": "10",
            "hot_standby": "on",
            "hot_standby_feedback": "on",
            "wal_log_hints": "on",
            "wal_keep_size": "'64MB'",
            # A follower that is gone must not fill the leader's disk.
            "max_slot_wal_keep_size": "'1GB'",
            "wal_sender_timeout": _quote(wal_timeout),
            "wal_receiver_timeout": _quote(wal_timeout),
            "wal_receiver_status_interval": "'1s'",
            "wal_retrieve_retry_interval": "'500ms'",
            "synchronous_commit": "on",
            "max_connections": "200",
        }
        text = "# Managed by the edgeplane two-node agent.\n" + "".join(f"{k} = {v}\n" for k, v in settings.items())
        self._write(self.pgdata / STATIC_CONF, text)
        hba = self.pgdata / "pg_hba.conf"
        lines = hba.read_text().splitlines()
        lines = [line for line in lines if "edgeplane-peer" not in line]
        for host in sorted(set(peer_hosts)):
            mask = "/128" if ":" in host else "/32"
            for db in ("all", "replication"):
                lines.append(f"host {db} {SERVER_USER} {host}{mask} trust # edgeplane-peer")
        self._write(hba, "\n".join(lines) + "\n")

    def write_dynamic(self, dynamic: Dynamic) -> None:
        self._write(self.pgdata / DYNAMIC_CONF, dynamic.render())

    def read_dynamic(self) -> Dynamic:
        path = self.pgdata / DYNAMIC_CONF
        if not path.exists():
            return Dynamic()
        values = dict(re.findall(r"^(\w+) = '((?:[^']|'')*)'$", path.read_text(), re.M))
        values.update(re.findall(r"^(default_transaction_read_only) = (\w+)$", path.read_text(), re.M))
        standby = values.get("synchronous_standby_names", "").strip('"') or None
        return Dynamic(
            synchronous_standby=standby,
            read_only=values.get("default_transaction_read_only") == "on",
            primary_conninfo=values.get("primary_conninfo", "").replace("''", "'") or None,
            primary_slot=values.get("primary_slot_name") or None,
        )

    def _write(self, path: Path, text: str) -> None:
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text)
        self._own(tmp)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)

    def postmaster_pid(self) -> int | None:
        """PID of the running postmaster, or None."""
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        # A zombie or a recycled PID is not our postmaster.
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] == "Z":
                return None
        except OSError:
            return None
        return pid

    def start(self, timeout: float = 60) -> None:
        if self.postmaster_pid():
            return
        self.prepare_dirs()
        self._run([str(self.bin_dir / "pg_ctl"), "-D", str(self.pgdata), "-l", str(self.log_file),
                   "-w", "-t", str(int(timeout)), "start"], "pg_ctl start", timeout=timeout + 10)

    def stop(self, mode: str = "fast", timeout: float = 20) -> None:
        """Stop the server; a fast stop that hangs is escalated to immediate."""
        if not self.postmaster_pid():
            return
        try:
            self._run([str(self.bin_dir / "pg_ctl"), "-D", str(self.pgdata), "-m", mode, "-w",
                       "-t", str(int(timeout)), "stop"], f"pg_ctl stop -m {mode}", timeout=timeout + 10)
        except PostgresError:
            if mode == "immediate":
                raise
            self.stop("immediate", timeout)

    def reload(self) -> None:
        """SIGHUP the postmaster: works even while every backend waits on synchronous replication."""
        pid = self.postmaster_pid()
        if pid:
            os.kill(pid, signal.SIGHUP)

    def promote(self, timeout: float = 30) -> None:
        self._run([str(self.bin_dir / "pg_ctl"), "-D", str(self.pgdata), "-w", "-t", str(int(timeout)),
                   "promote"], "pg_ctl promote", timeout=timeout + 10)

    # -- SQL ---------------------------------------------------------------------------------
    def connect(self, dbname: str | None = None, timeout: float = 2) -> psycopg.Connection:
        return psycopg.connect(self.dsn(dbname), connect_timeout=max(1, int(timeout)), autocommit=True)

    def role(self, timeout: float = 2) -> str | None:
        """'primary', 'standby', or None when the server does not answer (fenced counts as primary)."""
        role = probe_role(self.host, self.port, timeout)
        return "primary" if role == "fenced" else role

    def ensure_database(self) -> None:
        with self.connect("postgres") as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)).fetchone():
                conn.execute(f'CREATE DATABASE "{self.database}"')

    def replicas(self) -> list[ReplicaInfo]:
        with self.connect("postgres") as conn:
            rows = conn.execute(
                "SELECT application_name, state, sync_state,"
                " COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), flush_lsn), 0)::bigint"
                " FROM pg_stat_replication").fetchall()
        return [ReplicaInfo(*row) for row in rows]

    def standby_lag_bytes(self) -> int | None:
        """On a follower: bytes received but not yet replayed (None when not receiving)."""
        with self.connect("postgres") as conn:
            row = conn.execute("SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())"
                               "::bigint, (SELECT status FROM pg_stat_wal_receiver)").fetchone()
        return None if row is None or row[1] is None else int(row[0] or 0)

    def checkpoint(self) -> None:
        with self.connect("postgres") as conn:
            conn.execute("CHECKPOINT")

    def terminate_clients(self) -> None:
        """Disconnect client backends so they reconnect and re-evaluate read-write/read-only."""
        with self.connect("postgres") as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                         " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")

    # -- cloning -----------------------------------------------------------------------------
    def clone_from(self, peer_host: str, peer_port: int, node_name: str, timeout: float = 600) -> None:
        """Drop this cluster and re-create it as a streaming standby of the peer (pg_basebackup).

        The copy goes to a side directory and replaces pgdata only once complete, so a half-copied
        directory is never started.
        """
        self.stop("immediate")
        self.prepare_dirs()
        slot = slot_name(node_name)
        ensure_slot(peer_host, peer_port, slot)
        fresh = self.base_dir / "pgdata.new"
        shutil.rmtree(fresh, ignore_errors=True)
        self._run([str(self.bin_dir / "pg_basebackup"), "-h", peer_host, "-p", str(peer_port), "-U", SERVER_USER,
                   "-D", str(fresh), "-X", "stream", "-S", slot, "-c", "fast", "--no-password"],
                  "pg_basebackup", timeout=timeout)
        old = self.base_dir / "pgdata.old"
        shutil.rmtree(old, ignore_errors=True)
        if self.pgdata.exists():
            os.replace(self.pgdata, old)
        os.replace(fresh, self.pgdata)
        (self.pgdata / "postmaster.pid").unlink(missing_ok=True)
        shutil.rmtree(old, ignore_errors=True)
        self.make_standby(peer_host, peer_port, node_name)

    def make_standby(self, peer_host: str, peer_port: int, node_name: str) -> None:
        """Configure (not start) this cluster to stream from the peer."""
        self.write_dynamic(Dynamic(primary_conninfo=standby_conninfo(peer_host, peer_port, node_name),
                                   primary_slot=slot_name(node_name)))
        signal_file = self.pgdata / "standby.signal"
        signal_file.touch()
        self._own(signal_file)


def standby_conninfo(peer_host: str, peer_port: int, node_name: str) -> str:
    return (f"host={peer_host} port={peer_port} user={SERVER_USER} application_name={slot_name(node_name)}"
            " connect_timeout=2 keepalives_idle=2 keepalives_interval=1 keepalives_count=3")


def probe_role(host: str, port: int, timeout: float) -> str | None:
    """'primary', 'fenced' (a read-only primary), 'standby', or None when unreachable."""
    try:
        with psycopg.connect(host=host, port=port, user=SERVER_USER, dbname="postgres",
                             connect_timeout=max(1, round(timeout)), autocommit=True) as conn:
            in_recovery, read_only = conn.execute(
                "SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only') = 'on'").fetchone()
    except psycopg.Error:
        return None
    if in_recovery:
        return "standby"
    return "fenced" if read_only else "primary"


def ensure_slot(host: str, port: int, slot: str) -> None:
    """Re-create the physical replication slot ``slot`` on the server at host:port."""
    with psycopg.connect(host=host, port=port, user=SERVER_USER, dbname="postgres", connect_timeout=3,
                         autocommit=True) as conn:
        deadline = time.monotonic() + 10
        while True:
            row = conn.execute("SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone()
            if row is None:
                break
            if row[0] is not None:
                # The previous incarnation's walsender has not noticed it is gone yet.
                conn.execute("SELECT pg_terminate_backend(%s)", (row[0],))
                if time.monotonic() > deadline:
                    raise PostgresError(f"replication slot {slot} stays active")
                time.sleep(0.2)
                continue
            conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
            break
        conn.execute("SELECT pg_create_physical_replication_slot(%s, true)", (slot,))
