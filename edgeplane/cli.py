"""The ``edgeplane`` command: a thin layer that mounts each part's own command group.

Each part keeps its commands in ``edgeplane/<part>/cli.py`` and exposes a ``typer.Typer`` named
``app``; heavy imports (gRPC, FastAPI, database drivers) happen inside the commands, so
``edgeplane --help`` stays fast.
"""

from __future__ import annotations

import typer

from edgeplane import __version__
from edgeplane.agent import cli as agent_cli
from edgeplane.console import cli as console_cli
from edgeplane.datastore import cli as datastore_cli
from edgeplane.forge import cli as forge_cli
from edgeplane.lab import cli as lab_cli
from edgeplane.twonode import cli as twonode_cli

app = typer.Typer(
    name="edgeplane",
    help="Install, run and manage Kubernetes clusters on small machines at remote sites.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(agent_cli.app, name="agent")
app.add_typer(console_cli.app, name="console")
app.add_typer(datastore_cli.app, name="datastore")
app.add_typer(lab_cli.app, name="lab")
app.add_typer(forge_cli.app, name="forge")
app.add_typer(twonode_cli.app, name="twonode")


@app.command()
def version() -> None:
    """Print the edgeplane version."""
    typer.echo(__version__)


@app.command()
def run() -> None:
    """The main job on the embedded default (what `make run` starts)."""
    lab_cli.default_main_job()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
