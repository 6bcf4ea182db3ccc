"""``edgeplane twonode``: run a node agent, show status, pause/resume probes."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(help="Two-node HA: PostgreSQL leader/follower pair with probes, promotion and rejoin.",
                  no_args_is_help=True)

ConfigOption = typer.Option(None, "--config", help="node.yaml of the node (its agent API and token).")
LabOption = typer.Option(None, "--lab", help="Directory of a running `edgeplane lab twonode`.")


def _config_error(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(2)


def _targets(config: Path | None, lab: Path | None) -> list[Path]:
    from .client import lab_configs

    if (config is None) == (lab is None):
        raise _config_error(ValueError("give exactly one of --config or --lab"))
    if config is not None:
        return [config]
    try:
        return lab_configs(lab)
    except ValueError as exc:
        raise _config_error(exc) from None


@app.command()
def run(config: Path = typer.Option(..., "--config", help="node.yaml")) -> None:
    """Run this node: its PostgreSQL, its datastore and the agent that probes the peer."""
    from edgeplane.common import logs

    from .agent import run_node
    from .config import ConfigError, load_config

    logs.configure()
    try:
        node = load_config(config)
        node.token()
    except ConfigError as exc:
        raise _config_error(exc) from None
    run_node(node)


@app.command()
def status(config: Path | None = ConfigOption, lab: Path | None = LabOption) -> None:
    """Status as JSON: role, state, peer health, replication lag, last change, epoch."""
    from .client import node_status
    from .config import ConfigError

    try:
        targets = _targets(config, lab)
        documents = [node_status(path) for path in targets]
    except ConfigError as exc:
        raise _config_error(exc) from None
    typer.echo(json.dumps(documents[0] if config else {"nodes": documents}, indent=2))
    if any(doc.get("state") == "unreachable" for doc in documents):
        raise typer.Exit(1)


def _pause(config: Path | None, lab: Path | None, paused: bool) -> None:
    from .client import set_paused
    from .config import ConfigError

    try:
        results = [set_paused(path, paused) for path in _targets(config, lab)]
    except ConfigError as exc:
        raise _config_error(exc) from None
    typer.echo(json.dumps(results[0] if len(results) == 1 else {"nodes": results}, indent=2))
    if any(r.get("state") == "unreachable" for r in results):
        raise typer.Exit(1)


@app.command()
def pause(config: Path | None = ConfigOption, lab: Path | None = LabOption) -> None:
    """Pause probes on both nodes (upgrades): no promotion while paused."""
    _pause(config, lab, True)


@app.command()
def resume(config: Path | None = ConfigOption, lab: Path | None = LabOption) -> None:
    """Resume probes on both nodes."""
    _pause(config, lab, False)
