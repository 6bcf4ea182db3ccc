"""Two real nodes on loopback (PostgreSQL, datastore, agent each), faults injected for real:
SIGKILL/SIGSTOP of processes, a cuttable TCP proxy on every peer link. Clients are real etcdctl.

One pair serves the whole module (see the ``pair`` fixture): every scenario starts from a
converged pair, looks up which node leads, and ends with the history checker, which waits for
convergence again. The history (acknowledged writes, watch events, leader samples) therefore
spans every scenario and every failover of the module.
"""

from __future__ import annotations

import shutil
import signal
import threading
import time

import pytest

from tests.twonode.checker import check

pytestmark = [pytest.mark.postgres, pytest.mark.etcd]

# Short probe settings (interval 0.2 s, threshold 4): detection ~0.8 s. The bound allows for a
# loaded 2-core CI machine and etcdctl's own retry back-off.
WRITE_BOUND_S = 15.0


def roles(pair) -> tuple[str, str]:
    leader = pair.wait(pair.leader, 30, "a single leader")
    return leader, "b" if leader == "a" else "a"


def resyncs(pair, name: str) -> int:
    """Resyncs in the node's whole event log (status shows only the latest events)."""
    return sum('"kind": "resync"' in line for line in pair.events().splitlines() if line.startswith(f"{name} "))


@pytest.fixture(autouse=True)
def converged(pair):
    """Each scenario starts from a running, converged pair, even after an earlier one failed."""
    pair.ensure_agents()
    pair.wait_pair(60)


class Writer:
    """Sequential puts through both endpoints until stopped; every ack lands in the history."""

    def __init__(self, pair, prefix: str) -> None:
        self.pair, self.prefix, self.count = pair, prefix, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            self.pair.put(f"{self.prefix}{self.count:05d}", f"v{self.count}", timeout=1.0)
            self.count += 1

    def join(self) -> None:
        self.stop.set()
        self.thread.join(10)


def test_kill_leader_promotes_follower_within_bound_and_loses_no_ack(pair):
    leader, follower = roles(pair)
    for i in range(10):
        pair.put_until_ok(f"/kill/before/{i}", str(i))
    writer = Writer(pair, "/kill/during/")
    time.sleep(0.5)
    epoch = pair.epoch()
    pair.kill(leader)
    took = pair.put_until_ok("/kill/after", "x", node=follower, timeout=WRITE_BOUND_S)
    assert took < WRITE_BOUND_S
    status = pair.wait(lambda: (lambda s: s if any(e["kind"] == "promoted" for e in s.get("events", []))
                                else None)(pair.status(follower)), 10, "the promoted event")
    assert status["role"] == "leader" and status["epoch"] == epoch + 1
    writer.join()
    assert writer.count > 0
    # The old leader comes back: it has no newer change, so it drops its data and follows.
    pair.restart_agent(leader)
    final = check(pair, pair.watcher)
    assert pair.status(leader)["role"] == "follower" and pair.status(follower)["role"] == "leader"
    assert all(f"/kill/before/{i}" in final for i in range(10)) and "/kill/after" in final


def test_follower_crash_leader_keeps_writing_and_follower_catches_up(pair):
    leader, follower = roles(pair)
    pair.kill(follower)
    took = pair.put_until_ok("/fcrash/0", "0", node=leader, timeout=WRITE_BOUND_S)
    for i in range(1, 20):
        assert pair.put(f"/fcrash/{i}", str(i), node=leader) is not None
    status = pair.status(leader)
    assert status["role"] == "leader" and status["replication"]["mode"] == "async", status["replication"]
    assert took < 5, "a missing follower must not block writes much longer than the downgrade time"
    pair.restart_agent(follower)
    final = check(pair, pair.watcher)
    assert all(f"/fcrash/{i}" in final for i in range(20))
    pair.wait(lambda: pair.status(leader)["replication"]["mode"] == "sync", 20, "synchronous again")


def test_symmetric_partition_newer_side_wins_and_loser_exports(pair):
    leader, follower = roles(pair)
    exports_before = len(pair.exports(leader))
    pair.unsafe_from()
    pair.cut("a")
    pair.cut("b")
    pair.wait(lambda: pair.status(follower).get("role") == "leader", 20, "the follower promoted on its side")
    assert pair.put("/split/old", "old-leader", node=leader, timeout=5) is not None
    time.sleep(0.2)
    pair.put_until_ok("/split/new", "new-leader", node=follower)  # newer: the promoted side must win
    pair.heal()
    pair.unsafe_until_settled()
    final = check(pair, pair.watcher)
    assert final["/split/new"][0] == "new-leader" and "/split/old" not in final
    exports = pair.exports(leader)[exports_before:]
    assert [w["key"] for e in exports for w in e["writes"]] == ["/split/old"]
    assert pair.status(leader)["split_exports"], "the export is reported in status"
    assert any(e["kind"] == "split-writes" for e in pair.status(leader)["events"])


def test_one_way_partition_does_not_promote(pair):
    leader, follower = roles(pair)
    epoch = pair.epoch()
    pair.cut(follower)  # the follower cannot reach the leader (probe or replication)
    time.sleep(3)
    assert pair.status(leader)["role"] == "leader" and pair.status(follower)["role"] == "follower"
    assert pair.put_until_ok("/oneway/0", "0", node=leader) < WRITE_BOUND_S
    pair.heal()
    pair.cut(leader)  # and the other direction
    time.sleep(2)
    assert pair.put("/oneway/1", "1", node=leader) is not None
    pair.heal()
    final = check(pair, pair.watcher)
    assert pair.epoch() == epoch and {"/oneway/0", "/oneway/1"} <= set(final)


def test_flapping_link_shorter_than_threshold_never_promotes(pair):
    leader, follower = roles(pair)
    epoch, before = pair.epoch(), resyncs(pair, follower)
    writer = Writer(pair, "/flap/")
    for _ in range(6):
        pair.cut("a"), pair.cut("b")
        time.sleep(0.4)  # below threshold x interval = 0.8 s
        pair.heal()
        time.sleep(0.6)
    writer.join()
    check(pair, pair.watcher)
    assert pair.epoch() == epoch and pair.leader() == leader
    assert resyncs(pair, follower) == before, "no resync storm"
    assert writer.count > 5


def test_watch_through_a_datastore_that_lost_its_database(pair):
    """A watch on the follower's datastore must keep delivering after the follower's link to the
    leader (and so its datastore's connection) was cut for a while, or end with an error."""
    import os
    import subprocess

    leader, follower = roles(pair)
    out = open(pair.dir / "follower-watch.txt", "w+")
    watch = subprocess.Popen(["etcdctl", "--endpoints", pair.endpoint(follower), "watch", "--prefix", "/fw/"],
                             stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "ETCDCTL_API": "3"})
    try:
        time.sleep(1)
        pair.put_until_ok("/fw/before", "1", node=leader)
        pair.cut(follower)
        time.sleep(2)
        pair.heal()
        pair.put_until_ok("/fw/after", "2", node=leader)
        pair.wait(lambda: watch.poll() is not None or "/fw/after" in (pair.dir / "follower-watch.txt").read_text(),
                  15, "the follower's watch to deliver or fail")
    finally:
        watch.kill()
        watch.wait()
        out.close()
        check(pair, pair.watcher)


def test_sigstop_of_leader_beyond_threshold_then_resume(pair):
    leader, follower = roles(pair)
    pair.unsafe_from()
    pair.signal_node(leader, signal.SIGSTOP)
    pair.put_until_ok("/stop/new", "new", node=follower, timeout=WRITE_BOUND_S)
    pair.signal_node(leader, signal.SIGCONT)
    pair.unsafe_until_settled()
    final = check(pair, pair.watcher)
    # The newer side wins. Normally that is the promoted follower (the paused leader wrote
    # nothing since); should the resumed leader have committed a newer change first, the
    # follower's write must then be in its split-writes export, never silently gone.
    if pair.status(follower)["role"] == "leader":
        assert final["/stop/new"][0] == "new"
    else:
        exported = [w["key"] for e in pair.exports(follower) for w in e["writes"]]
        assert "/stop/new" in exported, pair.events()


def test_agent_crash_alone_does_not_promote(pair):
    leader, follower = roles(pair)
    epoch = pair.epoch()
    pair.kill(leader, parts=("agent",))
    time.sleep(3)  # five times the detection time
    assert pair.status(follower)["role"] == "follower" and pair.epoch() == epoch
    assert pair.put("/agentless/0", "0", node=follower) is not None
    pair.restart_agent(leader)
    check(pair, pair.watcher)
    assert pair.status(leader)["role"] == "leader" and pair.epoch() == epoch


def test_pause_during_upgrade_prevents_promotion(pair):
    from edgeplane.twonode.client import set_paused

    leader, follower = roles(pair)
    answer = set_paused(pair.configs[leader], True)
    assert answer["paused"] and answer["peer"]["paused"], answer
    epoch = pair.epoch()
    pair.lab.agents[leader].send_signal(signal.SIGTERM)  # "upgrade" it: the whole node goes down
    pair.lab.agents[leader].wait(30)
    time.sleep(3)
    assert pair.status(follower)["role"] == "follower" and pair.status(follower)["paused"]
    pair.restart_agent(leader)
    pair.wait(lambda: pair.status(leader).get("role") == "leader", 30, "the upgraded node back as leader")
    set_paused(pair.configs[leader], False)
    assert not pair.status(follower)["paused"]
    pair.put_until_ok("/upgraded", "1", node=leader)
    check(pair, pair.watcher)
    assert pair.epoch() == epoch


def test_simultaneous_cold_start_elects_one_leader_and_keeps_data(pair):
    for i in range(5):
        pair.put_until_ok(f"/cold/{i}", str(i))
    pair.lab.stop()  # SIGTERM both agents: each stops its datastore and PostgreSQL
    for name in ("a", "b"):
        pair.restart_agent(name)
    final = check(pair, pair.watcher)
    assert all(f"/cold/{i}" in final for i in range(5))


def test_brand_new_node_replaces_a_dead_one(pair):
    leader, follower = roles(pair)
    for i in range(5):
        pair.put_until_ok(f"/old/{i}", str(i))
    pair.kill(leader)
    pair.put_until_ok("/new/0", "0", node=follower, timeout=WRITE_BOUND_S)
    shutil.rmtree(pair.data_dirs[leader])  # the replacement machine starts empty
    pair.restart_agent(leader)
    final = check(pair, pair.watcher)
    assert pair.status(leader)["role"] == "follower"
    assert all(f"/old/{i}" in final for i in range(5)) and "/new/0" in final
