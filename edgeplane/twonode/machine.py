"""The node agent's decisions: a pure function from (memory, observation) to (memory, actions).

Nothing here touches PostgreSQL, the network or the clock; ``agent.py`` gathers an ``Observation``
each tick, calls ``decide`` and carries out the returned actions. That keeps every rule below
testable exhaustively and fast (tests/twonode/test_machine.py), in the style of Patroni's ha.py.

Rules, in order of precedence:

- Peer failure: a probe tick fails only when the peer's PostgreSQL is unreachable by us *and* the
  peer's agent has not told us (pull or push) that its PostgreSQL is up. An agent crash alone,
  with the peer's PostgreSQL reachable, is therefore never a failure.
- Promotion: a follower promotes after ``threshold`` consecutive failed ticks, only if it is
  healthy itself (its PostgreSQL answers, the witness answers), not paused, and past the start-up
  grace period.
- Two leaders (after a partition, a paused or restarted old leader): each leader fences itself
  read-only, which freezes its latest change. A fenced node whose frozen key is older than the
  peer's key has lost (the peer's key can only grow); a fenced node whose key is newer than the
  fenced peer's key has won and unfences. Key = (latest change time, priority, name).
  The loser exports its split writes, drops its database and re-clones from the winner.
- Synchronous replication is on while the follower streams; when it has been missing for
  ``downgrade_after`` the leader goes asynchronous so writes never block longer than that.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum


class State(str, Enum):
    WAITING = "waiting"  # no local data and no peer to copy it from yet
    STARTING = "starting"  # local PostgreSQL being started
    FOLLOWER = "follower"
    LEADER = "leader"  # peer streaming from us
    LEADER_ALONE = "leader-alone"  # no follower streaming
    RECONCILING = "reconciling"  # two leaders: fenced, deciding who stays
    RESYNCING = "resyncing"  # dropping local data and cloning from the peer
    PAUSED = "paused"


@dataclass(frozen=True)
class Settings:
    """The timing and identity parts of the node configuration the decisions need."""

    name: str
    priority: int = 0
    interval_s: float = 0.5
    threshold: int = 4
    startup_grace_s: float = 10.0
    downgrade_after_s: float = 5.0
    resync_after_s: float = 10.0
    synchronous: bool = True
    sync_max_lag_bytes: int = 16 * 1024 * 1024


@dataclass(frozen=True)
class PeerStatus:
    """What the peer's agent reports about itself (pulled from it or pushed by it)."""

    name: str
    priority: int
    pg_role: str | None  # "primary" | "standby" | None (down)
    has_data: bool
    fenced: bool
    last_change_ts: float
    last_revision: int
    state: str
    paused: bool = False


@dataclass(frozen=True)
class Observation:
    now: float  # monotonic seconds
    has_data: bool  # local cluster initialised
    pg_role: str | None  # local PostgreSQL: "primary" | "standby" | None (not answering)
    fenced: bool  # local read-only fence in force
    sync_on: bool  # synchronous_standby_names names the peer
    replica_streaming: bool  # leader: the peer streams from us
    replica_lag_bytes: int | None
    receiving: bool  # follower: our WAL receiver streams from the peer
    last_change_ts: float  # latest change in the local store (0 when none)
    last_revision: int
    witness_ok: bool
    paused: bool
    peer: PeerStatus | None  # fresh status from the peer's agent, None when it is silent
    peer_pg_role: str | None  # our own check of the peer's PostgreSQL
    peer_pg_fenced: bool = False  # that check found a read-only (fenced) primary


@dataclass(frozen=True)
class Memory:
    state: State = State.STARTING
    started_at: float = 0.0
    failures: int = 0
    replica_missing_since: float | None = None
    not_receiving_since: float | None = None
    peer_max_revision: int = 0


# -- actions -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Action:
    pass


@dataclass(frozen=True)
class Bootstrap(Action):
    """initdb a new cluster and start it as the leader."""


@dataclass(frozen=True)
class StartPostgres(Action):
    fenced: bool = False  # start a would-be primary read-only because the peer leads


@dataclass(frozen=True)
class Promote(Action):
    revision_floor: int  # highest revision any node may have handed out


@dataclass(frozen=True)
class SetSync(Action):
    on: bool


@dataclass(frozen=True)
class Fence(Action):
    on: bool


@dataclass(frozen=True)
class Resync(Action):
    export_split_writes: bool  # we were a primary: save what the winner lacks first


@dataclass(frozen=True)
class Event(Action):
    kind: str
    message: str


@dataclass
class Decision:
    memory: Memory
    actions: list[Action] = field(default_factory=list)


def rank(ts: float, priority: int, name: str) -> tuple[float, int, str]:
    """Who wins when two leaders meet: newest change, then higher priority, then name."""
    return (ts, priority, name)


def peer_failed(obs: Observation) -> bool:
    """A failed probe tick: neither we nor the peer's agent can vouch for the peer's PostgreSQL."""
    if obs.peer_pg_role is not None:
        return False
    return obs.peer is None or obs.peer.pg_role is None


def peer_role(obs: Observation) -> str | None:
    """The peer's PostgreSQL role as best known: our own check first, then its agent's report."""
    if obs.peer_pg_role is not None:
        return obs.peer_pg_role
    return obs.peer.pg_role if obs.peer is not None else None


def decide(settings: Settings, memory: Memory, obs: Observation) -> Decision:
    failures = memory.failures + 1 if peer_failed(obs) else 0
    peer_rev = max(memory.peer_max_revision, obs.peer.last_revision if obs.peer else 0)
    memory = replace(memory, failures=failures, peer_max_revision=peer_rev)
    if not obs.has_data:
        return _without_data(settings, memory, obs)
    if obs.pg_role is None:
        return _start(memory, obs)
    if obs.pg_role == "standby":
        return _as_standby(settings, memory, obs)
    return _as_primary(settings, memory, obs)


def _without_data(settings: Settings, memory: Memory, obs: Observation) -> Decision:
    if obs.paused:
        return Decision(replace(memory, state=State.PAUSED))
    if obs.peer_pg_role == "primary":  # cloning needs our own connection to it
        return Decision(replace(memory, state=State.RESYNCING),
                        [Event("resync", "no local data: cloning from the peer"), Resync(export_split_writes=False)])
    peer = obs.peer
    # Bootstrap only when the peer is known to be empty too: a lone empty node must never start a
    # fresh store that could later out-rank the real one.
    if peer is not None and not peer.has_data and obs.peer_pg_role is None:
        if rank(0, settings.priority, settings.name) > rank(0, peer.priority, peer.name):
            return Decision(replace(memory, state=State.STARTING),
                            [Event("bootstrap", "both nodes empty: creating the store here"), Bootstrap()])
    return Decision(replace(memory, state=State.WAITING))


def _start(memory: Memory, obs: Observation) -> Decision:
    # If the peer already leads, a primary on disk comes up fenced and goes through reconciling
    # instead of taking writes next to the peer.
    fenced = obs.fenced or peer_role(obs) == "primary"
    return Decision(replace(memory, state=State.STARTING), [StartPostgres(fenced=fenced)])


def _as_standby(settings: Settings, memory: Memory, obs: Observation) -> Decision:
    receiving_since = None if obs.receiving else (memory.not_receiving_since or obs.now)
    memory = replace(memory, not_receiving_since=receiving_since, replica_missing_since=None)
    if obs.paused:
        return Decision(replace(memory, state=State.PAUSED, failures=0))
    role = peer_role(obs)
    if role == "primary":
        stuck = receiving_since is not None and obs.now - receiving_since >= settings.resync_after_s
        if stuck and obs.peer_pg_role == "primary":
            # Diverged history or a lost slot: the only safe way back is a fresh copy.
            return Decision(replace(memory, state=State.RESYNCING, not_receiving_since=None),
                            [Event("resync", "not streaming from the leader: re-cloning"),
                             Resync(export_split_writes=False)])
        return Decision(replace(memory, state=State.FOLLOWER))
    if role == "standby" and obs.peer is not None:
        # Nobody leads (e.g. a cold start after an interrupted resync): the higher rank promotes.
        mine = rank(obs.last_change_ts, settings.priority, settings.name)
        if mine > rank(obs.peer.last_change_ts, obs.peer.priority, obs.peer.name):
            return _promote(memory, obs, "no leader: promoting the higher-ranked standby")
        return Decision(replace(memory, state=State.FOLLOWER))
    healthy = obs.witness_ok
    in_grace = obs.now - memory.started_at < settings.startup_grace_s
    if memory.failures >= settings.threshold and healthy and not in_grace:
        return _promote(memory, obs, f"peer failed {memory.failures} probes: promoting")
    return Decision(replace(memory, state=State.FOLLOWER))


def _promote(memory: Memory, obs: Observation, why: str) -> Decision:
    floor = max(obs.last_revision, memory.peer_max_revision)
    return Decision(replace(memory, state=State.LEADER_ALONE, failures=0, not_receiving_since=None),
                    [Event("promote", why), Promote(revision_floor=floor)])


def _as_primary(settings: Settings, memory: Memory, obs: Observation) -> Decision:
    memory = replace(memory, not_receiving_since=None)
    actions: list[Action] = []
    missing_since = None if obs.replica_streaming else (memory.replica_missing_since or obs.now)
    memory = replace(memory, replica_missing_since=missing_since)
    actions += _sync_actions(settings, memory, obs)
    if obs.paused:
        return Decision(replace(memory, state=State.PAUSED), actions)
    if peer_role(obs) == "primary":
        return _two_leaders(settings, memory, obs, actions)
    if obs.fenced and (peer_role(obs) == "standby" or memory.failures >= settings.threshold):
        # The other leader is gone (resyncing, stopped or unreachable long enough): lead again.
        actions += [Fence(on=False), Event("unfence", "no other leader: accepting writes again")]
    state = State.LEADER if obs.replica_streaming else State.LEADER_ALONE
    return Decision(replace(memory, state=state), actions)


def _sync_actions(settings: Settings, memory: Memory, obs: Observation) -> list[Action]:
    if not settings.synchronous:
        return [SetSync(on=False)] if obs.sync_on else []
    lag_ok = obs.replica_lag_bytes is not None and obs.replica_lag_bytes <= settings.sync_max_lag_bytes
    if obs.replica_streaming and lag_ok and not obs.sync_on:
        return [SetSync(on=True), Event("sync", "follower streaming: synchronous replication on")]
    missing = memory.replica_missing_since
    if obs.sync_on and missing is not None and obs.now - missing >= settings.downgrade_after_s:
        return [SetSync(on=False), Event("async", "follower gone: asynchronous replication until it returns")]
    return []


def _two_leaders(settings: Settings, memory: Memory, obs: Observation, actions: list[Action]) -> Decision:
    peer = obs.peer
    mine = rank(obs.last_change_ts, settings.priority, settings.name)
    theirs = rank(peer.last_change_ts, peer.priority, peer.name) if peer else None
    # Its fence as we see it directly beats its last report, which may predate the fence.
    peer_fenced = peer is not None and (peer.fenced or obs.peer_pg_fenced)
    if not obs.fenced:
        if peer_fenced and theirs < mine:
            # The peer froze and is older: it will resync from us; keep serving.
            return Decision(replace(memory, state=State.LEADER_ALONE), actions)
        return Decision(replace(memory, state=State.RECONCILING),
                        actions + [Fence(on=True), Event("fence", "another leader is up: fenced read-only")])
    if peer is None:
        return Decision(replace(memory, state=State.RECONCILING), actions)
    if theirs > mine:
        return Decision(replace(memory, state=State.RESYNCING),
                        actions + [Event("lost", "the peer has the newer change: dropping local data"),
                                   Resync(export_split_writes=True)])
    if peer.fenced:  # its report says fenced, so the key it reported is final
        return Decision(replace(memory, state=State.LEADER_ALONE),
                        actions + [Fence(on=False), Event("won", "our change is newer: staying leader")])
    return Decision(replace(memory, state=State.RECONCILING), actions)
