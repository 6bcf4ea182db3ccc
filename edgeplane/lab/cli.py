"""Lab commands: each brings a set of parts up on loopback, in the foreground, until Ctrl-C."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Bring parts up together on loopback to try edgeplane on one machine.", no_args_is_help=True)


@app.command("datastore")
def lab_datastore(
    listen: str = typer.Option("127.0.0.1:2379", help="gRPC listen address for the etcd v3 API."),
) -> None:
    """One datastore on the embedded SQLite default; try it with `etcdctl --endpoints LISTEN`."""
    from edgeplane.datastore.cli import serve_from_options

    serve_from_options(listen=listen)


@app.command("twonode")
def lab_twonode(
    dir: Path = typer.Option(..., "--dir", help="Directory for both nodes' data, configs and DIR/lab.json."),
) -> None:
    """A two-node HA pair on loopback (two PostgreSQL clusters, two datastores, two agents) until Ctrl-C."""
    from edgeplane.twonode import run_lab

    run_lab(dir)


def default_main_job() -> None:
    """What `make run` starts: the most complete lab that exists so far."""
    lab_datastore(listen="127.0.0.1:2379")
