"""Datastore: the etcd v3 API served over SQL (SQLite single node, PostgreSQL for two-node HA).

Public API for other parts:
- ``DatastoreConfig``, ``serve``: check a configuration, then become the server process (Envoy
  with the datastore embedded, see ``frontend.py``); ``Datastore`` is what runs inside it.
- ``last_change``, ``changes_since``, ``advance_revision``: what two-node HA needs to pick a winner
  after a split, export the loser's writes and never reuse a revision after a failover.
"""

from __future__ import annotations

from edgeplane.common.lazy import lazy_exports

_EXPORTS = {
    "Change": "admin", "ChangeRecord": "admin", "advance_revision": "admin", "changes_since": "admin",
    "last_change": "admin",
    "DatastoreConfig": "config", "serve": "frontend", "Datastore": "server",
    "StartupError": "sql",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
