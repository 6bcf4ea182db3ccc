"""The datastore driven by the real etcdctl, every result checked.

Each test runs against edgeplane on SQLite, edgeplane on PostgreSQL (a real server) and a real
etcd, so the expectations are etcd's own behaviour, not ours.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid

import pytest

from tests.support.etcdctl import ENV, etcdctl, etcdctl_json, unb64


@pytest.fixture
def prefix() -> str:
    return f"/t-{uuid.uuid4().hex[:8]}/"


def put(endpoint: str, key: str, value: str, *flags: str) -> int:
    """Put and return the revision it created."""
    return etcdctl_json(endpoint, "put", key, value, *flags)["header"]["revision"]


def kv_pairs(response: dict) -> list[tuple[str, str]]:
    return [(unb64(kv["key"]), unb64(kv.get("value", ""))) for kv in response.get("kvs", [])]


def test_put_get_delete_and_prefix(backend, prefix):
    ep = backend.endpoint
    first = put(ep, prefix + "a", "1")
    second = put(ep, prefix + "b", "2")
    put(ep, prefix + "c", "3")
    assert second == first + 1

    got = etcdctl_json(ep, "get", prefix + "a")
    assert kv_pairs(got) == [(prefix + "a", "1")]
    kv = got["kvs"][0]
    assert kv["create_revision"] == first and kv["mod_revision"] == first and kv["version"] == 1

    assert kv_pairs(etcdctl_json(ep, "get", "--prefix", prefix)) == [(prefix + "a", "1"), (prefix + "b", "2"), (prefix + "c", "3")]

    updated = put(ep, prefix + "a", "1b")
    kv = etcdctl_json(ep, "get", prefix + "a")["kvs"][0]
    assert (kv["create_revision"], kv["mod_revision"], kv["version"]) == (first, updated, 2)

    deleted = etcdctl_json(ep, "del", "--prefix", prefix + "b")
    assert deleted["deleted"] == 1
    assert kv_pairs(etcdctl_json(ep, "get", "--prefix", prefix)) == [(prefix + "a", "1b"), (prefix + "c", "3")]
    assert etcdctl(ep, "get", prefix + "b").stdout == ""
    assert etcdctl_json(ep, "del", prefix + "nothing").get("deleted", 0) == 0


def test_from_key_limit_keys_only_and_sort(backend, prefix):
    ep = backend.endpoint
    for name, value in [("k1", "c"), ("k2", "a"), ("k3", "b")]:
        put(ep, prefix + name, value)
    from_key = etcdctl_json(ep, "get", "--from-key", prefix + "k2")
    keys = [unb64(kv["key"]) for kv in from_key["kvs"]]
    assert keys[:2] == [prefix + "k2", prefix + "k3"]
    assert all(k >= prefix + "k2" for k in keys)

    limited = etcdctl_json(ep, "get", "--prefix", prefix, "--limit", "2")
    assert [unb64(kv["key"]) for kv in limited["kvs"]] == [prefix + "k1", prefix + "k2"]
    assert limited["more"] is True and limited["count"] == 3

    keys_only = etcdctl_json(ep, "get", "--prefix", prefix, "--keys-only")
    assert [kv.get("value") for kv in keys_only["kvs"]] == [None, None, None]
    assert etcdctl(ep, "get", "--prefix", prefix, "--keys-only").stdout.split() == [prefix + "k1", prefix + "k2", prefix + "k3"]

    by_value = etcdctl_json(ep, "get", "--prefix", prefix, "--sort-by", "VALUE")
    assert [unb64(kv["value"]) for kv in by_value["kvs"]] == ["a", "b", "c"]
    by_key_desc = etcdctl_json(ep, "get", "--prefix", prefix, "--sort-by", "KEY", "--order", "DESCEND")
    assert [unb64(kv["key"]) for kv in by_key_desc["kvs"]] == [prefix + "k3", prefix + "k2", prefix + "k1"]
    by_modrev_desc_limited = etcdctl_json(ep, "get", "--prefix", prefix, "--sort-by", "MODIFY", "--order", "DESCEND", "--limit", "1")
    assert kv_pairs(by_modrev_desc_limited) == [(prefix + "k3", "b")]
    assert by_modrev_desc_limited["more"] is True


def test_get_at_revision(backend, prefix):
    ep = backend.endpoint
    r1 = put(ep, prefix + "x", "v1")
    r2 = put(ep, prefix + "x", "v2")
    etcdctl(ep, "del", prefix + "x")
    put(ep, prefix + "y", "y1")
    assert kv_pairs(etcdctl_json(ep, "get", prefix + "x", "--rev", str(r1))) == [(prefix + "x", "v1")]
    assert kv_pairs(etcdctl_json(ep, "get", prefix + "x", "--rev", str(r2))) == [(prefix + "x", "v2")]
    at_r2 = etcdctl_json(ep, "get", "--prefix", prefix, "--rev", str(r2))
    assert kv_pairs(at_r2) == [(prefix + "x", "v2")] and at_r2["count"] == 1
    assert kv_pairs(etcdctl_json(ep, "get", "--prefix", prefix)) == [(prefix + "y", "y1")]
    future = etcdctl(ep, "get", prefix + "x", "--rev", "999999999", check=False)
    assert future.returncode != 0 and "required revision is a future revision" in future.stderr


def test_prev_kv(backend, prefix):
    ep = backend.endpoint
    put(ep, prefix + "p", "old")
    out = etcdctl_json(ep, "put", prefix + "p", "new", "--prev-kv")
    assert unb64(out["prev_kv"]["value"]) == "old"
    deleted = etcdctl_json(ep, "del", prefix + "p", "--prev-kv")
    assert deleted["deleted"] == 1 and unb64(deleted["prev_kvs"][0]["value"]) == "new"


def txn(endpoint: str, script: str) -> dict:
    """Run `etcdctl txn -i` and return its JSON answer (the prompts come first on stdout)."""
    out = etcdctl(endpoint, "txn", "-i", "-w", "json", input=script).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_txn_success_and_failure_branches(backend, prefix):
    ep = backend.endpoint
    put(ep, prefix + "flag", "on")
    script = f'value("{prefix}flag") = "on"\n\nput {prefix}result yes\nget {prefix}flag\n\nput {prefix}result no\n\n'
    response = txn(ep, script)
    assert response["succeeded"] is True
    assert unb64(etcdctl_json(ep, "get", prefix + "result")["kvs"][0]["value"]) == "yes"
    assert unb64(response["responses"][1]["Response"]["ResponseRange"]["kvs"][0]["value"]) == "on"

    script = f'mod("{prefix}flag") = "0"\n\nput {prefix}result created\n\nget {prefix}result\n\n'
    response = txn(ep, script)
    assert response.get("succeeded", False) is False
    assert unb64(response["responses"][0]["Response"]["ResponseRange"]["kvs"][0]["value"]) == "yes"

    # kube-apiserver's create: succeed only when the key does not exist yet.
    script = f'mod("{prefix}new") = "0"\n\nput {prefix}new first\n\n\n'
    assert txn(ep, script)["succeeded"] is True
    assert txn(ep, script).get("succeeded", False) is False
    rev = etcdctl_json(ep, "get", prefix + "new")["kvs"][0]["mod_revision"]
    script = f'mod("{prefix}new") = "{rev}"\n\nput {prefix}new second\n\nget {prefix}new\n\n'
    assert txn(ep, script)["succeeded"] is True
    assert unb64(etcdctl_json(ep, "get", prefix + "new")["kvs"][0]["value"]) == "second"

    duplicate = f'\nput {prefix}d 1\nput {prefix}d 2\n\n\n'
    failed = etcdctl(ep, "txn", "-i", input=duplicate, check=False)
    assert failed.returncode != 0 and "duplicate key given in txn request" in failed.stderr


def event_type(event: dict) -> str:
    """etcdctl's JSON writes the event type as a number (0 put, 1 delete), omitted when 0."""
    return "DELETE" if event.get("type") in (1, "DELETE") else "PUT"


def _watch(ep: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(["etcdctl", "--endpoints", ep, "watch", "-w", "json", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV)


def _collect_events(proc: subprocess.Popen, count: int, timeout: float = 15) -> list[dict]:
    """Read `etcdctl watch -w json` responses until ``count`` events arrived or time ran out."""
    import queue
    import threading

    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    events: list[dict] = []
    deadline = time.monotonic() + timeout
    try:
        while len(events) < count and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                continue
            events.extend(json.loads(line).get("Events") or [])
    finally:
        proc.kill()
        proc.wait()
    return events


def test_watch_prefix_from_revision_with_prev_kv(backend, prefix):
    ep = backend.endpoint
    start = put(ep, prefix + "w1", "a")
    put(ep, prefix + "w1", "b")
    put(ep, prefix + "other-not-watched-but-in-prefix", "z")
    put(ep, "/elsewhere/" + prefix, "ignored")
    watcher = _watch(ep, "--prefix", prefix, "--rev", str(start), "--prev-kv")
    time.sleep(0.5)
    etcdctl(ep, "del", prefix + "w1")
    put(ep, prefix + "w2", "c")
    events = _collect_events(watcher, 5)
    summary = [(event_type(e), unb64(e["kv"]["key"]), unb64(e["kv"].get("value", "")),
                unb64(e["prev_kv"]["value"]) if e.get("prev_kv") else None) for e in events]
    assert summary == [
        ("PUT", prefix + "w1", "a", None),
        ("PUT", prefix + "w1", "b", "a"),
        ("PUT", prefix + "other-not-watched-but-in-prefix", "z", None),
        ("DELETE", prefix + "w1", "", "b"),
        ("PUT", prefix + "w2", "c", None),
    ]
    revisions = [e["kv"]["mod_revision"] for e in events]
    assert revisions == sorted(revisions) and len(set(revisions)) == len(revisions)


def test_lease_grant_keepalive_timetolive_revoke(backend, prefix):
    ep = backend.endpoint
    granted = etcdctl(ep, "lease", "grant", "100").stdout
    lease_id = granted.split()[1]
    etcdctl(ep, "put", prefix + "leased", "v", "--lease", lease_id)
    ttl = etcdctl(ep, "lease", "timetolive", lease_id, "--keys").stdout
    assert "granted with TTL(100s)" in ttl and prefix + "leased" in ttl
    keepalive = etcdctl(ep, "lease", "keep-alive", "--once", lease_id).stdout
    assert f"lease {lease_id} keepalived with TTL(100)" in keepalive
    assert lease_id in etcdctl(ep, "lease", "list").stdout
    etcdctl(ep, "lease", "revoke", lease_id)
    assert etcdctl(ep, "get", prefix + "leased").stdout == ""
    assert "already expired" in etcdctl(ep, "lease", "timetolive", lease_id).stdout
    missing = etcdctl(ep, "put", prefix + "x", "v", "--lease", "1234abcd", check=False)
    assert missing.returncode != 0 and "requested lease not found" in missing.stderr


def test_lease_expiry_deletes_attached_keys_in_one_revision(backend, prefix):
    ep = backend.endpoint
    lease_id = etcdctl(ep, "lease", "grant", "2").stdout.split()[1]
    for name in ("e1", "e2", "e3"):
        etcdctl(ep, "put", prefix + name, "v", "--lease", lease_id)
    before = etcdctl_json(ep, "get", prefix + "e1")["header"]["revision"]
    watcher = _watch(ep, "--prefix", prefix, "--rev", str(before + 1))
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and etcdctl_json(ep, "get", "--prefix", prefix).get("count", 0):
        time.sleep(0.25)
    assert etcdctl_json(ep, "get", "--prefix", prefix).get("count", 0) == 0
    events = _collect_events(watcher, 3)
    assert [event_type(e) for e in events] == ["DELETE"] * 3
    assert len({e["kv"]["mod_revision"] for e in events}) == 1


def test_compaction_then_read_at_compacted_revision_fails(backend, fresh_backend):
    server = fresh_backend(backend.kind)
    ep = server.endpoint
    old = put(ep, "/c/k", "v1")
    put(ep, "/c/k", "v2")
    latest = put(ep, "/c/k", "v3")
    etcdctl(ep, "compaction", str(latest - 1))
    failed = etcdctl(ep, "get", "/c/k", "--rev", str(old), check=False)
    assert failed.returncode != 0
    assert "required revision has been compacted" in failed.stderr
    assert kv_pairs(etcdctl_json(ep, "get", "/c/k", "--rev", str(latest - 1))) == [("/c/k", "v2")]
    again = etcdctl(ep, "compaction", str(latest - 2), check=False)
    assert again.returncode != 0 and "required revision has been compacted" in again.stderr
    watch = _watch(ep, "/c/k", "--rev", str(old))
    try:
        _, err = watch.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        watch.kill()
        _, err = watch.communicate()
    assert "required revision has been compacted" in err


def test_lock_hands_over_between_processes(backend, prefix):
    ep = backend.endpoint
    holder = subprocess.Popen(["etcdctl", "--endpoints", ep, "lock", prefix + "mutex"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=ENV)
    first_line = holder.stdout.readline().strip()
    assert first_line.startswith(prefix + "mutex/")
    waiter = subprocess.Popen(["etcdctl", "--endpoints", ep, "lock", prefix + "mutex", "echo", "got-it"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    time.sleep(1.0)
    assert waiter.poll() is None, "the second locker must wait while the first holds the lock"
    holder.terminate()
    holder.wait(timeout=10)
    out, err = waiter.communicate(timeout=20)
    assert waiter.returncode == 0, err
    assert out.strip() == "got-it"


def test_elect_hands_over_leadership(backend, prefix):
    ep = backend.endpoint
    leader = subprocess.Popen(["etcdctl", "--endpoints", ep, "elect", prefix + "election", "alpha"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    assert leader.stdout.readline().strip().startswith(prefix + "election/")
    assert leader.stdout.readline().strip() == "alpha"
    observer = subprocess.Popen(["etcdctl", "--endpoints", ep, "elect", "--listen", prefix + "election"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    assert observer.stdout.readline().strip().startswith(prefix + "election/")
    assert observer.stdout.readline().strip() == "alpha"
    follower = subprocess.Popen(["etcdctl", "--endpoints", ep, "elect", prefix + "election", "beta"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    time.sleep(1.0)
    leader.terminate()
    leader.wait(timeout=10)
    try:
        assert follower.stdout.readline().strip().startswith(prefix + "election/")
        assert follower.stdout.readline().strip() == "beta"
        assert observer.stdout.readline().strip().startswith(prefix + "election/")
        assert observer.stdout.readline().strip() == "beta"
    finally:
        for proc in (follower, observer):
            proc.terminate()
            proc.wait(timeout=10)


def test_endpoint_status_health_and_member_list(backend):
    ep = backend.endpoint
    status = etcdctl_json(ep, "endpoint", "status")[0]["Status"]
    major, minor, *_ = (int(x) for x in status["version"].split("."))
    assert (major, minor) >= (3, 4)
    assert status["dbSize"] > 0 and status["leader"] == status["header"]["member_id"]
    assert status["raftIndex"] >= 1
    health = etcdctl(ep, "endpoint", "health")
    assert "is healthy" in health.stdout + health.stderr
    members = etcdctl_json(ep, "member", "list")["members"]
    assert len(members) == 1
    assert any(ep in url for url in members[0]["clientURLs"])
