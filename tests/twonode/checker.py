"""The history checker every integration test ends with.

Invariants (docs/twonode.md "What the tests check"):
1. The final change log's revisions strictly increase.
2. A revision is never bound to two different writes: every acknowledged write either is in the
   final log under the revision the client was told, or was exported by a split loser.
3. No acknowledged write is lost: each one is in the final store or in a loser's export file,
   and an exported write is not in the final store (the loser's split writes go as a whole).
4. A watcher across the whole test saw no duplicate and no gap: its events are exactly the final
   log's events from its start (split-loser events excepted), or it stopped with an error.
5. At most one writable leader in every status sample outside partitions/pauses (+ settle time).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess

from edgeplane.datastore import changes_since
from tests.twonode.harness import NODES, Pair


class Watcher:
    """`etcdctl watch --prefix /` against both endpoints (clientv3 fails over between them).

    Runs across scenarios; if the watch ends with an error it is restarted, and each run is
    checked on its own (an error the client can resume from is allowed, a silent gap is not).
    """

    def __init__(self, pair: Pair) -> None:
        self.pair = pair
        self.runs = 0
        self._start()

    def _start(self) -> None:
        endpoints = ",".join(self.pair.endpoint(n) for n in NODES)
        self.runs += 1
        self.path = self.pair.dir / f"watch-{self.runs}.jsonl"
        self.out = open(self.path, "w")
        self.process = subprocess.Popen(
            ["etcdctl", "--endpoints", endpoints, "watch", "--prefix", "/", "-w", "json"],
            stdout=self.out, stderr=subprocess.DEVNULL, env={**os.environ, "ETCDCTL_API": "3"},
            start_new_session=True)

    def events(self) -> list[tuple[int, str, str]]:
        events = []
        for line in self.path.read_text().splitlines():
            if not line.startswith("{"):
                continue
            try:
                response = json.loads(line)
            except ValueError:  # a line still being written
                continue
            for event in response.get("Events") or []:
                kv = event["kv"]
                events.append((int(kv["mod_revision"]), base64.b64decode(kv["key"]).decode(),
                               base64.b64decode(kv.get("value", "")).decode()))
        return events

    def alive(self) -> bool:
        return self.process.poll() is None

    def restart(self) -> None:
        self.close()
        self._start()

    def close(self) -> None:
        if self.alive():
            self.process.terminate()
            self.process.wait(10)
        self.out.close()


def _check_watch(pair: Pair, watcher: Watcher, log: list[tuple[int, str, str]], loser_revisions: set[int]) -> None:
    """Strict on what the watch delivered: in revision order, no duplicate, no gap between its
    first and last event, and a live watch must reach the latest revision within 20 s (one that
    ended with an error is restarted: a client resumes from there)."""
    latest = log[-1][0] if log else 0
    try:
        pair.wait(lambda: not watcher.alive() or any(r >= latest for r, _, _ in watcher.events()), 20,
                  "the watcher to see the latest revision")
        stalled = False
    except AssertionError:
        stalled = True
    events = watcher.events()
    seen = [r for r, _, _ in events]
    assert seen == sorted(set(seen)), f"watcher saw duplicates or went backwards: {seen}"
    kept = [e for e in events if e[0] not in loser_revisions]
    if kept:
        expected = [e for e in log if kept[0][0] <= e[0] <= kept[-1][0]]
        assert kept == expected, (f"watch gap: missing {sorted(set(expected) - set(kept))[:10]}, "
                                  f"unexpected {sorted(set(kept) - set(expected))[:10]} (see {watcher.path})")
    assert not stalled, f"watch stalled after revision {seen[-1] if seen else None} (see {watcher.path})"
    if not watcher.alive():
        watcher.restart()


def check(pair: Pair, watcher: Watcher | None = None) -> dict:
    leader = pair.wait(pair.leader, 60, "a single leader")
    pair.wait_pair(60)
    final_store = pair.wait_identical(60)
    dsn = f"postgresql://postgres@127.0.0.1:{pair.pg_ports[leader]}/edgeplane"
    log = [(c.revision, c.key.decode(), c.value.decode()) for c in changes_since(dsn, 0) if not c.deleted]
    revisions = [r for r, _, _ in log]
    assert revisions == sorted(set(revisions)), "final log revisions must strictly increase"
    by_revision = {r: (k, v) for r, k, v in log}

    exported = pair.all_exported()
    lost, reused = [], []
    for ack in pair.history.acks:
        if (ack.key, ack.value, ack.revision) in exported:
            assert final_store.get(ack.key) != (ack.value, ack.revision), \
                f"exported split write {ack} must not survive in the final store"
            continue
        if by_revision.get(ack.revision, (ack.key, ack.value)) != (ack.key, ack.value):
            reused.append((ack, by_revision[ack.revision]))
        if ack.key not in final_store:
            lost.append(ack)
    assert not reused, f"revisions reused for different data: {reused}"
    assert not lost, f"acknowledged writes lost: {lost}"

    if watcher is not None:
        _check_watch(pair, watcher, log, {r for _, _, r in exported})

    for at, leaders in pair.history.leader_samples:
        if any(start <= at <= end for start, end in pair.history.unsafe_windows):
            continue
        assert len(leaders) <= 1, f"two writable leaders outside a partition at {at}: {leaders}"
    return final_store
