"""The module Envoy's embedded interpreter loads (through pyvoy): the datastore as an ASGI app.

Only ``edgeplane datastore`` (``server.serve``) starts Envoy with this module; it passes the
already-checked configuration in ``EDGEPLANE_DATASTORE_CONFIG``.
"""

from __future__ import annotations

import os

from edgeplane.common.logs import configure
from edgeplane.datastore.frontend import CONFIG_ENV, decode_config
from edgeplane.datastore.server import Datastore, DatastoreConfig

_fields, _log_level = decode_config(os.environ[CONFIG_ENV])
configure(_log_level)
app = Datastore(DatastoreConfig(**_fields)).asgi_app()
