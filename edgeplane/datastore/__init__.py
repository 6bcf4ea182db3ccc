"""Datastore: the etcd v3 API served over SQL (SQLite single node, PostgreSQL for two-node HA).

Public API for other parts:
- ``DatastoreConfig``, ``serve``: check a configuration, then become the server process (Envoy
  with the datastore embedded, see ``frontend.py``); ``Datastore`` is what runs inside it.
- ``last_change``, ``changes_since``, ``advance_revision``: what two-node HA needs to pick a winner
  after a split, export the loser's writes and never reuse a revision after a failover.
"""

from edgeplane.datastore.admin import Change, ChangeRecord, advance_revision, changes_since, last_change
from edgeplane.datastore.server import Datastore, DatastoreConfig, serve
from edgeplane.datastore.sql import StartupError

__all__ = [
    "Change", "ChangeRecord", "Datastore", "DatastoreConfig", "StartupError", "advance_revision", "changes_since",
    "last_change", "serve",
]
