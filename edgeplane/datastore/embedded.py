"""The module Envoy's embedded interpreter loads (through pyvoy): the datastore as an ASGI app.

Only ``edgeplane datastore`` (``frontend.serve``) starts Envoy with this module; it passes the
already-checked configuration in ``EDGEPLANE_DATASTORE_CONFIG``.
"""

from __future__ import annotations

import os

from edgeplane.common.logs import configure
from edgeplane.datastore.frontend import CONFIG_ENV
from edgeplane.datastore.server import Datastore

_datastore, _log_level = Datastore.from_environment(os.environ[CONFIG_ENV])
configure(_log_level)
app = _datastore.asgi_app()
