"""The upgrade clock: a thread in every console process that acts on upgrade steps out of time.

Agents report only while they are alive, so a node that died mid-upgrade can never end its own
step; this sweep is the one piece of lifecycle work not caused by a request. It holds nothing
of its own: each step's deadline is in the cluster's operation document, so any console process,
or the next one after a restart, enforces it, and each action runs in its own transaction with
the cluster row locked and the deadline read again (``clusters.expire_upgrade_step``), so two
processes sweeping at once act once.
"""

from __future__ import annotations

import logging
import threading

from edgeplane.console import clusters
from edgeplane.console.db import Database, now_ms

log = logging.getLogger(__name__)

MAX_SWEEP_INTERVAL_S = 5.0


class UpgradeDeadlines:
    def __init__(self, db: Database, step_timeout_s: int) -> None:
        self._db = db
        self._step_timeout_s = step_timeout_s
        # The sweep wakes at the next deadline it knows of, and at least this often to see upgrades
        # other processes started; a short limit (tests) sweeps faster.
        self.interval_s = min(MAX_SWEEP_INTERVAL_S, step_timeout_s / 2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="console-upgrade-deadlines", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def sweep(self) -> tuple[list[tuple[str, str]], float]:
        """One pass: (cluster ID, what was done) for every upgrade acted on, and seconds to the next pass."""
        with self._db.transaction(write=False) as tx:
            due, next_deadline = clusters.upgrades_due(tx, now_ms())
        acted = []
        for cluster_id in due:
            try:
                with self._db.transaction() as tx:
                    outcome = clusters.expire_upgrade_step(tx, cluster_id, now_ms(), self._step_timeout_s)
            except Exception as exc:  # noqa: BLE001 - one cluster's failure must not hold up the others
                log.warning("upgrade deadline of cluster %s: %s: %s", cluster_id, type(exc).__name__, exc)
                continue
            if outcome:
                log.info("upgrade of cluster %s: %s", cluster_id, outcome)
                acted.append((cluster_id, outcome))
        wait = 0.0 if acted else self.interval_s  # acting set new deadlines: read them at once
        if next_deadline is not None:
            wait = min(wait, max(0.0, (next_deadline - now_ms()) / 1000) + 0.05)
        return acted, wait

    def _run(self) -> None:
        while not self._stop.is_set():
            wait = self.interval_s
            try:
                _, wait = self.sweep()
            except Exception as exc:  # noqa: BLE001 - a database outage must not end the sweep for good
                log.warning("upgrade deadline sweep failed (%s: %s); retrying in %.1fs",
                            type(exc).__name__, exc, wait)
            self._stop.wait(wait)
