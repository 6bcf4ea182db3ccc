"""Lab commands: each brings a set of parts up on loopback, in the foreground, until Ctrl-C."""

from __future__ import annotations

import typer

app = typer.Typer(help="Bring parts up together on loopback to try edgeplane on one machine.", no_args_is_help=True)


@app.command("datastore")
def lab_datastore(
    listen: str = typer.Option("127.0.0.1:2379", help="gRPC listen address for the etcd v3 API."),
) -> None:
    """One datastore on the embedded SQLite default; try it with `etcdctl --endpoints LISTEN`."""
    from edgeplane.datastore.cli import serve_from_options

    serve_from_options(listen=listen)


def default_main_job() -> None:
    """What `make run` starts: the most complete lab that exists so far."""
    lab_datastore(listen="127.0.0.1:2379")
