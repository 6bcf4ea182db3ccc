"""Console: the central management plane (packs, profiles, tokens, edge hosts, clusters).

Public API for other parts (the lab, tests):
- ``ConsoleConfig``, ``create_app``: build the FastAPI application.
- ``ThreadedConsole``: serve it on a background thread of this process (``.start()``, ``.url``, ``.stop()``).
- ``ConsoleProcess``: run ``edgeplane console`` as a child process (``.start()``, ``.url``, ``.stop()``).
- ``create_admin_key``: create a tenant's admin and return a new API key.
- ``default_db_url``: the embedded SQLite default in the data directory.
"""

from edgeplane.console.app import ConsoleConfig, create_app
from edgeplane.console.server import ConsoleProcess, ThreadedConsole, create_admin_key, default_db_url, serve

__all__ = ["ConsoleConfig", "ConsoleProcess", "ThreadedConsole", "create_admin_key", "create_app", "default_db_url",
           "serve"]
