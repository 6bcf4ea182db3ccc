"""Console: the central management plane (packs, profiles, tokens, edge hosts, clusters).

Public API for other parts (the lab, tests):
- ``ConsoleConfig``, ``create_app``: build the FastAPI application.
- ``ThreadedConsole``: serve it on a background thread of this process (``.start()``, ``.url``, ``.stop()``).
- ``ConsoleProcess``: run ``edgeplane console`` as a child process (``.start()``, ``.url``, ``.stop()``).
- ``create_admin_key``: create a tenant's admin and return a new API key.
- ``default_db_url``: the embedded SQLite default in the data directory.
"""

from __future__ import annotations

from edgeplane.common.lazy import lazy_exports

_EXPORTS = {
    "ConsoleConfig": "app", "create_app": "app",
    "ConsoleProcess": "server", "ThreadedConsole": "server", "create_admin_key": "server", "default_db_url": "server",
    "serve": "server",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
