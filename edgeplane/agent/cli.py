"""``edgeplane agent``: run the edge host agent, or inspect and operate it (thin: the work is in
the package's modules, imported inside each command)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="The edge host agent: registration, install, A/B upgrades.", invoke_without_command=True)

ROOT_HELP = "Host root: every host path (/etc, /opt, /var, /proc, /sys, /boot) lives under it."


@app.callback()
def main(
    ctx: typer.Context,
    user_data: Optional[Path] = typer.Option(None, "--user-data", help="The built-in user-data (#cloud-config)."),
    site_user_data: Optional[Path] = typer.Option(None, "--site-user-data", help="Site user-data merged over it."),
    root: Path = typer.Option(Path("/"), "--root", help=ROOT_HELP),
    content_bundle: Optional[Path] = typer.Option(None, "--content-bundle", help="Local content bundle (air-gap)."),
    capsule_dir: Optional[list[Path]] = typer.Option(
        None, "--capsule-dir", help="Directory watched for offline upgrade capsules (*.capsule.tar.zst), "
        "e.g. a mounted USB stick; repeatable."),
    log_level: str = typer.Option("INFO", "--log-level"),
) -> None:
    """Run the agent in the foreground (when no subcommand is given)."""
    ctx.obj = {"root": root, "user_data": user_data, "site_user_data": site_user_data}
    if ctx.invoked_subcommand is not None:
        return
    if user_data is None:
        raise typer.BadParameter("--user-data FILE is required to run the agent", param_hint="--user-data")
    from edgeplane.agent.hostroot import HostRoot
    from edgeplane.agent.runtime import Agent, LocalModeNotBuilt
    from edgeplane.agent.tags import TagsError
    from edgeplane.agent.userdata import UserDataError
    from edgeplane.common.logs import configure

    configure(log_level)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request drowns the agent's own
    try:
        Agent(HostRoot(root), user_data, site_user_data, content_bundle, say=typer.echo,
              capsule_dirs=capsule_dir or ()).run()
    except UserDataError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    except (TagsError, LocalModeNotBuilt, ValueError) as exc:
        typer.echo(f"agent cannot start: {exc}", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


@app.command("validate")
def validate(file: Path, site: Optional[Path] = typer.Option(None, "--site-user-data")) -> None:
    """Validate user-data (and site user-data merged over it); every problem names field and line."""
    from edgeplane.agent.userdata import UserDataError, load_user_data_files

    try:
        load_user_data_files(file, site)
    except UserDataError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo("user-data is valid")


@app.command("hardware")
def hardware(ctx: typer.Context) -> None:
    """Print the hardware inventory and the minimum-requirement checks (exit 1 when below)."""
    from edgeplane.agent.hardware import check_minimums, failures, read_inventory
    from edgeplane.agent.hostroot import HostRoot

    inv = read_inventory(HostRoot(ctx.obj["root"]))
    typer.echo(f"{inv.arch} {inv.cpu_model} cores={inv.cores} memory={inv.memory_bytes} board={inv.board_model!r}")
    findings = check_minimums(inv)
    for finding in findings:
        typer.echo(str(finding))
    raise typer.Exit(1 if failures(findings) else 0)


@app.command("status")
def status(ctx: typer.Context) -> None:
    """Print host ID, registration diagnosis, applied generation and the A/B slot state."""
    import json

    from edgeplane.agent.capsule import RESULTS
    from edgeplane.agent.hostroot import HostRoot
    from edgeplane.agent.slots import Slots

    root = HostRoot(ctx.obj["root"])
    for name in ("host-id", "registration-status.json", "applied.json"):
        text = root.read_text(f"/var/lib/edgeplane/agent/{name}")
        typer.echo(f"{name}: {text.strip() if text else '-'}")
    typer.echo("slots: " + json.dumps(Slots(root).load().to_dict()))
    for result in sorted(root.path(RESULTS).glob("*.json")) if root.path(RESULTS).is_dir() else ():
        typer.echo(f"capsule {result.stem[:12]}: {json.loads(result.read_text())['state']}")


@app.command("apply-capsule")
def apply_capsule(ctx: typer.Context, capsule: Path = typer.Argument(..., help="Capsule (.capsule.tar.zst)"),
                  wait: bool = typer.Option(True, "--wait/--no-wait", help="Wait for the agent's result."),
                  timeout: float = typer.Option(900.0, "--timeout", help="Seconds to wait for the result.")) -> None:
    """Hand a capsule to this host's running agent (no console needed); exit 0 once it committed."""
    from edgeplane.agent.capsule import deliver_capsule, wait_capsule_result

    if not capsule.is_file():
        typer.echo(f"{capsule}: no such file", err=True)
        raise typer.Exit(2)
    sha = deliver_capsule(ctx.obj["root"], capsule)
    typer.echo(f"{capsule.name} ({sha[:12]}) is in the agent's inbox")
    if not wait:
        return
    result = wait_capsule_result(ctx.obj["root"], sha, timeout)
    typer.echo(f"{result['state']}: {result['message']}")
    raise typer.Exit(0 if result["state"] == "committed" else 1)


@app.command("rollback")
def rollback(ctx: typer.Context) -> None:
    """Manual rollback: boot the passive slot (health-checked; falls back if it fails)."""
    from edgeplane.agent.hostroot import HostRoot
    from edgeplane.agent.slots import SlotError, Slots, image_health_check

    root = HostRoot(ctx.obj["root"])
    try:
        state = Slots(root).rollback(image_health_check(root))
    except SlotError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"active slot {state.active}: {state.last_result}")


@app.command("reset")
def reset(ctx: typer.Context,
          factory: bool = typer.Option(False, "--factory", help="Also forget host ID and registration.")) -> None:
    """Reset: leave Kubernetes, slots back to the factory image; the original user-data stays."""
    from edgeplane.agent.hostroot import HostRoot
    from edgeplane.agent.reset import factory_reset

    removed = factory_reset(HostRoot(ctx.obj["root"]), keep_registration=not factory)
    typer.echo(f"reset done; removed agent state: {', '.join(removed) or 'nothing'}")
