"""Reads must not slow down as history grows: checked through SQLite's query plans, not timings.

Current-revision reads and counts must touch only ``ep_kv``; historical reads and watch catch-up
must reach ``ep_log`` through its indexes, never by scanning it.
"""

from __future__ import annotations

import pytest

from edgeplane.datastore.model import KeyRange
from edgeplane.datastore.mvcc import Reader
from edgeplane.datastore.sql import make_dialect, parse_endpoint, prepare_database


class PlanRecorder:
    """Wraps a connection and records SQLite's plan for every SELECT the reader runs."""

    def __init__(self, conn) -> None:
        self.conn = conn
        self.plans: list[str] = []

    def execute(self, sql, params=()):
        if sql.lstrip().upper().startswith("SELECT"):
            rows = self.conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
            self.plans.append("\n".join(row[-1] for row in rows))
        return self.conn.execute(sql, params)


@pytest.fixture
def reader(tmp_path):
    dialect = make_dialect(parse_endpoint(f"sqlite://{tmp_path / 'plans.db'}"))
    prepare_database(dialect, "test")
    conn = dialect.connect()
    conn.execute("ANALYZE")
    recorder = PlanRecorder(conn)
    yield Reader(recorder, dialect), recorder
    conn.close()


def full_scans(plans: list[str]) -> list[str]:
    return [line for plan in plans for line in plan.splitlines() if line.strip().startswith("SCAN") and "ep_" in line]


def test_current_reads_touch_only_the_current_state_table(reader):
    store, recorder = reader
    prefix = KeyRange(b"/registry/pods/", b"/registry/pods0")
    store.range(prefix, 10, 10, limit=500)
    store.count(prefix, 10, 10)
    store.get(b"/registry/pods/a")
    assert recorder.plans and all("ep_log" not in plan for plan in recorder.plans), recorder.plans
    assert not full_scans(recorder.plans), recorder.plans


def test_historical_reads_and_watch_catch_up_use_indexes(reader):
    store, recorder = reader
    prefix = KeyRange(b"/registry/pods/", b"/registry/pods0")
    store.range(prefix, 5, 10, limit=500)
    store.count(prefix, 5, 10)
    store.events(prefix, 3, 10, 1000, with_prev=True)
    history_plans = [plan for plan in recorder.plans if "ep_log" in plan]
    assert len(history_plans) == 3
    # History is entered through the revision index: cost follows the changes since the
    # requested revision, not every version of every key in the range.
    assert all("INDEX ep_log_revision (revision>? AND revision<?)" in plan or
               "INDEX ep_log_revision (revision>?)" in plan for plan in history_plans), history_plans
    assert not full_scans(recorder.plans), recorder.plans
