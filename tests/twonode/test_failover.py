"""Two real nodes on loopback (PostgreSQL, datastore, agent each), faults injected for real:
SIGKILL/SIGSTOP of processes, a cuttable TCP proxy on every peer link. Clients are real etcdctl.
Every test ends with the history checker (tests/twonode/checker.py).
"""

from __future__ import annotations

import shutil
import signal
import threading
import time

import pytest

from tests.twonode.checker import check

pytestmark = [pytest.mark.postgres, pytest.mark.etcd]

# Short probe settings (interval 0.2 s, threshold 3): detection ~0.6 s. The bound allows for a
# loaded 2-core CI machine and etcdctl's own retry back-off.
WRITE_BOUND_S = 15.0


def other(name: str) -> str:
    return "b" if name == "a" else "a"


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
    for i in range(10):
        assert pair.put(f"/before/{i}", str(i)) is not None
    writer = Writer(pair, "/during/")
    time.sleep(0.5)
    epoch = pair.epoch()
    pair.kill("a")
    took = pair.put_until_ok("/after/0", "x", node="b", timeout=WRITE_BOUND_S)
    assert took < WRITE_BOUND_S
    status = pair.status("b")
    assert status["role"] == "leader" and status["epoch"] == epoch + 1
    assert any(e["kind"] == "promote" for e in status["events"])
    writer.join()
    # The old leader comes back: it has no newer change, so it drops its data and follows.
    pair.restart_agent("a")
    final = check(pair, pair.watcher)
    assert pair.status("a")["role"] == "follower" and pair.status("b")["role"] == "leader"
    assert all(f"/before/{i}" in final for i in range(10)) and "/after/0" in final


def test_follower_crash_leader_keeps_writing_and_follower_catches_up(pair):
    pair.kill("b")
    took = pair.put_until_ok("/x/0", "0", node="a", timeout=WRITE_BOUND_S)
    for i in range(1, 20):
        assert pair.put(f"/x/{i}", str(i), node="a") is not None
    status = pair.status("a")
    assert status["role"] == "leader" and status["replication"]["mode"] == "async", status["replication"]
    assert took < 5, "a missing follower must not block writes longer than the downgrade time"
    pair.restart_agent("b")
    final = check(pair, pair.watcher)
    assert all(f"/x/{i}" in final for i in range(20))
    pair.wait(lambda: pair.status("a")["replication"]["mode"] == "sync", 20, "synchronous again")


def test_symmetric_partition_newer_side_wins_and_loser_exports(pair):
    pair.unsafe_from()
    pair.cut("a")
    pair.cut("b")
    pair.wait(lambda: pair.status("b").get("role") == "leader", 20, "b promoted on its side")
    assert pair.put("/split/a", "from-a", node="a", timeout=5) is not None
    time.sleep(0.2)
    pair.put_until_ok("/split/b", "from-b", node="b")  # newer: b must win
    pair.heal()
    pair.unsafe_until_settled()
    final = check(pair, pair.watcher)
    assert final["/split/b"][0] == "from-b" and "/split/a" not in final
    exports = pair.exports("a")
    assert [w["key"] for e in exports for w in e["writes"]] == ["/split/a"]
    assert pair.status("a")["split_exports"], "the export is reported in status"
    assert any(e["kind"] == "split-writes" for e in pair.status("a")["events"])


def test_one_way_partition_does_not_promote(pair):
    epoch = pair.epoch()
    pair.cut("b")  # b cannot reach a (probe or replication); a still reaches b
    time.sleep(3)
    assert pair.status("a")["role"] == "leader" and pair.status("b")["role"] == "follower"
    assert pair.put_until_ok("/oneway/0", "0", node="a") < WRITE_BOUND_S
    pair.heal()
    pair.cut("a")  # and the other direction
    time.sleep(2)
    assert pair.put("/oneway/1", "1", node="a") is not None
    pair.heal()
    final = check(pair, pair.watcher)
    assert pair.epoch() == epoch and {"/oneway/0", "/oneway/1"} <= set(final)


def test_flapping_link_shorter_than_threshold_never_promotes(pair):
    epoch = pair.epoch()
    resyncs = sum(e["kind"] == "resync" for e in pair.status("b")["events"])  # its initial clone
    writer = Writer(pair, "/flap/")
    for _ in range(6):
        pair.cut("a"), pair.cut("b")
        time.sleep(0.3)  # below threshold x interval = 0.6 s
        pair.heal()
        time.sleep(0.6)
    writer.join()
    check(pair, pair.watcher)
    assert pair.epoch() == epoch
    assert sum(e["kind"] == "resync" for e in pair.status("b")["events"]) == resyncs, "no resync storm"
    assert writer.count > 5


@pytest.mark.slow
def test_sigstop_of_leader_beyond_threshold_then_resume(pair):
    pair.unsafe_from()
    pair.signal_node("a", signal.SIGSTOP)
    pair.put_until_ok("/stop/b", "b", node="b", timeout=WRITE_BOUND_S)
    pair.signal_node("a", signal.SIGCONT)
    pair.unsafe_until_settled()
    final = check(pair, pair.watcher)
    assert pair.status("b")["role"] == "leader" and "/stop/b" in final


def test_agent_crash_alone_does_not_promote(pair):
    epoch = pair.epoch()
    pair.kill("a", parts=("agent",))
    time.sleep(3)  # five times the detection time
    assert pair.status("b")["role"] == "follower" and pair.epoch() == epoch
    assert pair.put("/agentless/0", "0", node="b") is not None
    pair.restart_agent("a")
    check(pair, pair.watcher)
    assert pair.status("a")["role"] == "leader" and pair.epoch() == epoch


@pytest.mark.slow
def test_simultaneous_cold_start_elects_one_leader_and_keeps_data(pair):
    for i in range(5):
        assert pair.put(f"/cold/{i}", str(i)) is not None
    pair.lab.stop()  # SIGTERM both agents: each stops its datastore and PostgreSQL
    for name in ("a", "b"):
        pair.restart_agent(name)
    final = check(pair, pair.watcher)
    assert all(f"/cold/{i}" in final for i in range(5))


def test_pause_during_upgrade_prevents_promotion(pair):
    from edgeplane.twonode.client import set_paused

    answer = set_paused(pair.configs["a"], True)
    assert answer["paused"] and answer["peer"]["paused"], answer
    epoch = pair.epoch()
    pair.lab.agents["a"].send_signal(signal.SIGTERM)  # "upgrade" a: the whole node goes down
    pair.lab.agents["a"].wait(30)
    time.sleep(3)
    assert pair.status("b")["role"] == "follower" and pair.status("b")["paused"]
    pair.restart_agent("a")
    pair.wait(lambda: pair.status("a").get("role") == "leader", 30, "a back as leader")
    set_paused(pair.configs["a"], False)
    assert not pair.status("b")["paused"]
    pair.put_until_ok("/upgraded", "1", node="a")
    check(pair, pair.watcher)
    assert pair.epoch() == epoch


@pytest.mark.slow
def test_brand_new_node_replaces_a_dead_one(pair):
    for i in range(5):
        assert pair.put(f"/old/{i}", str(i)) is not None
    pair.kill("a")
    pair.put_until_ok("/new/0", "0", node="b", timeout=WRITE_BOUND_S)
    shutil.rmtree(pair.data_dirs["a"])  # the replacement machine starts empty
    pair.restart_agent("a")
    final = check(pair, pair.watcher)
    assert pair.status("a")["role"] == "follower"
    assert all(f"/old/{i}" in final for i in range(5)) and "/new/0" in final
