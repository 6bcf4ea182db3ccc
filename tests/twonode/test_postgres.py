"""LocalPostgres against real PostgreSQL clusters: replication, synchronous mode, promotion, resync."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest

from edgeplane.twonode.postgres import Dynamic, LocalPostgres, slot_name
from tests.support.ports import free_port
from tests.support.waiting import wait_for

pytestmark = pytest.mark.postgres


@pytest.fixture
def pair(node_dir: Path):
    a = LocalPostgres(node_dir / "a", free_port(), wal_timeout_s=2)
    b = LocalPostgres(node_dir / "b", free_port(), wal_timeout_s=2)
    a.initdb()
    a.write_static_config(["127.0.0.1"])
    a.write_dynamic(Dynamic())
    a.start()
    a.ensure_database()
    yield a, b
    for node in (a, b):
        node.stop("immediate")


def _streaming(leader: LocalPostgres, follower_name: str) -> bool:
    return any(r.application_name == slot_name(follower_name) and r.state == "streaming" for r in leader.replicas())


def test_clone_streams_and_promote_makes_writable(pair):
    a, b = pair
    with a.connect() as conn:
        conn.execute("CREATE TABLE kv (k text primary key, v text)")
        conn.execute("INSERT INTO kv VALUES ('x', '1')")
    b.clone_from(a.host, a.port, "b")
    b.write_static_config(["127.0.0.1"])
    b.start()
    assert b.role() == "standby" and a.role() == "primary"
    wait_for("b streaming", lambda: _streaming(a, "b"))
    with a.connect() as conn:
        conn.execute("INSERT INTO kv VALUES ('y', '2')")
    wait_for("replay", lambda: b.connect().execute("SELECT count(*) FROM kv").fetchone()[0] == 2)
    a.stop("immediate")
    b.promote()
    assert b.role() == "primary"
    with b.connect() as conn:
        conn.execute("INSERT INTO kv VALUES ('z', '3')")
    # The old leader is dropped and re-cloned from the new one.
    a.clone_from(b.host, b.port, "a")
    a.write_static_config(["127.0.0.1"])
    a.start()
    assert a.role() == "standby"
    rows = wait_for("a caught up", lambda: a.connect().execute("SELECT k FROM kv ORDER BY k").fetchall() if
                    len(a.connect().execute("SELECT k FROM kv").fetchall()) == 3 else None)
    assert [r[0] for r in rows] == ["x", "y", "z"]


def test_synchronous_commit_blocks_without_follower_until_downgraded(pair):
    a, b = pair
    b.clone_from(a.host, a.port, "b")
    b.write_static_config(["127.0.0.1"])
    b.start()
    wait_for("b streaming", lambda: _streaming(a, "b"))
    a.write_dynamic(Dynamic(synchronous_standby=slot_name("b")))
    a.reload()
    wait_for("sync standby", lambda: any(r.sync_state == "sync" for r in a.replicas()))
    with a.connect() as conn:
        conn.execute("CREATE TABLE t (i int)")
    b.stop("immediate")
    done = threading.Event()

    def write() -> None:
        with a.connect() as conn:
            conn.execute("INSERT INTO t VALUES (1)")
        done.set()

    threading.Thread(target=write, daemon=True).start()
    assert not done.wait(1.5), "a commit must wait for the synchronous standby"
    a.write_dynamic(Dynamic())
    a.reload()
    assert done.wait(5), "downgrading to async must release the waiting commit"


def test_read_only_fence_refuses_writes(pair):
    a, _ = pair
    a.write_dynamic(Dynamic(read_only=True))
    a.reload()
    time.sleep(0.3)
    with a.connect() as conn:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("CREATE TABLE t (i int)")
    assert a.read_dynamic().read_only
    a.write_dynamic(Dynamic())
    a.reload()
    time.sleep(0.3)
    with a.connect() as conn:
        conn.execute("CREATE TABLE t (i int)")
