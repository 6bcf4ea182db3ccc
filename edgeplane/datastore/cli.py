"""``edgeplane datastore``: serve the etcd v3 API over SQLite or PostgreSQL."""

from __future__ import annotations

from typing import Optional

import typer

app = typer.Typer(help="Serve the etcd v3 API over SQL (the role Kine plays for K3s).", invoke_without_command=True)


@app.callback()
def datastore(
    listen: str = typer.Option("127.0.0.1:2379", help="gRPC listen address (HOST:PORT)."),
    endpoint: str = typer.Option("", help="sqlite:///PATH or postgres://USER@HOST:PORT/DB [default: SQLite file in the data directory]."),
    node_name: Optional[str] = typer.Option(None, help="Name stamped on every change and reported as the member name [default: hostname]."),
    cert_file: Optional[str] = typer.Option(None, help="TLS certificate for the gRPC listener."),
    key_file: Optional[str] = typer.Option(None, help="TLS private key for the gRPC listener."),
    trusted_ca_file: Optional[str] = typer.Option(None, help="CA that client certificates must chain to (turns on client certificate auth)."),
    metrics_listen: Optional[str] = typer.Option(None, help="HOST:PORT for Prometheus metrics (text format at /metrics)."),
    auto_compaction: str = typer.Option("10000", help="Keep this many revisions (e.g. 10000) or this long (e.g. 30m, 2h); 0 turns it off."),
    max_request_bytes: int = typer.Option(1536 * 1024, help="Largest Put or Txn request accepted, in bytes."),
    max_txn_ops: int = typer.Option(128, help="Most operations in one branch of a Txn."),
    sqlite_synchronous: str = typer.Option("full", help="SQLite synchronous mode: full (survives power loss) or normal (survives process crashes)."),
    progress_interval: float = typer.Option(5.0, help="Seconds between progress notifications for watches that asked for them."),
    log_level: str = typer.Option("info", help="Log level."),
) -> None:
    """Serve the etcd v3 API over SQL until SIGTERM or Ctrl-C."""
    from edgeplane.common.logs import configure
    from edgeplane.datastore.config import DatastoreConfig
    from edgeplane.datastore.frontend import serve
    from edgeplane.datastore.sql import StartupError, default_node_name

    configure(log_level)
    config = DatastoreConfig(
        listen=listen, endpoint=endpoint, node_name=node_name or default_node_name(), cert_file=cert_file,
        key_file=key_file, trusted_ca_file=trusted_ca_file, metrics_listen=metrics_listen,
        auto_compaction=auto_compaction, max_request_bytes=max_request_bytes, max_txn_ops=max_txn_ops,
        sqlite_synchronous=sqlite_synchronous, progress_interval=progress_interval,
    )
    try:
        config.validate()
        serve(config, log_level)
    except (ValueError, StartupError) as exc:
        typer.echo(f"edgeplane datastore: {exc}", err=True)
        raise typer.Exit(2) from None


def serve_from_options(listen: str) -> None:
    """Used by `edgeplane lab datastore`: the embedded default on ``listen``."""
    from edgeplane.common.logs import configure
    from edgeplane.datastore.config import DatastoreConfig
    from edgeplane.datastore.frontend import serve

    configure("info")
    serve(DatastoreConfig(listen=listen), "info")
