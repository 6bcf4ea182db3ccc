"""Probe transport: reach the peer's agent and PostgreSQL, and the witness, with hard timeouts.

Each tick the agent pulls the peer's status, pushes its own, and checks the peer's PostgreSQL
directly, all three in parallel so a tick never takes much longer than one timeout. Pulling and
pushing both count: the peer is heard if either direction works, so a one-way partition (or a
crashed agent next to a healthy PostgreSQL) never looks like a dead peer.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from edgeplane.common.netaddr import parse_host_port

from .machine import PeerStatus
from .postgres import probe_role


def status_from_json(data: dict) -> PeerStatus:
    """The peer-facing part of an agent's status document."""
    return PeerStatus(
        name=str(data["name"]), priority=int(data["priority"]), pg_role=data.get("pg_role"),
        has_data=bool(data["has_data"]), fenced=bool(data["fenced"]),
        last_change_ts=float(data["last_change"]["timestamp"]), last_revision=int(data["last_change"]["revision"]),
        state=str(data["state"]), paused=bool(data.get("paused", False)),
    )


@dataclass(frozen=True)
class ProbeResult:
    pulled: PeerStatus | None
    pushed_ok: bool
    pg_role: str | None
    elapsed_s: float


class PeerLink:
    """HTTP to the peer agent plus a libpq check of the peer's PostgreSQL."""

    def __init__(self, api: str, postgres: str, token: str, timeout: float) -> None:
        host, port = parse_host_port(api, option="peer.api")
        self.api_base = f"http://{host}:{port}"
        self.pg_host, self.pg_port = parse_host_port(postgres, option="peer.postgres")
        self.timeout = timeout
        self._http = httpx.Client(timeout=httpx.Timeout(timeout), headers={"Authorization": f"Bearer {token}"})
        # One pool per channel: checks of a hung peer may outlive their tick (psycopg's connect
        # timeout is at least 2 s) and must not delay the other channels.
        self._pools = {kind: ThreadPoolExecutor(max_workers=4, thread_name_prefix=f"probe-{kind}")
                       for kind in ("pull", "push", "pg")}

    def close(self) -> None:
        self._http.close()
        for pool in self._pools.values():
            pool.shutdown(wait=False, cancel_futures=True)

    def pull(self) -> PeerStatus | None:
        try:
            response = self._http.get(self.api_base + "/v1/status")
            response.raise_for_status()
            return status_from_json(response.json())
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return None

    def push(self, status: dict) -> bool:
        try:
            self._http.post(self.api_base + "/v1/peer-status", json=status).raise_for_status()
            return True
        except httpx.HTTPError:
            return False

    def post(self, path: str, params: dict | None = None) -> dict | None:
        try:
            response = self._http.post(self.api_base + path, params=params)
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError):
            return None

    def pg_role(self) -> str | None:
        """'primary', 'fenced', 'standby' or None (see postgres.probe_role)."""
        return probe_role(self.pg_host, self.pg_port, self.timeout)

    def probe(self, own_status: dict) -> ProbeResult:
        started = time.monotonic()
        pulled = self._pools["pull"].submit(self.pull)
        pushed = self._pools["push"].submit(self.push, own_status)
        role = self._pools["pg"].submit(self.pg_role)
        deadline = started + self.timeout  # the probe timeout is a hard bound on the whole probe
        return ProbeResult(pulled=_result(pulled, deadline), pushed_ok=bool(_result(pushed, deadline)),
                           pg_role=_result(role, deadline), elapsed_s=time.monotonic() - started)


def _result(future, deadline: float):
    try:
        return future.result(timeout=max(0.0, deadline - time.monotonic()))
    except Exception:  # a probe that errors or overruns is a failed probe, nothing more
        return None


def witness_ok(witness: str | None, timeout: float) -> bool:
    """True when no witness is configured, or it answers (TCP connect or refusal, or ICMP echo)."""
    if not witness:
        return True
    if ":" in witness:
        host, port = parse_host_port(witness, option="witness")
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return True
        except ConnectionRefusedError:
            return True  # a refusal comes from the host itself: it is reachable
        except OSError:
            return False
    ping = shutil.which("ping")
    if ping is None:
        raise RuntimeError("witness: a bare host needs the `ping` tool (Debian: iputils-ping); use HOST:PORT")
    done = subprocess.run([ping, "-c", "1", "-W", str(max(1, round(timeout))), witness],
                          capture_output=True, timeout=timeout + 2)
    return done.returncode == 0
