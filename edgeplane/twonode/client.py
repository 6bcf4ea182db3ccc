"""Talking to running agents: status and pause/resume for one node (node.yaml) or a lab (lab.json)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from .config import load_config


def _call(config_path: Path, method: str, path: str, timeout: float = 5.0) -> dict:
    config = load_config(config_path)
    host, _, port = config.listen.rpartition(":")
    url = f"http://{host}:{port}{path}"
    try:
        response = httpx.request(method, url, timeout=timeout,
                                 headers={"Authorization": f"Bearer {config.token()}"})
        response.raise_for_status()
        return response.json()
    except httpx.HTTPError as exc:
        return {"name": config.name, "state": "unreachable", "error": f"agent at {config.listen}: {exc}"}


def node_status(config_path: Path) -> dict:
    return _call(config_path, "GET", "/v1/status")


def set_paused(config_path: Path, paused: bool) -> dict:
    return _call(config_path, "POST", "/v1/pause" if paused else "/v1/resume")


def lab_configs(lab_dir: Path) -> list[Path]:
    path = Path(lab_dir) / "lab.json"
    try:
        lab = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"--lab: cannot read {path}: {exc}") from None
    return [Path(node["config"]) for node in lab["nodes"]]


def lab_status(lab_dir: Path) -> dict:
    return {"nodes": [node_status(path) for path in lab_configs(lab_dir)]}
