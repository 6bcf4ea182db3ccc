"""The node agent's pure decision function, rule by rule, plus a two-machine simulation.

No processes, no network: these tests pin the rules in edgeplane/twonode/machine.py.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from edgeplane.twonode.machine import (Bootstrap, Fence, Memory, Observation, PeerStatus, Promote, Resync, SetSync,
                                       Settings, StartPostgres, State, decide, peer_failed)

S = Settings(name="b", priority=50, interval_s=1, threshold=3, startup_grace_s=5, downgrade_after_s=2,
             resync_after_s=4)


def peer(**kw) -> PeerStatus:
    base = dict(name="a", priority=100, pg_role="primary", has_data=True, fenced=False, last_change_ts=10.0,
                last_revision=7, state="leader")
    return PeerStatus(**{**base, **kw})


def obs(**kw) -> Observation:
    base = dict(now=100.0, has_data=True, pg_role="standby", fenced=False, sync_on=False, replica_streaming=False,
                replica_lag_bytes=None, receiving=True, last_change_ts=10.0, last_revision=7, witness_ok=True,
                paused=False, peer=peer(), peer_pg_role="primary")
    return Observation(**{**base, **kw})


def kinds(decision) -> list[type]:
    return [type(a) for a in decision.actions if type(a).__name__ != "Event"]


def run_ticks(observations, settings=S, memory=None):
    memory = memory or Memory(started_at=0.0)
    decisions = []
    for o in observations:
        d = decide(settings, memory, o)
        memory = d.memory
        decisions.append(d)
    return decisions


DEAD = dict(peer=None, peer_pg_role=None, receiving=False)


# -- what counts as a failed probe -------------------------------------------------------------
@pytest.mark.parametrize("ping,reported,failed", [
    ("primary", None, False),        # agent down, PostgreSQL answers: agent crash alone
    ("primary", "primary", False),
    (None, "primary", False),        # we cannot reach its PostgreSQL, its agent says it is up (one-way)
    (None, None, True),              # agent up but its PostgreSQL down, and we cannot reach it either
    (None, "no-agent", True),        # nothing answers
])
def test_probe_failure_needs_both_channels_silent(ping, reported, failed):
    status = None if reported == "no-agent" else peer(pg_role=reported)
    assert peer_failed(obs(peer=status, peer_pg_role=ping)) is failed


# -- promotion ---------------------------------------------------------------------------------
def test_follower_promotes_after_threshold_consecutive_failures_only():
    decisions = run_ticks([obs(now=10 + i, **DEAD) for i in range(3)])
    assert [kinds(d) for d in decisions] == [[], [], [Promote]]
    assert decisions[-1].memory.state is State.LEADER_ALONE


def test_a_success_resets_the_count_so_a_flapping_link_never_promotes():
    pattern = [DEAD, DEAD, {}, DEAD, DEAD, {}, DEAD, DEAD, {}]
    decisions = run_ticks([obs(now=10 + i, **p) for i, p in enumerate(pattern)])
    assert all(Promote not in kinds(d) for d in decisions)


def test_agent_crash_alone_never_promotes():
    decisions = run_ticks([obs(now=10 + i, peer=None, peer_pg_role="primary", receiving=True) for i in range(20)])
    assert all(Promote not in kinds(d) for d in decisions)
    assert decisions[-1].memory.failures == 0


def test_leader_postgres_down_with_agent_up_promotes():
    decisions = run_ticks([obs(now=10 + i, peer=peer(pg_role=None), peer_pg_role=None, receiving=False)
                           for i in range(3)])
    assert kinds(decisions[-1]) == [Promote]


def test_one_way_partition_where_only_the_peer_reaches_us_never_promotes():
    decisions = run_ticks([obs(now=10 + i, peer=peer(), peer_pg_role=None, receiving=False) for i in range(20)])
    assert all(kinds(d) == [] for d in decisions), "no promotion and no resync storm"


@pytest.mark.parametrize("blocker", [dict(paused=True), dict(witness_ok=False)])
def test_no_promotion_while_paused_or_cut_off_from_the_witness(blocker):
    decisions = run_ticks([obs(now=10 + i, **DEAD, **blocker) for i in range(10)])
    assert all(Promote not in kinds(d) for d in decisions)


def test_no_promotion_during_startup_grace():
    decisions = run_ticks([obs(now=i, **DEAD) for i in range(7)])
    promoted_at = [i for i, d in enumerate(decisions) if Promote in kinds(d)]
    assert promoted_at == [5]


def test_revision_floor_covers_the_highest_revision_the_peer_ever_reported():
    memory = Memory(started_at=0.0)
    memory = decide(S, memory, obs(now=10, peer=peer(last_revision=42), last_revision=40)).memory
    decisions = run_ticks([obs(now=11 + i, last_revision=40, **DEAD) for i in range(3)], memory=memory)
    promote = [a for a in decisions[-1].actions if isinstance(a, Promote)]
    assert promote == [Promote(revision_floor=42)]


# -- followers ---------------------------------------------------------------------------------
def test_follower_not_streaming_from_a_reachable_leader_resyncs_after_the_grace():
    decisions = run_ticks([obs(now=10 + i, receiving=False) for i in range(6)])
    resyncs = [i for i, d in enumerate(decisions) if Resync in kinds(d)]
    assert resyncs == [4]
    assert decisions[4].actions[-1] == Resync(export_split_writes=False)


def test_two_standbys_the_higher_rank_promotes():
    lower = obs(peer=peer(pg_role="standby", last_change_ts=10.0), peer_pg_role="standby", last_change_ts=10.0)
    assert kinds(decide(S, Memory(), lower)) == []  # a has priority 100 > 50
    newer = replace(lower, last_change_ts=11.0)
    assert kinds(decide(S, Memory(), newer)) == [Promote]


# -- no local data -----------------------------------------------------------------------------
def test_empty_node_clones_from_a_leader():
    d = decide(S, Memory(), obs(has_data=False, pg_role=None))
    assert kinds(d) == [Resync] and d.memory.state is State.RESYNCING


def test_both_empty_the_higher_rank_bootstraps_the_other_waits():
    empty_peer = peer(pg_role=None, has_data=False)
    b = decide(S, Memory(), obs(has_data=False, pg_role=None, peer=empty_peer, peer_pg_role=None))
    assert kinds(b) == [] and b.memory.state is State.WAITING
    a_settings = replace(S, name="a", priority=100)
    a = decide(a_settings, Memory(), obs(has_data=False, pg_role=None, peer=replace(empty_peer, name="b",
                                                                                    priority=50), peer_pg_role=None))
    assert kinds(a) == [Bootstrap]


def test_empty_node_with_silent_peer_waits_forever():
    decisions = run_ticks([obs(now=10 + i, has_data=False, pg_role=None, **DEAD) for i in range(20)])
    assert all(kinds(d) == [] and d.memory.state is State.WAITING for d in decisions)


# -- starting ----------------------------------------------------------------------------------
@pytest.mark.parametrize("peer_role,fenced", [("primary", True), ("standby", False), (None, False)])
def test_postgres_down_is_started_fenced_when_the_peer_leads(peer_role, fenced):
    d = decide(S, Memory(), obs(pg_role=None, peer=None, peer_pg_role=peer_role))
    assert d.actions == [StartPostgres(fenced=fenced)]


# -- synchronous replication -------------------------------------------------------------------
LEADER = dict(pg_role="primary", peer=peer(name="a", pg_role="standby", state="follower"), peer_pg_role="standby",
              receiving=False)


def test_sync_turns_on_when_the_follower_streams_with_small_lag():
    assert SetSync(on=True) in decide(S, Memory(), obs(**LEADER, replica_streaming=True, replica_lag_bytes=0)).actions
    big = obs(**LEADER, replica_streaming=True, replica_lag_bytes=S.sync_max_lag_bytes + 1)
    assert decide(S, Memory(), big).actions == []


def test_sync_downgrades_after_the_follower_is_missing_for_downgrade_after():
    ticks = [obs(now=10 + t, **{**LEADER, "peer_pg_role": None, "peer": None}, sync_on=True) for t in (0, 1, 2)]
    decisions = run_ticks(ticks)
    assert [SetSync(on=False) in d.actions for d in decisions] == [False, False, True]


def test_async_mode_never_turns_sync_on():
    settings = replace(S, synchronous=False)
    d = decide(settings, Memory(), obs(**LEADER, replica_streaming=True, replica_lag_bytes=0, sync_on=True))
    assert d.actions == [SetSync(on=False)]


# -- two leaders -------------------------------------------------------------------------------
TWO = dict(pg_role="primary", receiving=False, peer_pg_role="primary")


def test_two_unfenced_leaders_fence_first():
    d = decide(S, Memory(), obs(**TWO, peer=peer()))
    assert d.actions[0] == Fence(on=True) and d.memory.state is State.RECONCILING


def test_fenced_node_with_older_change_resyncs_and_exports():
    d = decide(S, Memory(), obs(**TWO, fenced=True, last_change_ts=5.0, peer=peer(last_change_ts=6.0)))
    assert d.actions[-1] == Resync(export_split_writes=True)


def test_fenced_node_with_newer_change_wins_only_once_the_peer_is_fenced():
    waiting = decide(S, Memory(), obs(**TWO, fenced=True, last_change_ts=7.0, peer=peer(last_change_ts=6.0)))
    assert kinds(waiting) == [] and waiting.memory.state is State.RECONCILING
    won = decide(S, Memory(), obs(**TWO, fenced=True, last_change_ts=7.0, peer=peer(last_change_ts=6.0, fenced=True)))
    assert kinds(won) == [Fence] and won.actions[0] == Fence(on=False)


def test_unfenced_leader_keeps_serving_while_an_older_fenced_peer_resyncs():
    d = decide(S, Memory(), obs(**TWO, last_change_ts=7.0, peer=peer(last_change_ts=6.0, fenced=True)))
    assert kinds(d) == [] and d.memory.state is State.LEADER_ALONE


def test_fenced_leader_waits_when_the_peer_agent_is_silent():
    d = decide(S, Memory(), obs(**TWO, fenced=True, peer=None))
    assert kinds(d) == [] and d.memory.state is State.RECONCILING


def test_fenced_leader_unfences_once_the_peer_follows():
    d = decide(S, Memory(), obs(**LEADER, fenced=True))
    assert Fence(on=False) in d.actions


def test_paused_leader_never_fences():
    d = decide(S, Memory(), obs(**TWO, paused=True, peer=peer()))
    assert kinds(d) == [] and d.memory.state is State.PAUSED


def test_equal_change_times_fall_back_to_priority():
    d = decide(S, Memory(), obs(**TWO, fenced=True, last_change_ts=6.0, peer=peer(last_change_ts=6.0, fenced=True)))
    assert d.actions[-1] == Resync(export_split_writes=True)  # b (priority 50) loses to a (100)


# -- two machines against each other -----------------------------------------------------------
@pytest.mark.parametrize("ts_a,ts_b,fenced_a,fenced_b,order",
                         list(itertools.product([5.0, 6.0], [5.0, 7.0], [False, True], [False, True], ["ab", "ba"])))
def test_two_leaders_always_converge_on_the_newer_side(ts_a, ts_b, fenced_a, fenced_b, order):
    """Simulate both agents ticking in either order, each seeing the other's last reported state."""
    nodes = {
        "a": {"settings": replace(S, name="a", priority=100), "ts": ts_a, "fenced": fenced_a, "memory": Memory()},
        "b": {"settings": replace(S, name="b", priority=50), "ts": ts_b, "fenced": fenced_b, "memory": Memory()},
    }
    resynced: list[str] = []
    for _ in range(6):
        for name in order:
            me, other_name = nodes[name], "b" if name == "a" else "a"
            other = nodes[other_name]
            if name in resynced or other_name in resynced:
                continue
            status = PeerStatus(name=other_name, priority=other["settings"].priority, pg_role="primary",
                                has_data=True, fenced=other["fenced"], last_change_ts=other["ts"], last_revision=1,
                                state="leader")
            d = decide(me["settings"], me["memory"], obs(**TWO, fenced=me["fenced"], last_change_ts=me["ts"],
                                                           peer=status))
            me["memory"] = d.memory
            for action in d.actions:
                if isinstance(action, Fence):
                    me["fenced"] = action.on
                if isinstance(action, Resync):
                    resynced.append(name)
    expected_loser = "a" if (ts_a, 100) < (ts_b, 50) else "b"
    assert resynced == [expected_loser]
    winner = nodes["b" if expected_loser == "a" else "a"]
    # The winner ends unfenced, or is about to unfence once it sees the loser gone.
    final = decide(winner["settings"], winner["memory"],
                   obs(**{**TWO, "peer_pg_role": "standby"}, fenced=winner["fenced"], peer=None))
    assert not winner["fenced"] or Fence(on=False) in final.actions


def test_a_peer_seen_fenced_directly_counts_before_its_report_catches_up():
    d = decide(S, Memory(), obs(**TWO, last_change_ts=7.0, peer=peer(last_change_ts=6.0), peer_pg_fenced=True))
    assert kinds(d) == [] and d.memory.state is State.LEADER_ALONE
