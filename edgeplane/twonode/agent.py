"""The node agent: observe, decide (machine.py), act (postgres.py, store.py, supervise.py).

One loop per node at a fixed interval. Each tick gathers an ``Observation`` (local PostgreSQL,
the datastore's latest change, the peer via probe.py), asks ``decide`` what to do and carries
the actions out, stopping at the first that fails (it is retried on a later tick, never half-
applied: promotion, fencing and resync are each safe to repeat).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from dataclasses import replace
from pathlib import Path

import psycopg

from edgeplane.common.netaddr import parse_host_port

from . import store
from .config import NodeConfig
from .machine import (Action, Bootstrap, Decision, Event, Fence, Memory, Observation, PeerStatus, Promote,
                      Resync, SetSync, StartPostgres, decide)
from .postgres import Dynamic, LocalPostgres, slot_name
from .probe import PeerLink, status_from_json, witness_ok
from .supervise import ManagedProcess, datastore_argv, datastore_dsn

log = logging.getLogger(__name__)


class NodeAgent:
    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.settings = config.settings()
        self.token = config.token()
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self.pg = LocalPostgres(config.data_dir / "postgres", config.postgres.port, host=config.postgres.host,
                                database=config.postgres.database, wal_timeout_s=config.replication.wal_timeout)
        self.peer_pg = parse_host_port(config.peer.postgres, option="peer.postgres")
        self.link = PeerLink(config.peer.api, config.peer.postgres, self.token, config.probe.timeout)
        self.datastore = ManagedProcess(config.data_dir / "datastore.pid", config.data_dir / "datastore.log",
                                        marker=config.datastore.listen)
        self.memory = Memory(started_at=time.monotonic())
        self.lock = threading.Lock()
        self.events: deque[dict] = deque(self._load_events(), maxlen=50)  # survives agent restarts
        self._pushed: tuple[float, PeerStatus] | None = None
        self._last = store.Latest()
        self._obs: Observation | None = None
        self._epoch = 0
        self._error: str | None = None
        self._lag: int | None = None
        self._push_window = 1.5 * max(config.probe.interval, config.probe.timeout)

    # -- paths and persistent flags ------------------------------------------------------
    @property
    def export_dir(self) -> Path:
        return self.config.data_dir / "split-writes"

    @property
    def _pause_file(self) -> Path:
        return self.config.data_dir / "paused"

    def paused(self) -> bool:
        return self._pause_file.exists()

    def set_paused(self, paused: bool) -> None:
        if paused:
            self._pause_file.touch()
        else:
            self._pause_file.unlink(missing_ok=True)
        self._event("pause" if paused else "resume", "probes paused: no promotion" if paused else "probes resumed")

    def local_dsn(self) -> str:
        return self.pg.dsn()

    def peer_dsn(self) -> str:
        host, port = self.peer_pg
        return f"postgresql://postgres@{host}:{port}/{self.config.postgres.database}"

    # -- status --------------------------------------------------------------------------
    def receive_peer(self, data: dict) -> None:
        status = status_from_json(data)
        if status.name != self.config.peer.name:
            raise ValueError(f"name: expected peer {self.config.peer.name!r}, got {status.name!r}")
        with self.lock:
            self._pushed = (time.monotonic(), status)

    def status(self) -> dict:
        with self.lock:
            obs, memory, last = self._obs, self.memory, self._last
        pg_role = obs.pg_role if obs else None
        peer = obs.peer if obs else None
        exports = sorted(str(p) for p in self.export_dir.glob("split-writes-*.json"))
        return {
            "name": self.config.name,
            "priority": self.config.priority,
            "role": "leader" if pg_role == "primary" else "follower",
            "state": memory.state.value,
            "pg_role": pg_role,
            "has_data": bool(obs and obs.has_data),
            "fenced": bool(obs and obs.fenced),
            "paused": self.paused(),
            "epoch": self._epoch,
            "last_change": {"revision": last.revision, "timestamp": last.timestamp, "node": last.node},
            "peer": {
                "name": self.config.peer.name,
                "healthy": memory.failures == 0,
                "failed_probes": memory.failures,
                "agent": peer is not None,
                "pg_role": (obs.peer_pg_role if obs and obs.peer_pg_role else (peer.pg_role if peer else None)),
                "state": peer.state if peer else None,
            },
            "replication": {
                # The leader decides the mode; a follower does not know it.
                "mode": ("sync" if obs and obs.sync_on else "async") if pg_role == "primary" else None,
                "streaming": bool(obs and (obs.replica_streaming if pg_role == "primary" else obs.receiving)),
                "lag_bytes": self._lag,
            },
            "split_exports": exports,
            "events": list(self.events)[-20:],
            "error": self._error,
            "pids": {"postgres": self.pg.postmaster_pid(), "datastore": self.datastore.pid()},
        }

    def _load_events(self) -> list[dict]:
        try:
            lines = (self.config.data_dir / "events.jsonl").read_text().splitlines()[-50:]
        except OSError:
            return []
        events = []
        for line in lines:
            try:
                events.append(json.loads(line))
            except ValueError:  # a line cut short by a crash
                continue
        return events

    def _event(self, kind: str, message: str) -> None:
        entry = {"time": time.time(), "kind": kind, "message": message}
        self.events.append(entry)
        log.warning("event %s: %s", kind, message)
        with open(self.config.data_dir / "events.jsonl", "a") as out:
            out.write(json.dumps(entry) + "\n")

    # -- observing -----------------------------------------------------------------------
    def observe(self) -> Observation:
        now = time.monotonic()
        probe = self.link.probe(self.status())
        has_data = self.pg.exists()
        dynamic = self.pg.read_dynamic() if has_data else Dynamic()
        local = self._observe_local() if has_data and self.pg.postmaster_pid() else None
        peer = probe.pulled
        with self.lock:
            pushed = self._pushed
        # A pushed status counts for about one push period: long enough to bridge a one-way
        # partition, short enough not to delay detection of a dead peer.
        if peer is None and pushed and now - pushed[0] <= self._push_window:
            peer = pushed[1]
        failing_soon = self.memory.failures + 1 >= self.settings.threshold
        return Observation(
            now=now, has_data=has_data,
            pg_role=local["role"] if local else None,
            fenced=dynamic.read_only,
            sync_on=dynamic.synchronous_standby == slot_name(self.config.peer.name),
            replica_streaming=bool(local and local["replica_streaming"]),
            replica_lag_bytes=local["replica_lag"] if local else None,
            receiving=bool(local and local["receiving"]),
            last_change_ts=self._last.timestamp, last_revision=self._last.revision,
            witness_ok=witness_ok(self.config.witness, self.config.probe.timeout) if failing_soon else True,
            paused=self.paused(), peer=peer,
            peer_pg_role="primary" if probe.pg_role == "fenced" else probe.pg_role,
            peer_pg_fenced=probe.pg_role == "fenced",
        )

    def _observe_local(self) -> dict | None:
        peer_app = slot_name(self.config.peer.name)
        try:
            role = self.pg.role(self.config.probe.timeout)
            if role is None:
                return None
            info = {"role": role, "replica_streaming": False, "replica_lag": None, "receiving": False}
            if role == "primary":
                for replica in self.pg.replicas():
                    if replica.application_name == peer_app and replica.state == "streaming":
                        info.update(replica_streaming=True, replica_lag=replica.lag_bytes)
                self._lag = info["replica_lag"]
            else:
                lag = self.pg.standby_lag_bytes()
                info["receiving"] = lag is not None
                self._lag = lag
            self._last = store.latest_change(self.local_dsn())
            self._epoch = store.current_epoch(self.local_dsn())
            return info
        except psycopg.Error as exc:
            log.info("local PostgreSQL not answering: %s", exc)
            return None

    # -- acting --------------------------------------------------------------------------
    def tick(self) -> Decision:
        obs = self.observe()
        decision = decide(self.settings, self.memory, obs)
        with self.lock:
            self.memory, self._obs = decision.memory, obs
        self._error = None
        for action in decision.actions:
            try:
                self.execute(action)
            except Exception as exc:  # any failed step is reported and retried on a later tick
                self._error = f"{type(action).__name__}: {exc}"
                self._event("error", self._error)
                break
            # Status reports what we just did, not what the tick started from.
            with self.lock:
                self._obs = _after(self._obs, action)
        self._point_datastore()
        return decision

    def execute(self, action: Action) -> None:
        if isinstance(action, Event):
            self._event(action.kind, action.message)
        elif isinstance(action, StartPostgres):
            self._start_postgres(action.fenced)
        elif isinstance(action, Bootstrap):
            self._bootstrap()
        elif isinstance(action, Promote):
            self._promote(action.revision_floor)
        elif isinstance(action, SetSync):
            peer = slot_name(self.config.peer.name) if action.on else None
            self._set_dynamic(synchronous_standby=peer)
        elif isinstance(action, Fence):
            self._set_dynamic(read_only=action.on)
            if action.on:
                time.sleep(0.1)  # let the postmaster apply SIGHUP so new sessions start read-only
                self.pg.terminate_clients()
                # Reported as fenced from now on, so the change reported with it must be the
                # frozen one: a write may have committed since this tick observed.
                latest = store.latest_change(self.local_dsn())
                with self.lock:
                    self._last = latest
            else:
                # The fence cut the datastore's sessions; a fresh process starts from a clean
                # connection state (and its watch feed from the current revision).
                self.datastore.restart(self._datastore_argv("local"), graceful=False)
        elif isinstance(action, Resync):
            self._resync(action.export_split_writes)
        else:
            raise TypeError(f"unknown action {action!r}")

    def _datastore_argv(self, leader: str) -> list[str]:
        """The datastore command line pointing at ``leader`` ("local" or "peer")."""
        local = (self.config.postgres.host, self.config.postgres.port)
        dsn = datastore_dsn(local if leader == "local" else self.peer_pg, self.config.postgres.database,
                            self.config.name)
        return datastore_argv(self.config.datastore.command, self.config.datastore.listen, dsn, self.config.name)

    def _point_datastore(self) -> None:
        """Keep the datastore running and pointed at whichever PostgreSQL leads."""
        with self.lock:
            obs = self._obs
        if obs is None or not obs.has_data:
            return
        if obs.pg_role == "primary":
            self.datastore.ensure(self._datastore_argv("local"))
        elif obs.pg_role == "standby" or (obs.peer_pg_role == "primary" and obs.pg_role is None):
            self.datastore.ensure(self._datastore_argv("peer"))

    def _peer_hosts(self) -> list[str]:
        return [self.peer_pg[0], parse_host_port(self.config.peer.api, option="peer.api")[0]]

    def _set_dynamic(self, **changes) -> None:
        self.pg.write_dynamic(replace(self.pg.read_dynamic(), **changes))
        self.pg.reload()

    def _start_postgres(self, fenced: bool) -> None:
        self.pg.write_static_config(self._peer_hosts())
        if fenced and not self.pg.is_standby_on_disk():
            self.pg.write_dynamic(replace(self.pg.read_dynamic(), read_only=True))
        self.pg.start()

    def _bootstrap(self) -> None:
        self.pg.initdb()
        self.pg.write_static_config(self._peer_hosts())
        self.pg.write_dynamic(Dynamic())
        self.pg.start()
        self.pg.ensure_database()
        store.record_epoch(self.local_dsn(), self.config.name, 0)

    def _promote(self, floor: int) -> None:
        started = time.monotonic()
        self.pg.promote()
        with self.lock:  # we lead from here on: the old datastore may already reconnect to us
            self._obs = _after(self._obs, Promote(floor))
        self.pg.write_dynamic(Dynamic())
        self.pg.reload()
        self.pg.checkpoint()
        minimum = floor + self.config.replication.revision_gap
        if not store.advance_revision(self.local_dsn(), minimum):
            log.info("store schema not created yet: nothing to advance")
        self._epoch = store.record_epoch(self.local_dsn(), self.config.name, floor)
        # Re-point the datastore now: its connection to the old leader may hang forever.
        # It is useless until restarted, so no graceful stop.
        self.datastore.restart(self._datastore_argv("local"), graceful=False)
        self._event("promoted", f"leader of epoch {self._epoch} after {time.monotonic() - started:.2f}s;"
                                f" revisions continue above {minimum}")

    def _resync(self, export: bool) -> None:
        if export:
            writes = store.split_writes(self.local_dsn(), self.peer_dsn())
            path = store.write_export(self.export_dir, self.config.name, self.config.peer.name, writes)
            self._event("split-writes", f"{len(writes)} write(s) made here during the split were exported to {path}")
        host, port = self.peer_pg
        self.pg.clone_from(host, port, self.config.name)
        self.pg.write_static_config(self._peer_hosts())
        self.pg.start()
        # The database under the datastore was replaced: drop its caches and watch position,
        # and follow the winner.
        self.datastore.restart(self._datastore_argv("peer"), graceful=False)
        self._event("resynced", f"now following {self.config.peer.name}")

    # -- running -------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        interval = self.config.probe.interval
        next_tick = time.monotonic()
        while not stop.is_set():
            try:
                self.tick()
            except Exception:  # the loop must survive anything; the next tick re-observes
                log.exception("tick failed")
            next_tick = max(next_tick + interval, time.monotonic())
            stop.wait(max(0.0, next_tick - time.monotonic()))

    def shutdown(self) -> None:
        """Stop the datastore and PostgreSQL cleanly (the node goes down as a whole)."""
        self.link.close()
        self.datastore.stop()
        self.pg.stop("fast")


def _after(obs: Observation, action: Action) -> Observation:
    """The observation as it stands once ``action`` has succeeded."""
    if isinstance(action, Promote):
        return replace(obs, pg_role="primary", receiving=False)
    if isinstance(action, Resync):
        return replace(obs, pg_role="standby", fenced=False, has_data=True, receiving=False)
    if isinstance(action, Fence):
        return replace(obs, fenced=action.on)
    if isinstance(action, SetSync):
        return replace(obs, sync_on=action.on)
    return obs


def run_node(config: NodeConfig) -> None:
    """`edgeplane twonode run`: agent loop + API until SIGTERM/SIGINT, then stop the node cleanly."""
    import signal

    from .api import ApiServer

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per probe is noise
    agent = NodeAgent(config)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server = ApiServer(agent, config.listen)
    server.start()
    log.info("two-node agent %s up on %s (peer %s)", config.name, config.listen, config.peer.name)
    try:
        agent.run(stop)
    finally:
        server.stop()
        agent.shutdown()
