"""``edgeplane datastore``: serve the etcd v3 API over SQLite or PostgreSQL."""

from __future__ import annotations

import typer

app = typer.Typer(help="Serve the etcd v3 API over SQL.", invoke_without_command=True)


def serve_from_options(listen: str) -> None:
    raise NotImplementedError("datastore server is being built")
