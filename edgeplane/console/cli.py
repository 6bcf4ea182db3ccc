"""``edgeplane console``: serve the console; ``edgeplane console admin-key``: make the first admin."""

from __future__ import annotations

from typing import Optional

import typer

app = typer.Typer(help="The central management console (REST API under /v1).", invoke_without_command=True)

_DB_HELP = "sqlite:///PATH or postgresql://USER@HOST:PORT/DB [default: SQLite file in the data directory]."


@app.callback()
def console(
    ctx: typer.Context,
    listen: str = typer.Option("127.0.0.1:8080", help="HTTP listen address (HOST:PORT)."),
    db: Optional[str] = typer.Option(None, help=_DB_HELP),
    host_id_prefix: str = typer.Option("edge-", help="Prefix every edge host ID must start with."),
    heartbeat_interval: int = typer.Option(30, min=5, max=3600, help="Seconds between agent heartbeats."),
    public_url: Optional[str] = typer.Option(None, help="Base URL hosts and operators use to reach this console "
                                                        "(for QR approval links) [default: from each request]."),
    pool_size: int = typer.Option(10, min=1, max=100, help="PostgreSQL connections per process."),
    upgrade_step_timeout: int = typer.Option(
        1800, help="Seconds a node may take to report a rolling-upgrade step (and the "
                                      "upgraded nodes to confirm a rollback) before the console rolls back "
                                      "(or ends the rollback)."),
    log_level: str = typer.Option("info", help="Log level."),
) -> None:
    """Serve the console until SIGTERM or Ctrl-C."""
    if ctx.invoked_subcommand is not None:
        return
    from edgeplane.common.logs import configure
    from edgeplane.common.netaddr import AddressError, parse_host_port
    from edgeplane.console.app import ConfigError, ConsoleConfig, check_step_timeout
    from edgeplane.console.db import DatabaseUrlError
    from edgeplane.console.server import default_db_url, serve

    configure(log_level)
    try:
        host, port = parse_host_port(listen, option="--listen")
        check_step_timeout(upgrade_step_timeout, "--upgrade-step-timeout")
        config = ConsoleConfig(db_url=db or default_db_url(), host_id_prefix=host_id_prefix,
                               heartbeat_interval_s=heartbeat_interval, public_url=public_url, pool_size=pool_size,
                               upgrade_step_timeout_s=upgrade_step_timeout)
        serve(config, host, port, log_level=log_level)
    except (AddressError, DatabaseUrlError, ConfigError) as exc:
        typer.echo(f"edgeplane console: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command("admin-key")
def admin_key(
    db: Optional[str] = typer.Option(None, help=_DB_HELP),
    tenant: str = typer.Option("default", help="Tenant to create (if new) and administer."),
    user: str = typer.Option("admin", help="Admin user name (created if new)."),
) -> None:
    """Create the tenant's admin user if needed and print a new API key for it (shown only now)."""
    from edgeplane.console.db import DatabaseUrlError
    from edgeplane.console.errors import ApiError
    from edgeplane.console.server import create_admin_key, default_db_url

    try:
        typer.echo(create_admin_key(db or default_db_url(), tenant=tenant, user=user))
    except (DatabaseUrlError, ApiError) as exc:
        typer.echo(f"edgeplane console admin-key: {exc}", err=True)
        raise typer.Exit(2) from None
