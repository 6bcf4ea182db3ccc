"""Profile rules as the console applies them: the shared pure rules (``edgeplane.common.profiles``)
with their refusals turned into API errors (422 naming the field)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from edgeplane.common import profiles as rules
from edgeplane.common.profiles import PackResolver, ProfileInvalid, custom_pack, distribution
from edgeplane.console.errors import invalid

__all__ = ["PackResolver", "check_upgrade_layers", "custom_pack", "distribution", "profile_block", "validate_layers"]
T = TypeVar("T")


def _as_api_error(call: Callable[[], T]) -> T:
    try:
        return call()
    except ProfileInvalid as exc:
        raise invalid(exc.loc, exc.msg) from None


def validate_layers(layers: list[dict[str, Any]], *, fips: bool, arch: str, install_path: str,
                    resolve: PackResolver) -> list[dict[str, Any]]:
    return _as_api_error(lambda: rules.validate_layers(layers, fips=fips, arch=arch, install_path=install_path,
                                                       resolve=resolve))


def profile_block(profile: dict[str, Any], resolve: PackResolver) -> tuple[dict, list[dict], dict]:
    return _as_api_error(lambda: rules.profile_block(profile, resolve))


def check_upgrade_layers(old_layers: list[dict[str, Any]], new_layers: list[dict[str, Any]]) -> None:
    _as_api_error(lambda: rules.check_upgrade_layers(old_layers, new_layers))
