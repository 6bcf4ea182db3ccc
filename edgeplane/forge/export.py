"""Cluster definition export from the console's REST API (``GET /v1/profiles/{id}``, httpx).

Console profiles are full stacks (os, kubernetes, network layers, then add-ons): forge records
them as ``type: infra`` when they carry an ``os`` or ``kubernetes`` layer, else ``add-on``,
and keeps the whole console document in the exported profile file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edgeplane.forge.definition import Definition, build_definition
from edgeplane.forge.errors import DefinitionError

_INFRA_LAYERS = {"os", "kubernetes"}


def console_profile_to_yaml(document: Mapping[str, object]) -> bytes:
    """A console profile document as a forge profile file (name, version, type, layers, ...)."""
    layers = document.get("layers") or []
    kinds = {layer.get("layer") for layer in layers if isinstance(layer, dict)} if isinstance(layers, list) else set()
    profile = dict(document)
    profile["version"] = str(document.get("version", ""))
    profile["type"] = "infra" if kinds & _INFRA_LAYERS else "add-on"
    return yaml.safe_dump(profile, sort_keys=True).encode()


def _fetch(client: httpx.Client, profile_id: str) -> dict:
    response = client.get(f"/v1/profiles/{profile_id}")
    if response.status_code == 404 and not isinstance(response.json().get("detail"), list):
        # the console's own 404s carry a list of {loc, msg}; a bare "Not Found" is another server
        raise DefinitionError(f"--console {client.base_url}: no console API at this URL "
                              f"(GET /v1/profiles/{profile_id} answered 404 Not Found)")
    if response.status_code in (401, 403):
        raise DefinitionError(f"--api-key: the console refused it ({response.status_code}): {response.json().get('detail')}")
    if response.status_code == 404:
        raise DefinitionError(f"--profile-id {profile_id}: no such profile in the console")
    if response.status_code != 200:
        raise DefinitionError(f"{client.base_url}: GET /v1/profiles/{profile_id} answered {response.status_code}: {response.text[:200]}")
    return response.json()


def export_definition(console_url: str, api_key: str, profile_ids: Sequence[str], name: str, out: Path,
                      variables: Mapping[str, object] | None = None, signing_key: Ed25519PrivateKey | None = None,
                      timeout: float = 30.0) -> Definition:
    """Fetch the profiles from the console and write a definition archive to ``out``."""
    if not profile_ids:
        raise DefinitionError("--profile-id: give at least one profile")
    headers = {"Authorization": f"Bearer {api_key}"}
    try:
        with httpx.Client(base_url=console_url, headers=headers, timeout=timeout) as client:
            documents = [console_profile_to_yaml(_fetch(client, pid)) for pid in profile_ids]
    except httpx.HTTPError as exc:
        raise DefinitionError(f"--console {console_url}: cannot reach the console: {exc}") from None
    except ValueError as exc:  # a body that is not JSON
        raise DefinitionError(f"--console {console_url}: unexpected answer: {exc}") from None
    return build_definition(out, name, documents, variables, signing_key,
                            sources=[f"console profile {pid}" for pid in profile_ids])
