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


@app.command("site")
def lab_site(
    dir: Path = typer.Option(None, "--dir", help="Lab directory (wiped and recreated each run). "
                             "Default: the data directory's lab-site."),
    listen: str = typer.Option("127.0.0.1:8080", help="Console HTTP listen address."),
) -> None:
    """A console and three agents on loopback: token, manual-ID and QR registration, then a K3s cluster."""
    from edgeplane.common.paths import default_data_dir
    from edgeplane.lab.site import LabError, LabSite

    try:
        LabSite(dir or default_data_dir() / "lab-site", listen, say=typer.echo).run()
    except LabError as exc:
        typer.echo(f"lab site failed: {exc}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        pass


def default_main_job() -> None:
    """What `make run` starts: the whole lab site (console, three agents, a cluster)."""
    lab_site(dir=None, listen="127.0.0.1:8080")
